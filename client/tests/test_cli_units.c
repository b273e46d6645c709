/* client/cmd_units.c and the small helpers of http.c: --cpus, --restart,
 * --since, docker's durations, sizes, quoted commands, tables, URL escaping
 * and the daemon's error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

static void test_cpus(void **state)
{
	int64_t n = -7;

	assert_int_equal(cli_parse_cpus("0.5", &n), 0);
	assert_int_equal(n, 500000000);
	assert_int_equal(cli_parse_cpus("2", &n), 0);
	assert_int_equal(n, 2000000000);
	assert_int_equal(cli_parse_cpus(".25", &n), 0);
	assert_int_equal(n, 250000000);
	assert_int_equal(cli_parse_cpus("1.000000001", &n), 0);
	assert_int_equal(n, 1000000001);
	assert_int_equal(cli_parse_cpus("0", &n), 0);
	assert_int_equal(n, 0);
	n = 42;
	assert_int_equal(cli_parse_cpus("-1", &n), -1);
	assert_int_equal(cli_parse_cpus("", &n), -1);
	assert_int_equal(cli_parse_cpus(".", &n), -1);
	assert_int_equal(cli_parse_cpus("1.5x", &n), -1);
	assert_int_equal(cli_parse_cpus("0.0000000001", &n), -1);
	assert_int_equal(cli_parse_cpus("99999999999", &n), -1);
	assert_int_equal(n, 42);
}

static void test_restart(void **state)
{
	const char *name = NULL;
	long max = -1;

	assert_int_equal(cli_parse_restart("on-failure:2", &name, &max), 0);
	assert_string_equal(name, "on-failure");
	assert_int_equal(max, 2);
	assert_int_equal(cli_parse_restart("always", &name, &max), 0);
	assert_string_equal(name, "always");
	assert_int_equal(max, 0);
	assert_int_equal(cli_parse_restart("unless-stopped", &name, &max), 0);
	assert_int_equal(cli_parse_restart("no", &name, &max), 0);
	assert_int_equal(cli_parse_restart("on-failure", &name, &max), 0);
	assert_int_equal(cli_parse_restart("sometimes", &name, &max), -1);
	assert_int_equal(cli_parse_restart("always:3", &name, &max), -1);
	assert_int_equal(cli_parse_restart("on-failure:x", &name, &max), -1);
	assert_int_equal(cli_parse_restart("on-failure:-1", &name, &max), -1);
	assert_int_equal(cli_parse_restart("on-fail", &name, &max), -1);
}

static void test_human_duration(void **state)
{
	static const struct {
		int64_t s;
		const char *want;
	} cases[] = {
	    {0, "Less than a second"},  {1, "1 second"},
	    {5, "5 seconds"},           {59, "59 seconds"},
	    {60, "About a minute"},     {119, "About a minute"},
	    {120, "2 minutes"},         {3599, "59 minutes"},
	    {3600, "About an hour"},    {5399, "About an hour"},
	    {5400, "2 hours"},          {47 * 3600, "47 hours"},
	    {48 * 3600, "2 days"},      {14 * 86400, "2 weeks"},
	    {60 * 86400, "2 months"},   {2 * 365 * 86400, "2 years"},
	    {-5, "Less than a second"},
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_human_duration(cases[i].s, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%lld s: got \"%s\", want \"%s\"", (long long)cases[i].s, out,
			         cases[i].want);
	}
}

static void test_human_size(void **state)
{
	char out[32];

	cli_human_size(0, out, sizeof(out));
	assert_string_equal(out, "0B");
	cli_human_size(999, out, sizeof(out));
	assert_string_equal(out, "999B");
	cli_human_size(1234567, out, sizeof(out));
	assert_string_equal(out, "1.23MB");
	cli_human_size(1200000, out, sizeof(out));
	assert_string_equal(out, "1.2MB");
	cli_human_size(4261234, out, sizeof(out));
	assert_string_equal(out, "4.26MB");
	cli_human_size(123456789, out, sizeof(out));
	assert_string_equal(out, "123MB");
	cli_human_size(2.5e9, out, sizeof(out));
	assert_string_equal(out, "2.5GB");
}

static void test_quote_command(void **state)
{
	char out[128];

	cli_quote_command("sleep 100", false, out, sizeof(out));
	assert_string_equal(out, "\"sleep 100\"");
	cli_quote_command("sh -c 'echo \"hi\"'", false, out, sizeof(out));
	assert_string_equal(out, "\"sh -c 'echo \\\"hi\\\"'\"");
	/* 20 characters fit; 21 are cut to 19 and an ellipsis. */
	cli_quote_command("12345678901234567890", false, out, sizeof(out));
	assert_string_equal(out, "\"12345678901234567890\"");
	cli_quote_command("123456789012345678901", false, out, sizeof(out));
	assert_string_equal(out, "\"1234567890123456789\xe2\x80\xa6\"");
	cli_quote_command("123456789012345678901", true, out, sizeof(out));
	assert_string_equal(out, "\"123456789012345678901\"");
	/* Cut by characters, never inside a UTF-8 sequence. */
	cli_quote_command("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	                  "\xc3\xa9\xc3\xa9\xc3\xa9",
	                  false, out, sizeof(out));
	assert_int_equal(strlen(out), 2 + 19 * 2 + 3);
	/* Control characters never reach the terminal. */
	cli_quote_command("a\x1b[2J\nb", false, out, sizeof(out));
	assert_string_equal(out, "\"a\\x1b[2J\\nb\"");
}

static void test_since(void **state)
{
	char out[64];

	assert_int_equal(cli_parse_since("10m", 100000, out, sizeof(out)), 0);
	assert_string_equal(out, "99400");
	assert_int_equal(cli_parse_since("1h30m", 100000, out, sizeof(out)), 0);
	assert_string_equal(out, "94600");
	assert_int_equal(cli_parse_since("2026-11-22T10:00:00Z", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "1795341600");
	assert_int_equal(cli_parse_since("2026-11-22T12:00:00.123+02:00", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "1795341600");
	assert_int_equal(cli_parse_since("1970-01-02", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "86400");
	assert_int_equal(cli_parse_since("1700000000.5", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "1700000000.5");
	assert_int_equal(cli_parse_since("yesterday", 0, out, sizeof(out)), -1);
	assert_int_equal(cli_parse_since("10x", 0, out, sizeof(out)), -1);
	assert_int_equal(cli_parse_since("", 0, out, sizeof(out)), -1);
	assert_int_equal(cli_parse_since("2026-13-01", 0, out, sizeof(out)), -1);
	assert_int_equal(cli_parse_since("12.", 0, out, sizeof(out)), -1);
}

static void test_image_ref(void **state)
{
	char *s;

	s = cli_image_ref_tagged("busybox");
	assert_string_equal(s, "busybox:latest");
	free(s);
	s = cli_image_ref_tagged("busybox:nope");
	assert_string_equal(s, "busybox:nope");
	free(s);
	s = cli_image_ref_tagged("localhost:5000/app");
	assert_string_equal(s, "localhost:5000/app:latest");
	free(s);
	s = cli_image_ref_tagged("app@sha256:abcd");
	assert_string_equal(s, "app@sha256:abcd");
	free(s);
}

static void test_table(void **state)
{
	static const char *const head[] = {"CONTAINER ID", "IMAGE", "NAMES"};
	static const char *const row[] = {"0123456789ab", "busybox", "evil\x1b]0;x"};
	struct cli_table t;
	char buf[512];
	FILE *f = tmpfile();
	size_t n;

	assert_non_null(f);
	cli_table_init(&t, 3);
	cli_table_add(&t, head);
	cli_table_add(&t, row);
	cli_table_print(&t, f);
	cli_table_free(&t);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_string_equal(buf, "CONTAINER ID   IMAGE     NAMES\n"
	                         "0123456789ab   busybox   evil?]0;x\n");
}

static void test_url_escape_and_message(void **state)
{
	struct bh_buf b;
	char msg[64];
	char *s = cli_url_escape("a b/?&=%~._-Z9");

	assert_string_equal(s, "a%20b%2F%3F%26%3D%25~._-Z9");
	free(s);
	bh_buf_init(&b, 1024);
	bh_buf_printf(&b, "{\"message\":\"No such container: nope\\u001b[1m\"}");
	cli_daemon_message(404, &b, msg, sizeof(msg));
	assert_string_equal(msg, "No such container: nope?[1m");
	bh_buf_reset(&b);
	bh_buf_printf(&b, "<html>");
	cli_daemon_message(502, &b, msg, sizeof(msg));
	assert_string_equal(msg, "HTTP 502");
	bh_buf_free(&b);
}

static void test_start_error_code(void **state)
{
	assert_int_equal(cli_start_error_code("whatever", 127), 127);
	assert_int_equal(cli_start_error_code("whatever", 126), 126);
	assert_int_equal(cli_start_error_code("Error response from daemon: exec: \"nope\": "
	                                      "executable file not found in $PATH",
	                                      128),
	                 127);
	assert_int_equal(cli_start_error_code("exec: \"/x\": no such file or directory", 0), 127);
	assert_int_equal(cli_start_error_code("exec: \"/etc/passwd\": permission denied", 128),
	                 126);
	assert_int_equal(cli_start_error_code("exec: \"/tmp\": is a directory", 0), 126);
	assert_int_equal(cli_start_error_code("cgroup: cannot write memory.max", 0), 125);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpus),
	    cmocka_unit_test(test_restart),
	    cmocka_unit_test(test_human_duration),
	    cmocka_unit_test(test_human_size),
	    cmocka_unit_test(test_quote_command),
	    cmocka_unit_test(test_since),
	    cmocka_unit_test(test_image_ref),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_url_escape_and_message),
	    cmocka_unit_test(test_start_error_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
