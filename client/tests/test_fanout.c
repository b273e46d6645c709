/* client: the merged fan-out table of ps and images (pure), and the fan-out
 * scheduler itself with /bin/sh children standing in for berth: prefixed
 * lines, per-host exit codes, JSON, timeouts, parallelism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/fanout.h"

static char *print(const struct cli_table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cli_table_print(t, f);
	fclose(f);
	return buf;
}

static void test_ps_rows(void **state)
{
	static const char a[] =
	    "{\"Command\":\"\\\"sleep 300\\\"\",\"ID\":\"0123456789ab\",\"Image\":\"busybox\","
	    "\"Names\":\"web\",\"Ports\":\"\",\"RunningFor\":\"2 minutes ago\","
	    "\"Status\":\"Up 2 minutes\"}\n";
	static const char b[] =
	    "{\"ID\":\"ba9876543210\",\"Names\":\"db\",\"Image\":\"x\\u001b[2J\"}\n"
	    "not json\n\n[1]\n";
	struct cli_table t;
	size_t bad = 0;
	char *out;

	(void)state;
	cli_fan_table_head("ps", &t);
	cli_fan_table_rows("ps", "prod-1", a, strlen(a), &t, &bad);
	cli_fan_table_rows("ps", "prod-22", b, strlen(b), &t, &bad);
	assert_int_equal(bad, 2); /* "not json" and a non-object; empty lines are fine */
	assert_int_equal(t.nrows, 3);
	out = print(&t);
	assert_non_null(strstr(out, "CONTEXT   CONTAINER ID   IMAGE"));
	assert_non_null(strstr(out, "prod-1    0123456789ab   busybox   \"sleep 300\""));
	assert_non_null(strstr(out, "prod-22   ba9876543210"));
	assert_null(strchr(out, '\x1b')); /* cells are sanitised */
	free(out);
	cli_table_free(&t);
}

static void test_images_rows(void **state)
{
	static const char a[] = "{\"Repository\":\"busybox\",\"Tag\":\"latest\",\"ID\":\"abc\","
	                        "\"CreatedSince\":\"3 days ago\",\"Size\":\"1.2MB\"}";
	struct cli_table t;
	size_t bad = 0;
	char *out;

	(void)state;
	cli_fan_table_head("images", &t);
	cli_fan_table_rows("images", "a", a, strlen(a), &t, &bad); /* no final newline */
	assert_int_equal(bad, 0);
	out = print(&t);
	assert_non_null(strstr(out, "CONTEXT   REPOSITORY   TAG"));
	assert_non_null(strstr(out, "a         busybox      latest"));
	free(out);
	cli_table_free(&t);
}

/* ---- the scheduler with sh children ------------------------------------- */

struct captured {
	char *out, *err;
	int rc;
	uint64_t ms;
	struct cli cli;
};

static char *slurp_fd(int fd)
{
	char *buf = bh_calloc(1, 1 << 20);
	ssize_t n = pread(fd, buf, (1 << 20) - 1, 0);

	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static int temp_fd(void)
{
	char path[] = "/tmp/berth-fanout-test-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

/* Runs script (sh, $0 = the host's name) on the hosts, stdout and stderr
 * captured. */
static void run_sh(const char *script, const char *const *names, size_t n, enum cli_fan_mode mode,
                   long parallel, long timeout_s, struct captured *c)
{
	struct cli_fan_host hosts[8];
	char *argv[] = {"/bin/sh", "-c", (char *)script, "", NULL};
	struct cli_fan_plan p = {.exe = "/bin/sh",
	                         .argv = argv,
	                         .ctx_index = 3,
	                         .cmd = "exec",
	                         .mode = mode,
	                         .result = CLI_FAN_RESULT_TEXT,
	                         .parallel = parallel,
	                         .timeout_s = timeout_s,
	                         .hosts = hosts,
	                         .nhosts = n,
	                         .marker = "BERTH_FANOUT_CHILD=1"};
	int out = temp_fd(), err = temp_fd(), saved_out = dup(1), saved_err = dup(2);
	uint64_t t0 = bh_now_ms();

	for (size_t i = 0; i < n; i++)
		hosts[i] = (struct cli_fan_host){names[i], "tcp://h:1"};
	memset(c, 0, sizeof(*c));
	fflush(stdout);
	dup2(out, 1);
	dup2(err, 2);
	c->rc = cli_fan_run(&c->cli, &p);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	c->ms = bh_now_ms() - t0;
	c->out = slurp_fd(out);
	c->err = slurp_fd(err);
	close(out);
	close(err);
	close(saved_out);
	close(saved_err);
}

static void captured_free(struct captured *c)
{
	free(c->out);
	free(c->err);
}

static void test_lines_and_exit_codes(void **state)
{
	static const char *const names[] = {"a", "b", "c"};
	struct captured c;

	(void)state;
	run_sh("echo out-$0; echo err-$0 >&2; printf tail-$0; [ $0 = b ] && exit 3; exit 0", names,
	       3, CLI_FAN_LINES, 16, 0, &c);
	assert_int_equal(c.rc, -1);
	assert_int_equal(c.cli.exit_code, CLI_EXIT_CMD);
	assert_string_equal(c.cli.err.msg, "1 of 3 contexts failed: b (exit 3)");
	for (size_t i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof(want), "%s | out-%s\n", names[i], names[i]);
		assert_non_null(strstr(c.out, want));
		snprintf(want, sizeof(want), "%s | tail-%s\n", names[i], names[i]);
		assert_non_null(strstr(c.out, want)); /* no final newline: still a line */
		snprintf(want, sizeof(want), "%s | err-%s\n", names[i], names[i]);
		assert_non_null(strstr(c.err, want));
	}
	captured_free(&c);
}

static void test_json_and_timeout(void **state)
{
	static const char *const names[] = {"fast", "slow", "gone"};
	struct captured c;
	json_t *o;
	size_t seen = 0;

	(void)state;
	run_sh("case $0 in slow) exec sleep 30;; gone) kill -9 $$;; esac; echo hi; echo warn >&2",
	       names, 3, CLI_FAN_JSON, 16, 1, &c);
	assert_int_equal(c.rc, -1);
	assert_true(c.ms >= 1000 && c.ms < 5000);
	assert_null(strstr(c.err, "warn")); /* JSON mode: stderr goes into Error */
	for (char *p = c.out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		const char *ctx;
		*nl = '\0';
		o = json_loads(p, 0, NULL);
		assert_non_null(o);
		ctx = json_string_value(json_object_get(o, "Context"));
		seen++;
		if (strcmp(ctx, "fast") == 0) {
			assert_int_equal(json_integer_value(json_object_get(o, "ExitCode")), 0);
			assert_true(json_is_null(json_object_get(o, "Error")));
			assert_string_equal(
			    json_string_value(json_array_get(json_object_get(o, "Result"), 0)),
			    "hi");
		} else if (strcmp(ctx, "slow") == 0) {
			assert_int_equal(json_integer_value(json_object_get(o, "ExitCode")), 124);
			assert_string_equal(json_string_value(json_object_get(o, "Error")),
			                    "timed out after 1s");
		} else {
			assert_int_equal(json_integer_value(json_object_get(o, "ExitCode")),
			                 128 + 9);
			assert_string_equal(json_string_value(json_object_get(o, "Error")),
			                    "killed by signal 9");
		}
		assert_string_equal(json_string_value(json_object_get(o, "Host")), "tcp://h:1");
		json_decref(o);
	}
	assert_int_equal(seen, 3);
	assert_non_null(strstr(c.cli.err.msg, "2 of 3 contexts failed:"));
	captured_free(&c);
}

/* --parallel 2 over 4 hosts that each take 500 ms: never more than two at
 * once, and two at once at some point.  Each host marks itself running in a
 * directory and notes how many it sees there (a host removes its mark
 * before it ends, so a third never starts beside two marks); no wall-clock
 * upper bound, which a loaded machine can break. */
static void test_parallel_bound(void **state)
{
	static const char *const names[] = {"p1", "p2", "p3", "p4"};
	char dir[] = "/tmp/berth-fanout-XXXXXX", script[512], seen_path[64], *seen;
	struct captured c;
	int fd, most = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(script, sizeof(script),
	         "d=%s; : > $d/run.$0; ls $d | grep -c '^run' >> $d/seen; sleep 0.5; "
	         "rm $d/run.$0; echo done",
	         dir);
	run_sh(script, names, 4, CLI_FAN_LINES, 2, 0, &c);
	assert_int_equal(c.rc, 0);
	assert_true(c.ms >= 1000); /* two waves of 500 ms at the least */
	for (size_t i = 0; i < 4; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%s | done\n", names[i]);
		assert_non_null(strstr(c.out, want));
	}
	snprintf(seen_path, sizeof(seen_path), "%s/seen", dir);
	fd = open(seen_path, O_RDONLY);
	assert_true(fd >= 0);
	seen = slurp_fd(fd);
	close(fd);
	for (char *p = seen; *p; p = strchr(p, '\n') + 1) {
		int n = atoi(p);
		assert_true(n >= 1 && n <= 2);
		most = n > most ? n : most;
	}
	assert_int_equal(most, 2);
	free(seen);
	unlink(seen_path);
	assert_int_equal(rmdir(dir), 0);
	captured_free(&c);
}

/* Which ps/images lines the in-process path takes (else children), and the
 * API path it GETs: the same as the commands' own. */
static void fast_case_mode(const char *cmd, const char *args, bool json_mode, const char *want,
                           bool want_nt)
{
	char buf[256], *argv[16] = {(char *)cmd};
	int argc = 1;
	bool nt = !want_nt;
	char *got;

	snprintf(buf, sizeof(buf), "%s", args);
	for (char *tok = buf, *sp; *tok != '\0' && argc < 15; tok = sp + 1) {
		argv[argc++] = tok;
		if ((sp = strchr(tok, ' ')) == NULL)
			break;
		*sp = '\0';
	}
	got = cli_fan_fast_path(cmd, argc, argv, json_mode, &nt);
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_true(nt == want_nt);
	free(got);
}

static void fast_case(const char *cmd, const char *args, const char *want, bool want_nt)
{
	fast_case_mode(cmd, args, false, want, want_nt);
	fast_case_mode(cmd, args, true, want, want_nt);
}

static void test_fast_path_plan(void **state)
{
	fast_case("ps", "", "/containers/json", false);
	fast_case("ps", "-a --no-trunc", "/containers/json?all=1", true);
	fast_case("ps", "--all --format json", "/containers/json?all=1", false);
	fast_case("ps", "--format=json", "/containers/json", false);
	fast_case(
	    "ps", "-f name=x --filter=status=running --filter name=y",
	    "/containers/json?filters=%7B%22name%22%3A%5B%22x%22%2C%22y%22%5D%2C%22status%22%3A%"
	    "5B%22running%22%5D%7D",
	    false);
	fast_case("ps", "-q", NULL, false);
	fast_case("ps", "-aq", NULL, false);
	fast_case("ps", "--format table", NULL, false);
	fast_case("ps", "-f noequals", NULL, false);
	fast_case("ps", "-f =x", NULL, false);
	fast_case("ps", "--filter", NULL, false);
	fast_case("images", "--no-trunc --format json", "/images/json", true);
	fast_case("images", "-q", NULL, false);
	fast_case("images", "-a", NULL, false);
	fast_case_mode("info", "", false, NULL, false); /* text: children */
	fast_case_mode("info", "", true, "/info", false);
	fast_case_mode("info", "--format json", true, "/info", false);
	fast_case_mode("version", "-f json", true, "/version", false);
	fast_case_mode("version", "-fjson", true, "/version", false);
	fast_case_mode("version", "--format=json", true, "/version", false);
	fast_case_mode("version", "--format yaml", true, NULL, false);
	fast_case_mode("version", "--help", true, NULL, false);
	fast_case_mode("exec", "x true", true, NULL, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ps_rows),
	    cmocka_unit_test(test_images_rows),
	    cmocka_unit_test(test_lines_and_exit_codes),
	    cmocka_unit_test(test_json_and_timeout),
	    cmocka_unit_test(test_parallel_bound),
	    cmocka_unit_test(test_fast_path_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
