/* client/cmd_run.c: docker's run/create flags mapped onto the create body,
 * options ending at IMAGE, and bad values refused with exit 125. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/client-internal.h"

static int argc_of(char **argv)
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

static int parse(struct cli *cli, const char *cmd, char **argv, struct cli_run *r)
{
	memset(cli, 0, sizeof(*cli));
	return cli_run_parse(cli, cmd, argc_of(argv), argv, r);
}

static json_t *hc(struct cli_run *r)
{
	return json_object_get(r->body, "HostConfig");
}

static void assert_json_eq(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(want);
	if (!json_equal(got, want))
		fail_msg("got %s, want %s", g, want_text);
	free(g);
	json_decref(want);
}

static void test_every_flag(void **state)
{
	char *argv[] = {"run",          "-d",           "--name",      "web",       "-e",
	                "A=1",          "--env",        "B=two words", "-w",        "/srv",
	                "-u",           "65534:65534",  "--hostname",  "box",       "--entrypoint",
	                "/bin/sh",      "--memory",     "64m",         "--cpus",    "0.5",
	                "--pids-limit", "10",           "--read-only", "--network", "none",
	                "--restart",    "on-failure:2", "-l",          "tier=web",  "--label",
	                "empty",        "busybox",      "-c",          "echo hi",   NULL};
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, "run", argv, &r), 0);
	assert_true(r.detach);
	assert_false(r.rm);
	assert_string_equal(r.name, "web");
	assert_string_equal(r.image, "busybox");
	assert_json_eq(r.body,
	               "{\"Image\":\"busybox\",\"Cmd\":[\"-c\",\"echo hi\"],"
	               "\"Entrypoint\":[\"/bin/sh\"],\"Env\":[\"A=1\",\"B=two words\"],"
	               "\"WorkingDir\":\"/srv\",\"User\":\"65534:65534\",\"Hostname\":\"box\","
	               "\"Labels\":{\"tier\":\"web\",\"empty\":\"\"},"
	               "\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStderr\":false,"
	               "\"Tty\":false,\"OpenStdin\":false,"
	               "\"HostConfig\":{\"Memory\":67108864,\"NanoCpus\":500000000,"
	               "\"PidsLimit\":10,\"ReadonlyRootfs\":true,\"NetworkMode\":\"none\","
	               "\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":2}}}");
	cli_run_free(&r);
}

static void test_options_end_at_image(void **state)
{
	char *argv[] = {"run", "--rm", "busybox", "ls", "-l", "--name", "x", NULL};
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, "run", argv, &r), 0);
	assert_null(r.name);
	assert_true(r.rm);
	assert_json_eq(json_object_get(r.body, "Cmd"), "[\"ls\",\"-l\",\"--name\",\"x\"]");
	/* Attached: output wanted; --rm is the client's job (no AutoRemove). */
	assert_true(json_is_true(json_object_get(r.body, "AttachStdout")));
	assert_null(json_object_get(hc(&r), "AutoRemove"));
	cli_run_free(&r);
}

static void test_no_cmd_keeps_image_default(void **state)
{
	char *argv[] = {"create", "--rm", "busybox", NULL};
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, "create", argv, &r), 0);
	assert_null(json_object_get(r.body, "Cmd"));
	assert_null(json_object_get(r.body, "Entrypoint"));
	assert_null(json_object_get(r.body, "Env"));
	assert_true(json_is_true(json_object_get(hc(&r), "AutoRemove")));
	cli_run_free(&r);
}

static void test_detached_rm_is_auto_remove(void **state)
{
	char *argv[] = {"run", "-d", "--rm", "--entrypoint", "", "busybox", NULL};
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, "run", argv, &r), 0);
	assert_true(json_is_true(json_object_get(hc(&r), "AutoRemove")));
	/* --entrypoint "" clears the image's entrypoint, as docker sends it. */
	assert_json_eq(json_object_get(r.body, "Entrypoint"), "[\"\"]");
	cli_run_free(&r);
}

static void test_env_from_environment_and_file(void **state)
{
	char path[] = "/tmp/berth-envfile-XXXXXX";
	const char text[] = "# comment\n\n  FROM_FILE=1\r\nBERTH_T_SET\nBERTH_T_UNSET\nX=a=b\n";
	int fd = mkstemp(path);
	char *argv[] = {"run", "--env-file",    path,      "-e", "BERTH_T_SET",
	                "-e",  "BERTH_T_UNSET", "busybox", NULL};
	struct cli_run r;
	struct cli cli;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	setenv("BERTH_T_SET", "here", 1);
	unsetenv("BERTH_T_UNSET");
	assert_int_equal(parse(&cli, "run", argv, &r), 0);
	unlink(path);
	assert_json_eq(json_object_get(r.body, "Env"),
	               "[\"FROM_FILE=1\",\"BERTH_T_SET=here\",\"X=a=b\",\"BERTH_T_SET=here\"]");
	cli_run_free(&r);
}

/* Each bad value: -1, exit 125, a message naming the flag, no body left. */
static void check_refused(const char *cmd, char **argv, const char *needle)
{
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, cmd, argv, &r), -1);
	assert_int_equal(cli.exit_code, 125);
	if (strstr(cli.err.msg, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", cli.err.msg, needle);
	assert_null(r.body);
}

static void test_bad_values(void **state)
{
	char *mem[] = {"run", "--memory", "12q", "busybox", NULL};
	char *mem0[] = {"run", "-m", "0", "busybox", NULL};
	char *cpus[] = {"run", "--cpus", "-1", "busybox", NULL};
	char *cpus2[] = {"run", "--cpus", "1.5x", "busybox", NULL};
	char *pids[] = {"run", "--pids-limit", "x", "busybox", NULL};
	char *restart[] = {"run", "--restart", "sometimes", "busybox", NULL};
	char *restart2[] = {"run", "--restart", "always:3", "busybox", NULL};
	char *conflict[] = {"run", "--rm", "--restart", "always", "busybox", NULL};
	char *env[] = {"run", "-e", "=x", "busybox", NULL};
	char *noimage[] = {"run", "--rm", NULL};
	char *unknown[] = {"run", "--bogus", "busybox", NULL};
	char *create_d[] = {"create", "-d", "busybox", NULL};
	char *envfile[] = {"run", "--env-file", "/nonexistent/berth-env", "busybox", NULL};

	check_refused("run", mem, "invalid --memory \"12q\"");
	check_refused("run", mem0, "--memory");
	check_refused("run", cpus, "invalid --cpus \"-1\"");
	check_refused("run", cpus2, "--cpus");
	check_refused("run", pids, "invalid --pids-limit \"x\"");
	check_refused("run", restart, "invalid --restart \"sometimes\"");
	check_refused("run", restart2, "--restart");
	check_refused("run", conflict, "conflicting options: --restart and --rm");
	check_refused("run", env, "environment variable");
	check_refused("run", noimage, "requires at least 1 argument");
	check_refused("run", unknown, "unknown option --bogus");
	check_refused("create", create_d, "unknown option -d");
	check_refused("run", envfile, "--env-file");
}

static void test_help(void **state)
{
	char *argv[] = {"run", "--help", NULL};
	struct cli_run r;
	struct cli cli;

	assert_int_equal(parse(&cli, "run", argv, &r), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_flag),
	    cmocka_unit_test(test_options_end_at_image),
	    cmocka_unit_test(test_no_cmd_keeps_image_default),
	    cmocka_unit_test(test_detached_rm_is_auto_remove),
	    cmocka_unit_test(test_env_from_environment_and_file),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_help),
	};

	if (freopen("/dev/null", "w", stdout) == NULL) /* --help's usage */
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
