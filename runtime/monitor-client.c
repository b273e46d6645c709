/* berthd's side of the monitor: spawning it, reading its sync report, the
 * live-restore probe, attach framing.  Everything read from the monitor's
 * files and pipe is size-limited and parsed strictly. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"

#define SYNC_MAX       4096
#define EXIT_JSON_MAX  4096
#define CMDLINE_MAX    (64 * 1024)
#define SPAWN_ARGS_MAX 32

void rt_frame_header(uint8_t hdr[RT_MONITOR_FRAME_HDR], enum rt_frame_type type, uint32_t len)
{
	hdr[0] = (uint8_t)type;
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

int rt_frame_parse(const uint8_t hdr[RT_MONITOR_FRAME_HDR], uint8_t *type, uint32_t *len)
{
	*type = hdr[0];
	*len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
	return *len > RT_MONITOR_FRAME_MAX ? -1 : 0;
}

/* ---- spawn --------------------------------------------------------------- */
struct argv_builder {
	char *v[SPAWN_ARGS_MAX + 1];
	int n;
};

static void arg(struct argv_builder *a, char *s /* owned */)
{
	if (a->n >= SPAWN_ARGS_MAX)
		abort(); /* a programming error: the option list is fixed */
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void arg2(struct argv_builder *a, const char *k, const char *v)
{
	arg(a, bh_strdup(k));
	arg(a, bh_strdup(v));
}

static void build_argv(const struct rt_monitor_opts *o, struct argv_builder *a)
{
	a->n = 0;
	arg(a, bh_strdup(o->monitor_path));
	if (o->exec_id != NULL)
		arg2(a, "--exec", o->exec_id);
	arg2(a, "--id", o->id);
	if (o->exec_id == NULL)
		arg2(a, "--bundle", o->bundle);
	arg2(a, "--state-root", o->state_root);
	arg2(a, "--dir", o->dir);
	if (o->exec_id == NULL)
		arg2(a, "--log", o->log_path);
	else if (o->exec_spec != NULL)
		arg2(a, "--exec-spec", o->exec_spec);
	if (o->detached)
		arg(a, bh_strdup("--detached"));
	if (o->hold_output && o->exec_id == NULL)
		arg(a, bh_strdup("--hold-output"));
	if (o->log_max_size > 0) {
		arg(a, bh_strdup("--log-max-size"));
		arg(a, bh_asprintf("%lld", (long long)o->log_max_size));
		arg(a, bh_strdup("--log-max-files"));
		arg(a, bh_asprintf("%d", o->log_max_files < 1 ? 1 : o->log_max_files));
	}
	if (o->tty)
		arg(a, bh_strdup("--tty"));
	if (o->tty && o->tty_rows && o->tty_cols) {
		arg(a, bh_strdup("--tty-size"));
		arg(a, bh_asprintf("%ux%u", o->tty_rows, o->tty_cols));
	}
	if (o->open_stdin)
		arg(a, bh_strdup("--stdin"));
	if (o->sighup_on_detach)
		arg(a, bh_strdup("--sighup-on-detach"));
	arg2(a, "--sync-fd", "3");
	if (o->test_host_cmd != NULL) {
		arg(a, bh_strdup("--exec-host-cmd"));
		arg(a, bh_strdup("--"));
		for (int i = 0; o->test_host_cmd[i] != NULL; i++)
			arg(a, bh_strdup(o->test_host_cmd[i]));
	}
}

static void free_argv(struct argv_builder *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* Async-signal-safe: berthd has threads. */
static void child_fail(int fd, int e)
{
	char msg[64] = "{\"errno\":";
	size_t n = strlen(msg);
	char digits[12];
	int d = 0;

	do {
		digits[d++] = (char)('0' + e % 10);
		e /= 10;
	} while (e > 0 && d < 11);
	while (d > 0)
		msg[n++] = digits[--d];
	memcpy(msg + n, ",\"message\":\"exec berth-monitor\"}", 32);
	n += 32;
	if (write(fd, msg, n) < 0)
		_exit(126);
	_exit(127);
}

static void spawn_child(char *const argv[], int sync_fd)
{
	sigset_t none;
	int null = open("/dev/null", O_RDWR);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	if (sync_fd != 3) {
		dup2(sync_fd, 3);
	} else {
		fcntl(3, F_SETFD, 0);
	}
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	close_range(4, ~0U, 0);
	execv(argv[0], argv);
	child_fail(3, errno);
}

static int read_sync(int fd, int timeout_ms, char *buf, size_t cap, size_t *len, struct bh_err *err)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int r;

	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return bh_err_set(err, ETIMEDOUT, "monitor: no report within %d ms", timeout_ms);
	/* The report is one write() of less than PIPE_BUF: one read gets it all. */
	while ((n = read(fd, buf, cap - 1)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return bh_err_set(err, EPIPE, "monitor: exited without a report");
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}

static int parse_sync(const char *buf, size_t len, pid_t *cpid, pid_t *mpid, struct bh_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, 0, &jerr);
	json_t *pid, *mp, *e;
	int r;

	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		return bh_err_set(err, EPROTO, "monitor: bad report");
	}
	pid = json_object_get(j, "pid");
	mp = json_object_get(j, "monitor_pid");
	e = json_object_get(j, "errno");
	if (json_is_integer(pid) && json_is_integer(mp) && json_integer_value(pid) > 0) {
		*cpid = (pid_t)json_integer_value(pid);
		*mpid = (pid_t)json_integer_value(mp);
		r = 0;
	} else {
		const char *msg = json_string_value(json_object_get(j, "message"));
		int code = json_is_integer(e) ? (int)json_integer_value(e) : EPROTO;
		r = bh_err_set(err, code > 0 ? code : EPROTO, "%s", msg ? msg : "monitor failed");
	}
	json_decref(j);
	return r;
}

int rt_monitor_spawn(const struct rt_monitor_opts *o, pid_t *container_pid, pid_t *monitor_pid,
                     struct bh_err *err)
{
	struct argv_builder a;
	char buf[SYNC_MAX];
	size_t len = 0;
	int sp[2], r, st;
	pid_t pid;

	if (!o->monitor_path || !o->id || !o->state_root || !o->dir)
		return bh_err_set(err, EINVAL, "monitor spawn: missing option");
	if (o->exec_id == NULL && (!o->bundle || !o->log_path))
		return bh_err_set(err, EINVAL, "monitor spawn: missing bundle or log");
	if (o->exec_id != NULL &&
	    (o->bundle || o->log_path || (!o->exec_spec && !o->test_host_cmd)))
		return bh_err_set(err, EINVAL,
		                  "monitor spawn: exec takes a spec, no bundle or log");
	if (pipe2(sp, O_CLOEXEC) < 0)
		return bh_err_sys(err, errno, "monitor spawn: pipe");
	build_argv(o, &a);
	pid = fork();
	if (pid == 0)
		spawn_child(a.v, sp[1]);
	free_argv(&a);
	close(sp[1]);
	if (pid < 0) {
		close(sp[0]);
		return bh_err_sys(err, errno, "monitor spawn: fork");
	}
	r = read_sync(sp[0], o->timeout_ms > 0 ? o->timeout_ms : 30000, buf, sizeof(buf), &len,
	              err);
	close(sp[0]);
	/* The direct child only double-forks and exits: reaping it is quick. */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0)
		r = parse_sync(buf, len, container_pid, monitor_pid, err);
	if (r < 0)
		return bh_err_wrap(err, "container %s", o->id);
	return 0;
}

/* ---- probe --------------------------------------------------------------- */
int rt_monitor_parse_exit(const char *json, size_t len, struct rt_monitor_state *st,
                          struct bh_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(json, len, 0, &jerr);
	json_t *code = json_object_get(j, "ExitCode"), *sig = json_object_get(j, "Signal");
	json_t *oom = json_object_get(j, "OOMKilled");
	const char *fin = json_string_value(json_object_get(j, "FinishedAt"));
	int r = 0;

	if (!json_is_integer(code) || !json_is_integer(sig) || !json_is_boolean(oom) || !fin) {
		r = bh_err_set(err, EPROTO, "exit.json: bad content");
	} else {
		st->status = RT_MONITOR_EXITED;
		st->exit_code = (int)json_integer_value(code);
		st->signal = (int)json_integer_value(sig);
		st->oom_killed = json_is_true(oom);
		bh_strlcpy(st->finished_at, fin, sizeof(st->finished_at));
	}
	json_decref(j);
	return r;
}

static int read_small(const char *dir, const char *name, size_t max, char **out, size_t *len,
                      struct bh_err *err)
{
	char *path = bh_path_join(dir, name);
	int r = bh_read_file(path, max, out, len, err);

	free(path);
	return r;
}

static pid_t read_pid(const char *dir, const char *name)
{
	char *buf = NULL;
	size_t len;
	long v = 0;
	struct bh_err err;

	if (read_small(dir, name, 32, &buf, &len, &err) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	if (bh_parse_long(buf, 1, 0x7fffffff, &v) < 0)
		v = 0;
	free(buf);
	return (pid_t)v;
}

/* Is pid a live berth-monitor for dir?  Guards against pid reuse. */
static bool monitor_is_ours(pid_t pid, const char *dir)
{
	char path[64], *buf = NULL;
	size_t len;
	struct bh_err err;
	bool ours = false;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (bh_read_file(path, CMDLINE_MAX, &buf, &len, &err) < 0)
		return false;
	for (size_t i = 0; i < len;) {
		const char *a = buf + i;
		size_t alen = strlen(a);
		if (strcmp(a, "--dir") == 0 && i + alen + 1 < len)
			ours = strcmp(a + alen + 1, dir) == 0;
		if (ours)
			break;
		i += alen + 1;
	}
	free(buf);
	return ours;
}

static int probe_exit(const char *dir, struct rt_monitor_state *st, struct bh_err *err)
{
	char *buf = NULL;
	size_t len;
	int r = read_small(dir, "exit.json", EXIT_JSON_MAX, &buf, &len, err);

	if (r < 0)
		return err->code == ENOENT ? 1 : -1;
	r = rt_monitor_parse_exit(buf, len, st, err);
	free(buf);
	return r;
}

int rt_monitor_probe(const char *dir, struct rt_monitor_state *st, struct bh_err *err)
{
	int r;

	memset(st, 0, sizeof(*st));
	st->monitor_pid = read_pid(dir, "monitor.pid");
	st->container_pid = read_pid(dir, "container.pid");
	r = probe_exit(dir, st, err);
	if (r <= 0)
		return r < 0 ? bh_err_wrap(err, "probe %s", dir) : 0;
	if (st->monitor_pid > 0 && monitor_is_ours(st->monitor_pid, dir)) {
		st->status = RT_MONITOR_RUNNING;
		return 0;
	}
	/* It may have written exit.json and gone between the two looks. */
	r = probe_exit(dir, st, err);
	if (r < 0)
		return bh_err_wrap(err, "probe %s", dir);
	if (r > 0)
		st->status = RT_MONITOR_LOST;
	return 0;
}

/* ---- attach -------------------------------------------------------------- */
int rt_monitor_attach_connect(const char *dir, struct bh_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *path = bh_path_join(dir, "attach.sock");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int dirfd = -1, r = -1;

	if (fd < 0) {
		bh_err_sys(err, errno, "attach %s: socket", dir);
		goto out;
	}
	if (strlen(path) < sizeof(sa.sun_path)) {
		bh_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	} else { /* too long for sun_path: go through a directory fd */
		dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/attach.sock", dirfd);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		bh_err_sys(err, errno, "attach %s", path);
		goto out;
	}
	r = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(path);
	return r;
}

/* Reads until EOF (the monitor closed after reading our frames), bounded. */
static int wait_eof(int fd, struct bh_err *err)
{
	char buf[256];

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int r = poll(&p, 1, 5000);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return bh_err_set(err, ETIMEDOUT, "monitor did not take the signal");
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0 && errno != EINTR)
			return bh_err_sys(err, errno, "read from the monitor");
	}
}

int rt_monitor_signal(const char *dir, int sig, struct bh_err *err)
{
	uint8_t msg[2 * RT_MONITOR_FRAME_HDR + 1];
	int fd, r;

	if (sig <= 0 || sig >= 65)
		return bh_err_set(err, EINVAL, "signal %d: out of range", sig);
	fd = rt_monitor_attach_connect(dir, err);
	if (fd < 0)
		return -1;
	/* no-output first: never counted as a receiver of output */
	rt_frame_header(msg, RT_FRAME_NO_OUTPUT, 0);
	rt_frame_header(msg + RT_MONITOR_FRAME_HDR, RT_FRAME_SIGNAL, 1);
	msg[2 * RT_MONITOR_FRAME_HDR] = (uint8_t)sig;
	if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		r = bh_err_sys(err, errno, "signal %d to the monitor in %s", sig, dir);
	else if (shutdown(fd, SHUT_WR) < 0)
		r = bh_err_sys(err, errno, "signal %d: shutdown", sig);
	else
		r = wait_eof(fd, err);
	close(fd);
	return r;
}
