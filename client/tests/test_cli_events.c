/* berth events' line format: docker's "TIME TYPE ACTION ID (k=v, ...)" with
 * the attributes sorted, UTC nanoseconds, and events missing parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

static char *fmt(const char *json)
{
	json_t *ev = json_loads(json, 0, NULL);
	struct bh_buf out;
	char *s;

	assert_non_null(ev);
	bh_buf_init(&out, 4096);
	if (cli_event_format(ev, &out) < 0) {
		json_decref(ev);
		bh_buf_free(&out);
		return NULL;
	}
	s = bh_strdup(out.data ? out.data : "");
	bh_buf_free(&out);
	json_decref(ev);
	return s;
}

static void test_container_line(void **state)
{
	char *s = fmt("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\","
	              "\"Attributes\":{\"name\":\"web\",\"image\":\"busybox\"}},"
	              "\"time\":1795354905,\"timeNano\":1795354905001002003}");

	(void)state;
	assert_string_equal(s, "2026-11-22T13:41:45.001002003Z container start abc "
	                       "(image=busybox, name=web)");
	free(s);
}

static void test_no_attributes_and_seconds_only(void **state)
{
	char *s = fmt("{\"Type\":\"image\",\"Action\":\"pull\",\"Actor\":{\"ID\":\"busybox\"},"
	              "\"time\":1}");

	(void)state;
	assert_string_equal(s, "1970-01-01T00:00:01.000000000Z image pull busybox");
	free(s);
}

static void test_incomplete_event(void **state)
{
	(void)state;
	assert_null(fmt("{\"Action\":\"start\"}"));
	assert_null(fmt("{\"Type\":\"container\"}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_container_line),
	    cmocka_unit_test(test_no_attributes_and_seconds_only),
	    cmocka_unit_test(test_incomplete_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
