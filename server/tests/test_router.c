/* Router: matching and params, /v1.NN prefix stripping, dispatch results,
 * and the one error -> status mapping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-internal.h"

static int h_dummy(struct srv_req *req, struct bh_err *err)
{
	return 0;
}

static const struct srv_route table[] = {
    {SRV_GET, "/containers/json", h_dummy, 0, SRV_ROLE_ENROLL},
    {SRV_POST, "/containers/{id}/start", h_dummy, 0, SRV_ROLE_ENROLL},
    {SRV_DELETE, "/containers/{id}", h_dummy, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/containers/{id}/json", h_dummy, 0, SRV_ROLE_ENROLL},
    {SRV_POST, "/exec/{id}/resize", h_dummy, 0, SRV_ROLE_ENROLL},
};
#define N (sizeof(table) / sizeof(table[0]))

static void test_static_and_params(void **state)
{
	const struct srv_route *r = NULL;
	struct srv_params p;

	assert_int_equal(srv_route_match(table, N, SRV_GET, "/containers/json", &r, &p),
	                 SRV_MATCH_FOUND);
	assert_ptr_equal(r, &table[0]);
	assert_int_equal(p.n, 0);
	assert_int_equal(srv_route_match(table, N, SRV_POST, "/containers/abc123/start", &r, &p),
	                 SRV_MATCH_FOUND);
	assert_ptr_equal(r, &table[1]);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.p[0].name, "id");
	assert_string_equal(p.p[0].value, "abc123");
	assert_int_equal(srv_route_match(table, N, SRV_DELETE, "/containers/xyz", &r, &p),
	                 SRV_MATCH_FOUND);
	assert_ptr_equal(r, &table[2]);
	assert_string_equal(p.p[0].value, "xyz");
}

static void test_not_found_and_bad_method(void **state)
{
	const struct srv_route *r = NULL;
	struct srv_params p;

	assert_int_equal(srv_route_match(table, N, SRV_GET, "/nope", &r, &p), SRV_MATCH_NOT_FOUND);
	assert_int_equal(srv_route_match(table, N, SRV_GET, "/containers/json/", &r, &p),
	                 SRV_MATCH_NOT_FOUND);
	assert_int_equal(srv_route_match(table, N, SRV_GET, "/containers//start", &r, &p),
	                 SRV_MATCH_NOT_FOUND);
	assert_int_equal(srv_route_match(table, N, SRV_GET, "", &r, &p), SRV_MATCH_NOT_FOUND);
	assert_int_equal(srv_route_match(table, N, SRV_GET, "/containers/abc/start", &r, &p),
	                 SRV_MATCH_BAD_METHOD);
	assert_int_equal(srv_route_match(table, N, SRV_PUT, "/containers/json", &r, &p),
	                 SRV_MATCH_BAD_METHOD);
}

static void test_param_too_long(void **state)
{
	char path[SRV_PARAM_MAX + 64];
	const struct srv_route *r = NULL;
	struct srv_params p;

	memset(path, 'a', sizeof(path));
	memcpy(path, "/containers/", 12);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(srv_route_match(table, N, SRV_DELETE, path, &r, &p), SRV_MATCH_NOT_FOUND);
}

static void test_version_strip(void **state)
{
	const char *rest;
	struct bh_err err;

	assert_int_equal(srv_api_version_strip("/v1.43/info", &rest, &err), 0);
	assert_string_equal(rest, "/info");
	assert_int_equal(srv_api_version_strip("/v1.24/containers/x/json", &rest, &err), 0);
	assert_string_equal(rest, "/containers/x/json");
	assert_int_equal(srv_api_version_strip("/version", &rest, &err), 0);
	assert_string_equal(rest, "/version");
	assert_int_equal(srv_api_version_strip("/v1.43", &rest, &err), 0);
	assert_string_equal(rest, "/");
	assert_int_equal(srv_api_version_strip("/v2x/y", &rest, &err), 0);
	assert_string_equal(rest, "/v2x/y");
	assert_true(srv_api_version_strip("/v1.50/info", &rest, &err) < 0);
	assert_int_equal(err.code, EINVAL);
	assert_non_null(strstr(err.msg, "too new"));
	assert_true(srv_api_version_strip("/v2.0/info", &rest, &err) < 0);
	assert_true(srv_api_version_strip("/v1.12/info", &rest, &err) < 0);
	assert_non_null(strstr(err.msg, "too old"));
}

static void test_err_status(void **state)
{
	assert_int_equal(srv_err_status(ENOENT), 404);
	assert_int_equal(srv_err_status(EEXIST), 409);
	assert_int_equal(srv_err_status(EBUSY), 409);
	assert_int_equal(srv_err_status(EINVAL), 400);
	assert_int_equal(srv_err_status(EACCES), 403);
	assert_int_equal(srv_err_status(EPERM), 403);
	assert_int_equal(srv_err_status(EFBIG), 413);
	assert_int_equal(srv_err_status(EMSGSIZE), 413);
	assert_int_equal(srv_err_status(ENOTSUP), 501);
	assert_int_equal(srv_err_status(EIO), 500);
	assert_int_equal(srv_err_status(0), 500);
}

static struct srv_req *run(enum srv_method m, const char *path)
{
	struct srv_req *req = srv_req_new(NULL, NULL);

	req->method = m;
	bh_strlcpy(req->path, path, sizeof(req->path));
	srv_dispatch(req);
	return req;
}

static void test_dispatch(void **state)
{
	struct srv_req *req;

	req = run(SRV_GET, "/nope");
	assert_int_equal(req->status, 404);
	assert_string_equal(req->out.data, "{\"message\":\"page not found\"}\n");
	srv_req_unref(req);

	req = run(SRV_GET, "/v1.43/_ping");
	assert_int_equal(req->status, 200);
	assert_string_equal(req->out.data, "OK");
	assert_string_equal(req->path, "/_ping");
	srv_req_unref(req);

	req = run(SRV_HEAD, "/_ping");
	assert_int_equal(req->status, 200);
	assert_int_equal(req->out.len, 0);
	srv_req_unref(req);

	req = run(SRV_POST, "/_ping");
	assert_int_equal(req->status, 405);
	assert_string_equal(req->headers[0].name, "Allow");
	assert_string_equal(req->headers[0].value, "GET, HEAD");
	srv_req_unref(req);

	req = run(SRV_GET, "/v1.99/_ping");
	assert_int_equal(req->status, 400);
	assert_non_null(strstr(req->out.data, "too new"));
	srv_req_unref(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_static_and_params),
	    cmocka_unit_test(test_not_found_and_bad_method),
	    cmocka_unit_test(test_param_too_long),
	    cmocka_unit_test(test_version_strip),
	    cmocka_unit_test(test_err_status),
	    cmocka_unit_test(test_dispatch),
	};
	bh_log_set_level(BH_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
