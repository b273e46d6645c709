/* config.json parsing, the default spec, seccomp compilation, capability
 * names and user resolution inside a root: no privileges needed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "runtime/rt-container-internal.h"

static char g_dir[] = "/tmp/berth-spec-test-XXXXXX";

static int setup(void **state)
{
	cleanup_free char *rootfs = NULL;
	struct bh_err err;

	if (mkdtemp(g_dir) == NULL)
		return -1;
	rootfs = bh_path_join(g_dir, "rootfs/etc");
	return bh_mkdir_p(rootfs, 0755, &err);
}

static int teardown(void **state)
{
	struct bh_err err;

	return bh_rm_rf(g_dir, &err);
}

static int parse(json_t *j, struct rt_spec *s, struct bh_err *err)
{
	int rc = rt_spec_parse(j, g_dir, s, err);

	json_decref(j);
	return rc;
}

static const struct rt_mount *find_mount(const struct rt_spec *s, const char *dest)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (strcmp(s->mounts[i].dest, dest) == 0)
			return &s->mounts[i];
	fail_msg("no mount %s", dest);
	return NULL;
}

static void test_default_spec_is_dockers(void **state)
{
	struct rt_spec s;
	struct bh_err err;
	const struct rt_mount *m;
	size_t n = 0;

	assert_int_equal(parse(rt_spec_default(NULL), &s, &err), 0);
	assert_int_equal(s.caps[RT_CAP_BOUNDING], 0xa80425fbULL);
	assert_int_equal(s.caps[RT_CAP_EFFECTIVE], 0xa80425fbULL);
	assert_int_equal(s.caps[RT_CAP_AMBIENT], 0);
	assert_true(s.no_new_privs);
	assert_int_equal(s.clone_flags, CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS |
	                                    CLONE_NEWNET | CLONE_NEWCGROUP);
	assert_string_equal(s.args[0], "sh");
	assert_null(s.args[1]);
	assert_string_equal(s.cwd, "/");
	while (s.masked[n])
		n++;
	assert_int_equal(n, 12);
	m = find_mount(&s, "/dev/pts");
	assert_string_equal(m->data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
	assert_int_equal(m->flags, MS_NOSUID | MS_NOEXEC);
	m = find_mount(&s, "/sys");
	assert_true(m->readonly);
	assert_false(m->bind);
	assert_non_null(s.seccomp);
	assert_int_equal(s.mem_limit, -1);
	rt_spec_free(&s);
}

static void test_bind_mount_options(void **state)
{
	json_t *j = rt_spec_default(NULL);
	struct rt_spec s;
	struct bh_err err;
	const struct rt_mount *m;

	json_array_append_new(json_object_get(j, "mounts"),
	                      json_pack("{s:s, s:s, s:s, s:[s,s,s]}", "destination", "/data",
	                                "type", "none", "source", "/srv", "options", "rbind", "ro",
	                                "rslave"));
	assert_int_equal(parse(j, &s, &err), 0);
	m = find_mount(&s, "/data");
	assert_true(m->bind);
	assert_true(m->readonly);
	assert_int_equal(m->flags, MS_BIND | MS_REC | MS_RDONLY);
	assert_int_equal(m->propagation, MS_SLAVE | MS_REC);
	assert_string_equal(m->data, "");
	rt_spec_free(&s);
}

static void test_resources_and_user(void **state)
{
	json_t *j = rt_spec_default(NULL), *l = json_object_get(j, "linux");
	struct rt_spec s;
	struct bh_err err;

	json_object_set_new(l, "resources",
	                    json_pack("{s:{s:I}, s:{s:I, s:I, s:I}, s:{s:I}}", "memory", "limit",
	                              (json_int_t)1 << 26, "cpu", "quota", (json_int_t)50000,
	                              "period", (json_int_t)100000, "shares", (json_int_t)512,
	                              "pids", "limit", (json_int_t)64));
	json_object_set_new(
	    json_object_get(j, "process"), "user",
	    json_pack("{s:i, s:i, s:[i,i]}", "uid", 1000, "gid", 100, "additionalGids", 10, 20));
	assert_int_equal(parse(j, &s, &err), 0);
	assert_int_equal(s.mem_limit, 1 << 26);
	assert_int_equal(s.cpu_quota, 50000);
	assert_int_equal(s.cpu_period, 100000);
	assert_int_equal(s.cpu_shares, 512);
	assert_int_equal(s.pids_limit, 64);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.gid, 100);
	assert_int_equal(s.n_gids, 2);
	assert_int_equal(s.gids[1], 20);
	rt_spec_free(&s);
}

static void test_set_resources_from_docker_fields(void **state)
{
	json_t *j = rt_spec_default(NULL);
	struct rt_spec s;
	struct bh_err err;

	rt_spec_set_resources(j, 64 << 20, 128 << 20, 1500000000, 0, 100);
	assert_int_equal(parse(j, &s, &err), 0);
	assert_int_equal(s.mem_limit, 64 << 20);
	assert_int_equal(s.mem_swap, 128 << 20);
	assert_int_equal(s.cpu_period, 100000);
	assert_int_equal(s.cpu_quota, 150000);
	assert_int_equal(s.cpu_shares, -1);
	assert_int_equal(s.pids_limit, 100);
	rt_spec_free(&s);
}

static void expect_error(json_t *j, int code, const char *needle)
{
	struct rt_spec s;
	struct bh_err err;

	assert_int_equal(parse(j, &s, &err), -1);
	assert_int_equal(err.code, code);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_spec_errors_name_the_field(void **state)
{
	json_t *j;

	j = rt_spec_default(NULL);
	json_object_set_new(json_object_get(j, "process"), "args", json_array());
	expect_error(j, EINVAL, "process.args: empty");
	j = rt_spec_default(NULL);
	json_object_set_new(json_object_get(j, "process"), "cwd", json_string("rel"));
	expect_error(j, EINVAL, "process.cwd: rel is not absolute");
	j = rt_spec_default(NULL);
	json_array_append_new(
	    json_object_get(json_object_get(json_object_get(j, "process"), "capabilities"),
	                    "bounding"),
	    json_string("CAP_NO_SUCH"));
	expect_error(j, EINVAL, "unknown CAP_NO_SUCH");
	j = rt_spec_default(NULL);
	json_array_append_new(json_object_get(json_object_get(j, "linux"), "namespaces"),
	                      json_pack("{s:s}", "type", "user"));
	expect_error(j, ENOTSUP, "user is not supported");
	j = rt_spec_default(NULL);
	json_object_set_new(json_object_get(j, "root"), "path", json_string("missing"));
	expect_error(j, ENOENT, "root.path");
	j = rt_spec_default(NULL);
	json_object_set_new(json_object_get(j, "linux"), "sysctl",
	                    json_pack("{s:s}", "../../etc/x", "1"));
	expect_error(j, EINVAL, "linux.sysctl");
}

static void test_seccomp_default_compiles(void **state)
{
	struct rt_spec s;
	struct rt_seccomp_prog p;
	struct bh_err err;

	assert_int_equal(parse(rt_spec_default(NULL), &s, &err), 0);
	assert_int_equal(rt_seccomp_compile(&s, &p, &err), 0);
	assert_true(p.len > 10);
	rt_seccomp_prog_free(&p);
	json_object_set_new(s.seccomp, "defaultAction", json_string("SCMP_ACT_BOGUS"));
	assert_int_equal(rt_seccomp_compile(&s, &p, &err), -1);
	assert_non_null(strstr(err.msg, "defaultAction"));
	rt_spec_free(&s);
}

static void test_cap_names(void **state)
{
	assert_int_equal(rt_cap_from_name("CAP_CHOWN"), 0);
	assert_int_equal(rt_cap_from_name("CAP_SYS_ADMIN"), 21);
	assert_int_equal(rt_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	assert_int_equal(rt_cap_from_name("SYS_ADMIN"), -1);
	assert_int_equal(rt_cap_from_name(NULL), -1);
	assert_int_equal(rt_exec_errno_status(ENOENT), 127);
	assert_int_equal(rt_exec_errno_status(EACCES), 126);
}

static void write_text(const char *rel, const char *text)
{
	cleanup_free char *p = bh_path_join(g_dir, rel);
	struct bh_err err;

	assert_int_equal(bh_write_file_atomic(p, text, strlen(text), 0644, &err), 0);
}

static void test_user_resolve_inside_root(void **state)
{
	cleanup_free char *root = bh_path_join(g_dir, "rootfs");
	cleanup_free char *link = bh_path_join(g_dir, "rootfs/etc/passwd");
	cleanup_close int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cleanup_free gid_t *gids = NULL;
	struct bh_err err;
	size_t n = 0;
	uid_t uid;
	gid_t gid;

	/* An absolute symlink must resolve inside the root, not on the host. */
	write_text("rootfs/etc/real-passwd", "root:x:0:0::/root:/bin/sh\n"
	                                     "app:x:1000:1000::/home/app:/bin/sh\n");
	assert_int_equal(symlink("/etc/real-passwd", link), 0);
	write_text("rootfs/etc/group", "root:x:0:\nstaff:x:50:app,bob\napp:x:1000:\n"
	                               "audio:x:29:bob,app\n");
	assert_int_equal(rt_user_resolve(rootfd, "app", &uid, &gid, &gids, &n, &err), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 1000);
	assert_int_equal(n, 2);
	assert_int_equal(gids[0], 50);
	assert_int_equal(gids[1], 29);
	free(steal_pointer(&gids));
	assert_int_equal(rt_user_resolve(rootfd, "1000:staff", &uid, &gid, &gids, &n, &err), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 50);
	free(steal_pointer(&gids));
	assert_int_equal(rt_user_resolve(rootfd, "4242", &uid, &gid, &gids, &n, &err), 0);
	assert_int_equal(uid, 4242);
	assert_int_equal(gid, 0);
	free(steal_pointer(&gids));
	assert_int_equal(rt_user_resolve(rootfd, "nobody", &uid, &gid, &gids, &n, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(rt_user_resolve(rootfd, "app:nogroup", &uid, &gid, &gids, &n, &err), -1);
	assert_non_null(strstr(err.msg, "group nogroup"));
}

static void test_overlay_rejects_option_injection(void **state)
{
	const char *lower[] = {"/a,upperdir=/etc"};
	const char *ok[] = {"/a"};
	struct bh_err err;

	assert_int_equal(rt_overlay_mount(lower, 1, "/u", "/w", "/t", &err), -1);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(rt_overlay_mount(ok, 1, "/u:x", "/w", "/t", &err), -1);
	assert_int_equal(rt_overlay_mount(ok, 0, "/u", "/w", "/t", &err), -1);
}

/* CVE-2019-5736: the sealed copy cannot be written and still runs. */
static void test_sealed_copy_is_read_only_and_runs(void **state)
{
	static char *const argv[] = {"true", NULL};
	static char *const envp[] = {NULL};
	cleanup_close int fd = -1;
	struct bh_err err;
	int st;
	pid_t pid;

	assert_int_equal(rt_sealed_copy("/bin/true", &fd, &err), 0);
	assert_int_equal(fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_SEAL | F_SEAL_GROW),
	                 F_SEAL_WRITE | F_SEAL_SEAL | F_SEAL_GROW);
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, 0), -1); /* F_SEAL_SEAL: final */
	pid = fork();
	if (pid == 0) {
		fexecve(fd, argv, envp);
		_exit(99);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(rt_sealed_copy("/no/such/file", &fd, &err), -1);
	assert_int_equal(err.code, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_spec_is_dockers),
	    cmocka_unit_test(test_bind_mount_options),
	    cmocka_unit_test(test_resources_and_user),
	    cmocka_unit_test(test_set_resources_from_docker_fields),
	    cmocka_unit_test(test_spec_errors_name_the_field),
	    cmocka_unit_test(test_seccomp_default_compiles),
	    cmocka_unit_test(test_cap_names),
	    cmocka_unit_test(test_user_resolve_inside_root),
	    cmocka_unit_test(test_overlay_rejects_option_injection),
	    cmocka_unit_test(test_sealed_copy_is_read_only_and_runs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
