/* Fan-out's child processes on POSIX: fork (or posix_spawn of the binary)
 * with stdout and stderr on non-blocking pipes read through poll(), so one
 * silent host never blocks the others.  The one platform-specific file of
 * fan-out (client/fanout.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

#include "client/fanout.h"

extern char **environ;

#define CHILD_READ_CHUNK 65536

struct cli_child {
	pid_t pid; /* 0 once reaped */
	int fd[2]; /* stdout, stderr read ends; -1 when ended */
	struct cli_child_status st;
	struct cli_child *next; /* the live ones, for a forked child to close */
};

static struct cli_child *live;

static void live_add(struct cli_child *c)
{
	c->next = live;
	live = c;
}

static void live_remove(struct cli_child *c)
{
	for (struct cli_child **p = &live; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			return;
		}
}

char *cli_child_self_exe(const char *argv0)
{
#if defined(__linux__)
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n > 0) {
		buf[n] = '\0';
		return bh_strdup(buf);
	}
#elif defined(__APPLE__)
	char buf[4096];
	uint32_t size = sizeof(buf);

	if (_NSGetExecutablePath(buf, &size) == 0)
		return bh_strdup(buf);
#endif
	/* Elsewhere: argv[0], searched in PATH by posix_spawnp when bare. */
	return bh_strdup(argv0);
}

static int pipe_cloexec(int p[2], struct bh_err *err)
{
	if (pipe(p) < 0)
		return bh_err_sys(err, errno, "pipe");
	/* The read end must not leak into the next child, the write end is
	 * dup2'ed to 1/2 in the child (dup2 clears FD_CLOEXEC). */
	for (int i = 0; i < 2; i++)
		(void)fcntl(p[i], F_SETFD, FD_CLOEXEC);
	(void)fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
	return 0;
}

static char **env_with(const char *env_add)
{
	size_t n = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = bh_calloc(n + 2, sizeof(*env));
	memcpy(env, environ, n * sizeof(*env));
	env[n] = (char *)env_add;
	return env;
}

static int spawn(const char *exe, char *const argv[], const char *env_add, int out[2], int errp[2],
                 pid_t *pid, struct bh_err *err)
{
	posix_spawn_file_actions_t fa;
	cleanup_free char **env = env_with(env_add);
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	if (strchr(exe, '/') != NULL)
		r = posix_spawn(pid, exe, &fa, NULL, argv, env);
	else
		r = posix_spawnp(pid, exe, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return bh_err_sys(err, r, "start %s", exe);
	return 0;
}

static struct cli_child *child_new(pid_t pid, int out_fd, int err_fd)
{
	struct cli_child *c = bh_calloc(1, sizeof(*c));

	c->pid = pid;
	c->fd[0] = out_fd;
	c->fd[1] = err_fd;
	live_add(c);
	return c;
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* INT, TERM, HUP while children run: a byte down this pipe wakes the poll
 * (no race between a check and the poll), the number is kept for the caller. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_taken;
static const int trapped[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction sig_saved[3];

static void on_signal(int s)
{
	int saved = errno;
	char c = 1;

	sig_taken = s;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* full: a wake-up is pending anyway */
	}
	errno = saved;
}

int cli_child_signals(bool on, struct bh_err *err)
{
	struct sigaction sa = {.sa_handler = on_signal};

	if (!on) {
		for (size_t i = 0; i < 3 && sig_pipe[0] >= 0; i++)
			sigaction(trapped[i], &sig_saved[i], NULL);
		close_pair(sig_pipe);
		sig_pipe[0] = sig_pipe[1] = -1;
		return 0;
	}
	if (pipe_cloexec(sig_pipe, err) < 0)
		return -1;
	(void)fcntl(sig_pipe[1], F_SETFL, fcntl(sig_pipe[1], F_GETFL) | O_NONBLOCK);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < 3; i++)
		sigaction(trapped[i], &sa, &sig_saved[i]);
	return 0;
}

int cli_child_signal_taken(void)
{
	char buf[64];

	if (sig_pipe[0] >= 0)
		while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
			;
	return (int)sig_taken;
}

int cli_child_start(const char *exe, char *const argv[], const char *env_add,
                    struct cli_child **out, struct bh_err *err)
{
	int o[2] = {-1, -1}, e[2] = {-1, -1};
	pid_t pid;

	if (pipe_cloexec(o, err) < 0 || pipe_cloexec(e, err) < 0 ||
	    spawn(exe, argv, env_add, o, e, &pid, err) < 0) {
		close_pair(o);
		close_pair(e);
		return -1;
	}
	close(o[1]);
	close(e[1]);
	*out = child_new(pid, o[0], e[0]);
	return 0;
}

/* In the forked child: stdio onto the pipes and the null device, and none of
 * the parent's other pipe ends (they would only leak). */
static void child_side(int o[2], int e[2])
{
	int null = open("/dev/null", O_RDONLY);

	if (null < 0 || dup2(null, 0) < 0 || dup2(o[1], 1) < 0 || dup2(e[1], 2) < 0)
		_exit(CLI_EXIT_CMD);
	close(null);
	close(o[0]);
	close(o[1]);
	close(e[0]);
	close(e[1]);
	for (size_t i = 0; i < 3 && sig_pipe[0] >= 0; i++)
		sigaction(trapped[i], &sig_saved[i], NULL); /* berth's own, not ours */
	close_pair(sig_pipe);
	for (struct cli_child *c = live; c != NULL; c = c->next)
		for (int s = 0; s < 2; s++)
			if (c->fd[s] >= 0)
				close(c->fd[s]);
}

int cli_child_fork(int (*fn)(void *), void *arg, struct cli_child **out, struct bh_err *err)
{
	int o[2] = {-1, -1}, e[2] = {-1, -1};
	pid_t pid;

	if (pipe_cloexec(o, err) < 0 || pipe_cloexec(e, err) < 0) {
		close_pair(o);
		close_pair(e);
		return -1;
	}
	fflush(NULL); /* or the child writes our buffered output again */
	pid = fork();
	if (pid < 0) {
		bh_err_sys(err, errno, "fork");
		close_pair(o);
		close_pair(e);
		return -1;
	}
	if (pid == 0) {
		child_side(o, e);
		exit(fn(arg)); /* exit, not _exit: stdio is flushed */
	}
	close(o[1]);
	close(e[1]);
	*out = child_new(pid, o[0], e[0]);
	return 0;
}

bool cli_child_streams_open(const struct cli_child *c)
{
	return c->fd[0] >= 0 || c->fd[1] >= 0;
}

/* Reads what is there now (bounded: a few chunks, so one chatty child cannot
 * starve the others), or notes the end of the stream. */
static void drain(struct cli_child *c, int s, size_t index, cli_child_out_fn fn, void *arg)
{
	char buf[CHILD_READ_CHUNK];

	for (int i = 0; i < 4 && c->fd[s] >= 0; i++) {
		ssize_t n = read(c->fd[s], buf, sizeof(buf));
		if (n > 0) {
			fn(arg, index, s + 1, buf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		close(c->fd[s]); /* EOF, or an error that ends the stream */
		c->fd[s] = -1;
		fn(arg, index, s + 1, NULL, 0);
	}
}

int cli_child_wait(struct cli_child *const *kids, size_t n, int timeout_ms, cli_child_out_fn fn,
                   void *arg, struct bh_err *err)
{
	cleanup_free struct pollfd *pfd = bh_calloc(2 * n + 2, sizeof(*pfd));
	cleanup_free size_t *who = bh_calloc(2 * n + 2, sizeof(*who));
	nfds_t np = 0;
	int r;

	if (sig_pipe[0] >= 0) {
		pfd[np] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
		who[np++] = SIZE_MAX;
	}

	for (size_t i = 0; i < n; i++)
		for (int s = 0; kids[i] != NULL && s < 2; s++)
			if (kids[i]->fd[s] >= 0) {
				pfd[np] = (struct pollfd){.fd = kids[i]->fd[s], .events = POLLIN};
				who[np++] = i * 2 + (size_t)s;
			}
	r = poll(pfd, np, timeout_ms);
	if (r < 0 && errno != EINTR)
		return bh_err_sys(err, errno, "poll");
	for (nfds_t k = 0; r > 0 && k < np; k++)
		if (pfd[k].revents != 0 && who[k] != SIZE_MAX)
			drain(kids[who[k] / 2], (int)(who[k] % 2), who[k] / 2, fn, arg);
	return 0;
}

int cli_child_try_reap(struct cli_child *c, struct cli_child_status *st)
{
	int status;
	pid_t r;

	if (c->pid == 0) {
		*st = c->st;
		return 1;
	}
	r = waitpid(c->pid, &status, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return 0;
	c->pid = 0;
	if (r < 0)
		c->st = (struct cli_child_status){.code = -1, .signal = 0};
	else if (WIFSIGNALED(status))
		c->st = (struct cli_child_status){.code = -1, .signal = WTERMSIG(status)};
	else
		c->st = (struct cli_child_status){.code = WEXITSTATUS(status), .signal = 0};
	*st = c->st;
	return 1;
}

void cli_child_kill(struct cli_child *c)
{
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
}

void cli_child_free(struct cli_child *c)
{
	int status;

	if (c == NULL)
		return;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	for (int s = 0; s < 2; s++)
		if (c->fd[s] >= 0)
			close(c->fd[s]);
	live_remove(c);
	free(c);
}
