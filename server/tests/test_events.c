/* The event store's pure parts: the ring (overwrite, lookup by cursor), the
 * filters (Docker's keys and forms, berth's audit/identity, hostile input),
 * times, the stored-line keys; and the store itself on a temp dir: cursors
 * continue across a reopen, a torn last line is cut, collect honours the
 * budget and the filters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server-internal.h"

static void test_ring_overwrite_and_after(void **state)
{
	struct srv_evring r;
	const struct srv_evring_entry *e;

	(void)state;
	srv_evring_init(&r, 4);
	assert_int_equal(srv_evring_oldest(&r), 0);
	assert_null(srv_evring_after(&r, 0));
	for (uint64_t c = 1; c <= 6; c++)
		srv_evring_push(&r, c, (int64_t)c * 10,
		                bh_asprintf("line%llu\n", (unsigned long long)c));
	/* 1 and 2 were dropped: the ring holds 3..6 */
	assert_int_equal(r.n, 4);
	assert_int_equal(srv_evring_oldest(&r), 3);
	e = srv_evring_after(&r, 0);
	assert_non_null(e);
	assert_int_equal(e->cursor, 3);
	e = srv_evring_after(&r, 4);
	assert_int_equal(e->cursor, 5);
	assert_string_equal(e->line, "line5\n");
	assert_int_equal(e->time_ns, 50);
	assert_null(srv_evring_after(&r, 6));
	assert_null(srv_evring_after(&r, 99));
	srv_evring_free(&r);
}

static void test_ring_gaps(void **state)
{
	struct srv_evring r;

	(void)state;
	srv_evring_init(&r, 8);
	srv_evring_push(&r, 10, 1, bh_strdup("a"));
	srv_evring_push(&r, 20, 2, bh_strdup("b"));
	srv_evring_push(&r, 30, 3, bh_strdup("c"));
	assert_int_equal(srv_evring_after(&r, 10)->cursor, 20);
	assert_int_equal(srv_evring_after(&r, 15)->cursor, 20);
	assert_int_equal(srv_evring_after(&r, 29)->cursor, 30);
	srv_evring_free(&r);
}

static json_t *ev(const char *type, const char *action, const char *id, int64_t t,
                  const char *attrs)
{
	json_t *a = json_loads(attrs, 0, NULL);

	return json_pack("{s:s, s:s, s:{s:s, s:o}, s:I}", "Type", type, "Action", action, "Actor",
	                 "ID", id, "Attributes", a, "timeNano", (json_int_t)t);
}

static bool matches(const char *filters, int64_t since, int64_t until, json_t *e)
{
	struct srv_evfilter f = {.since_ns = since, .until_ns = until};
	struct bh_err err;
	bool m;

	assert_int_equal(srv_evfilter_parse(filters, &f.filters, &err), 0);
	m = srv_evfilter_match(&f, e);
	json_decref(f.filters);
	return m;
}

static void test_filter_docker_keys(void **state)
{
	json_t *start = ev("container", "start", "abcdef0123", 100,
	                   "{\"name\":\"web\",\"image\":\"busybox\",\"tier\":\"front\"}");
	json_t *exec = ev("container", "exec_start: sh -c true", "abcdef0123", 100, "{}");
	json_t *pull = ev("image", "pull", "busybox:latest", 100, "{\"name\":\"busybox:latest\"}");

	(void)state;
	assert_true(matches(NULL, 0, 0, start));
	assert_true(matches("", 0, 0, start));
	assert_true(matches("{}", 0, 0, start));
	assert_true(matches("{\"type\":[\"container\"]}", 0, 0, start));
	assert_false(matches("{\"type\":[\"image\"]}", 0, 0, start));
	assert_true(matches("{\"type\":[\"image\",\"container\"]}", 0, 0, start)); /* OR */
	assert_true(matches("{\"event\":[\"start\"]}", 0, 0, start));
	assert_false(matches("{\"event\":[\"sta\"]}", 0, 0, start));
	assert_true(matches("{\"event\":[\"exec_start\"]}", 0, 0, exec));
	assert_true(matches("{\"container\":[\"web\"]}", 0, 0, start));
	assert_true(matches("{\"container\":[\"abcdef\"]}", 0, 0, start)); /* id prefix */
	assert_false(matches("{\"container\":[\"we\"]}", 0, 0, start));    /* names are exact */
	assert_false(matches("{\"container\":[\"web\"],\"event\":[\"die\"]}", 0, 0, start));
	assert_true(matches("{\"image\":[\"busybox\"]}", 0, 0, start));
	assert_true(matches("{\"image\":[\"busybox:latest\"]}", 0, 0, pull));
	assert_false(matches("{\"image\":[\"alpine\"]}", 0, 0, pull));
	assert_true(matches("{\"label\":[\"tier\"]}", 0, 0, start));
	assert_true(matches("{\"label\":[\"tier=front\"]}", 0, 0, start));
	assert_false(matches("{\"label\":[\"tier=back\"]}", 0, 0, start));
	assert_false(matches("{\"label\":[\"tier\",\"zone\"]}", 0, 0, start)); /* labels AND */
	assert_true(matches("{\"scope\":[\"local\"]}", 0, 0, start));
	/* the old form */
	assert_true(matches("{\"type\":{\"container\":true}}", 0, 0, start));
	assert_false(matches("{\"type\":{\"image\":true}}", 0, 0, start));
	json_decref(start);
	json_decref(exec);
	json_decref(pull);
}

static void test_filter_audit_identity_and_time(void **state)
{
	json_t *a = ev("audit", "exec", "alice", 500,
	               "{\"identity\":\"alice\",\"container\":\"abcdef0123\",\"argv\":\"[]\"}");

	(void)state;
	assert_true(matches("{\"type\":[\"audit\"]}", 0, 0, a));
	assert_true(matches("{\"identity\":[\"alice\"]}", 0, 0, a));
	assert_false(matches("{\"identity\":[\"bob\"]}", 0, 0, a));
	assert_true(matches("{\"container\":[\"abc\"]}", 0, 0, a));
	assert_true(matches(NULL, 500, 500, a)); /* both bounds inclusive */
	assert_false(matches(NULL, 501, 0, a));
	assert_false(matches(NULL, 0, 499, a));
	json_decref(a);
}

static void test_filter_hostile(void **state)
{
	static const char *const bad[] = {
	    "[1]",
	    "nope",
	    "{\"type\":\"container\"}",
	    "{\"type\":[1]}",
	    "{\"x\":[]}",
	    "{\"type\":[\"a\"],\"rm -rf\":[\"b\"]}",
	    "{\"label\":[null]}",
	};
	json_t *f = NULL;
	struct bh_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bh_err_clear(&err);
		assert_int_equal(srv_evfilter_parse(bad[i], &f, &err), -1);
		assert_null(f);
		assert_int_equal(err.code, EINVAL);
		assert_non_null(strstr(err.msg, "filter"));
	}
}

static void test_time_parse(void **state)
{
	int64_t ns;
	struct bh_err err;

	(void)state;
	assert_int_equal(srv_evtime_parse("1700000000", &ns, &err), 0);
	assert_true(ns == 1700000000LL * 1000000000);
	assert_int_equal(srv_evtime_parse("1700000000.25", &ns, &err), 0);
	assert_true(ns == 1700000000LL * 1000000000 + 250000000);
	assert_int_equal(srv_evtime_parse("1.000000001", &ns, &err), 0);
	assert_true(ns == 1000000001);
	assert_int_equal(srv_evtime_parse("", &ns, &err), -1);
	assert_int_equal(srv_evtime_parse("-1", &ns, &err), -1);
	assert_int_equal(srv_evtime_parse("10m", &ns, &err), -1);
	assert_int_equal(srv_evtime_parse("99999999999999999999", &ns, &err), -1);
}

static void test_line_keys(void **state)
{
	static const char good[] = "{\"cursor\":42,\"Actor\":{\"Attributes\":{\"a\\\"timeNano\":"
	                           "\"1\"}},\"time\":1,\"timeNano\":1700000000123}";
	uint64_t c;
	int64_t t;

	(void)state;
	assert_int_equal(srv_event_line_keys(good, strlen(good), &c, &t), 0);
	assert_int_equal(c, 42);
	assert_true(t == 1700000000123LL);
	assert_int_equal(srv_event_line_keys("{\"cursor\":0,\"timeNano\":1}", 24, &c, &t), -1);
	assert_int_equal(srv_event_line_keys("{\"cursor\":5,\"timeNano\":1", 23, &c, &t), -1);
	assert_int_equal(srv_event_line_keys("garbage", 7, &c, &t), -1);
	/* only [0, len) is read: the digits go on past len */
	assert_int_equal(srv_event_line_keys("{\"cursor\":7,\"timeNano\":12}", 24, &c, &t), -1);
	assert_int_equal(
	    srv_event_line_keys("{\"cursor\":7,\"timeNano\":1795355816418635591}", 43, &c, &t), 0);
	assert_true(t == 1795355816418635591LL);
	assert_int_equal(
	    srv_event_line_keys("{\"cursor\":12345678901234567890,\"timeNano\":1}", 44, &c, &t),
	    -1);
	assert_int_equal(srv_event_line_keys("", 0, &c, &t), -1);
}

/* ---- the store on disk ---------------------------------------------------------------- */

static char *tmp_root(void)
{
	char tmpl[] = "/tmp/berth-test-events-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return bh_strdup(tmpl);
}

static int collect_all(struct srv_evread *r, const char *filters, struct bh_buf *out)
{
	struct srv_evfilter f = {0};
	struct bh_err err;
	int n = 0;

	assert_int_equal(srv_evfilter_parse(filters, &f.filters, &err), 0);
	bh_buf_init(out, 1024 * 1024);
	srv_events_collect(r, &f, out, 1024 * 1024);
	for (size_t i = 0; i < out->len; i++)
		n += out->data[i] == '\n';
	json_decref(f.filters);
	return n;
}

static void test_store_reopen_and_torn_line(void **state)
{
	cleanup_free char *root = tmp_root();
	cleanup_free char *file = bh_asprintf("%s/events/events.jsonl", root);
	struct srv_evread r = {0};
	struct bh_buf out;
	struct bh_err err;
	FILE *f;

	(void)state;
	assert_int_equal(srv_events_open(root, &err), 0);
	srv_events_emit("container", "create", "c1", json_pack("{s:s}", "name", "one"));
	srv_events_emit("container", "start", "c1", json_pack("{s:s, s:i}", "name", "one", "n", 5));
	srv_events_emit("image", "pull", "busybox", NULL);
	assert_int_equal(srv_events_last(), 3);
	srv_events_close();
	/* a crash in the middle of a line */
	f = fopen(file, "a");
	/* our keys around something that is not JSON: skipped, never served */
	fputs("{\"cursor\":4,\"Type\":[,\"timeNano\":5}\n", f);
	fputs("{\"cursor\":4,\"Type\":\"conta", f);
	fclose(f);

	assert_int_equal(srv_events_open(root, &err), 0);
	assert_int_equal(srv_events_last(), 3);
	srv_events_emit("container", "die", "c1", json_pack("{s:s}", "exitCode", "0"));
	assert_int_equal(srv_events_last(), 4);
	assert_int_equal(collect_all(&r, NULL, &out), 4);
	assert_int_equal(r.after, 4);
	assert_null(strstr(out.data, "conta\"")); /* the torn line is gone */
	assert_non_null(strstr(out.data, "\"status\":\"die\""));
	assert_null(strstr(out.data, "\"n\":")); /* a non-string attribute is dropped */
	bh_buf_free(&out);

	memset(&r, 0, sizeof(r));
	assert_int_equal(
	    collect_all(&r, "{\"type\":[\"container\"],\"event\":[\"start\",\"die\"]}", &out), 2);
	assert_int_equal(r.after, 4); /* non-matching events are passed over too */
	bh_buf_free(&out);
	srv_events_close();
	assert_int_equal(bh_rm_rf(root, &err), 0);
}

static void test_store_budget_and_long_event(void **state)
{
	cleanup_free char *root = tmp_root();
	cleanup_free char *big = bh_malloc(SRV_EVENTS_LINE_MAX * 2);
	struct srv_evread r = {0};
	struct srv_evfilter f = {0};
	struct bh_buf out;
	struct bh_err err;

	(void)state;
	memset(big, 'x', SRV_EVENTS_LINE_MAX * 2 - 1);
	big[SRV_EVENTS_LINE_MAX * 2 - 1] = '\0';
	assert_int_equal(srv_events_open(root, &err), 0);
	for (int i = 0; i < 10; i++)
		srv_events_emit("container", "start", "c", NULL);
	srv_events_emit("audit", "exec", "alice", json_pack("{s:s}", "argv", big));
	/* a budget of one byte still moves one event at a time */
	bh_buf_init(&out, 1024 * 1024);
	srv_events_collect(&r, &f, &out, 1);
	assert_int_equal(r.after, 1);
	bh_buf_reset(&out);
	srv_events_collect(&r, &f, &out, 1024 * 1024);
	assert_int_equal(r.after, 11);
	assert_true(out.len < 11 * 1024); /* the long one was cut */
	assert_non_null(strstr(out.data, "\"truncated\":\"true\""));
	bh_buf_free(&out);
	srv_events_close();
	assert_int_equal(bh_rm_rf(root, &err), 0);
}

/* Past SRV_EVENTS_FILE_MAX the file rotates; a reader older than the ring
 * gets the rest from the files, in order, then the ring: nothing lost. */
static void test_store_rotation_and_file_replay(void **state)
{
	cleanup_free char *root = tmp_root();
	cleanup_free char *cur = bh_asprintf("%s/events/events.jsonl", root);
	cleanup_free char *old = bh_asprintf("%s/events/events.jsonl.1", root);
	cleanup_free char *pad = bh_malloc(1001);
	const int n = SRV_EVENTS_RING + 2000;
	struct srv_evread r = {0};
	struct srv_evfilter f = {0};
	struct bh_buf out;
	struct bh_err err;
	struct stat st;
	uint64_t want = 1;

	(void)state;
	memset(pad, 'p', 1000);
	pad[1000] = '\0';
	assert_int_equal(srv_events_open(root, &err), 0);
	for (int i = 0; i < n; i++)
		srv_events_emit("image", "tag", "i", json_pack("{s:s}", "pad", pad));
	assert_int_equal(stat(old, &st), 0);
	assert_true(st.st_size <= SRV_EVENTS_FILE_MAX);
	assert_int_equal(stat(cur, &st), 0);
	assert_true(st.st_size <= SRV_EVENTS_FILE_MAX);
	bh_buf_init(&out, 64 * 1024 * 1024);
	while (want <= (uint64_t)n) {
		bh_buf_reset(&out);
		srv_events_collect(&r, &f, &out, 256 * 1024);
		if (r.need_file)
			assert_int_equal(srv_events_read_files(&r, &f, &out, 256 * 1024, &err), 0);
		assert_true(out.len > 0);
		for (char *p = out.data, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			uint64_t c;
			int64_t t;
			assert_int_equal(srv_event_line_keys(p, (size_t)(nl - p), &c, &t), 0);
			assert_int_equal(c, want); /* every one, once, in order */
			want++;
		}
	}
	assert_int_equal(r.after, (uint64_t)n);
	bh_buf_free(&out);
	srv_events_close();
	/* the newest come back after a restart */
	assert_int_equal(srv_events_open(root, &err), 0);
	assert_int_equal(srv_events_last(), (uint64_t)n);
	srv_events_close();
	assert_int_equal(bh_rm_rf(root, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_overwrite_and_after),
	    cmocka_unit_test(test_ring_gaps),
	    cmocka_unit_test(test_filter_docker_keys),
	    cmocka_unit_test(test_filter_audit_identity_and_time),
	    cmocka_unit_test(test_filter_hostile),
	    cmocka_unit_test(test_time_parse),
	    cmocka_unit_test(test_line_keys),
	    cmocka_unit_test(test_store_reopen_and_torn_line),
	    cmocka_unit_test(test_store_budget_and_long_event),
	    cmocka_unit_test(test_store_rotation_and_file_replay),
	};

	bh_log_set_level(BH_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
