/* client: the one list of destructive verbs that protected contexts refuse
 * (guard.c), and --protected's values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

static bool destructive(const char *a, const char *b)
{
	char *argv[3] = {(char *)a, (char *)b, NULL};

	return cli_guard_is_destructive(b ? 2 : 1, argv);
}

static void test_verbs(void **state)
{
	static const char *const yes[][2] = {
	    {"rm", "x"},         {"rmi", "img"},      {"stop", NULL},        {"kill", "x"},
	    {"restart", "x"},    {"prune", NULL},     {"image", "rm"},       {"image", "prune"},
	    {"image", "remove"}, {"container", "rm"}, {"container", "kill"}, {"volume", "rm"},
	    {"volume", "prune"}, {"trust", "revoke"}, {"system", "prune"},
	};
	static const char *const no[][2] = {
	    {"ps", NULL},     {"run", "rm"},    {"exec", "rm"},   {"image", "ls"},
	    {"images", NULL}, {"trust", "ls"},  {"trust", "add"}, {"context", "rm"},
	    {"logs", "x"},    {"volume", "ls"}, {"image", NULL},  {"start", "x"},
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!destructive(yes[i][0], yes[i][1]))
			fail_msg("%s %s should be destructive", yes[i][0], yes[i][1]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (destructive(no[i][0], no[i][1]))
			fail_msg("%s %s should not be destructive", no[i][0], no[i][1]);
	assert_false(cli_guard_is_destructive(0, NULL));
}

static void test_parse_protected(void **state)
{
	struct cli cli = {0};
	enum ctx_protect p = CTX_PROTECT_KEEP;

	assert_int_equal(cli_guard_parse_protected(&cli, NULL, &p), 0);
	assert_int_equal(p, CTX_PROTECT_ON);
	assert_int_equal(cli_guard_parse_protected(&cli, "false", &p), 0);
	assert_int_equal(p, CTX_PROTECT_OFF);
	assert_int_equal(cli_guard_parse_protected(&cli, "true", &p), 0);
	assert_int_equal(p, CTX_PROTECT_ON);
	assert_int_equal(cli_guard_parse_protected(&cli, "yes please", &p), -1);
	assert_non_null(strstr(cli.err.msg, "true or false"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verbs),
	    cmocka_unit_test(test_parse_protected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
