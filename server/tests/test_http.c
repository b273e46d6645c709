/* HTTP layer without a socket: query parsing, replies, error bodies and the
 * chunked stream framing with its backpressure and client-gone cases. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-internal.h"

static void test_query_parse(void **state)
{
	struct srv_query q = {0};
	struct bh_err err;

	assert_int_equal(srv_query_parse(&q, "?all=1&name=a%20b+c&flag&empty=&x=%3D", &err), 0);
	assert_int_equal(q.n, 5);
	assert_string_equal(srv_query_get(&q, "all"), "1");
	assert_string_equal(srv_query_get(&q, "name"), "a b c");
	assert_string_equal(srv_query_get(&q, "flag"), "");
	assert_string_equal(srv_query_get(&q, "empty"), "");
	assert_string_equal(srv_query_get(&q, "x"), "=");
	assert_null(srv_query_get(&q, "missing"));
	srv_query_free(&q);

	assert_true(srv_query_parse(&q, "a=%zz", &err) < 0);
	assert_int_equal(err.code, EINVAL);
	srv_query_free(&q);
	assert_true(srv_query_parse(&q, "a=%4", &err) < 0);
	srv_query_free(&q);
}

static void test_query_first_wins_and_limit(void **state)
{
	struct srv_query q = {0};
	struct bh_err err;
	int i, r = 0;

	assert_int_equal(srv_query_add(&q, "t=1", &err), 0);
	assert_int_equal(srv_query_add(&q, "t=2", &err), 0);
	assert_int_equal(srv_query_add(&q, "=x", &err), 0);
	assert_string_equal(srv_query_get(&q, "t"), "1");
	assert_int_equal(q.n, 2);
	srv_query_free(&q);
	for (i = 0; i < SRV_MAX_QUERY + 1 && r == 0; i++)
		r = srv_query_add(&q, "k=v", &err);
	assert_true(r < 0);
	assert_int_equal(i, SRV_MAX_QUERY + 1);
	srv_query_free(&q);
}

static void test_query_bool(void **state)
{
	struct srv_query q = {0};
	struct bh_err err;

	assert_int_equal(srv_query_parse(&q, "a=1&b=true&c=0&d=False&e=&f=no&g=yes", &err), 0);
	assert_true(srv_query_bool(&q, "a"));
	assert_true(srv_query_bool(&q, "b"));
	assert_false(srv_query_bool(&q, "c"));
	assert_false(srv_query_bool(&q, "d"));
	assert_false(srv_query_bool(&q, "e"));
	assert_false(srv_query_bool(&q, "f"));
	assert_true(srv_query_bool(&q, "g"));
	assert_false(srv_query_bool(&q, "absent"));
	srv_query_free(&q);
}

static void test_reply_error_body(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);
	struct bh_err err;

	bh_err_set(&err, EEXIST, "container \"web\" already exists");
	srv_reply_error(req, &err);
	assert_int_equal(req->status, 409);
	assert_true(req->responded);
	assert_string_equal(req->content_type, "application/json");
	assert_string_equal(req->out.data,
	                    "{\"message\":\"container \\\"web\\\" already exists\"}\n");
	/* A second reply is dropped, not appended. */
	srv_reply_text(req, 200, "text/plain", "x", 1);
	assert_int_equal(req->status, 409);
	srv_req_unref(req);
}

static void test_reply_json_and_empty(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);

	srv_reply_json(req, 201, json_pack("{s:s, s:[]}", "Id", "abc", "Warnings"));
	assert_int_equal(req->status, 201);
	assert_string_equal(req->out.data, "{\"Id\":\"abc\",\"Warnings\":[]}\n");
	srv_req_unref(req);

	req = srv_req_new(NULL, NULL);
	srv_reply_empty(req, 204);
	assert_int_equal(req->status, 204);
	assert_int_equal(req->out.len, 0);
	assert_true(req->ended);
	srv_req_unref(req);
}

static void test_stream_framing(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);
	struct bh_err err;

	srv_stream_begin(req, 200, "application/json");
	assert_true(req->streaming);
	assert_int_equal(srv_stream_write(req, "hello", 5, &err), 0);
	assert_int_equal(srv_stream_write(req, "", 0, &err), 0); /* not a terminator */
	assert_string_equal(req->out.data, "5\r\nhello\r\n");
	srv_stream_end(req);
	assert_string_equal(req->out.data, "5\r\nhello\r\n0\r\n\r\n");
	assert_true(srv_stream_write(req, "x", 1, &err) < 0);
	assert_int_equal(err.code, EINVAL);
	srv_req_unref(req);
}

static void test_stream_backpressure(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);
	struct bh_err err;
	char *big = calloc(1, SRV_STREAM_MAX);

	srv_stream_begin(req, 200, NULL);
	assert_int_equal(srv_stream_write(req, big, SRV_STREAM_MAX / 2, &err), 0);
	assert_true(srv_stream_write(req, big, SRV_STREAM_MAX / 2 + 1, &err) < 0);
	assert_int_equal(err.code, EAGAIN);
	free(big);
	srv_req_unref(req);
}

static int closed_calls;
static void on_close(struct srv_req *req, void *arg)
{
	closed_calls++;
	assert_ptr_equal(arg, &closed_calls);
}

static void test_stream_client_gone(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);
	struct bh_err err;

	srv_req_ref(req); /* the producer's */
	req->on_close = on_close;
	req->on_close_arg = &closed_calls;
	srv_stream_begin(req, 200, NULL);
	srv_req_detach(req); /* drops the connection's reference */
	srv_req_detach(req); /* idempotent */
	assert_int_equal(closed_calls, 1);
	assert_true(srv_stream_write(req, "x", 1, &err) < 0);
	assert_int_equal(err.code, EPIPE);
	srv_req_unref(req);
}

static void set_body(struct srv_req *req, const char *s)
{
	bh_buf_reset(&req->body);
	assert_int_equal(bh_buf_append(&req->body, s, strlen(s)), 0);
}

static void test_body_json(void **state)
{
	struct srv_req *req = srv_req_new(NULL, NULL);
	struct bh_err err;
	json_t *j = NULL;

	assert_true(srv_req_body_json(req, &j, &err) < 0);
	assert_int_equal(err.code, EINVAL);
	set_body(req, "{\"Image\": \"busybox\"}");
	assert_int_equal(srv_req_body_json(req, &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Image")), "busybox");
	json_decref(j);
	set_body(req, "{\"a\":1,\n\"a\":2}");
	assert_true(srv_req_body_json(req, &j, &err) < 0);
	assert_null(j);
	assert_non_null(strstr(err.msg, "line 2"));
	set_body(req, "[1]");
	assert_true(srv_req_body_json(req, &j, &err) < 0);
	srv_req_unref(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_parse),
	    cmocka_unit_test(test_query_first_wins_and_limit),
	    cmocka_unit_test(test_query_bool),
	    cmocka_unit_test(test_reply_error_body),
	    cmocka_unit_test(test_reply_json_and_empty),
	    cmocka_unit_test(test_stream_framing),
	    cmocka_unit_test(test_stream_backpressure),
	    cmocka_unit_test(test_stream_client_gone),
	    cmocka_unit_test(test_body_json),
	};
	bh_log_set_level(BH_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
