/* berth-runtime: the OCI runtime command line over runtime/ (create, start,
 * state, kill, delete, run, spec, exec), so the runtime can be checked by itself
 * and compared with runc/crun on the same bundle. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/rt-container.h"

#define DEFAULT_ROOT "/run/berth-runtime"

#define EXEC_ENV_MAX 256

struct cli {
	const char *root, *bundle, *pid_file;
	bool force, detach;
	/* exec */
	bool tty;
	const char *cwd, *user;
	const char *env[EXEC_ENV_MAX + 1];
	int n_env;
};

static volatile sig_atomic_t child_pid;

static int usage(void)
{
	fprintf(stderr, "usage: berth-runtime [--root DIR] [--log-level L] COMMAND ...\n"
	                "  create [--bundle DIR] [--pid-file F] ID\n"
	                "  start ID\n"
	                "  state ID\n"
	                "  kill ID [SIGNAL]\n"
	                "  delete [--force] ID\n"
	                "  run [--bundle DIR] [--pid-file F] [--detach] ID\n"
	                "  spec [--bundle DIR]\n"
	                "  exec [--tty] [--cwd D] [--env K=V]... [--user U] ID -- CMD...\n");
	return 2;
}

static int fail(const struct bh_err *err, int status)
{
	fprintf(stderr, "berth-runtime: %s\n", err->msg);
	return status;
}

static int write_pid_file(const struct cli *c, pid_t pid, struct bh_err *err)
{
	char buf[32];

	if (c->pid_file == NULL)
		return 0;
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return bh_write_file_atomic(c->pid_file, buf, strlen(buf), 0644, err);
}

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 255;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static int cmd_run(const struct cli *c, const char *id)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	struct rt_container_opts o = {id, c->bundle, c->root, {0, 1, 2}};
	struct sigaction sa = {.sa_handler = forward_signal};
	struct bh_err err = {0};
	pid_t pid;
	int status;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	if (rt_container_start(&o, &pid, &err) < 0)
		return fail(&err, rt_exec_errno_status(err.code));
	child_pid = pid;
	if (write_pid_file(c, pid, &err) < 0)
		fail(&err, 0);
	status = wait_status(pid);
	child_pid = 0;
	if (rt_container_delete(c->root, id, true, &err) < 0)
		fail(&err, 0);
	return status;
}

static int cmd_create(const struct cli *c, const char *id);

/* run --detach: create + start, leaving the container running. */
static int cmd_run_detached(const struct cli *c, const char *id)
{
	struct bh_err err = {0};
	int rc = cmd_create(c, id);

	if (rc != 0)
		return rc;
	if (rt_container_start_created(c->root, id, &err) < 0) {
		struct bh_err e2;
		rt_container_delete(c->root, id, true, &e2);
		return fail(&err, rt_exec_errno_status(err.code));
	}
	return 0;
}

static int cmd_create(const struct cli *c, const char *id)
{
	struct rt_container_opts o = {id, c->bundle, c->root, {0, 1, 2}};
	struct bh_err err = {0};
	pid_t pid;

	if (rt_container_create(&o, &pid, &err) < 0)
		return fail(&err, 1);
	if (write_pid_file(c, pid, &err) < 0) {
		struct bh_err e2;
		rt_container_delete(c->root, id, true, &e2);
		return fail(&err, 1);
	}
	return 0;
}

static int cmd_state(const struct cli *c, const char *id)
{
	struct rt_container_state st;
	struct bh_err err = {0};
	json_t *j;

	if (rt_container_state(c->root, id, &st, &err) < 0)
		return fail(&err, 1);
	j = rt_container_state_json(&st);
	json_dumpf(j, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(j);
	return 0;
}

static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} map[] = {{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},
	           {"HUP", SIGHUP},   {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
	           {"USR2", SIGUSR2}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}};
	long n;

	if (bh_parse_long(s, 1, 64, &n) == 0)
		return (int)n;
	if (bh_str_has_prefix(s, "SIG"))
		s += 3;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].sig;
	return -1;
}

static int cmd_spec(const struct cli *c)
{
	cleanup_free char *path = bh_path_join(c->bundle, "config.json");
	cleanup_free char *text = NULL;
	json_t *j = rt_spec_default(NULL);
	struct bh_err err = {0};

	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (bh_path_exists(path)) {
		fprintf(stderr, "berth-runtime: %s exists\n", path);
		return 1;
	}
	if (bh_write_file_atomic(path, text, strlen(text), 0644, &err) < 0)
		return fail(&err, 1);
	return 0;
}

/* ---- exec ------------------------------------------------------------------ */
static void set_raw(int fd, struct termios *saved, bool *changed)
{
	struct termios t;

	*changed = false;
	if (!isatty(fd) || tcgetattr(fd, saved) < 0)
		return;
	t = *saved;
	cfmakeraw(&t);
	*changed = tcsetattr(fd, TCSANOW, &t) == 0;
}

static bool copy_some(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	for (ssize_t off = 0; n > 0 && off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += w;
	}
	return n > 0;
}

/* Our terminal <-> the pty master until the process closes its side. */
static void proxy_tty(int master)
{
	struct termios saved;
	struct winsize ws;
	bool raw, in_open = true;

	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
	set_raw(0, &saved, &raw);
	for (;;) {
		struct pollfd p[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
		                      {.fd = master, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents && !copy_some(master, 1))
			break; /* EIO: every slave fd is closed */
		if (p[0].revents && !copy_some(0, master))
			in_open = false;
	}
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
}

static int exec_tty(struct rt_exec_opts *o, pid_t *pid, struct bh_err *err)
{
	int sv[2], master = -1, rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return bh_err_sys(err, errno, "socketpair");
	o->console_socket = sv[1];
	rc = rt_container_exec(o, pid, err);
	close(sv[1]);
	if (rc == 0)
		rc = rt_console_recv(sv[0], 10000, &master, err);
	close(sv[0]);
	if (rc < 0)
		return -1;
	proxy_tty(master);
	close(master);
	return 0;
}

static int cmd_exec(const struct cli *c, int argc, char **argv)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	struct rt_exec_opts o = {.id = argv[0], .state_root = c->root, .stdio = {0, 1, 2}};
	struct sigaction sa = {.sa_handler = forward_signal};
	struct rt_container_state st;
	struct bh_err err = {0};
	int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1, rc;
	pid_t pid;

	if (first >= argc)
		return usage();
	/* "no such container" is 1; ENOENT below is the command's (127). */
	if (rt_container_state(c->root, o.id, &st, &err) < 0)
		return fail(&err, 1);
	o.args = (const char *const *)argv + first;
	o.env = c->env;
	o.cwd = c->cwd;
	o.user = c->user;
	o.tty = c->tty;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	rc = o.tty ? exec_tty(&o, &pid, &err) : rt_container_exec(&o, &pid, &err);
	if (rc < 0)
		return fail(&err, err.code == ESRCH ? 1 : rt_exec_errno_status(err.code));
	child_pid = pid;
	if (write_pid_file(c, pid, &err) < 0)
		fail(&err, 0);
	rc = wait_status(pid);
	child_pid = 0;
	return rc;
}

static int dispatch(struct cli *c, const char *cmd, int argc, char **argv)
{
	struct bh_err err = {0};
	const char *id = argc > 0 ? argv[0] : NULL;

	if (strcmp(cmd, "spec") == 0)
		return cmd_spec(c);
	if (id == NULL)
		return usage();
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(c, argc, argv);
	if (strcmp(cmd, "run") == 0)
		return c->detach ? cmd_run_detached(c, id) : cmd_run(c, id);
	if (strcmp(cmd, "create") == 0)
		return cmd_create(c, id);
	if (strcmp(cmd, "state") == 0)
		return cmd_state(c, id);
	if (strcmp(cmd, "start") == 0)
		return rt_container_start_created(c->root, id, &err) < 0
		           ? fail(&err, rt_exec_errno_status(err.code))
		           : 0;
	if (strcmp(cmd, "kill") == 0) {
		int sig = parse_signal(argc > 1 ? argv[1] : "TERM");
		if (sig < 0)
			return usage();
		return rt_container_kill(c->root, id, sig, &err) < 0 ? fail(&err, 1) : 0;
	}
	if (strcmp(cmd, "delete") == 0)
		return rt_container_delete(c->root, id, c->force, &err) < 0 ? fail(&err, 1) : 0;
	return usage();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},     {"bundle", required_argument, NULL, 'b'},
	    {"pid-file", required_argument, NULL, 'p'}, {"force", no_argument, NULL, 'f'},
	    {"detach", no_argument, NULL, 'd'},         {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},           {"tty", no_argument, NULL, 't'},
	    {"cwd", required_argument, NULL, 'w'},      {"env", required_argument, NULL, 'e'},
	    {"user", required_argument, NULL, 'u'},     {NULL, 0, NULL, 0},
	};
	struct cli c = {.root = DEFAULT_ROOT, .bundle = "."};
	struct bh_err err = {0};
	const char *cmd = NULL;
	int opt;

	/* CVE-2019-5736: never run containers from the binary on the host. */
	if (rt_selfexe_ensure_sealed(argv, &err) < 0)
		return fail(&err, 1);
	/* "+" would stop at the command; permute so options may follow it. */
	while ((opt = getopt_long(argc, argv, "r:b:p:fdl:htw:e:u:", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			c.root = optarg;
			break;
		case 'b':
			c.bundle = optarg;
			break;
		case 'p':
			c.pid_file = optarg;
			break;
		case 'f':
			c.force = true;
			break;
		case 'd':
			c.detach = true;
			break;
		case 't':
			c.tty = true;
			break;
		case 'w':
			c.cwd = optarg;
			break;
		case 'u':
			c.user = optarg;
			break;
		case 'e':
			if (c.n_env == EXEC_ENV_MAX)
				return usage();
			c.env[c.n_env++] = optarg;
			break;
		case 'l': {
			int lvl = bh_log_parse_level(optarg);
			if (lvl < 0)
				return usage();
			bh_log_set_level((enum bh_log_level)lvl);
			break;
		}
		default:
			return usage();
		}
	}
	if (optind >= argc)
		return usage();
	cmd = argv[optind];
	return dispatch(&c, cmd, argc - optind - 1, argv + optind + 1);
}
