/* exec: a new process in a running container, and the console socket.
 *
 * The caller (P) prepares everything that needs memory or libraries: the
 * container's state and config.json with the exec's overrides, the seccomp
 * BPF, the user from the container's /etc/passwd.  Then:
 *   P forks M; P puts M in the container's cgroups; P → M 'C'
 *   M: setns(pidfd of the init, every namespace) — the pid namespace applies
 *      to M's children only — and clone(CLONE_PARENT) → G, a child of P
 *   M → P  'P' + G's pid; M exits
 *   G: console or stdio, setsid, rlimits, capabilities, seccomp, user, cwd,
 *      close every fd above 2, execve
 *   G → P  EOF (execve succeeded: the socket is close-on-exec) or an error.
 * Messages go over a SOCK_SEQPACKET pair, one record per write. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <linux/magic.h>

#include "runtime/rt-container-state.h"

#define EXEC_NS_FLAGS                                                                              \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP)
#define EXEC_ENV_MAX  4096
#define EXEC_SPEC_MAX (1024 * 1024)

struct exec_msg {
	int32_t kind;  /* 'P' pid, 'E' error */
	int32_t value; /* the pid, or the errno */
	char msg[1016];
};

/* ==== the console socket ===================================================== */
/* Only a devpts ptmx will do: the container may have replaced paths in /dev. */
static int open_ptmx(struct bh_err *err)
{
	int fd = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct statfs sfs;
	struct stat st;

	if (fd < 0)
		return bh_err_sys(err, errno, "open /dev/pts/ptmx in the container");
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC || fstat(fd, &st) < 0 ||
	    !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2) {
		close(fd);
		return bh_err_set(err, EPERM, "/dev/pts/ptmx in the container is not devpts' ptmx");
	}
	return fd;
}

/* Docker's /dev/console is the container's tty: the slave bind-mounted on it. */
static int bind_console(int ptn, struct bh_err *err)
{
	char src[32];
	int fd = open("/dev/console", O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 && errno == ENOENT)
		return 0; /* no /dev in the image and none mounted */
	if (fd < 0) /* ELOOP: the image's symlink is not followed */
		return bh_err_sys(err, errno, "create /dev/console");
	close(fd);
	snprintf(src, sizeof(src), "/dev/pts/%d", ptn);
	if (mount(src, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return bh_err_sys(err, errno, "bind %s on /dev/console", src);
	return 0;
}

static int console_slave(int master, const struct rt_console_opts *c, bool console,
                         struct bh_err *err)
{
	struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols};
	int unlock = 0, ptn = -1, slave;

	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0)
		return bh_err_sys(err, errno, "unlock the pty");
	if (ws.ws_row && ws.ws_col && ioctl(master, TIOCSWINSZ, &ws) < 0)
		return bh_err_sys(err, errno, "set the pty size");
	/* The peer of this very master, not a path that could be swapped. */
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return bh_err_sys(err, errno, "open the pty slave");
	if (console && bind_console(ptn, err) < 0) {
		close(slave);
		return -1;
	}
	return slave;
}

int rt_console_setup(const struct rt_console_opts *c, bool console, struct bh_err *err)
{
	int master = open_ptmx(err), slave, stdio[3];

	if (master < 0)
		return -1;
	slave = console_slave(master, c, console, err);
	if (slave < 0 || rt_console_send(c->socket, master, err) < 0) {
		close(master);
		if (slave >= 0)
			close(slave);
		return -1;
	}
	close(master);
	stdio[0] = stdio[1] = stdio[2] = slave;
	if (rt_proc_stdio(stdio, err) < 0)
		return -1;
	close(slave);
	return 0;
}

/* ==== in the new process (G) =================================================== */
struct exec_args {
	const struct rt_exec_opts *o;
	const struct rt_spec *s;
	const struct rt_seccomp_prog *prog;
	int pidfd; /* the container's init */
	int sync;  /* the child's end of the socket pair */
};

static void __attribute__((noreturn)) child_fail(int fd, const struct bh_err *err, int status)
{
	struct exec_msg m = {.kind = 'E', .value = err->code ? err->code : EIO};

	bh_strlcpy(m.msg, err->msg, sizeof(m.msg));
	if (write(fd, &m, sizeof(m)) < 0) {
		/* nobody to tell */
	}
	_exit(status);
}

static int proc_io(const struct exec_args *a, struct bh_err *err)
{
	const struct rt_exec_opts *o = a->o;
	struct rt_console_opts c = {o->console_socket, o->tty_rows, o->tty_cols};

	if (o->tty && rt_console_setup(&c, false, err) < 0)
		return -1;
	if (!o->tty && rt_proc_stdio(o->stdio, err) < 0)
		return -1;
	if (setsid() < 0)
		return bh_err_sys(err, errno, "setsid");
	if (o->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		return bh_err_sys(err, errno, "make the pty the controlling terminal");
	return 0;
}

/* The same order as the container's init (container.c init_setup). */
static int proc_setup(const struct exec_args *a, struct bh_err *err)
{
	const struct rt_spec *s = a->s;

	/* CVE-2016-9962: until its execve the process holds the runtime's
	 * memory and fds; processes already in the container must not
	 * ptrace it or open its /proc files.  execve restores the flag. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "prctl PR_SET_DUMPABLE");
	rt_proc_reset_signals();
	umask(0);
	if (rt_proc_oom_score(s, err) < 0)
		return -1;
	if (proc_io(a, err) < 0 || rt_proc_rlimits(s, err) < 0)
		return -1;
	/* The same lock-down, in the same order, as the container's init. */
	return rt_proc_lockdown(s, a->prog, err);
}

static void __attribute__((noreturn)) proc_main(const struct exec_args *a)
{
	struct bh_err err = {0};
	int code;

	char go;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	close(a->pidfd);
	/* Reports only after the caller has our pid (it must reap us). */
	if (read(a->sync, &go, 1) != 1 || go != 'G')
		_exit(1);
	if (proc_setup(a, &err) < 0)
		child_fail(a->sync, &err, 1);
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		_exit(1);
	/* CVE-2024-21626: no host fd (a leaked directory fd above all) may
	 * survive into the container; the sync fd must live until execve
	 * succeeds, hence CLOEXEC rather than close. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		bh_err_sys(&err, errno, "close_range");
		child_fail(a->sync, &err, 1);
	}
	code = rt_proc_exec(a->s);
	bh_err_sys(&err, code, "exec %s", a->s->args[0]);
	child_fail(a->sync, &err, rt_exec_errno_status(code));
}

/* ==== in the middle process (M) ================================================= */
static void __attribute__((noreturn)) middle_main(const struct exec_args *a)
{
	struct exec_msg m = {.kind = 'P'};
	struct bh_err err = {0};
	char c;
	long pid;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0)
		_exit(1);
	if (read(a->sync, &c, 1) != 1 || c != 'C')
		_exit(1); /* the parent failed to put us in the cgroups */
	/* All at once from the init's pidfd: no /proc path to race on. */
	if (setns(a->pidfd, EXEC_NS_FLAGS) < 0) {
		bh_err_sys(&err, errno, "join the namespaces of the container's init");
		child_fail(a->sync, &err, 1);
	}
	/* The pid namespace takes effect for children only.  CLONE_PARENT
	 * makes the new process the caller's child, as the init is. */
	pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0)
		proc_main(a);
	if (pid < 0) {
		bh_err_sys(&err, errno, "clone into the container's pid namespace");
		child_fail(a->sync, &err, 1);
	}
	m.value = (int32_t)pid;
	if (write(a->sync, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(1);
	_exit(0);
}

/* ==== in the caller (P) ========================================================= */
struct exec_ctx {
	const struct rt_exec_opts *o;
	struct rt_spec spec;
	struct rt_seccomp_prog prog;
	struct rt_cgroup cg;
	int pidfd;
	int sync; /* the caller's end */
	pid_t middle, pid;
};

static int load_cgroups(struct exec_ctx *x, struct bh_err *err)
{
	cleanup_free char *dir = bh_path_join(x->o->state_root, x->o->id);
	cleanup_free char *path = bh_path_join(dir, RT_STATE_FILE);
	cleanup_free char *text = NULL;
	json_t *j;
	int rc;

	if (bh_read_file(path, RT_STATE_MAX, &text, NULL, err) < 0)
		return -1;
	j = json_loads(text, 0, NULL);
	if (j == NULL)
		return bh_err_set(err, EINVAL, "%s: not JSON", path);
	rc = rt_cgroup_from_json(json_object_get(j, "cgroup"), &x->cg, err);
	json_decref(j);
	return rc;
}

/* The init as a pidfd, checked (pid and start time, through the state) after
 * it was opened: it cannot name a process that reused the pid. */
static int open_init(struct exec_ctx *x, struct rt_container_state *st, struct bh_err *err)
{
	struct rt_container_state again;

	if (rt_container_state(x->o->state_root, x->o->id, st, err) < 0)
		return -1;
	if (st->status != RT_STATUS_RUNNING)
		return bh_err_set(err, ESRCH, "container %s is %s, not running", x->o->id,
		                  rt_container_status_name(st->status));
	x->pidfd = pidfd_open(st->pid, 0);
	if (x->pidfd < 0)
		return bh_err_sys(err, errno, "pidfd of the init");
	if (rt_container_state(x->o->state_root, x->o->id, &again, err) < 0)
		return -1;
	if (again.status != RT_STATUS_RUNNING || again.pid != st->pid)
		return bh_err_set(err, ESRCH, "container %s stopped", x->o->id);
	return 0;
}

static bool env_key_eq(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");

	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* The container's env with the exec's "K=V" entries replacing or added. */
static int merge_env(struct exec_ctx *x, struct bh_err *err)
{
	const char *const *add = x->o->env;
	const char **env;
	size_t n = 0, m = 0;

	while (x->spec.env[n])
		n++;
	while (add && add[m])
		m++;
	if (n + m > EXEC_ENV_MAX)
		return bh_err_set(err, E2BIG, "env: more than %d entries", EXEC_ENV_MAX);
	env = bh_calloc(n + m + 1, sizeof(char *));
	memcpy(env, x->spec.env, n * sizeof(char *));
	free(x->spec.env);
	x->spec.env = env;
	for (size_t i = 0; i < m; i++) {
		size_t k = 0;
		if (strchr(add[i], '=') == NULL || add[i][0] == '=')
			return bh_err_set(err, EINVAL, "env %s: not KEY=VALUE", add[i]);
		while (k < n && !env_key_eq(add[i], env[k]))
			k++;
		env[k] = add[i];
		n += k == n;
	}
	return 0;
}

static int resolve_user(struct exec_ctx *x, pid_t init, struct bh_err *err)
{
	char path[64];
	cleanup_close int rootfd = -1;
	gid_t *gids = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/root", (int)init);
	rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return bh_err_sys(err, errno, "open the container's root");
	if (rt_user_resolve(rootfd, x->o->user, &x->spec.uid, &x->spec.gid, &gids, &n, err) < 0)
		return bh_err_wrap(err, "user %s", x->o->user);
	free(x->spec.gids);
	x->spec.gids = gids;
	x->spec.n_gids = n;
	return 0;
}

/* config.json with the exec's args, env, cwd and user. */
static int prepare_spec(struct exec_ctx *x, const struct rt_container_state *st, struct bh_err *err)
{
	const struct rt_exec_opts *o = x->o;
	size_t n = 0;

	if (rt_spec_load(st->bundle, &x->spec, err) < 0)
		return -1;
	while (o->args[n])
		n++;
	free(x->spec.args);
	x->spec.args = bh_calloc(n + 1, sizeof(char *));
	memcpy(x->spec.args, o->args, n * sizeof(char *));
	if (o->cwd && o->cwd[0] != '/')
		return bh_err_set(err, EINVAL, "working directory %s: not absolute", o->cwd);
	if (o->cwd)
		x->spec.cwd = o->cwd;
	x->spec.terminal = o->tty;
	if (merge_env(x, err) < 0)
		return -1;
	if (o->user && o->user[0] && resolve_user(x, st->pid, err) < 0)
		return -1;
	return rt_seccomp_compile(&x->spec, &x->prog, err);
}

static int read_msg(int fd, struct exec_msg *m, struct bh_err *err)
{
	ssize_t n;

	do
		n = read(fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return bh_err_sys(err, errno, "read from the exec'd process");
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*m))
		return bh_err_set(err, EPROTO, "short report from the exec'd process");
	m->msg[sizeof(m->msg) - 1] = '\0';
	if (m->kind == 'E')
		return bh_err_set(err, m->value, "%s", m->msg);
	return 1;
}

static int spawn(struct exec_ctx *x, struct bh_err *err)
{
	struct exec_args a = {.o = x->o, .s = &x->spec, .prog = &x->prog, .pidfd = x->pidfd};
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return bh_err_sys(err, errno, "socketpair");
	a.sync = sv[1];
	x->middle = fork();
	if (x->middle == 0) {
		close(sv[0]);
		middle_main(&a);
	}
	close(sv[1]);
	x->sync = sv[0];
	if (x->middle < 0)
		return bh_err_sys(err, errno, "fork");
	return 0;
}

/* cgroups first, so that every limit applies from the first instruction. */
static int run(struct exec_ctx *x, struct bh_err *err)
{
	struct exec_msg m;
	int st, r;

	if (spawn(x, err) < 0 || rt_cgroup_enter(&x->cg, x->middle, err) < 0)
		return -1;
	if (write(x->sync, "C", 1) != 1)
		return bh_err_sys(err, errno, "sync with the exec'd process");
	r = read_msg(x->sync, &m, err);
	while (waitpid(x->middle, &st, 0) < 0 && errno == EINTR)
		;
	x->middle = 0;
	if (r <= 0)
		return r < 0 ? -1 : bh_err_set(err, EPIPE, "the exec helper died");
	x->pid = (pid_t)m.value;
	if (write(x->sync, "G", 1) != 1)
		return bh_err_sys(err, errno, "start the exec'd process");
	r = read_msg(x->sync, &m, err);
	if (r > 0)
		return bh_err_set(err, EPROTO, "unexpected report from the exec'd process");
	return r;
}

static void ctx_free(struct exec_ctx *x, int rc)
{
	if (rc < 0 && x->middle > 0) {
		kill(x->middle, SIGKILL);
		waitpid(x->middle, NULL, 0);
	}
	if (rc < 0 && x->pid > 0) {
		kill(x->pid, SIGKILL);
		waitpid(x->pid, NULL, 0);
	}
	if (x->sync >= 0)
		close(x->sync);
	if (x->pidfd >= 0)
		close(x->pidfd);
	rt_cgroup_free(&x->cg);
	rt_seccomp_prog_free(&x->prog);
	rt_spec_free(&x->spec);
}

static int check_opts(const struct rt_exec_opts *o, struct bh_err *err)
{
	if (o->id == NULL || o->state_root == NULL || o->args == NULL || o->args[0] == NULL)
		return bh_err_set(err, EINVAL, "exec: id, state root and args are required");
	if (o->tty && o->console_socket < 0)
		return bh_err_set(err, EINVAL, "exec in %s: a tty needs a console socket", o->id);
	/* CVE-2019-5736: the new process is a fork of us until its execve. */
	if (!rt_selfexe_is_sealed())
		return bh_err_set(err, EPERM,
		                  "exec in %s: runtime not running from a sealed copy "
		                  "(call rt_selfexe_ensure_sealed() in main)",
		                  o->id);
	return 0;
}

int rt_container_exec(const struct rt_exec_opts *o, pid_t *pid, struct bh_err *err)
{
	struct exec_ctx x = {.o = o, .pidfd = -1, .sync = -1};
	struct rt_container_state st;
	int rc;

	if (check_opts(o, err) < 0)
		return -1;
	rc = open_init(&x, &st, err);
	if (rc == 0)
		rc = load_cgroups(&x, err);
	if (rc == 0)
		rc = prepare_spec(&x, &st, err);
	if (rc == 0)
		rc = run(&x, err);
	if (rc == 0)
		*pid = x.pid;
	ctx_free(&x, rc);
	return rc < 0 ? bh_err_wrap(err, "exec in container %s", o->id) : 0;
}

/* ==== the exec spec file ======================================================== */
static const char **spec_strings(json_t *arr, const char *what, size_t max, struct bh_err *err)
{
	size_t n = json_array_size(arr), i;
	const char **out;
	json_t *v;

	if (arr != NULL && !json_is_array(arr)) {
		bh_err_set(err, EINVAL, "exec spec: %s is not an array", what);
		return NULL;
	}
	if (n > max) {
		bh_err_set(err, E2BIG, "exec spec: %s has more than %zu entries", what, max);
		return NULL;
	}
	out = bh_calloc(n + 1, sizeof(char *));
	json_array_foreach(arr, i, v)
	{
		if ((out[i] = json_string_value(v)) == NULL) {
			free(out);
			bh_err_set(err, EINVAL, "exec spec: %s[%zu] is not a string", what, i);
			return NULL;
		}
	}
	return out;
}

static int spec_parse(struct rt_exec_spec *s, struct bh_err *err)
{
	json_t *cwd = json_object_get(s->json, "cwd"), *user = json_object_get(s->json, "user");

	s->args = spec_strings(json_object_get(s->json, "args"), "args", EXEC_ENV_MAX, err);
	if (s->args == NULL)
		return -1;
	if (s->args[0] == NULL)
		return bh_err_set(err, EINVAL, "exec spec: args is empty");
	s->env = spec_strings(json_object_get(s->json, "env"), "env", EXEC_ENV_MAX, err);
	if (s->env == NULL)
		return -1;
	if ((cwd && !json_is_string(cwd)) || (user && !json_is_string(user)))
		return bh_err_set(err, EINVAL, "exec spec: cwd and user must be strings");
	s->cwd = json_string_value(cwd);
	s->user = json_string_value(user);
	return 0;
}

int rt_exec_spec_load(const char *path, struct rt_exec_spec *s, struct bh_err *err)
{
	cleanup_free char *text = NULL;
	json_error_t jerr;
	size_t len;

	memset(s, 0, sizeof(*s));
	if (bh_read_file(path, EXEC_SPEC_MAX, &text, &len, err) < 0)
		return -1;
	s->json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(s->json)) {
		rt_exec_spec_free(s);
		return bh_err_set(err, EINVAL, "%s: not a JSON object", path);
	}
	if (spec_parse(s, err) < 0) {
		rt_exec_spec_free(s);
		return bh_err_wrap(err, "%s", path);
	}
	return 0;
}

void rt_exec_spec_free(struct rt_exec_spec *s)
{
	free(s->args);
	free(s->env);
	json_decref(s->json);
	memset(s, 0, sizeof(*s));
}

static json_t *str_list(const char *const *v)
{
	json_t *a = json_array();

	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

int rt_exec_spec_write(const char *path, const char *const *args, const char *const *env,
                       const char *cwd, const char *user, struct bh_err *err)
{
	json_t *j = json_pack("{s:o, s:o}", "args", str_list(args), "env", str_list(env));
	cleanup_free char *text = NULL;

	if (cwd)
		json_object_set_new(j, "cwd", json_string(cwd));
	if (user)
		json_object_set_new(j, "user", json_string(user));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		return bh_err_set(err, EINVAL, "exec spec: not valid UTF-8");
	/* Read once by the exec's starter: atomic is enough, no fsync. */
	return bh_write_file_volatile(path, text, strlen(text), 0600, err);
}
