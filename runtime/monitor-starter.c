/* The monitor's short-lived starter: a child that re-executes berth-monitor
 * as `--start-container`, seals itself (rt_selfexe_ensure_sealed, against
 * CVE-2019-5736), calls rt_container_start() and exits.  The container's init
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

#define STARTER_FD0    3 /* container stdio at 3, 4, 5 */
#define STARTER_REPORT 6

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

/* In the forked child: fds to their fixed numbers, then exec ourselves. */
static void __attribute__((noreturn))
exec_starter(const struct mon_opts *o, const int stdio[3], int rfd)
{
	int moved[4];
	char mask[4] = "000";
	char *argv[] = {"berth-monitor",
	                "--start-container",
	                (char *)o->id,
	                (char *)o->bundle,
	                (char *)o->state_root,
	                mask,
	                NULL};

	/* Out of the way first, so no dup2 below clobbers a source. */
	for (int i = 0; i < 3; i++)
		moved[i] = stdio[i] >= 0 ? fcntl(stdio[i], F_DUPFD, 10) : -1;
	moved[3] = fcntl(rfd, F_DUPFD, 10);
	for (int i = 0; i < 3; i++) {
		if (moved[i] < 0)
			continue;
		dup2(moved[i], STARTER_FD0 + i); /* dup2 clears CLOEXEC */
		mask[i] = '1';
	}
	dup2(moved[3], STARTER_REPORT);
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

int mon_start_container(const struct mon_opts *o, const int stdio[3], pid_t *pid,
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
		exec_starter(o, stdio, rp[1]);
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

int mon_starter_main(int argc, char **argv)
{
	struct rt_container_opts co = {.stdio = {-1, -1, -1}};
	struct bh_err err;
	pid_t pid;

	if (argc != 6 || strlen(argv[5]) != 3) {
		report(STARTER_REPORT, -EINVAL, "bad --start-container arguments");
		return 2;
	}
	/* CVE-2019-5736: the init is a fork of this process until its execve. */
	if (rt_selfexe_ensure_sealed(argv, &err) < 0) {
		report(STARTER_REPORT, -err.code, err.msg);
		return 1;
	}
	co.id = argv[2];
	co.bundle = argv[3];
	co.state_root = argv[4];
	for (int i = 0; i < 3; i++)
		co.stdio[i] = argv[5][i] == '1' ? STARTER_FD0 + i : -1;
	if (rt_container_start(&co, &pid, &err) < 0) {
		report(STARTER_REPORT, -err.code, err.msg);
		return 1;
	}
	report(STARTER_REPORT, pid, NULL);
	return 0;
}
