/* The monitor's short-lived starter: a child that re-executes berth-monitor
 * as `--start-container` (or `--start-exec` in exec mode), seals itself
 * (rt_selfexe_ensure_sealed, against CVE-2019-5736), calls
 * rt_container_start() (or rt_container_exec()) and exits.  The container's init
 * is then re-parented to the monitor, a child subreaper.
 * Why a separate process: the sealed copy of the binary and everything the
 * runtime allocates (config, seccomp filter) die with the starter, so the
 * monitor that lives as long as the container stays small and never runs
 * the runtime's code.  The init cannot outlive a dying starter by accident:
 * the runtime keeps PR_SET_PDEATHSIG on it until it is set up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/monitor-internal.h"
#include "runtime/rt-container.h"

#define STARTER_FD0     3 /* container stdio at 3, 4, 5 */
#define STARTER_REPORT  6
#define STARTER_CONSOLE 7 /* the console socket, when MASK ends in 'c' */

struct starter_report {
	int32_t pid; /* > 0, or -errno */
	char msg[sizeof(((struct bh_err *)0)->msg)];
};

static void report(int fd, int32_t pid_or_errno, const char *msg)
{
	struct starter_report r = {.pid = pid_or_errno};
	size_t len = offsetof(struct starter_report, msg);

	if (msg != NULL) {
		bh_strlcpy(r.msg, msg, sizeof(r.msg));
		len += strlen(r.msg) + 1;
	}
	/* < PIPE_BUF: one atomic write */
	while (write(fd, &r, len) < 0 && errno == EINTR)
		;
}

/* argv of the starter: MASK is one char per stdio fd ('1': at 3 + i), then
 * 'c' if the console socket is at STARTER_CONSOLE; RxC the initial pty size. */
static void starter_argv(const struct mon_opts *o, char *mask, char *size, char *argv[8])
{
	int n = 0;

	argv[n++] = "berth-monitor";
	argv[n++] = o->exec_id ? "--start-exec" : "--start-container";
	argv[n++] = (char *)o->id;
	if (o->exec_id == NULL)
		argv[n++] = (char *)o->bundle;
	argv[n++] = (char *)o->state_root;
	if (o->exec_id != NULL)
		argv[n++] = (char *)o->exec_spec;
	argv[n++] = mask;
	snprintf(size, 16, "%ux%u", o->rows, o->cols);
	argv[n++] = size;
	argv[n] = NULL;
}

/* In the forked child: fds to their fixed numbers, then exec ourselves. */
static void __attribute__((noreturn))
exec_starter(const struct mon_opts *o, const int stdio[3], int console, int rfd)
{
	int moved[5];
	char mask[5] = "000", size[16];
	char *argv[8];

	/* Out of the way first, so no dup2 below clobbers a source. */
	for (int i = 0; i < 3; i++)
		moved[i] = stdio[i] >= 0 ? fcntl(stdio[i], F_DUPFD, 10) : -1;
	moved[3] = fcntl(rfd, F_DUPFD, 10);
	moved[4] = console >= 0 ? fcntl(console, F_DUPFD, 10) : -1;
	for (int i = 0; i < 3; i++) {
		if (moved[i] < 0)
			continue;
		dup2(moved[i], STARTER_FD0 + i); /* dup2 clears CLOEXEC */
		mask[i] = '1';
	}
	dup2(moved[3], STARTER_REPORT);
	if (moved[4] >= 0) {
		dup2(moved[4], STARTER_CONSOLE);
		mask[3] = 'c';
	}
	starter_argv(o, mask, size, argv);
	execv("/proc/self/exe", argv);
	report(STARTER_REPORT, -errno, "exec the container starter");
	_exit(127);
}

static int read_report(int fd, struct starter_report *r, struct bh_err *err)
{
	ssize_t n;

	memset(r, 0, sizeof(*r));
	while ((n = read(fd, r, sizeof(*r))) < 0 && errno == EINTR)
		;
	if (n < (ssize_t)offsetof(struct starter_report, msg))
		return bh_err_set(err, EPIPE, "container starter died without a report");
	r->msg[sizeof(r->msg) - 1] = '\0';
	if (r->pid <= 0)
		return bh_err_set(err, r->pid < 0 ? -r->pid : EPROTO, "%s", r->msg);
	return 0;
}

int mon_start_container(const struct mon_opts *o, const int stdio[3], int console, pid_t *pid,
                        struct bh_err *err)
{
	struct starter_report r;
	int rp[2], st, rc;
	pid_t p;

	if (pipe2(rp, O_CLOEXEC) < 0)
		return bh_err_sys(err, errno, "pipe");
	p = fork();
	if (p < 0) {
		close(rp[0]);
		close(rp[1]);
		return bh_err_sys(err, errno, "fork");
	}
	if (p == 0)
		exec_starter(o, stdio, console, rp[1]);
	close(rp[1]);
	rc = read_report(rp[0], &r, err);
	close(rp[0]);
	/* By the time the starter is reaped, the init is re-parented to us. */
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (rc == 0)
		*pid = r.pid;
	return rc;
}

struct starter_args {
	const char *id, *bundle, *state_root, *spec, *mask;
	struct rt_console_opts console;
	int stdio[3];
};

static int parse_starter(int argc, char **argv, struct starter_args *a)
{
	bool exec = strcmp(argv[1], "--start-exec") == 0;
	unsigned rows = 0, cols = 0;
	size_t mlen;

	if (argc != 7)
		return -1;
	a->id = argv[2];
	a->bundle = exec ? NULL : argv[3];
	a->state_root = exec ? argv[3] : argv[4];
	a->spec = exec ? argv[4] : NULL;
	a->mask = argv[5];
	mlen = strlen(a->mask);
	if ((mlen != 3 && !(mlen == 4 && a->mask[3] == 'c')) ||
	    sscanf(argv[6], "%5ux%5u", &rows, &cols) != 2 || rows > 65535 || cols > 65535)
		return -1;
	for (int i = 0; i < 3; i++)
		a->stdio[i] = a->mask[i] == '1' ? STARTER_FD0 + i : -1;
	a->console.socket = mlen == 4 ? STARTER_CONSOLE : -1;
	a->console.rows = (unsigned short)rows;
	a->console.cols = (unsigned short)cols;
	return 0;
}

static int start_exec(const struct starter_args *a, pid_t *pid, struct bh_err *err)
{
	struct rt_exec_spec spec;
	struct rt_exec_opts eo = {.id = a->id, .state_root = a->state_root};
	int rc;

	if (rt_exec_spec_load(a->spec, &spec, err) < 0)
		return -1;
	eo.args = spec.args;
	eo.env = spec.env;
	eo.cwd = spec.cwd;
	eo.user = spec.user;
	memcpy(eo.stdio, a->stdio, sizeof(eo.stdio));
	eo.tty = a->console.socket >= 0;
	eo.console_socket = a->console.socket;
	eo.tty_rows = a->console.rows;
	eo.tty_cols = a->console.cols;
	rc = rt_container_exec(&eo, pid, err);
	rt_exec_spec_free(&spec);
	return rc;
}

static int start(const struct starter_args *a, pid_t *pid, struct bh_err *err)
{
	struct rt_container_opts co = {
	    .id = a->id, .bundle = a->bundle, .state_root = a->state_root};

	if (a->spec != NULL)
		return start_exec(a, pid, err);
	memcpy(co.stdio, a->stdio, sizeof(co.stdio));
	if (a->console.socket >= 0)
		return rt_container_start_console(&co, &a->console, pid, err);
	return rt_container_start(&co, pid, err);
}

int mon_starter_main(int argc, char **argv)
{
	struct starter_args a;
	struct bh_err err;
	pid_t pid;

	if (parse_starter(argc, argv, &a) < 0) {
		report(STARTER_REPORT, -EINVAL, "bad --start-container/--start-exec arguments");
		return 2;
	}
	/* CVE-2019-5736: the new process is a fork of this one until its execve. */
	if (rt_selfexe_ensure_sealed(argv, &err) < 0) {
		report(STARTER_REPORT, -err.code, err.msg);
		return 1;
	}
	if (start(&a, &pid, &err) < 0) {
		report(STARTER_REPORT, -err.code, err.msg);
		return 1;
	}
	report(STARTER_REPORT, pid, NULL);
	return 0;
}
