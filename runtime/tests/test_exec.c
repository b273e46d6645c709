/* exec: a new process in a running container (rt_container_exec), the
 * monitor's exec mode and the console socket.  One long-running busybox
 * container per run; every exec'd process is checked from the inside.
 * Needs root (skips loudly otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "runtime/runtime.h"
#include "runtime/tests/monitor-frames.h"

#define PASSWD "root:x:0:0::/:/bin/sh\nnobody:x:65534:65533::/:/bin/sh\n"

static char g_dir[] = "/tmp/berth-exec-test-XXXXXX";
static char *g_bundle, *g_state, *g_id;
static pid_t g_init;

struct out {
	int rc; /* rt_container_exec's */
	struct bh_err err;
	int status; /* exit code or 128+signal */
	struct bh_buf out, err_out;
};

/* ---- the test container ---------------------------------------------------- */
static void write_text(const char *path, const char *text, int mode)
{
	struct bh_err err;

	assert_int_equal(bh_write_file_atomic(path, text, strlen(text), mode, &err), 0);
}

static int copy_busybox(const char *root)
{
	cleanup_free char *dst = bh_path_join(root, "bin/busybox");
	cleanup_free char *data = NULL;
	struct bh_err err;
	size_t len;

	if (bh_read_file("/bin/busybox", 64 << 20, &data, &len, &err) < 0)
		return -1;
	return bh_write_file_atomic(dst, data, len, 0755, &err);
}

static int make_rootfs(const char *root)
{
	static const char *const dirs[] = {"bin", "tmp", "etc", "proc", "sys", "dev", NULL};
	char buf[PATH_MAX];
	FILE *list;
	struct bh_err err;

	for (const char *const *d = dirs; *d; d++) {
		cleanup_free char *p = bh_path_join(root, *d);
		if (mkdir(p, 0755) < 0)
			return -1;
	}
	if (copy_busybox(root) < 0)
		return -1;
	list = popen("/bin/busybox --list", "r");
	while (list && fgets(buf, sizeof(buf), list)) {
		cleanup_free char *link = NULL;
		buf[strcspn(buf, "\n")] = '\0';
		if (strcmp(buf, "busybox") == 0)
			continue;
		link = bh_asprintf("%s/bin/%s", root, buf);
		if (symlink("busybox", link) < 0)
			return -1;
	}
	snprintf(buf, sizeof(buf), "%s/etc/passwd", root);
	if (bh_write_file_atomic(buf, PASSWD, strlen(PASSWD), 0644, &err) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%s/etc/plain", root);
	if (bh_write_file_atomic(buf, "not a program\n", 14, 0644, &err) < 0)
		return -1;
	return list ? pclose(list) : -1;
}

/* The container every test execs into: hostname, a file made by its init, a
 * memory limit, extra env entries to merge with. */
static void write_config(const char *bundle, const char *const *args, bool tty)
{
	cleanup_free char *cfg = bh_path_join(bundle, "config.json");
	cleanup_free char *text = NULL, *rootfs = bh_path_join(g_bundle, "rootfs");
	json_t *spec = rt_spec_default(args), *proc = json_object_get(spec, "process");
	struct bh_err err;

	assert_int_equal(bh_mkdir_p(bundle, 0755, &err), 0);
	json_object_set_new(json_object_get(spec, "root"), "path", json_string(rootfs));
	json_object_set_new(spec, "hostname", json_string("exec-host"));
	json_object_set_new(proc, "oomScoreAdj", json_integer(345));
	json_array_append_new(json_object_get(proc, "env"), json_string("KEEP=1"));
	json_array_append_new(json_object_get(proc, "env"), json_string("OVR=old"));
	if (tty)
		json_object_set_new(proc, "terminal", json_true());
	json_object_set_new(
	    json_object_get(json_object_get(spec, "linux"), "resources"), "memory",
	    json_pack("{s:I, s:I}", "limit", (json_int_t)32 << 20, "swap", (json_int_t)32 << 20));
	text = json_dumps(spec, JSON_INDENT(1));
	json_decref(spec);
	write_text(cfg, text, 0644);
}

static int group_setup(void **state)
{
	static const char *const init[] = {"sh", "-c", "echo made > /tmp/by-init; exec sleep 1000",
	                                   NULL};
	cleanup_free char *rootfs = NULL;
	struct rt_container_opts o = {.stdio = {-1, -1, -1}};
	struct bh_err err;

	if (mkdtemp(g_dir) == NULL)
		return -1;
	g_bundle = bh_path_join(g_dir, "bundle");
	g_state = bh_path_join(g_dir, "state");
	g_id = bh_asprintf("exec-%d", (int)getpid()); /* other builds run this too */
	rootfs = bh_path_join(g_bundle, "rootfs");
	if (bh_mkdir_p(rootfs, 0755, &err) < 0 || make_rootfs(rootfs) < 0)
		return -1;
	write_config(g_bundle, init, false);
	o.id = g_id;
	o.bundle = g_bundle;
	o.state_root = g_state;
	if (rt_container_start(&o, &g_init, &err) < 0) {
		fprintf(stderr, "test_exec: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Nothing of ours may be left: no cgroup named after a test container. */
static int cgroups_left(void)
{
	cleanup_free char *p1 = bh_asprintf("/sys/fs/cgroup/*/berth/%s*", g_id);
	cleanup_free char *p2 = bh_asprintf("/sys/fs/cgroup/berth/%s*", g_id);
	glob_t g;
	int n = 0;

	if (glob(p1, 0, NULL, &g) == 0)
		n += (int)g.gl_pathc;
	globfree(&g);
	if (glob(p2, 0, NULL, &g) == 0)
		n += (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static int group_teardown(void **state)
{
	struct bh_err err;
	int rc = 0;

	if (rt_container_delete(g_state, g_id, true, &err) < 0) {
		fprintf(stderr, "test_exec: clean-up: %s\n", err.msg);
		rc = -1;
	}
	waitpid(g_init, NULL, 0);
	if (cgroups_left() > 0) {
		fprintf(stderr, "test_exec: cgroups of %s left behind\n", g_id);
		rc = -1;
	}
	bh_rm_rf(g_dir, &err);
	free(g_bundle);
	free(g_state);
	free(g_id);
	return rc;
}

/* ---- one exec, collected ----------------------------------------------------- */
static void drain(int fds[2], struct out *r)
{
	char buf[8192];

	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN},
		                      {.fd = fds[1], .events = POLLIN}};
		assert_true(poll(p, 2, 20000) > 0);
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (fds[i] < 0 || p[i].revents == 0)
				continue;
			n = read(fds[i], buf, sizeof(buf));
			if (n <= 0) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			assert_int_equal(bh_buf_append(i ? &r->err_out : &r->out, buf, (size_t)n),
			                 0);
		}
	}
}

/* Runs args in the container with o's extra settings; stdin gets in (NULL:
 * /dev/null); collects stdout, stderr and the status. */
/* r starts zeroed, and may be reused: its buffers are freed first. */
static void exec_run(struct rt_exec_opts *o, const char *in, struct out *r)
{
	int op[2], ep[2], ip[2] = {-1, -1}, fds[2], st;
	pid_t pid;

	bh_buf_free(&r->out);
	bh_buf_free(&r->err_out);
	memset(r, 0, sizeof(*r));
	bh_buf_init(&r->out, 1 << 20);
	bh_buf_init(&r->err_out, 1 << 20);
	bh_buf_append(&r->out, "", 0);
	bh_buf_append(&r->err_out, "", 0);
	assert_int_equal(pipe2(op, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ep, O_CLOEXEC), 0);
	if (in)
		assert_int_equal(pipe2(ip, O_CLOEXEC), 0);
	o->id = o->id ? o->id : g_id;
	o->state_root = g_state;
	o->stdio[0] = ip[0];
	o->stdio[1] = op[1];
	o->stdio[2] = ep[1];
	r->rc = rt_container_exec(o, &pid, &r->err);
	close(op[1]);
	close(ep[1]);
	if (ip[0] >= 0) {
		close(ip[0]);
		if (r->rc == 0)
			assert_int_equal(write(ip[1], in, strlen(in)), (ssize_t)strlen(in));
		close(ip[1]); /* EOF for the process */
	}
	fds[0] = op[0];
	fds[1] = ep[0];
	if (r->rc == 0) {
		drain(fds, r);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		r->status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	} else {
		close(op[0]);
		close(ep[0]);
	}
}

static void out_free(struct out *r)
{
	bh_buf_free(&r->out);
	bh_buf_free(&r->err_out);
}

/* Runs a shell line; asserts it ran with status 0; returns its stdout. */
static char *sh(const char *line, struct rt_exec_opts *extra)
{
	const char *args[] = {"sh", "-c", line, NULL};
	struct rt_exec_opts o = {0};
	struct out r = {0};
	char *text;

	if (extra)
		o = *extra;
	o.args = args;
	exec_run(&o, NULL, &r);
	if (r.rc < 0)
		fail_msg("exec %s: %s", line, r.err.msg);
	if (r.status != 0)
		fail_msg("exec %s: status %d, stderr %s", line, r.status, r.err_out.data);
	text = bh_strdup(r.out.data);
	out_free(&r);
	return text;
}

/* ---- tests: the process -------------------------------------------------------- */
static void test_exit_codes_0_3_127_126(void **state)
{
	static const char *const t[] = {"true", NULL}, *const three[] = {"sh", "-c", "exit 3",
	                                                                 NULL};
	static const char *const missing[] = {"/no/such/binary", NULL};
	static const char *const plain[] = {"/etc/plain", NULL};
	struct rt_exec_opts o = {.args = t};
	struct out r = {0};

	exec_run(&o, NULL, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 0);
	memset(&o, 0, sizeof(o));
	o.args = three;
	exec_run(&o, NULL, &r);
	assert_int_equal(r.status, 3);
	memset(&o, 0, sizeof(o));
	o.args = missing;
	exec_run(&o, NULL, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(rt_exec_errno_status(r.err.code), 127);
	assert_non_null(strstr(r.err.msg, "exec /no/such/binary: No such file or directory"));
	memset(&o, 0, sizeof(o));
	o.args = plain;
	exec_run(&o, NULL, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(rt_exec_errno_status(r.err.code), 126);
	out_free(&r);
}

/* Every namespace is the init's: compared by inode from the host's side. */
static void test_joins_every_namespace(void **state)
{
	static const char *const ns[] = {"mnt", "uts", "ipc", "net", "pid", "cgroup", NULL};
	cleanup_free char *inside =
	    sh("for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done", NULL);
	cleanup_free char *seen = sh("hostname; cat /tmp/by-init; cat /proc/1/cmdline", NULL);
	struct bh_buf want;

	bh_buf_init(&want, 4096);
	for (const char *const *n = ns; *n; n++) {
		char path[64], link[128];
		ssize_t len;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)g_init, *n);
		len = readlink(path, link, sizeof(link) - 1);
		assert_true(len > 0);
		link[len] = '\0';
		bh_buf_printf(&want, "%s\n", link);
	}
	assert_string_equal(inside, want.data);
	bh_buf_free(&want);
	/* pid 1 is the container's init; the init's file and hostname show */
	assert_string_equal(seen, "exec-host\nmade\nsleep\0001000");
}

static void test_pid_namespace_shows_init_as_pid_1(void **state)
{
	cleanup_free char *ps = sh("echo $$; ls /proc | grep -c '^[0-9]'", NULL);
	long self, n;
	char *nl;

	self = strtol(ps, &nl, 10);
	n = strtol(nl + 1, NULL, 10);
	assert_true(self > 1 && self < 100); /* a small pid: the container's namespace */
	assert_true(n >= 2 && n < 10);       /* init, us, ls: not the host's processes */
}

static void test_cgroup_joined_and_memory_limit_applies(void **state)
{
	static const char *const hog[] = {"sh", "-c", "x=0123456789; while :; do x=$x$x; done",
	                                  NULL};
	cleanup_free char *cg = sh("cat /proc/self/cgroup; echo ==; cat /proc/1/cgroup", NULL);
	char *sep = strstr(cg, "==\n");
	struct rt_exec_opts o = {.args = hog};
	struct out r = {0};

	assert_non_null(sep);
	*sep = '\0';
	assert_string_equal(cg, sep + 3);
	assert_non_null(strstr(cg, ":memory:/\n"));
	/* 32 MiB for the whole container: the hog is OOM-killed */
	exec_run(&o, NULL, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 128 + SIGKILL);
	out_free(&r);
	assert_int_equal(kill(g_init, 0), 0); /* the init survived */
}

/* CVE-2024-21626: a host fd (a directory, as in the attack) leaked into the
 * runtime must not survive into the container; the cwd is inside. */
static void test_cve_2024_21626_only_stdio_fds_inside(void **state)
{
	int leaked = open("/", O_RDONLY | O_DIRECTORY); /* no O_CLOEXEC, on purpose */
	char *fds;
	cleanup_free char *cwd = NULL;

	assert_true(leaked > 2);
	/* the shell's own fds ("; true": no exec of ls in its place) */
	fds = sh("ls /proc/$$/fd; true", NULL);
	cwd = sh("readlink /proc/$$/cwd", NULL);
	close(leaked);
	assert_string_equal(fds, "0\n1\n2\n");
	assert_string_equal(cwd, "/\n");
	free(fds);
}

static void test_capabilities_seccomp_no_new_privs(void **state)
{
	cleanup_free char *st = sh("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
	                           "/proc/self/status | tr -d '\\t'; "
	                           "unshare -U true 2>/dev/null; echo unshare=$?; "
	                           "echo oom=$(cat /proc/self/oom_score_adj)",
	                           NULL);

	assert_non_null(strstr(st, "CapEff:00000000a80425fb\n"));
	assert_non_null(strstr(st, "CapBnd:00000000a80425fb\n"));
	assert_non_null(strstr(st, "NoNewPrivs:1\n"));
	assert_non_null(strstr(st, "Seccomp:2\n"));
	assert_null(strstr(st, "unshare=0\n"));
	assert_non_null(strstr(st, "oom=345\n"));
}

static void test_user_override(void **state)
{
	struct rt_exec_opts o = {.user = "65534"};
	cleanup_free char *ids = sh("id -u; id -g; grep CapEff /proc/self/status", &o);
	cleanup_free char *named = NULL;

	assert_string_equal(ids, "65534\n65533\nCapEff:\t0000000000000000\n");
	o.user = "nobody:0";
	named = sh("id -u; id -g", &o);
	assert_string_equal(named, "65534\n0\n");
}

static void test_env_merge_and_cwd(void **state)
{
	static const char *const env[] = {"OVR=new", "FOO=bar baz", NULL};
	struct rt_exec_opts o = {.env = env, .cwd = "/tmp"};
	cleanup_free char *out = sh("echo \"$KEEP $OVR $FOO\"; pwd; echo $PATH", &o);

	assert_string_equal(out, "1 new bar baz\n/tmp\n"
	                         "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
}

static void test_stdin_eof_and_streams_apart(void **state)
{
	static const char *const args[] = {"sh", "-c", "cat; echo err >&2; echo done", NULL};
	struct rt_exec_opts o = {.args = args};
	struct out r = {0};

	exec_run(&o, "line 1\nline 2", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out.data, "line 1\nline 2done\n");
	assert_string_equal(r.err_out.data, "err\n");
	out_free(&r);
}

static void test_not_running_is_esrch(void **state)
{
	static const char *const t[] = {"true", NULL};
	cleanup_free char *id = bh_asprintf("%s-created", g_id);
	struct rt_container_opts co = {
	    .id = id, .bundle = g_bundle, .state_root = g_state, .stdio = {-1, -1, -1}};
	struct rt_exec_opts o = {.args = t, .id = id};
	struct bh_err err;
	struct out r = {0};
	pid_t pid;
	int st;

	/* created (waiting for start), then stopped */
	assert_int_equal(rt_container_create(&co, &pid, &err), 0);
	exec_run(&o, NULL, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.err.code, ESRCH);
	assert_non_null(strstr(r.err.msg, "is created, not running"));
	assert_int_equal(rt_container_kill(g_state, id, SIGKILL, &err), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	exec_run(&o, NULL, &r);
	assert_int_equal(r.err.code, ESRCH);
	assert_non_null(strstr(r.err.msg, "is stopped, not running"));
	assert_int_equal(rt_container_delete(g_state, id, false, &err), 0);
	exec_run(&o, NULL, &r);
	assert_int_equal(r.err.code, ENOENT);
	o.id = NULL;
	o.cwd = "relative";
	exec_run(&o, NULL, &r);
	assert_int_equal(r.err.code, EINVAL);
	out_free(&r);
}

/* The console socket for exec: the pty lives in the container's devpts. */
static void test_tty_in_container_devpts(void **state)
{
	static const char *const args[] = {"sh", "-c", "tty; stty size", NULL};
	struct rt_exec_opts o = {.id = g_id, .state_root = g_state, .args = args, .tty = true};
	struct bh_buf seen;
	char buf[4096];
	int sv[2], master = -1, st;
	struct bh_err err;
	ssize_t n;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.console_socket = sv[1];
	o.tty_rows = 33;
	o.tty_cols = 111;
	if (rt_container_exec(&o, &pid, &err) < 0)
		fail_msg("%s", err.msg);
	close(sv[1]);
	assert_int_equal(rt_console_recv(sv[0], 10000, &master, &err), 0);
	close(sv[0]);
	bh_buf_init(&seen, 1 << 16);
	while ((n = read(master, buf, sizeof(buf))) > 0) /* EIO once the slave is gone */
		assert_int_equal(bh_buf_append(&seen, buf, (size_t)n), 0);
	close(master);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_non_null(seen.data);
	assert_true(bh_str_has_prefix(seen.data, "/dev/pts/"));
	assert_non_null(strstr(seen.data, "\r\n33 111\r\n"));
	bh_buf_free(&seen);
}

/* berth-runtime exec: options, the process's status as ours, 127, and 1 for
 * a missing container. */
static int cli(const char *const *args, char *out, size_t cap)
{
	const char *bin = getenv("BERTH_BIN_DIR");
	cleanup_free char *prog = bh_path_join(bin ? bin : "build/bin", "berth-runtime");
	int p[2], st;
	ssize_t n, len = 0;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	if (pid == 0) {
		const char *argv[16] = {prog, "--root", g_state, "exec"};
		int i = 4;
		for (; *args && i < 15; args++)
			argv[i++] = *args;
		dup2(p[1], 1);
		execv(prog, (char *const *)argv);
		_exit(99);
	}
	close(p[1]);
	while ((n = read(p[0], out + len, cap - 1 - (size_t)len)) > 0)
		len += n;
	out[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_berth_runtime_exec_cli(void **state)
{
	const char *ok[] = {"--env",
	                    "A=b",
	                    "--cwd",
	                    "/tmp",
	                    "--user",
	                    "65534",
	                    g_id,
	                    "--",
	                    "sh",
	                    "-c",
	                    "echo $A $(pwd) $(id -u); exit 5",
	                    NULL};
	const char *missing[] = {g_id, "--", "/no/such", NULL};
	const char *nocontainer[] = {"no-such-container", "--", "true", NULL};
	char out[4096];

	assert_int_equal(cli(ok, out, sizeof(out)), 5);
	assert_string_equal(out, "b /tmp 65534\n");
	assert_int_equal(cli(missing, out, sizeof(out)), 127);
	assert_int_equal(cli(nocontainer, out, sizeof(out)), 1);
}

/* ---- tests: through berth-monitor --exec --------------------------------------- */
struct mon {
	char dir[PATH_MAX], spec[PATH_MAX];
	pid_t pid, mpid;
};

static int mon_n;

/* Extra monitor options for the next mon_spawn (reset after it). */
static bool g_sighup, g_detached;

static void mon_spawn(struct mon *m, const char *const *args, bool tty, bool open_stdin,
                      struct bh_err *err, int *rc)
{
	const char *bin = getenv("BERTH_BIN_DIR");
	cleanup_free char *monitor = bh_path_join(bin ? bin : "build/bin", "berth-monitor");
	cleanup_free char *exec_id = bh_asprintf("e%d", mon_n++);
	struct rt_monitor_opts o;

	snprintf(m->dir, sizeof(m->dir), "%s/exec-root/containers/%s/exec/%s", g_dir, g_id,
	         exec_id);
	snprintf(m->spec, sizeof(m->spec), "%s/spec-%s.json", g_dir, exec_id);
	assert_int_equal(rt_exec_spec_write(m->spec, args, NULL, "/", NULL, err), 0);
	memset(&o, 0, sizeof(o));
	o.monitor_path = monitor;
	o.id = g_id;
	o.exec_id = exec_id;
	o.exec_spec = m->spec;
	o.state_root = g_state;
	o.dir = m->dir;
	o.tty = tty;
	o.tty_rows = tty ? 30 : 0;
	o.tty_cols = tty ? 100 : 0;
	o.open_stdin = open_stdin;
	o.sighup_on_detach = g_sighup;
	o.detached = g_detached;
	o.timeout_ms = 10000;
	g_sighup = g_detached = false;
	*rc = rt_monitor_spawn(&o, &m->pid, &m->mpid, err);
}

static void mon_start(struct mon *m, const char *const *args, bool tty, bool open_stdin)
{
	struct bh_err err;
	int rc;

	mon_spawn(m, args, tty, open_stdin, &err, &rc);
	if (rc < 0)
		fail_msg("monitor: %s", err.msg);
}





/* Reads frames until exit: stdout/stderr into out/err (may be NULL). */
static void read_to_exit(int fd, struct bh_buf *out, struct bh_buf *err, char *exit_json)
{
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	uint8_t type;

	for (;;) {
		size_t n = read_frame(fd, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT) {
			bh_strlcpy(exit_json, buf, 512);
			return;
		}
		if (type == RT_FRAME_STDOUT && out)
			assert_int_equal(bh_buf_append(out, buf, n), 0);
		if (type == RT_FRAME_STDERR && err)
			assert_int_equal(bh_buf_append(err, buf, n), 0);
	}
}

static void probe_exit(struct mon *m, int code)
{
	struct rt_monitor_state st;
	struct bh_err err;

	wait_gone(m->mpid);
	assert_int_equal(rt_monitor_probe(m->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_EXITED);
	assert_int_equal(st.exit_code, code);
	assert_int_equal(st.container_pid, m->pid);
}

static int attach(struct mon *m)
{
	struct bh_err err;
	int fd = rt_monitor_attach_connect(m->dir, &err);

	if (fd < 0)
		fail_msg("%s", err.msg);
	return fd;
}

/* Output made before any client attached is held for the first one; the two
 * streams stay apart; no log file anywhere in the exec dir. */
static void test_monitor_exec_output_held_until_attach(void **state)
{
	static const char *const args[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	cleanup_free char *log = NULL;
	struct bh_buf out, err;
	char exit_json[512];
	struct mon m;
	int fd;

	mon_start(&m, args, false, false);
	wait_gone(m.pid); /* exited before anyone attached */
	fd = attach(&m);
	bh_buf_init(&out, 4096);
	bh_buf_init(&err, 4096);
	read_to_exit(fd, &out, &err, exit_json);
	close(fd);
	assert_string_equal(out.data, "out\n");
	assert_string_equal(err.data, "err\n");
	assert_non_null(strstr(exit_json, "\"ExitCode\":3"));
	bh_buf_free(&out);
	bh_buf_free(&err);
	probe_exit(&m, 3);
	log = bh_path_join(m.dir, "monitor.log");
	assert_true(bh_path_exists(log)); /* the monitor's own, and nothing else logged */
}

static void test_monitor_exec_failure_127(void **state)
{
	static const char *const args[] = {"/no/such/binary", NULL};
	struct bh_err err;
	struct mon m;
	int rc;

	mon_spawn(&m, args, false, false, &err, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(rt_exec_errno_status(err.code), 127);
}

static void test_monitor_exec_killed_137_by_signal_frame(void **state)
{
	static const char *const args[] = {"sleep", "1000", NULL};
	char exit_json[512], buf[64];
	uint8_t sig = SIGKILL, type;
	struct mon m;
	int fd;

	mon_start(&m, args, false, false);
	fd = attach(&m);
	read_frame(fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	send_frame(fd, RT_FRAME_SIGNAL, &sig, 1);
	read_to_exit(fd, NULL, NULL, exit_json);
	close(fd);
	assert_non_null(strstr(exit_json, "\"ExitCode\":137,\"Signal\":9"));
	probe_exit(&m, 137);
	assert_int_equal(kill(g_init, 0), 0); /* only the exec'd process died */
}

static void test_monitor_signal_helper(void **state)
{
	static const char *const args[] = {"sleep", "1000", NULL};
	struct bh_err err;
	struct mon m;

	mon_start(&m, args, false, false);
	assert_int_equal(rt_monitor_signal(m.dir, SIGTERM, &err), 0);
	probe_exit(&m, 128 + SIGTERM);
	assert_int_equal(rt_monitor_signal(m.dir, SIGTERM, &err), -1); /* no monitor */
}

struct pump {
	int fd;
	size_t total;
	unsigned char digest[32];
};

static void *pump_random(void *arg)
{
	struct pump *p = arg;
	static unsigned char chunk[60000];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t sent = 0; sent < p->total; sent += sizeof(chunk)) {
		size_t n = p->total - sent < sizeof(chunk) ? p->total - sent : sizeof(chunk);
		if (read(urandom, chunk, n) != (ssize_t)n)
			break;
		EVP_DigestUpdate(ctx, chunk, n);
		send_frame(p->fd, RT_FRAME_STDIN, chunk, n);
	}
	send_frame(p->fd, RT_FRAME_STDIN_EOF, NULL, 0);
	EVP_DigestFinal_ex(ctx, p->digest, NULL);
	EVP_MD_CTX_free(ctx);
	close(urandom);
	return NULL;
}

/* 10 MB of random bytes through `cat` and back, both directions at once. */
static void test_monitor_exec_10mb_roundtrip_sha256(void **state)
{
	static const char *const args[] = {"cat", NULL};
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	struct pump p = {.total = 10 * 1000 * 1000};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char got[32];
	size_t received = 0;
	pthread_t t;
	uint8_t type;
	struct mon m;

	mon_start(&m, args, false, true);
	p.fd = attach(&m);
	read_frame(p.fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	assert_int_equal(buf[8], 2); /* stdin open, no tty */
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	assert_int_equal(pthread_create(&t, NULL, pump_random, &p), 0);
	for (;;) {
		size_t n = read_frame(p.fd, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT)
			break;
		assert_int_equal(type, RT_FRAME_STDOUT);
		EVP_DigestUpdate(ctx, buf, n);
		received += n;
	}
	pthread_join(t, NULL);
	EVP_DigestFinal_ex(ctx, got, NULL);
	EVP_MD_CTX_free(ctx);
	close(p.fd);
	assert_int_equal(received, p.total);
	assert_memory_equal(got, p.digest, sizeof(got));
	assert_non_null(strstr(buf, "\"ExitCode\":0"));
	probe_exit(&m, 0);
}

/* Reads stdout frames until the text so far contains want. */
static void read_until(int fd, struct bh_buf *seen, const char *want)
{
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	uint8_t type;

	while (seen->data == NULL || strstr(seen->data, want) == NULL) {
		size_t n = read_frame(fd, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT)
			fail_msg("exited before %s; seen: %s", want, seen->data ? seen->data : "");
		if (type == RT_FRAME_STDOUT)
			assert_int_equal(bh_buf_append(seen, buf, n), 0);
	}
}

static void test_monitor_exec_tty_size_and_resize(void **state)
{
	static const char *const args[] = {"sh", "-c", "tty; stty size; read x; stty size", NULL};
	uint8_t rs[4] = {0, 40, 0, 120};
	char exit_json[512];
	struct bh_buf seen;
	struct mon m;
	int fd;

	mon_start(&m, args, true, true);
	fd = attach(&m);
	bh_buf_init(&seen, 1 << 16);
	read_until(fd, &seen, "30 100\r\n");
	assert_true(bh_str_has_prefix(seen.data, "/dev/pts/"));
	send_frame(fd, RT_FRAME_RESIZE, rs, sizeof(rs));
	send_frame(fd, RT_FRAME_STDIN, "go\r", 3);
	read_until(fd, &seen, "40 120\r\n");
	read_to_exit(fd, NULL, NULL, exit_json);
	close(fd);
	bh_buf_free(&seen);
	probe_exit(&m, 0);
}

/* A TTY session whose interactive client disappears gets SIGHUP (as Docker);
 * a non-TTY one keeps running and its output waits for the next client. */
static void test_monitor_exec_client_gone_tty_sighup_pipes_keep_running(void **state)
{
	static const char *const tty_args[] = {"sh", "-c", "echo ready; exec sleep 1000", NULL};
	static const char *const pipe_args[] = {"sh", "-c", "read x; echo later $x", NULL};
	char exit_json[512];
	struct bh_buf seen, out;
	struct mon m;
	int fd;

	g_sighup = true;
	mon_start(&m, tty_args, true, true);
	fd = attach(&m);
	send_frame(fd, RT_FRAME_INTERACTIVE, NULL, 0);
	bh_buf_init(&seen, 4096);
	read_until(fd, &seen, "ready");
	bh_buf_free(&seen);
	close(fd);
	probe_exit(&m, 128 + SIGHUP);

	mon_start(&m, pipe_args, false, true);
	fd = attach(&m);
	send_frame(fd, RT_FRAME_INTERACTIVE, NULL, 0);
	close(fd); /* gone before any output */
	assert_int_equal(kill(m.pid, 0), 0);
	fd = attach(&m);
	send_frame(fd, RT_FRAME_STDIN, "x\n", 2);
	bh_buf_init(&out, 4096);
	read_to_exit(fd, &out, NULL, exit_json);
	close(fd);
	assert_string_equal(out.data, "later x\n");
	bh_buf_free(&out);
	probe_exit(&m, 0);
}

/* Docker's Detach:true: no client will come; output is dropped, the process
 * never blocks on it. */
static void test_monitor_exec_detached_drops_output(void **state)
{
	static const char *const args[] = {"sh", "-c", "head -c 1000000 /dev/zero; exit 4", NULL};
	struct mon m;

	g_detached = true;
	mon_start(&m, args, false, false);
	probe_exit(&m, 4);
}

/* The TTY fix for the container's own init: with process.terminal the pty
 * is allocated inside (console socket), `tty` names the container's devpts
 * and /dev/console is that pty. */
static void test_container_tty_console_socket(void **state)
{
	static const char *const args[] = {
	    "sh", "-c", "tty; stty size; test -c /dev/console && echo console", NULL};
	const char *bin = getenv("BERTH_BIN_DIR");
	cleanup_free char *monitor = bh_path_join(bin ? bin : "build/bin", "berth-monitor");
	cleanup_free char *id = bh_asprintf("%s-tty", g_id);
	cleanup_free char *dir = bh_asprintf("%s/exec-root/containers/%s", g_dir, id);
	cleanup_free char *log = bh_asprintf("%s/data/%s-json.log", g_dir, id);
	cleanup_free char *text = NULL, *bundle = bh_path_join(g_dir, "bundle-tty");
	struct rt_monitor_opts o;
	struct bh_err err;
	pid_t pid, mpid;

	write_config(bundle, args, true);
	memset(&o, 0, sizeof(o));
	o.monitor_path = monitor;
	o.id = id;
	o.bundle = bundle;
	o.state_root = g_state;
	o.dir = dir;
	o.log_path = log;
	o.tty = true;
	o.tty_rows = 31;
	o.tty_cols = 101;
	if (rt_monitor_spawn(&o, &pid, &mpid, &err) < 0)
		fail_msg("%s", err.msg);
	wait_gone(mpid);
	assert_int_equal(rt_container_delete(g_state, id, false, &err), 0);
	assert_int_equal(bh_read_file(log, 1 << 20, &text, NULL, &err), 0);
	assert_non_null(strstr(text, "{\"log\":\"/dev/pts/0\\r\\n\""));
	assert_non_null(strstr(text, "{\"log\":\"31 101\\r\\n\""));
	assert_non_null(strstr(text, "{\"log\":\"console\\r\\n\""));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_codes_0_3_127_126),
	    cmocka_unit_test(test_joins_every_namespace),
	    cmocka_unit_test(test_pid_namespace_shows_init_as_pid_1),
	    cmocka_unit_test(test_cgroup_joined_and_memory_limit_applies),
	    cmocka_unit_test(test_cve_2024_21626_only_stdio_fds_inside),
	    cmocka_unit_test(test_capabilities_seccomp_no_new_privs),
	    cmocka_unit_test(test_user_override),
	    cmocka_unit_test(test_env_merge_and_cwd),
	    cmocka_unit_test(test_stdin_eof_and_streams_apart),
	    cmocka_unit_test(test_not_running_is_esrch),
	    cmocka_unit_test(test_tty_in_container_devpts),
	    cmocka_unit_test(test_berth_runtime_exec_cli),
	    cmocka_unit_test(test_monitor_exec_output_held_until_attach),
	    cmocka_unit_test(test_monitor_exec_failure_127),
	    cmocka_unit_test(test_monitor_exec_killed_137_by_signal_frame),
	    cmocka_unit_test(test_monitor_signal_helper),
	    cmocka_unit_test(test_monitor_exec_10mb_roundtrip_sha256),
	    cmocka_unit_test(test_monitor_exec_tty_size_and_resize),
	    cmocka_unit_test(test_monitor_exec_client_gone_tty_sighup_pipes_keep_running),
	    cmocka_unit_test(test_monitor_exec_detached_drops_output),
	    cmocka_unit_test(test_container_tty_console_socket),
	};
	struct bh_err err;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP test_exec: needs root (namespaces, cgroups, mounts)\n");
		return 77;
	}
	/* CVE-2019-5736: exec'd processes are forks of this one until execve. */
	if (rt_selfexe_ensure_sealed(argv, &err) < 0) {
		fprintf(stderr, "test_exec: %s\n", err.msg);
		return 1;
	}
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
