/* Containers from the inside: a busybox root with the static berth-probe,
 * run through rt_container_start.  Needs root (skips loudly otherwise). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "runtime/rt-container-internal.h"
#include "runtime/runtime.h"

static char g_dir[] = "/tmp/berth-rt-test-XXXXXX";
static char *g_bundle, *g_state;

struct run {
	int rc; /* rt_container_start's */
	struct bh_err err;
	int status; /* exit code or 128+signal */
	bool oom;
	json_t *out; /* the probe's JSON, if any */
	char text[65536];
};

/* ---- the test root ------------------------------------------------------- */
static int copy_file(const char *src, const char *dst, int mode)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out;
	struct stat st;
	off_t off = 0;

	if (in < 0 || fstat(in, &st) < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0)
		return -1;
	while (off < st.st_size)
		if (sendfile(out, in, &off, (size_t)(st.st_size - off)) <= 0)
			return -1;
	close(in);
	return close(out);
}

static void write_text(const char *path, const char *text, int mode)
{
	struct bh_err err;

	assert_int_equal(bh_write_file_atomic(path, text, strlen(text), mode, &err), 0);
}

static int make_rootfs(const char *root)
{
	static const char *const dirs[] = {"bin", "tmp", "etc", "proc", "sys", "dev", "work", NULL};
	char buf[4096];
	FILE *list;

	for (const char *const *d = dirs; *d; d++) {
		cleanup_free char *p = bh_path_join(root, *d);
		if (mkdir(p, 0755) < 0)
			return -1;
	}
	snprintf(buf, sizeof(buf), "%s/bin/busybox", root);
	if (copy_file("/bin/busybox", buf, 0755) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%s/probe", root);
	if (copy_file(BERTH_PROBE, buf, 0755) < 0)
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
	return list ? pclose(list) : -1;
}

static int group_setup(void **state)
{
	struct bh_err err;
	cleanup_free char *rootfs = NULL;

	if (mkdtemp(g_dir) == NULL)
		return -1;
	g_bundle = bh_path_join(g_dir, "bundle");
	g_state = bh_path_join(g_dir, "state");
	rootfs = bh_path_join(g_bundle, "rootfs");
	if (bh_mkdir_p(rootfs, 0755, &err) < 0)
		return -1;
	return make_rootfs(rootfs);
}

/* After a failed assertion a container may be left: kill and delete it. */
static void delete_leftovers(void)
{
	DIR *d = opendir(g_state);
	struct dirent *e;
	struct bh_err err;

	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && rt_container_delete(g_state, e->d_name, true, &err) < 0)
			fprintf(stderr, "test_container: clean-up: %s\n", err.msg);
	if (d)
		closedir(d);
}

static int group_teardown(void **state)
{
	struct bh_err err;

	delete_leftovers();

	bh_rm_rf(g_dir, &err);
	free(g_bundle);
	free(g_state);
	return 0;
}

/* ---- running one container ----------------------------------------------- */
/* Container ids (and so cgroup names) are unique per test process: other
 * build directories may run this same test at the same time. */
static const char *uid_of(const char *name)
{
	static char ring[8][160];
	static unsigned next;
	char *out = ring[next++ % 8];

	snprintf(out, sizeof(ring[0]), "%s-%d", name, (int)getpid());
	return out;
}

static json_t *probe_spec(const char *const *args)
{
	static const char *const facts[] = {"/probe", "facts", NULL};

	return rt_spec_default(args ? args : facts);
}

/* No mount of the container may show up on the host, before or after: none
 * below the bundle.  (A whole-table comparison would race with other tests
 * that mount things at the same time.) */
static void assert_no_mount_below(const char *dir)
{
	cleanup_free char *text = NULL;
	cleanup_free char *needle = bh_asprintf(" %s", dir);
	struct bh_err err;

	assert_int_equal(bh_read_file("/proc/self/mountinfo", 1 << 20, &text, NULL, &err), 0);
	if (strstr(text, needle))
		fail_msg("a mount below %s is left on the host", dir);
}

static void assert_no_cgroup_left(const char *id)
{
	glob_t g;
	cleanup_free char *pat1 = bh_asprintf("/sys/fs/cgroup/*/berth/%s", id);
	cleanup_free char *pat2 = bh_asprintf("/sys/fs/cgroup/berth/%s", id);

	assert_int_equal(glob(pat1, 0, NULL, &g), GLOB_NOMATCH);
	assert_int_equal(glob(pat2, 0, NULL, &g), GLOB_NOMATCH);
}

static void read_all(int fd, struct run *r)
{
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, r->text + len, sizeof(r->text) - 1 - len)) > 0)
		len += (size_t)n;
	r->text[len] = '\0';
}

/* Writes spec as the bundle's config.json, runs it to the end, collects
 * stdout, status and OOM flag, deletes it and checks nothing is left. */
static void run_spec(json_t *spec, const char *id, struct run *r)
{
	cleanup_free char *cfg = bh_path_join(g_bundle, "config.json");
	cleanup_free char *text = json_dumps(spec, JSON_INDENT(1));
	struct rt_container_opts o = {id, g_bundle, g_state, {-1, -1, 2}};
	int p[2], st;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	json_decref(spec);
	write_text(cfg, text, 0644);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	o.stdio[1] = p[1];
	r->rc = rt_container_start(&o, &pid, &r->err);
	close(p[1]);
	if (r->rc < 0)
		fprintf(stderr, "run_spec %s: %s\n", id, r->err.msg);
	if (r->rc == 0) {
		read_all(p[0], r);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		r->status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		assert_int_equal(rt_container_oom_killed(g_state, id, &r->oom, &r->err), 0);
		assert_int_equal(rt_container_delete(g_state, id, false, &r->err), 0);
		r->out = json_loads(r->text, 0, NULL);
	}
	close(p[0]);
	assert_no_cgroup_left(id);
	assert_no_mount_below(g_bundle);
}

static json_t *run_probe(json_t *spec, const char *id, struct run *r)
{
	run_spec(spec, id, r);
	if (r->rc < 0)
		fail_msg("%s", r->err.msg);
	assert_int_equal(r->status, 0);
	assert_non_null(r->out);
	return r->out;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	if (v == NULL)
		fail_msg("probe output lacks %s", k);
	return v;
}

static long jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("probe output lacks %s", k);
	return (long)json_integer_value(v);
}

/* ---- tests ---------------------------------------------------------------- */
static void test_exit_codes(void **state)
{
	static const char *const three[] = {"sh", "-c", "exit 3", NULL};
	static const char *const zero[] = {"true", NULL};
	struct run r;

	run_spec(probe_spec(three), uid_of("t-exit3"), &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 3);
	run_spec(probe_spec(zero), uid_of("t-exit0"), &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 0);
}

static void test_exec_errors_map_to_127_and_126(void **state)
{
	static const char *const missing[] = {"/no/such/binary", NULL};
	static const char *const notexec[] = {"/etc/plain", NULL};
	cleanup_free char *plain = bh_path_join(g_bundle, "rootfs/etc/plain");
	struct run r;

	write_text(plain, "not a program\n", 0644);
	run_spec(probe_spec(missing), uid_of("t-enoent"), &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.err.code, ENOENT);
	assert_int_equal(rt_exec_errno_status(r.err.code), 127);
	assert_non_null(strstr(r.err.msg, ": exec /no/such/binary: No such file or directory"));
	assert_true(bh_str_has_prefix(r.err.msg, "container t-enoent-"));
	run_spec(probe_spec(notexec), uid_of("t-eacces"), &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(rt_exec_errno_status(r.err.code), 126);
	free(plain);
	plain = bh_path_join(g_state, uid_of("t-eacces"));
	assert_false(bh_path_exists(plain)); /* nothing left of a failed start */
}

static void test_process_settings_applied(void **state)
{
	json_t *spec = probe_spec(NULL), *proc = json_object_get(spec, "process"), *out;
	sigset_t usr1, old_mask;
	void (*old_pipe)(int);
	struct run r;

	json_array_append_new(json_object_get(proc, "env"), json_string("FOO=bar baz"));
	json_object_set_new(proc, "cwd", json_string("/tmp"));
	json_object_set_new(proc, "user", json_pack("{s:i, s:i}", "uid", 1000, "gid", 1001));
	json_object_set_new(proc, "oomScoreAdj", json_integer(500));
	json_object_set_new(spec, "hostname", json_string("probe-host"));
	/* The runtime's own ignored and blocked signals must not leak in. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old_mask);
	old_pipe = signal(SIGPIPE, SIG_IGN);
	out = run_probe(spec, uid_of("t-settings"), &r);
	signal(SIGPIPE, old_pipe);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	assert_string_equal(jstr(out, "sig_ign"), "0000000000000000");
	assert_string_equal(jstr(out, "sig_blk"), "0000000000000000");
	assert_int_equal(jint(out, "oom_score_adj"), 500);
	assert_int_equal(jint(out, "pid"), 1);
	assert_int_equal(jint(out, "uid"), 1000);
	assert_int_equal(jint(out, "gid"), 1001);
	assert_string_equal(jstr(out, "hostname"), "probe-host");
	assert_string_equal(jstr(out, "cwd"), "/tmp");
	assert_string_equal(jstr(out, "foo"), "bar baz");
	json_decref(out);
}

/* Above root's hard limit needs CAP_SYS_RESOURCE (missing on this host's
 * bounding set): the runtime clamps to the hard limit instead of failing. */
static void test_rlimits_applied_or_clamped(void **state)
{
	json_t *spec = probe_spec(NULL), *out;
	struct rlimit hard;
	struct run r;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &hard), 0);
	json_object_set_new(json_object_get(spec, "process"), "rlimits",
	                    json_pack("[{s:s, s:I, s:I}]", "type", "RLIMIT_NOFILE", "soft",
	                              (json_int_t)100, "hard", (json_int_t)hard.rlim_max + 1000));
	out = run_probe(spec, uid_of("t-rlimit"), &r);
	assert_int_equal(jint(out, "nofile_soft"), 100);
	assert_true(jint(out, "nofile_hard") >= (long)hard.rlim_max);
	json_decref(out);
}

static long cg_value(const char *ctrl, const char *id, const char *v1file, const char *v2file)
{
	cleanup_free char *p1 = bh_asprintf("/sys/fs/cgroup/%s/berth/%s/%s", ctrl, id, v1file);
	cleanup_free char *p2 = bh_asprintf("/sys/fs/cgroup/berth/%s/%s", id, v2file);
	cleanup_free char *text = NULL;
	struct bh_err err;

	if (bh_read_file(p1, 4096, &text, NULL, &err) < 0 &&
	    bh_read_file(p2, 4096, &text, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	return strtol(text, NULL, 10);
}

static void test_cgroup_limits_written(void **state)
{
	static const char *const sleeper[] = {"sleep", "1000", NULL};
	cleanup_free char *cfg = bh_path_join(g_bundle, "config.json");
	cleanup_free char *text = NULL;
	struct rt_container_opts o = {uid_of("t-limits"), g_bundle, g_state, {-1, -1, -1}};
	json_t *spec = probe_spec(sleeper);
	struct bh_err err;
	pid_t pid;

	json_object_set_new(json_object_get(spec, "linux"), "resources",
	                    json_pack("{s:{s:I}, s:{s:I, s:I, s:I}, s:{s:I}}", "memory", "limit",
	                              (json_int_t)64 << 20, "cpu", "quota", (json_int_t)50000,
	                              "period", (json_int_t)100000, "shares", (json_int_t)512,
	                              "pids", "limit", (json_int_t)32));
	text = json_dumps(spec, 0);
	json_decref(spec);
	write_text(cfg, text, 0644);
	assert_int_equal(rt_container_create(&o, &pid, &err), 0);
	assert_int_equal(cg_value("memory", o.id, "memory.limit_in_bytes", "memory.max"), 64 << 20);
	assert_int_equal(cg_value("cpu", o.id, "cpu.cfs_quota_us", "cpu.max"), 50000);
	assert_int_equal(cg_value("pids", o.id, "pids.max", "pids.max"), 32);
	assert_int_equal(rt_container_delete(g_state, o.id, true, &err), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_no_cgroup_left(o.id);
}

/* berthd mounts the image's layers with this before it creates a container. */
static void test_overlay_mount(void **state)
{
	cleanup_free char *lower = bh_path_join(g_dir, "ov/lower"),
	                  *upper = bh_path_join(g_dir, "ov/upper");
	cleanup_free char *work = bh_path_join(g_dir, "ov/work"),
	                  *merged = bh_path_join(g_dir, "ov/merged");
	cleanup_free char *in_lower = bh_path_join(lower, "hello"),
	                  *seen = bh_path_join(merged, "hello");
	cleanup_free char *made = bh_path_join(merged, "new"),
	                  *in_upper = bh_path_join(upper, "new");
	const char *lowers[] = {lower};
	struct bh_err err;

	assert_int_equal(bh_mkdir_p(lower, 0755, &err), 0);
	assert_int_equal(bh_mkdir_p(upper, 0755, &err), 0);
	assert_int_equal(bh_mkdir_p(work, 0755, &err), 0);
	assert_int_equal(bh_mkdir_p(merged, 0755, &err), 0);
	write_text(in_lower, "hi\n", 0644);
	assert_int_equal(rt_overlay_mount(lowers, 1, upper, work, merged, &err), 0);
	assert_true(bh_path_exists(seen));
	write_text(made, "x\n", 0644);
	assert_int_equal(umount2(merged, MNT_DETACH), 0);
	assert_true(bh_path_exists(in_upper));
	assert_false(bh_path_exists(seen));
}

static void test_default_capabilities_are_dockers_14(void **state)
{
	struct run r;
	json_t *out = run_probe(probe_spec(NULL), uid_of("t-caps"), &r);

	/* CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
	 * NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP */
	assert_string_equal(jstr(out, "cap_eff"), "00000000a80425fb");
	assert_string_equal(jstr(out, "cap_bnd"), "00000000a80425fb");
	assert_string_equal(jstr(out, "no_new_privs"), "1");
	assert_string_equal(jstr(out, "seccomp"), "2");
	json_decref(out);
}

/* With CAP_MKNOD a container could make a node for the host's disk: the
 * device cgroup (Docker's default rules) must refuse to open it. */
static void test_device_cgroup_blocks_host_disk(void **state)
{
	struct run r;
	json_t *out = run_probe(probe_spec(NULL), uid_of("t-devices"), &r);

	assert_int_equal(jint(out, "disk_mknod_errno"), 0);
	assert_int_equal(jint(out, "disk_open_errno"), EPERM);
	assert_int_equal(jint(out, "mem_open_errno"), EPERM);
	assert_int_equal(jint(out, "null_open_errno"), 0);
	json_decref(out);
}

/* cgroup v2's device control is a BPF program: checked here on whatever
 * cgroup2 mount the host has (on a v1 hybrid host, the unified one). */
static void test_device_bpf_program_v2(void **state)
{
	static const struct rt_dev_rule rules[] = {
	    {false, 'a', -1, -1, 7}, {true, 'c', 1, 3, 7}, {true, 'c', -1, -1, 1}};
	const char *mnt = "/sys/fs/cgroup/unified";
	cleanup_free char *dir = NULL, *procs = NULL;
	cleanup_close int fd = -1;
	struct statfs sfs;
	struct bh_err err;
	char pidbuf[32];
	int gate[2], st, pfd;
	bool moved;
	pid_t kid;

	if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
		mnt = "/sys/fs/cgroup";
	else if (statfs(mnt, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		fprintf(stderr, "SKIP test_device_bpf_program_v2: no cgroup2 mount\n");
		return;
	}
	dir = bh_asprintf("%s/berth-devtest-%d", mnt, (int)getpid());
	procs = bh_path_join(dir, "cgroup.procs");
	assert_int_equal(mkdir(dir, 0755), 0);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	if (rt_devices_bpf_attach(rules, 3, fd, &err) < 0) {
		rmdir(dir);
		fail_msg("%s", err.msg);
	}
	assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
	kid = fork();
	if (kid == 0) {
		char c;
		close(gate[1]);
		if (read(gate[0], &c, 1) != 0)
			_exit(10);
		if (open("/dev/null", O_RDONLY) < 0)
			_exit(11);
		if (open("/dev/zero", O_RDONLY) >= 0 || errno != EPERM)
			_exit(12);
		_exit(0);
	}
	close(gate[0]);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)kid);
	pfd = open(procs, O_WRONLY | O_CLOEXEC);
	moved = pfd >= 0 && write(pfd, pidbuf, strlen(pidbuf)) == (ssize_t)strlen(pidbuf);
	if (pfd >= 0)
		close(pfd);
	if (!moved)
		kill(kid, SIGKILL);
	close(gate[1]);
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_int_equal(rmdir(dir), 0);
	assert_true(moved);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* The v2 code path on a v1 hybrid host: the cgroup2 mount at
 * /sys/fs/cgroup/unified has no controller, but creating, entering, the
 * device BPF program, the cgroup2 mount inside and removal all run. */
static void test_cgroup_v2_path_on_unified_hierarchy(void **state)
{
	struct statfs sfs;
	struct run r;
	json_t *out;

	if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
		fprintf(stderr, "note: cgroup v2 host: the other tests cover v2\n");
		return;
	}
	if (statfs("/sys/fs/cgroup/unified", &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		fprintf(stderr,
		        "SKIP test_cgroup_v2_path_on_unified_hierarchy: no cgroup2 mount\n");
		return;
	}
	rt_cgroup_use_root("/sys/fs/cgroup/unified");
	run_spec(probe_spec(NULL), uid_of("t-v2"), &r);
	rt_cgroup_use_root(NULL);
	rmdir("/sys/fs/cgroup/unified/berth"); /* the shared parent; busy if in use */
	if (r.rc < 0)
		fail_msg("%s", r.err.msg);
	assert_int_equal(r.status, 0);
	out = r.out;
	assert_non_null(out);
	assert_false(r.oom);
	assert_int_equal(jint(out, "disk_open_errno"), EPERM); /* from the BPF program */
	assert_int_equal(jint(out, "null_open_errno"), 0);
	assert_non_null(strstr(jstr(out, "cgroup"), "0::/\n"));
	assert_null(strstr(jstr(out, "cgroup"), "berth"));
	json_decref(out);
}

static void test_seccomp_denies_escape_calls(void **state)
{
	struct run r;
	json_t *out = run_probe(probe_spec(NULL), uid_of("t-seccomp"), &r);

	assert_int_equal(jint(out, "mount_errno"), EPERM);
	assert_int_equal(jint(out, "keyctl_errno"), EPERM);
	assert_int_equal(jint(out, "unshare_user_errno"), EPERM);
	assert_int_equal(jint(out, "unshare_errno"), EPERM);
	assert_int_equal(jint(out, "clone3_errno"), ENOSYS);
	assert_int_equal(jint(out, "io_uring_errno"), EPERM);
	assert_int_equal(jint(out, "af_alg_errno"), EPERM);
	assert_int_equal(jint(out, "af_vsock_errno"), EPERM);
	assert_int_equal(jint(out, "af_unix_errno"), 0); /* the filter is not a blanket ban */
#if defined(__x86_64__)
	/* x86 and x32 are in the filter: the i386 ABI cannot go around it
	 * (ENOSYS if the kernel has no IA32 emulation at all). */
	assert_true(jint(out, "unshare_i386_errno") == EPERM ||
	            jint(out, "unshare_i386_errno") == ENOSYS);
#endif
	json_decref(out);
}

/* CVE-2024-21626: a host fd (here a directory, as in the attack) leaked
 * into the runtime must not survive into the container. */
static void test_cve_2024_21626_only_stdio_fds_inside(void **state)
{
	int leaked = open("/", O_RDONLY | O_DIRECTORY); /* no O_CLOEXEC, on purpose */
	struct run r;
	json_t *out, *fds;

	assert_true(leaked > 2);
	out = run_probe(probe_spec(NULL), uid_of("t-fds"), &r);
	close(leaked);
	fds = json_object_get(out, "fds");
	assert_int_equal(json_array_size(fds), 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(json_integer_value(json_array_get(fds, i)), (json_int_t)i);
	assert_string_equal(jstr(out, "cwd"), "/");
	json_decref(out);
}

static void test_cgroup_namespace_shows_root(void **state)
{
	struct run r;
	json_t *out = run_probe(probe_spec(NULL), uid_of("t-cgns"), &r);
	const char *cg = jstr(out, "cgroup");

	assert_non_null(strstr(cg, ":memory:/\n") ? cg : strstr(cg, "0::/\n"));
	assert_null(strstr(cg, "berth"));
	json_decref(out);
}

static void test_memory_limit_oom_kill_recorded(void **state)
{
	static const char *const hog[] = {"/probe", "alloc", "512", NULL};
	json_t *spec = probe_spec(hog),
	       *res = json_object_get(json_object_get(spec, "linux"), "resources");
	struct run r;

	json_object_set_new(
	    res, "memory",
	    json_pack("{s:I, s:I}", "limit", (json_int_t)32 << 20, "swap", (json_int_t)32 << 20));
	run_spec(spec, uid_of("t-oom"), &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.status, 128 + SIGKILL);
	assert_true(r.oom);
	run_spec(probe_spec(NULL), uid_of("t-nooom"), &r);
	assert_int_equal(r.rc, 0);
	assert_false(r.oom);
	json_decref(r.out);
}

static void test_pids_limit_stops_fork_bomb(void **state)
{
	static const char *const bomb[] = {"/probe", "forkbomb", "200", NULL};
	json_t *spec = probe_spec(bomb), *out;
	struct run r;

	json_object_set_new(json_object_get(json_object_get(spec, "linux"), "resources"), "pids",
	                    json_pack("{s:i}", "limit", 16));
	out = run_probe(spec, uid_of("t-pids"), &r);
	assert_true(jint(out, "forked") < 16);
	assert_int_equal(jint(out, "fork_errno"), EAGAIN);
	json_decref(out);
}

static void test_network_namespace_has_only_lo_up(void **state)
{
	static const char *const sh[] = {"sh", "-c",
	                                 "cat /proc/net/dev | tail -n +3 | wc -l; "
	                                 "ip -o link show lo | grep -c LOWER_UP",
	                                 NULL};
	struct run r;

	run_spec(probe_spec(sh), uid_of("t-net"), &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.text, "1\n1\n");
}

/* STYLE §6: a symlink in the image must not redirect a mount target out of
 * the root.  /escape points at the host's / when resolved naively; with
 * RESOLVE_IN_ROOT the mount point lands at /berth-escape-sub in the root. */
static void test_image_symlink_cannot_redirect_mounts(void **state)
{
	static const char *const sh[] = {"sh", "-c",
	                                 "grep -c ' /berth-escape-sub ' "
	                                 "/proc/self/mountinfo",
	                                 NULL};
	cleanup_free char *link = bh_path_join(g_bundle, "rootfs/escape");
	cleanup_free char *inside = bh_path_join(g_bundle, "rootfs/berth-escape-sub");
	json_t *spec = probe_spec(sh);
	struct run r;

	assert_false(bh_path_exists("/berth-escape-sub"));
	assert_int_equal(symlink("/../../../../../../../../..", link), 0);
	json_array_append_new(json_object_get(spec, "mounts"),
	                      json_pack("{s:s, s:s, s:s}", "destination",
	                                "/escape/berth-escape-sub", "type", "tmpfs", "source",
	                                "tmpfs"));
	run_spec(spec, uid_of("t-symlink"), &r);
	unlink(link);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.text, "1\n");
	assert_false(bh_path_exists("/berth-escape-sub"));
	assert_true(bh_path_exists(inside));
	rmdir(inside);
}

static void test_readonly_root(void **state)
{
	static const char *const w[] = {"/probe", "write", "/newfile", NULL};
	json_t *spec = probe_spec(w), *out;
	struct run r;

	json_object_set_new(json_object_get(spec, "root"), "readonly", json_true());
	out = run_probe(spec, uid_of("t-ro"), &r);
	assert_int_equal(jint(out, "write_errno"), EROFS);
	json_decref(out);
}

static void test_masked_paths_are_empty(void **state)
{
	static const char *const ls[] = {"sh", "-c",
	                                 "ls -A /sys/firmware | wc -l; "
	                                 "echo x > /proc/sys/kernel/hostname; echo $?",
	                                 NULL};
	struct run r;
	json_t *out = run_probe(probe_spec(NULL), uid_of("t-masked"), &r);

	assert_true(jint(out, "kcore_bytes") <= 0);
	assert_true(jint(out, "keys_bytes") <= 0);
	json_decref(out);
	run_spec(probe_spec(ls), uid_of("t-masked-sh"), &r);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.text, "0\n1\n"); /* empty; /proc/sys read-only */
}

/* CVE-2019-5736: the container's entrypoint is "#!/proc/self/exe", so the
 * init's execve runs the runtime's binary inside the container (this test
 * program: see main()).  It keeps a handle on its exe, exec()s away and
 * tries to write through the handle.  The write must fail and the test
 * binary on the host must be unchanged. */
static void test_cve_2019_5736_exe_overwrite_fails(void **state)
{
	static const char *const evil[] = {"/evil", NULL};
	cleanup_free char *script = bh_path_join(g_bundle, "rootfs/evil");
	cleanup_free char *before = NULL, *after = NULL;
	const char *self = getenv("BERTH_TEST_SELF");
	json_t *spec = probe_spec(evil), *mounts = json_object_get(spec, "mounts"), *out;
	size_t blen, alen;
	struct bh_err err;
	struct run r;

	assert_non_null(self);
	assert_int_equal(bh_read_file(self, 64 << 20, &before, &blen, &err), 0);
	write_text(script, "#!/proc/self/exe\n", 0755);
	/* The test binary is dynamic: give the container the host's /usr. */
	json_array_append_new(mounts,
	                      json_pack("{s:s, s:s, s:s, s:[s,s]}", "destination", "/usr", "type",
	                                "bind", "source", "/usr", "options", "rbind", "ro"));
	json_array_append_new(mounts,
	                      json_pack("{s:s, s:s, s:s, s:[s,s]}", "destination", "/lib64", "type",
	                                "bind", "source", "/lib64", "options", "rbind", "ro"));
	json_array_append_new(mounts,
	                      json_pack("{s:s, s:s, s:s, s:[s,s]}", "destination", "/lib", "type",
	                                "bind", "source", "/lib", "options", "rbind", "ro"));
	out = run_probe(spec, uid_of("t-cve-2019-5736"), &r);
	assert_int_equal(jint(out, "wrote"), 0);
	assert_string_equal(jstr(out, "exe"), "memfd");
	json_decref(out);
	assert_int_equal(bh_read_file(self, 64 << 20, &after, &alen, &err), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	unlink(script);
}

static void test_create_start_state_kill_delete(void **state)
{
	static const char *const sleeper[] = {"sleep", "1000", NULL};
	cleanup_free char *cfg = bh_path_join(g_bundle, "config.json");
	cleanup_free char *text = NULL;
	struct rt_container_opts o = {uid_of("t-lifecycle"), g_bundle, g_state, {-1, -1, -1}};
	struct rt_container_state st;
	struct bh_err err;
	json_t *spec = probe_spec(sleeper);
	pid_t pid;
	int status;

	text = json_dumps(spec, 0);
	json_decref(spec);
	write_text(cfg, text, 0644);
	assert_int_equal(rt_container_create(&o, &pid, &err), 0);
	assert_int_equal(rt_container_state(g_state, o.id, &st, &err), 0);
	assert_int_equal(st.status, RT_STATUS_CREATED);
	assert_int_equal(st.pid, pid);
	assert_int_equal(rt_container_create(&o, &pid, &err), -1);
	assert_int_equal(err.code, EEXIST);
	assert_int_equal(rt_container_start_created(g_state, o.id, &err), 0);
	assert_int_equal(rt_container_state(g_state, o.id, &st, &err), 0);
	assert_int_equal(st.status, RT_STATUS_RUNNING);
	assert_int_equal(rt_container_delete(g_state, o.id, false, &err), -1);
	assert_int_equal(err.code, EBUSY);
	assert_int_equal(rt_container_kill(g_state, o.id, SIGKILL, &err), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(rt_container_state(g_state, o.id, &st, &err), 0);
	assert_int_equal(st.status, RT_STATUS_STOPPED);
	assert_int_equal(rt_container_delete(g_state, o.id, false, &err), 0);
	assert_int_equal(rt_container_state(g_state, o.id, &st, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_no_cgroup_left(o.id);
}

/* ---- main: the CVE-2019-5736 attacker, or the test runner ---------------- */
static int attack_own_exe(void)
{
	int exe = open("/proc/self/exe", O_PATH), gate[2], done[2];
	char link[64] = "", c;
	ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
	pid_t kid;

	if (exe < 0 || pipe2(gate, O_CLOEXEC) < 0 || pipe(done) < 0)
		return 1;
	kid = fork();
	if (kid == 0) {
		char p[64];
		int w, wrote = 0, werr = 0;
		close(gate[1]);
		close(done[0]);
		if (read(gate[0], &c, 1) != 0) /* EOF: the parent has exec()ed */
			_exit(1);
		snprintf(p, sizeof(p), "/proc/self/fd/%d", exe);
		w = open(p, O_WRONLY);
		if (w >= 0) {
			int r = open(p, O_RDONLY);
			/* rewrite the first byte with itself: proves write access
			 * without damaging anything */
			if (r >= 0 && pread(r, &c, 1, 0) == 1 && pwrite(w, &c, 1, 0) == 1)
				wrote = 1;
			else
				werr = errno;
		} else {
			werr = errno;
		}
		printf("{\"exe\":\"%s\",\"wrote\":%d,\"errno\":%d}\n",
		       n > 0 && bh_str_has_prefix(link, "/memfd:") ? "memfd" : "host", wrote, werr);
		fflush(stdout);
		_exit(0);
	}
	/* Become cat on the "done" pipe: we exit when the attacker is finished. */
	close(done[1]);
	dup2(done[0], 0);
	execl("/bin/cat", "cat", (char *)NULL);
	return 1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_codes),
	    cmocka_unit_test(test_exec_errors_map_to_127_and_126),
	    cmocka_unit_test(test_process_settings_applied),
	    cmocka_unit_test(test_rlimits_applied_or_clamped),
	    cmocka_unit_test(test_cgroup_limits_written),
	    cmocka_unit_test(test_overlay_mount),
	    cmocka_unit_test(test_default_capabilities_are_dockers_14),
	    cmocka_unit_test(test_device_cgroup_blocks_host_disk),
	    cmocka_unit_test(test_device_bpf_program_v2),
	    cmocka_unit_test(test_cgroup_v2_path_on_unified_hierarchy),
	    cmocka_unit_test(test_seccomp_denies_escape_calls),
	    cmocka_unit_test(test_cve_2024_21626_only_stdio_fds_inside),
	    cmocka_unit_test(test_cgroup_namespace_shows_root),
	    cmocka_unit_test(test_memory_limit_oom_kill_recorded),
	    cmocka_unit_test(test_pids_limit_stops_fork_bomb),
	    cmocka_unit_test(test_network_namespace_has_only_lo_up),
	    cmocka_unit_test(test_image_symlink_cannot_redirect_mounts),
	    cmocka_unit_test(test_readonly_root),
	    cmocka_unit_test(test_masked_paths_are_empty),
	    cmocka_unit_test(test_cve_2019_5736_exe_overwrite_fails),
	    cmocka_unit_test(test_create_start_state_kill_delete),
	};
	struct bh_err err;
	char self[4096];
	ssize_t n;

	if (argc >= 2 && strcmp(argv[1], "/evil") == 0)
		return attack_own_exe();
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP test_container: needs root (namespaces, cgroups, mounts)\n");
		return 77;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0 && !bh_str_has_prefix(self, "/memfd:")) {
		self[n] = '\0';
		setenv("BERTH_TEST_SELF", self, 1);
	}
	if (rt_selfexe_ensure_sealed(argv, &err) < 0) {
		fprintf(stderr, "test_container: %s\n", err.msg);
		return 1;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
