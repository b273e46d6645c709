/* Starting a container: the parent prepares everything that needs memory or
 * libraries (spec, seccomp BPF, cgroups, state), clones the init into new
 * namespaces and turns the init's error reports into a struct bh_err.
 *
 * Parent and init talk over a SOCK_SEQPACKET pair:
 *   parent → init  'C'  the init is in its cgroups (it may unshare cgroupns)
 *   init → parent  'R'  set up, waiting to exec; or an error record
 *   parent → init  'S'  exec now (rt_container_start; create waits on a fifo)
 *   init → parent  EOF  exec succeeded (the socket is close-on-exec),
 *                       or an error record with the exec's errno. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/close_range.h>

#include "runtime/rt-container-internal.h"
#include "runtime/rt-container-state.h"

struct init_msg {
	int32_t code;
	char msg[1020];
};

struct init_args {
	const char *id;
	const struct rt_spec *s;
	const struct rt_rootfs_ctx *rctx;
	const struct rt_seccomp_prog *prog;
	int sync; /* the init's end of the socket pair */
	int fifo; /* O_PATH fd of exec.fifo (create), or -1 */
	int stdio[3];
	const struct rt_console_opts *console; /* NULL: stdio as given */
};

int rt_exec_errno_status(int code)
{
	if (code == ENOENT)
		return 127;
	if (code == EACCES || code == EPERM || code == ENOEXEC)
		return 126;
	return 125;
}

/* ==== in the init =========================================================== */
static void __attribute__((noreturn)) init_fail(int fd, const struct bh_err *err, int status)
{
	struct init_msg m = {.code = err->code ? err->code : EIO};

	bh_strlcpy(m.msg, err->msg, sizeof(m.msg));
	if (write(fd, &m, sizeof(m)) < 0) {
		/* nobody to tell */
	}
	_exit(status);
}

static int stdio_source(int fd, struct bh_err *err)
{
	int src = fd >= 0 ? fd : open("/dev/null", O_RDWR | O_CLOEXEC), out;

	if (src < 0)
		return bh_err_sys(err, errno, "open /dev/null");
	out = fcntl(src, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		close(src);
	if (out < 0)
		return bh_err_sys(err, errno, "dup stdio");
	return out;
}

/* Moves every source above 2 first, so that stdio {5, 0, 1} cannot
 * overwrite one of its own sources. */
int rt_proc_stdio(const int stdio[3], struct bh_err *err)
{
	int tmp[3];

	for (int i = 0; i < 3; i++)
		if ((tmp[i] = stdio_source(stdio[i], err)) < 0)
			return -1;
	for (int i = 0; i < 3; i++) {
		if (dup2(tmp[i], i) < 0) /* the copy is not close-on-exec */
			return bh_err_sys(err, errno, "dup2 stdio %d", i);
		close(tmp[i]);
	}
	return 0;
}

/* Above the hard limit needs CAP_SYS_RESOURCE, which root may lack (this
 * host's bounding set does): such a limit is clamped to the hard limit. */
int rt_proc_rlimits(const struct rt_spec *s, struct bh_err *err)
{
	for (size_t i = 0; i < s->n_rlimits; i++) {
		struct rlimit rl = {s->rlimits[i].soft, s->rlimits[i].hard}, cur;

		if (setrlimit(s->rlimits[i].resource, &rl) == 0)
			continue;
		if (errno != EPERM || getrlimit(s->rlimits[i].resource, &cur) < 0)
			return bh_err_sys(err, errno, "setrlimit %d", s->rlimits[i].resource);
		rl.rlim_max = rl.rlim_max > cur.rlim_max ? cur.rlim_max : rl.rlim_max;
		rl.rlim_cur = rl.rlim_cur > rl.rlim_max ? rl.rlim_max : rl.rlim_cur;
		if (setrlimit(s->rlimits[i].resource, &rl) < 0)
			return bh_err_sys(err, errno, "setrlimit %d", s->rlimits[i].resource);
	}
	return 0;
}

static int init_wait_byte(int fd, char want, struct bh_err *err)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != want)
		return bh_err_set(err, EPIPE, "lost the runtime (sync %c)", want);
	return 0;
}

/* The caller's ignored signals and blocked mask would survive execve: the
 * container starts from the defaults, as under Docker. */
void rt_proc_reset_signals(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for glibc's reserved ones */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int rt_proc_oom_score(const struct rt_spec *s, struct bh_err *err)
{
	char buf[16];
	int fd, n;

	if (!s->has_oom_score_adj)
		return 0;
	n = snprintf(buf, sizeof(buf), "%d", s->oom_score_adj);
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return bh_err_sys(err, e, "oom_score_adj %d", s->oom_score_adj);
	}
	close(fd);
	return 0;
}

static int init_setup(const struct init_args *a, struct bh_err *err)
{
	const struct rt_spec *s = a->s;

	/* Dies with the runtime until set up; a dead parent also ends the
	 * wait for 'C' below with EOF. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "parent death signal");
	/* Until its execve the init is the runtime's image: not dumpable, so no
	 * other process may ptrace it or open its /proc files (CVE-2019-5736
	 * family).  execve restores the flag. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "prctl PR_SET_DUMPABLE");
	rt_proc_reset_signals();
	umask(0);
	if (rt_proc_oom_score(s, err) < 0)
		return -1;
	if (init_wait_byte(a->sync, 'C', err) < 0)
		return -1;
	if ((s->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		return bh_err_sys(err, errno, "unshare the cgroup namespace");
	if (rt_ns_join(s, err) < 0 || rt_proc_stdio(a->stdio, err) < 0)
		return -1;
	if (setsid() < 0)
		return bh_err_sys(err, errno, "setsid");
	if (rt_rootfs_setup(s, a->rctx, err) < 0 || rt_ns_set_hostname(s, err) < 0 ||
	    rt_ns_loopback_up(s, err) < 0 || rt_proc_rlimits(s, err) < 0)
		return -1;
	/* The console socket design: the pty is allocated in the container's
	 * own devpts, so `tty` names /dev/pts/N and /dev/console exists. */
	if (a->console && rt_console_setup(a->console, true, err) < 0)
		return -1;
	if ((s->terminal || a->console) && ioctl(0, TIOCSCTTY, 0) < 0)
		return bh_err_sys(err, errno, "make stdin the controlling terminal");
	return rt_proc_lockdown(s, a->prog, err);
}

int rt_proc_lockdown(const struct rt_spec *s, const struct rt_seccomp_prog *prog,
                     struct bh_err *err)
{
	if (rt_caps_drop_bounding(s, err) < 0)
		return -1;
	/* Without no_new_privs only a privileged process may load a filter. */
	if (!s->no_new_privs && rt_seccomp_load(prog, err) < 0)
		return -1;
	if (rt_caps_apply_identity(s, err) < 0)
		return -1;
	/* The cwd is resolved inside the container's root, as its user. */
	if (chdir(s->cwd) < 0)
		return bh_err_sys(err, errno, "chdir to the working directory %s", s->cwd);
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "no_new_privs");
	if (s->no_new_privs && rt_seccomp_load(prog, err) < 0)
		return -1;
	umask(022);
	return 0;
}

static const char *env_path(const struct rt_spec *s)
{
	for (size_t i = 0; s->env[i]; i++)
		if (bh_str_has_prefix(s->env[i], "PATH="))
			return s->env[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execvp with the container's PATH; returns the errno to report. */
int rt_proc_exec(const struct rt_spec *s)
{
	const char *path = env_path(s), *arg0 = s->args[0];
	int saved = ENOENT;
	char buf[4096];

	if (strchr(arg0, '/')) {
		execve(arg0, (char *const *)s->args, (char *const *)s->env);
		return errno;
	}
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)(n ? n : 1), n ? p : ".", arg0) <
		    (int)sizeof(buf)) {
			execve(buf, (char *const *)s->args, (char *const *)s->env);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		p += n + (p[n] ? 1 : 0);
	}
	return saved;
}

static int init_wait_start(const struct init_args *a, int *report_fd, struct bh_err *err)
{
	char p[32];
	int fd;

	if (a->fifo < 0) {
		*report_fd = a->sync;
		return init_wait_byte(a->sync, 'S', err);
	}
	close(a->sync);
	/* Blocks until "start" opens the fifo for reading. */
	snprintf(p, sizeof(p), "/proc/self/fd/%d", a->fifo);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return bh_err_sys(err, errno, "open exec.fifo (is /proc mounted?)");
	*report_fd = fd;
	if (write(fd, "0", 1) != 1)
		return bh_err_sys(err, errno, "write exec.fifo");
	return 0;
}

static void __attribute__((noreturn)) init_main(const struct init_args *a)
{
	struct bh_err err = {0};
	int report = a->sync, code;

	if (init_setup(a, &err) < 0)
		init_fail(a->sync, &err, 1);
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0 || write(a->sync, "R", 1) != 1)
		_exit(1);
	if (init_wait_start(a, &report, &err) < 0)
		init_fail(report, &err, 1);
	/* CVE-2024-21626: no host fd may survive into the container; the
	 * report fd must live until execve succeeds, hence CLOEXEC. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		bh_err_sys(&err, errno, "close_range");
		init_fail(report, &err, 1);
	}
	code = rt_proc_exec(a->s);
	bh_err_sys(&err, code, "exec %s", a->s->args[0]);
	init_fail(report, &err, rt_exec_errno_status(code));
}

/* ==== in the parent ========================================================= */
struct launch {
	const struct rt_container_opts *o;
	const struct rt_console_opts *console;
	bool create;
	struct rt_spec spec;
	struct rt_rootfs_ctx rctx;
	struct rt_seccomp_prog prog;
	struct rt_cgroup cg;
	char *dir; /* state directory */
	int sync;  /* the parent's end */
	int fifo;
	pid_t pid;
};

static bool id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 128 || id[0] == '.')
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Reads the init's report: 0 with *got set, or -1 with err filled. */
static int read_report(int fd, char *got, struct bh_err *err)
{
	struct init_msg m;
	ssize_t n;

	do
		n = read(fd, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return bh_err_sys(err, errno, "read from the init");
	*got = n == 0 ? '\0' : ((char *)&m)[0];
	if (n == 1)
		return 0;
	if (n != (ssize_t)sizeof(m))
		return n == 0 ? 0 : bh_err_set(err, EPROTO, "short report from the init");
	m.msg[sizeof(m.msg) - 1] = '\0';
	return bh_err_set(err, m.code, "%s", m.msg);
}

static bool have_cap(int cap)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {{0}};

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[cap / 32].effective & (1U << (cap % 32));
}

/* Says so once, here, when the init will clamp an rlimit (see rt_proc_rlimits). */
static void warn_rlimit_clamps(const struct launch *l)
{
	for (size_t i = 0; i < l->spec.n_rlimits; i++) {
		const struct rt_rlimit *r = &l->spec.rlimits[i];
		struct rlimit cur;

		if (getrlimit(r->resource, &cur) == 0 && r->hard > cur.rlim_max &&
		    !have_cap(CAP_SYS_RESOURCE))
			bh_warn("container %s: rlimit %d hard %llu above ours (%llu) without "
			        "CAP_SYS_RESOURCE: clamped",
			        l->o->id, r->resource, (unsigned long long)r->hard,
			        (unsigned long long)cur.rlim_max);
	}
}

static int launch_prepare(struct launch *l, struct bh_err *err)
{
	if (rt_spec_load(l->o->bundle, &l->spec, err) < 0)
		return -1;
	warn_rlimit_clamps(l);
	if (!(l->spec.clone_flags & CLONE_NEWNS))
		return bh_err_set(err, EINVAL, "linux.namespaces: a mount namespace is required");
	if (rt_rootfs_prepare(&l->rctx, err) < 0 || rt_seccomp_compile(&l->spec, &l->prog, err) < 0)
		return -1;
	if (bh_mkdir_p(l->o->state_root, 0700, err) < 0)
		return -1;
	l->dir = bh_path_join(l->o->state_root, l->o->id);
	if (mkdir(l->dir, 0700) < 0) {
		int e = errno;
		free(l->dir);
		l->dir = NULL; /* not ours to remove */
		return e == EEXIST ? bh_err_set(err, EEXIST, "container %s exists", l->o->id)
		                   : bh_err_sys(err, e, "mkdir state");
	}
	return rt_cgroup_create(&l->spec, l->o->id, &l->cg, err);
}

static int launch_fifo(struct launch *l, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(l->dir, RT_EXEC_FIFO);

	if (mkfifo(path, 0600) < 0)
		return bh_err_sys(err, errno, "mkfifo %s", path);
	l->fifo = open(path, O_PATH | O_CLOEXEC);
	if (l->fifo < 0)
		return bh_err_sys(err, errno, "open %s", path);
	return 0;
}

static int launch_clone(struct launch *l, struct bh_err *err)
{
	int sv[2];
	struct init_args a = {
	    .id = l->o->id,
	    .s = &l->spec,
	    .rctx = &l->rctx,
	    .prog = &l->prog,
	    .fifo = l->fifo,
	    .console = l->console,
	};
	long pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return bh_err_sys(err, errno, "socketpair");
	memcpy(a.stdio, l->o->stdio, sizeof(a.stdio));
	a.sync = sv[1];
	/* fork semantics (no new stack); the cgroup namespace comes later, once
	 * the init is in its cgroups, so that they become its root. */
	pid = syscall(SYS_clone, SIGCHLD | (l->spec.clone_flags & ~CLONE_NEWCGROUP), NULL, NULL,
	              NULL, NULL);
	if (pid == 0) {
		close(sv[0]);
		init_main(&a);
	}
	close(sv[1]);
	l->sync = sv[0];
	if (pid < 0)
		return bh_err_sys(err, errno, "clone");
	l->pid = (pid_t)pid;
	return 0;
}

static int launch_sync(struct launch *l, struct bh_err *err)
{
	char got;

	if (rt_cgroup_enter(&l->cg, l->pid, err) < 0)
		return -1;
	if (write(l->sync, "C", 1) != 1)
		return bh_err_sys(err, errno, "sync with the init");
	if (read_report(l->sync, &got, err) < 0)
		return -1;
	if (got != 'R')
		return bh_err_set(err, EPIPE, "the init died during setup");
	return rt_state_write(l->dir, l->o->id, l->pid, l->o->bundle, &l->cg, err);
}

static int launch_exec(struct launch *l, struct bh_err *err)
{
	char got;

	if (write(l->sync, "S", 1) != 1)
		return bh_err_sys(err, errno, "start the init");
	if (read_report(l->sync, &got, err) < 0)
		return -1;
	return got == '\0' ? 0 : bh_err_set(err, EPROTO, "unexpected report from the init");
}

static void launch_undo(struct launch *l)
{
	struct bh_err ignored;

	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		waitpid(l->pid, NULL, 0);
	}
	rt_cgroup_destroy(&l->cg, &ignored);
	if (l->dir)
		bh_rm_rf(l->dir, &ignored);
}

static int launch(const struct rt_container_opts *o, const struct rt_console_opts *console,
                  bool create, pid_t *pid, struct bh_err *err)
{
	struct launch l = {.o = o, .console = console, .create = create, .sync = -1, .fifo = -1};
	int rc;

	if (!id_valid(o->id))
		return bh_err_set(err, EINVAL, "container id %s: invalid",
		                  o->id ? o->id : "(null)");
	/* CVE-2019-5736: see rt_selfexe_ensure_sealed(). */
	if (!rt_selfexe_is_sealed())
		return bh_err_set(err, EPERM,
		                  "container %s: runtime not running from a sealed copy "
		                  "(call rt_selfexe_ensure_sealed() in main)",
		                  o->id);
	rc = launch_prepare(&l, err);
	if (rc == 0 && create)
		rc = launch_fifo(&l, err);
	if (rc == 0)
		rc = launch_clone(&l, err);
	if (rc == 0)
		rc = launch_sync(&l, err);
	if (rc == 0 && !create)
		rc = launch_exec(&l, err);
	if (rc < 0)
		launch_undo(&l);
	else
		*pid = l.pid;
	if (l.sync >= 0)
		close(l.sync);
	if (l.fifo >= 0)
		close(l.fifo);
	free(l.dir);
	rt_cgroup_free(&l.cg);
	rt_seccomp_prog_free(&l.prog);
	rt_spec_free(&l.spec);
	return rc < 0 ? bh_err_wrap(err, "container %s", o->id) : 0;
}

int rt_container_start(const struct rt_container_opts *o, pid_t *pid, struct bh_err *err)
{
	return launch(o, NULL, false, pid, err);
}

int rt_container_start_console(const struct rt_container_opts *o, const struct rt_console_opts *c,
                               pid_t *pid, struct bh_err *err)
{
	if (c == NULL || c->socket < 0)
		return bh_err_set(err, EINVAL, "container %s: no console socket", o->id);
	return launch(o, c, false, pid, err);
}

int rt_container_create(const struct rt_container_opts *o, pid_t *pid, struct bh_err *err)
{
	return launch(o, NULL, true, pid, err);
}
