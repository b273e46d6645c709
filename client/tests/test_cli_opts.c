/* client/main.c: option parsing that accepts flags anywhere (no GNU
 * permutation needed), "--", --help, and one-line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

struct seen {
	const char *host;
	int force;
};

static const struct option opts[] = {
    {"host", required_argument, NULL, 1000},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int on_opt(struct cli *cli, int c, const char *arg, void *data)
{
	struct seen *s = data;

	if (c == 1000)
		s->host = arg;
	else if (c == 'f')
		s->force++;
	else
		return cli_fail(cli, CLI_EXIT_CMD, "unexpected %d", c);
	return 0;
}

static int parse(struct cli *cli, struct seen *s, char **argv, char **pos)
{
	struct cli_opts o = {"context create", "usage text\n", "f", opts, on_opt, s};
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	memset(s, 0, sizeof(*s));
	memset(cli, 0, sizeof(*cli));
	return cli_getopt(cli, argc, argv, &o, pos);
}

static void test_flags_anywhere(void **state)
{
	char *argv[] = {"create", "name", "--host", "tcp://h:1", "-f", "extra", "--force", NULL};
	char *pos[8];
	struct cli cli;
	struct seen s;

	assert_int_equal(parse(&cli, &s, argv, pos), 2);
	assert_string_equal(pos[0], "name");
	assert_string_equal(pos[1], "extra");
	assert_string_equal(s.host, "tcp://h:1");
	assert_int_equal(s.force, 2);
}

static void test_double_dash(void **state)
{
	char *argv[] = {"create", "-f", "--", "-name", "--host", NULL};
	char *pos[8];
	struct cli cli;
	struct seen s;

	assert_int_equal(parse(&cli, &s, argv, pos), 2);
	assert_string_equal(pos[0], "-name");
	assert_string_equal(pos[1], "--host");
	assert_null(s.host);
	assert_int_equal(s.force, 1);
}

static void test_dash_is_positional(void **state)
{
	char *argv[] = {"export", "ctx", "-", NULL};
	char *pos[8];
	struct cli cli;
	struct seen s;

	assert_int_equal(parse(&cli, &s, argv, pos), 2);
	assert_string_equal(pos[1], "-");
}

static void test_errors(void **state)
{
	char *unknown[] = {"create", "x", "--bogus", NULL};
	char *missing[] = {"create", "x", "--host", NULL};
	char *short_unknown[] = {"create", "-z", NULL};
	char *help[] = {"create", "x", "--help", NULL};
	char *pos[8];
	struct cli cli;
	struct seen s;

	assert_int_equal(parse(&cli, &s, unknown, pos), -1);
	assert_string_equal(cli.err.msg, "context create: unknown option --bogus (see --help)");
	assert_int_equal(cli.exit_code, CLI_EXIT_CMD);
	assert_int_equal(parse(&cli, &s, missing, pos), -1);
	assert_string_equal(cli.err.msg, "context create: option --host needs a value");
	assert_int_equal(parse(&cli, &s, short_unknown, pos), -1);
	assert_string_equal(cli.err.msg, "context create: unknown option -z (see --help)");
	assert_int_equal(parse(&cli, &s, help, pos), -2);
}

static void test_sanitize(void **state)
{
	char out[16];

	cli_sanitize("a\x1b[2Jb\r\n", out, sizeof(out));
	assert_string_equal(out, "a?[2Jb??");
	cli_sanitize("0123456789abcdefXYZ", out, sizeof(out));
	assert_string_equal(out, "0123456789abcde");
	/* UTF-8 C1 controls (CSI U+009B) go too; other UTF-8 stays */
	cli_sanitize("a\xc2\x9b" "2Jb\xc3\xa9", out, sizeof(out));
	assert_string_equal(out, "a??2Jb\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_anywhere),     cmocka_unit_test(test_double_dash),
	    cmocka_unit_test(test_dash_is_positional), cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_sanitize),
	};

	/* --help prints the usage on stdout; keep the test output readable. */
	if (freopen("/dev/null", "w", stdout) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
