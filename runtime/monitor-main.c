/* berth-monitor start-up: arguments, detaching from berthd, the container's
 * stdio, the attach socket, starting the container and the one sync report.
 * The command line comes from berthd (root); it is still checked. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/monitor-internal.h"
#include "runtime/rt-container.h"

static struct mon g_mon; /* static: big buffers in .bss, touched only when used */
static struct mon_opts g_opts;
static bool g_dir_locked; /* we own --dir: only then clean up in it */

/* ---- arguments ----------------------------------------------------------- */
enum {
	OPT_ID = 256,
	OPT_BUNDLE,
	OPT_STATE,
	OPT_DIR,
	OPT_LOG,
	OPT_MAXSZ,
	OPT_MAXF,
	OPT_TTY,
	OPT_TTYSZ,
	OPT_STDIN,
	OPT_SIGHUP,
	OPT_SYNC,
	OPT_HOSTCMD,
	OPT_EXEC,
	OPT_EXECSPEC,
	OPT_DETACHED,
	OPT_HOLD
};

static const struct option long_opts[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"state-root", required_argument, NULL, OPT_STATE},
    {"dir", required_argument, NULL, OPT_DIR},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-max-size", required_argument, NULL, OPT_MAXSZ},
    {"log-max-files", required_argument, NULL, OPT_MAXF},
    {"tty", no_argument, NULL, OPT_TTY},
    {"tty-size", required_argument, NULL, OPT_TTYSZ},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"sighup-on-detach", no_argument, NULL, OPT_SIGHUP},
    {"sync-fd", required_argument, NULL, OPT_SYNC},
    {"exec", required_argument, NULL, OPT_EXEC},
    {"exec-spec", required_argument, NULL, OPT_EXECSPEC},
    {"detached", no_argument, NULL, OPT_DETACHED},
    {"hold-output", no_argument, NULL, OPT_HOLD},
#ifdef RT_MONITOR_TEST_HOOKS
    {"exec-host-cmd", no_argument, NULL, OPT_HOSTCMD}, /* tests only: argv after "--" */
#endif
    {NULL, 0, NULL, 0},
};

static int parse_tty_size(const char *s, struct mon_opts *o)
{
	unsigned rows, cols;
	char tail;

	if (sscanf(s, "%5ux%5u%c", &rows, &cols, &tail) != 2 || rows > 65535 || cols > 65535)
		return -1;
	o->rows = (unsigned short)rows;
	o->cols = (unsigned short)cols;
	return 0;
}

static int set_opt(struct mon_opts *o, int c, const char *arg, struct bh_err *err)
{
	long v;

	switch (c) {
	case OPT_ID:
		o->id = arg;
		return 0;
	case OPT_BUNDLE:
		o->bundle = arg;
		return 0;
	case OPT_STATE:
		o->state_root = arg;
		return 0;
	case OPT_DIR:
		o->dir = arg;
		return 0;
	case OPT_LOG:
		o->log_path = arg;
		return 0;
	case OPT_TTY:
		o->tty = true;
		return 0;
	case OPT_STDIN:
		o->open_stdin = true;
		return 0;
	case OPT_SIGHUP:
		o->sighup_on_detach = true;
		return 0;
	case OPT_HOSTCMD:
		o->host_cmd = (char **)1;
		return 0; /* filled after parsing */
	case OPT_EXEC:
		o->exec_id = arg;
		return 0;
	case OPT_EXECSPEC:
		o->exec_spec = arg;
		return 0;
	case OPT_DETACHED:
		o->detached = true;
		return 0;
	case OPT_HOLD:
		o->hold_output = true;
		return 0;
	case OPT_MAXSZ:
		if (bh_parse_size(arg, &o->log_max_size) < 0 || o->log_max_size < 0)
			return bh_err_set(err, EINVAL, "bad --log-max-size %s", arg);
		return 0;
	case OPT_MAXF:
		if (bh_parse_long(arg, 1, 1000, &v) < 0)
			return bh_err_set(err, EINVAL, "bad --log-max-files %s", arg);
		o->log_max_files = (int)v;
		return 0;
	case OPT_TTYSZ:
		if (parse_tty_size(arg, o) < 0)
			return bh_err_set(err, EINVAL, "bad --tty-size %s (ROWSxCOLS)", arg);
		return 0;
	case OPT_SYNC:
		if (bh_parse_long(arg, 3, 65535, &v) < 0)
			return bh_err_set(err, EINVAL, "bad --sync-fd %s", arg);
		o->sync_fd = (int)v;
		return 0;
	default:
		return bh_err_set(err, EINVAL, "unknown option");
	}
}

/* Exec mode: no container log (exec output goes to attach clients only). */
static int check_exec_args(const struct mon_opts *o, struct bh_err *err)
{
	if (!o->id || !o->dir)
		return bh_err_set(err, EINVAL, "--exec needs --id and --dir");
	if (o->log_path || o->bundle)
		return bh_err_set(err, EINVAL, "--exec takes no --log and no --bundle");
	if (!o->host_cmd && (!o->state_root || !o->exec_spec))
		return bh_err_set(err, EINVAL, "--exec needs --state-root and --exec-spec");
	return 0;
}

int mon_parse_args(int argc, char **argv, struct mon_opts *o, struct bh_err *err)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->sync_fd = -1;
	o->log_max_files = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1)
		if (set_opt(o, c, optarg, err) < 0)
			return -1;
	if (o->host_cmd != NULL)
		o->host_cmd = optind < argc ? argv + optind : NULL;
	else if (optind < argc)
		return bh_err_set(err, EINVAL, "unexpected argument %s", argv[optind]);
	if (o->exec_id != NULL)
		return check_exec_args(o, err);
	if (!o->id || !o->dir || !o->log_path)
		return bh_err_set(err, EINVAL, "--id, --dir and --log are required");
	if (!o->host_cmd && (!o->bundle || !o->state_root))
		return bh_err_set(err, EINVAL, "--bundle and --state-root are required");
	return 0;
}

/* ---- the sync report ----------------------------------------------------- */
static void sync_write(struct mon_opts *o, const char *msg, size_t len)
{
	if (o->sync_fd < 0)
		return;
	while (write(o->sync_fd, msg, len) < 0 && errno == EINTR)
		;
	close(o->sync_fd);
	o->sync_fd = -1;
}

static void report_error(struct mon_opts *o, const struct bh_err *err)
{
	char msg[sizeof(err->msg)], out[sizeof(err->msg) + 64];
	int n;

	/* The message is ours, but may quote paths: keep the JSON trivially valid. */
	bh_strlcpy(msg, err->msg, sizeof(msg));
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = ' ';
	n = snprintf(out, sizeof(out), "{\"errno\":%d,\"message\":\"%s\"}", err->code, msg);
	bh_error("%s", err->msg);
	sync_write(o, out, (size_t)n);
}

static int find_sync_fd(int argc, char **argv)
{
	long v;

	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--sync-fd") == 0 &&
		    bh_parse_long(argv[i + 1], 3, 65535, &v) == 0)
			return (int)v;
	return -1;
}

static void report_ok(struct mon_opts *o, pid_t cpid)
{
	char out[96];
	int n =
	    snprintf(out, sizeof(out), "{\"pid\":%d,\"monitor_pid\":%d}", (int)cpid, (int)getpid());

	sync_write(o, out, (size_t)n);
}

/* ---- detaching ----------------------------------------------------------- */
/* Double fork with setsid: the monitor is re-parented (to init or a subreaper
 * above berthd), has no controlling terminal and survives berthd. */
static int detach(struct mon_opts *o, struct bh_err *err)
{
	pid_t c = fork();
	int st;

	if (c < 0)
		return bh_err_sys(err, errno, "fork");
	if (c > 0) {
		while (waitpid(c, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	setsid();
	c = fork();
	if (c < 0) {
		bh_err_sys(err, errno, "fork");
		report_error(o, err);
		_exit(1);
	}
	if (c > 0)
		_exit(0);
	return 0;
}

static int redirect_stdio(struct mon_opts *o, struct bh_err *err)
{
	char *path = bh_path_join(o->dir, "monitor.log");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int logfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	free(path);
	if (null < 0 || logfd < 0)
		return bh_err_sys(err, errno, "open /dev/null or monitor.log in %s", o->dir);
	dup2(null, 0);
	dup2(null, 1);
	dup2(logfd, 2);
	close(null);
	close(logfd);
	return 0;
}

static int write_pid_file(const char *dir, const char *name, pid_t pid, struct bh_err *err)
{
	char *path = bh_path_join(dir, name), buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid), r;

	/* The exec root does not outlive a reboot: atomic, no fsync. */
	r = bh_write_file_volatile(path, buf, (size_t)n, 0644, err);
	free(path);
	return r;
}

/* One monitor per dir, for its whole life: a second one (a confused or
 * restarted berthd) must not take over the files of a running container.
 * The lock fd is CLOEXEC, so neither the starter nor the container keeps it. */
static int lock_dir(const char *dir, struct bh_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return bh_err_sys(err, errno, "open %s", dir);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return bh_err_set(err, EBUSY, "another monitor runs in %s", dir);
		return bh_err_sys(err, e, "lock %s", dir);
	}
	g_dir_locked = true; /* fd deliberately kept open until exit */
	return 0;
}

static int prepare_dir(struct mon_opts *o, struct bh_err *err)
{
	char *exitp;

	if (bh_mkdir_p(o->dir, 0700, err) < 0)
		return bh_err_wrap(err, "monitor dir");
	if (lock_dir(o->dir, err) < 0)
		return -1;
	if (redirect_stdio(o, err) < 0)
		return -1;
	exitp = bh_path_join(o->dir, "exit.json");
	unlink(exitp); /* a restart: the old exit status is no longer true */
	free(exitp);
	return write_pid_file(o->dir, "monitor.pid", getpid(), err);
}

static int open_log(struct mon *m, struct bh_err *err)
{
	const char *slash;

	m->log.fd = -1;
	if (m->o->log_path == NULL) /* exec mode: no log */
		return 0;
	slash = strrchr(m->o->log_path, '/');

	if (slash != NULL && slash != m->o->log_path) {
		char *dir = bh_strndup(m->o->log_path, (size_t)(slash - m->o->log_path));
		int r = bh_mkdir_p(dir, 0700, err);
		free(dir);
		if (r < 0)
			return bh_err_wrap(err, "log dir");
	}
	return mon_logw_open(&m->log, m->o->log_path, m->o->log_max_size, m->o->log_max_files, err);
}

/* ---- stdio for the container --------------------------------------------- */
static void use_master(struct mon *m, int master)
{
	fcntl(master, F_SETFD, FD_CLOEXEC);
	fcntl(master, F_SETFL, O_NONBLOCK);
	m->master = master;
	m->out[0].fd = master;
	m->out[0].stream = RT_FRAME_STDOUT;
	m->nout = 1;
	m->stdin_fd = m->o->open_stdin ? master : -1;
}

/* Test builds' host commands only: a host pty (a container's is made inside
 * it, see make_console). */
static int make_pty(struct mon *m, int stdio[3], struct bh_err *err)
{
	struct winsize ws = {.ws_row = m->o->rows, .ws_col = m->o->cols};
	int master, slave;

	if (openpty(&master, &slave, NULL, NULL, (ws.ws_row && ws.ws_col) ? &ws : NULL) < 0)
		return bh_err_sys(err, errno, "openpty");
	fcntl(slave, F_SETFD, FD_CLOEXEC);
	use_master(m, master);
	stdio[0] = stdio[1] = stdio[2] = slave;
	return 0;
}

/* The console socket: the runtime allocates the pty inside the container
 * (its slave in the container's devpts) and sends us the master. */
static int make_console(int sv[2], struct bh_err *err)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return bh_err_sys(err, errno, "console socketpair");
	return 0;
}

static int make_pipes(struct mon *m, int stdio[3], struct bh_err *err)
{
	int p[2];

	stdio[0] = -1;
	m->nout = 2;
	for (int i = 0; i < 2; i++) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return bh_err_sys(err, errno, "pipe");
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		m->out[i].fd = p[0];
		m->out[i].stream = i == 0 ? RT_FRAME_STDOUT : RT_FRAME_STDERR;
		stdio[1 + i] = p[1];
	}
	if (m->o->open_stdin) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return bh_err_sys(err, errno, "pipe");
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		m->stdin_fd = p[1];
		stdio[0] = p[0];
	}
	return 0;
}

static void close_container_ends(int stdio[3])
{
	for (int i = 0; i < 3; i++) {
		if (stdio[i] < 0)
			continue;
		int fd = stdio[i];
		close(fd);
		for (int j = i; j < 3; j++) /* the pty slave is all three */
			if (stdio[j] == fd)
				stdio[j] = -1;
	}
}

/* ---- the attach socket --------------------------------------------------- */
static int make_socket(struct mon *m, struct bh_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *path = bh_path_join(m->o->dir, "attach.sock");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int dirfd = open(m->o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	mode_t old;
	int r = -1;

	if (fd < 0 || dirfd < 0) {
		bh_err_sys(err, errno, "attach socket in %s", m->o->dir);
		goto out;
	}
	unlink(path); /* a stale socket from a previous monitor */
	/* Long exec roots overflow sun_path: bind through the directory fd. */
	if (strlen(path) < sizeof(sa.sun_path))
		bh_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	else
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/attach.sock", dirfd);
	old = umask(0177); /* 0600 from the start: no window for other users */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		r = bh_err_sys(err, errno, "attach socket %s", path);
		goto out;
	}
	m->listen_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(path);
	return r < 0 ? -1 : 0;
}

/* ---- starting the container ---------------------------------------------- */
#ifdef RT_MONITOR_TEST_HOOKS
/* Tests only: a host command stands in for the container. */
static void host_child(struct mon_opts *o, int stdio[3], int errfd)
{
	int null = open("/dev/null", O_RDWR);
	int e;

	setsid();
	if (o->tty)
		ioctl(stdio[0], TIOCSCTTY, 0);
	for (int i = 0; i < 3; i++)
		dup2(stdio[i] >= 0 ? stdio[i] : null, i);
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	fcntl(errfd, F_SETFD, FD_CLOEXEC);
	execvp(o->host_cmd[0], o->host_cmd);
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

static int host_start(struct mon_opts *o, int stdio[3], pid_t *pid, struct bh_err *err)
{
	int ep[2], e;
	pid_t p;
	ssize_t n;

	if (pipe2(ep, O_CLOEXEC) < 0)
		return bh_err_sys(err, errno, "pipe");
	p = fork();
	if (p == 0)
		host_child(o, stdio, ep[1]);
	close(ep[1]);
	if (p < 0) {
		close(ep[0]);
		return bh_err_sys(err, errno, "fork");
	}
	n = read(ep[0], &e, sizeof(e));
	close(ep[0]);
	if (n == (ssize_t)sizeof(e)) {
		waitpid(p, NULL, 0);
		return bh_err_sys(err, e, "exec %s", o->host_cmd[0]);
	}
	*pid = p;
	return 0;
}
#endif

static int start_with_console(struct mon *m, struct bh_err *err)
{
	int sv[2], stdio[3] = {-1, -1, -1}, master = -1, r;

	if (make_console(sv, err) < 0)
		return -1;
	r = mon_start_container(m->o, stdio, sv[1], &m->cpid, err);
	close(sv[1]);
	if (r == 0 && rt_console_recv(sv[0], 0, &master, err) < 0) {
		kill(m->cpid, SIGKILL);
		waitpid(m->cpid, NULL, 0);
		r = -1;
	}
	close(sv[0]);
	if (r == 0)
		use_master(m, master);
	return r;
}

static bool host_cmd(const struct mon *m)
{
#ifdef RT_MONITOR_TEST_HOOKS
	return m->o->host_cmd != NULL;
#else
	return false;
#endif
}

static int start_container(struct mon *m, int stdio[3], struct bh_err *err)
{
#ifdef RT_MONITOR_TEST_HOOKS
	if (m->o->host_cmd != NULL)
		return host_start(m->o, stdio, &m->cpid, err);
#endif
	if (m->o->tty)
		return start_with_console(m, err);
	return mon_start_container(m->o, stdio, -1, &m->cpid, err);
}

/* After the start: SIGCHLD through a signalfd (blocked only now so that the
 * container did not inherit a blocked mask), SIGPIPE/SIGHUP ignored. */
static int setup_signals(struct mon *m, struct bh_err *err)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0)
		return bh_err_sys(err, errno, "signalfd");
	return 0;
}

static int setup(struct mon *m, struct bh_err *err)
{
	int stdio[3] = {-1, -1, -1}, r;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return bh_err_sys(err, errno, "PR_SET_CHILD_SUBREAPER");
	if (prepare_dir(m->o, err) < 0 || open_log(m, err) < 0 || make_socket(m, err) < 0)
		return -1;
	if (m->o->tty)
		r = host_cmd(m) ? make_pty(m, stdio, err) : 0;
	else
		r = make_pipes(m, stdio, err);
	if (r == 0)
		r = start_container(m, stdio, err);
	close_container_ends(stdio);
	if (r < 0)
		return bh_err_wrap(err, "start %s", m->o->id);
	m->pidfd = pidfd_open(m->cpid, 0);
	if (write_pid_file(m->o->dir, "container.pid", m->cpid, err) < 0)
		bh_warn("%s", err->msg);
	return setup_signals(m, err);
}

static void cleanup_failed_start(struct mon *m)
{
	char *sock;

	if (!g_dir_locked)
		return;
	sock = bh_path_join(m->o->dir, "attach.sock");

	unlink(sock);
	free(sock);
}

int rt_monitor_main(int argc, char **argv)
{
	struct mon *m = &g_mon;
	struct bh_err err;

	if (argc > 1 &&
	    (strcmp(argv[1], "--start-container") == 0 || strcmp(argv[1], "--start-exec") == 0))
		return mon_starter_main(argc, argv);
	if (mon_parse_args(argc, argv, &g_opts, &err) < 0) {
		g_opts.sync_fd = find_sync_fd(argc, argv); /* even after a bad option */
		report_error(&g_opts, &err);
		fprintf(stderr, "berth-monitor: %s\n", err.msg);
		return 2;
	}
	if (g_opts.sync_fd >= 0) /* only the monitor itself reports */
		fcntl(g_opts.sync_fd, F_SETFD, FD_CLOEXEC);
	m->o = &g_opts;
	m->listen_fd = m->sigfd = m->pidfd = m->stdin_fd = m->master = -1;
	if (detach(m->o, &err) < 0) {
		report_error(m->o, &err);
		return 1;
	}
	if (setup(m, &err) < 0) {
		report_error(m->o, &err);
		cleanup_failed_start(m);
		return 1;
	}
	report_ok(m->o, m->cpid);
	return mon_loop(m);
}
