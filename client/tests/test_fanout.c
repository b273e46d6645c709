/* client: the merged fan-out table of ps and images (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ps_rows),
	    cmocka_unit_test(test_images_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
