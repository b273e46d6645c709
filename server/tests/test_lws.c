/* The lws glue end to end, in process: berthd's loop on a unix socket in a
 * thread, libcurl as the client.  Proves request bodies, multi-piece
 * replies, srv_defer through lws_cancel_service, streams fed from another
 * thread, the client-gone path, 411/413, and the graceful stop. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "server/server-internal.h"

static struct srv_server srv;
static int sig_pipe[2];    /* stands in for the signalfd */
static int closed_pipe[2]; /* the server tells the test a client left */
static char dir[64];
static char sock_path[128];
static pthread_t loop_thread;
static bool loop_joined;

/* ---- test handlers --------------------------------------------------------- */

static int h_body(struct srv_req *req, struct bh_err *err)
{
	unsigned long sum = 0;

	for (size_t i = 0; i < req->body.len; i++)
		sum = sum * 31 + (unsigned char)req->body.data[i];
	srv_reply_json(req, 200,
	               json_pack("{s:I, s:I}", "len", (json_int_t)req->body.len, "sum",
	                         (json_int_t)(sum & 0xffffffff)));
	return 0;
}

static int h_big(struct srv_req *req, struct bh_err *err)
{
	size_t len = 300 * 1024 + 7;
	char *data = malloc(len);

	for (size_t i = 0; i < len; i++)
		data[i] = (char)('a' + i % 26);
	srv_reply_text(req, 200, "text/plain", data, len);
	free(data);
	return 0;
}

static int work_answer(void *arg, struct bh_err *err)
{
	*(int *)arg = 42;
	return 0;
}

static void done_answer(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	char text[16];

	snprintf(text, sizeof(text), "%d", *(int *)arg);
	srv_reply_text(req, 200, "text/plain", text, strlen(text));
	free(arg);
}

static int h_deferred(struct srv_req *req, struct bh_err *err)
{
	srv_defer(req, work_answer, done_answer, calloc(1, sizeof(int)));
	return 0;
}

static void stream_piece(struct srv_req *req, void *arg)
{
	struct bh_err err;

	srv_stream_write(req, arg, strlen(arg), &err);
}

static void stream_last(struct srv_req *req, void *arg)
{
	srv_stream_end(req);
	srv_req_unref(req); /* the producer's reference */
}

static void *producer(void *arg)
{
	static const char *const pieces[] = {"one\n", "two\n", "three\n"};

	for (size_t i = 0; i < 3; i++)
		srv_call_on_loop(arg, stream_piece, (void *)pieces[i]);
	srv_call_on_loop(arg, stream_last, NULL);
	return NULL;
}

static int h_stream(struct srv_req *req, struct bh_err *err)
{
	pthread_t t;

	srv_stream_begin(req, 200, "text/plain");
	srv_req_ref(req);
	pthread_create(&t, NULL, producer, req);
	pthread_detach(t);
	return 0;
}

static void on_client_gone(struct srv_req *req, void *arg)
{
	char c = 1;

	assert_int_equal(write(closed_pipe[1], &c, 1), 1);
}

static int h_hold(struct srv_req *req, struct bh_err *err)
{
	srv_stream_begin(req, 200, "text/plain");
	req->on_close = on_client_gone;
	return 0;
}

/* /held: a stream that ends only when the test says so (graceful stop). */
static int started_pipe[2];
static struct srv_req *held;

static int h_held(struct srv_req *req, struct bh_err *err)
{
	char c = 1;

	srv_stream_begin(req, 200, "text/plain");
	srv_req_ref(req);
	held = req;
	assert_int_equal(write(started_pipe[1], &c, 1), 1);
	return 0;
}

static const struct srv_route test_routes[] = {
    {SRV_POST, "/body", h_body, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/big", h_big, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/deferred", h_deferred, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/stream", h_stream, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/hold", h_hold, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/_ping", srv_h_ping, 0, SRV_ROLE_ENROLL},
    {SRV_GET, "/held", h_held, 0, SRV_ROLE_ENROLL},
    {SRV_POST, "/small", h_body, 10, SRV_ROLE_ENROLL},
};

/* ---- client -------------------------------------------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	bh_buf_append(arg, p, size * n);
	return size * n;
}

static CURLcode request(const char *method, const char *path, const char *body, long body_len,
                        long timeout_ms, long *status, struct bh_buf *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[256];
	CURLcode rc;

	snprintf(url, sizeof(url), "http://berthd%s", path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (body_len >= 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, body_len);
	}
	if (body_len == -2) { /* a body of unknown length: chunked */
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "abc");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* ---- fixture --------------------------------------------------------------------- */

static void *loop_main(void *arg)
{
	srv_lws_run(&srv);
	return NULL;
}

static int setup(void **state)
{
	struct bh_err err;

	snprintf(dir, sizeof(dir), "/tmp/berthd-lws-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/t.sock", dir);
	assert_int_equal(pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(closed_pipe, O_CLOEXEC), 0);
	assert_int_equal(pipe2(started_pipe, O_CLOEXEC), 0);
	memset(&srv, 0, sizeof(srv));
	srv_config_init(&srv.cfg);
	srv.cfg.listen[0] = bh_asprintf("unix://%s", sock_path);
	srv.cfg.n_listen = 1;
	srv.cfg.log_level = getenv("T_DEBUG") ? BH_LOG_DEBUG : BH_LOG_ERROR;
	srv.cfg.data_root = bh_strdup(dir);
	srv.cfg.exec_root = bh_strdup(dir);
	srv.sigfd = sig_pipe[0];
	srv.routes = test_routes;
	srv.n_routes = sizeof(test_routes) / sizeof(test_routes[0]);
	if (srv_lws_start(&srv, &err) < 0)
		fail_msg("start: %s", err.msg);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
	return 0;
}

static void send_sigterm(void)
{
	struct signalfd_siginfo si;

	memset(&si, 0, sizeof(si));
	si.ssi_signo = SIGTERM;
	assert_int_equal(write(sig_pipe[1], &si, sizeof(si)), (ssize_t)sizeof(si));
}

static int teardown(void **state)
{
	if (!loop_joined) {
		send_sigterm();
		pthread_join(loop_thread, NULL);
	}
	assert_true(srv.stopping);
	srv_lws_stop(&srv);
	srv_config_free(&srv.cfg);
	unlink(sock_path);
	rmdir(dir);
	for (int i = 0; i < 2; i++) {
		close(sig_pipe[i]);
		close(closed_pipe[i]);
		close(started_pipe[i]);
	}
	return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_ping(void **state)
{
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1 << 20);
	assert_int_equal(request("GET", "/v1.43/_ping", NULL, -1, 5000, &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_string_equal(out.data, "OK");
	bh_buf_free(&out);
}

static void test_body(void **state)
{
	size_t len = 300 * 1000 + 3;
	char *body = malloc(len);
	unsigned long sum = 0;
	char want[64];
	struct bh_buf out;
	long status = 0;

	for (size_t i = 0; i < len; i++) {
		body[i] = (char)(i * 7);
		sum = sum * 31 + (unsigned char)body[i];
	}
	bh_buf_init(&out, 1 << 20);
	assert_int_equal(request("POST", "/body", body, (long)len, 5000, &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	snprintf(want, sizeof(want), "{\"len\":%zu,\"sum\":%lu}\n", len, sum & 0xffffffff);
	assert_string_equal(out.data, want);
	bh_buf_free(&out);
	free(body);
}

static void test_body_limits(void **state)
{
	size_t len = SRV_BODY_MAX_DEFAULT + 1;
	char *body = calloc(1, len);
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1 << 20);
	request("POST", "/body", body, (long)len, 5000, &status, &out);
	assert_int_equal(status, 413);
	bh_buf_reset(&out);
	request("POST", "/body", NULL, -2, 5000, &status, &out);
	assert_int_equal(status, 411);
	bh_buf_reset(&out);
	request("POST", "/body", NULL, -1, 5000, &status, &out); /* no body, no length */
	assert_int_equal(status, 411);
	bh_buf_reset(&out);
	request("POST", "/small", "0123456789A", 11, 5000, &status, &out); /* the route's limit */
	assert_int_equal(status, 413);
	bh_buf_reset(&out);
	request("POST", "/small", "0123456789", 10, 5000, &status, &out);
	assert_int_equal(status, 200);
	bh_buf_reset(&out);
	request("POST", "/nowhere", body, (long)len, 5000, &status, &out); /* refused unread */
	assert_int_equal(status, 404);
	bh_buf_free(&out);
	free(body);
}

static void test_big_reply(void **state)
{
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1 << 20);
	assert_int_equal(request("GET", "/big", NULL, -1, 5000, &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_int_equal(out.len, 300 * 1024 + 7);
	assert_int_equal(out.data[out.len - 1], 'a' + (300 * 1024 + 6) % 26);
	bh_buf_free(&out);
}

static void test_deferred(void **state)
{
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1024);
	assert_int_equal(request("GET", "/deferred", NULL, -1, 5000, &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_string_equal(out.data, "42");
	bh_buf_free(&out);
}

static void test_stream(void **state)
{
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1024);
	assert_int_equal(request("GET", "/stream", NULL, -1, 5000, &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_string_equal(out.data, "one\ntwo\nthree\n");
	bh_buf_free(&out);
}

static void test_client_gone(void **state)
{
	struct bh_buf out;
	long status = 0;
	char c;

	bh_buf_init(&out, 1024);
	/* The stream never ends; the client gives up and the producer is told. */
	assert_int_equal(request("GET", "/hold", NULL, -1, 300, &status, &out),
	                 CURLE_OPERATION_TIMEDOUT);
	assert_int_equal(read(closed_pipe[0], &c, 1), 1);
	bh_buf_free(&out);
}

static void test_not_found(void **state)
{
	struct bh_buf out;
	long status = 0;

	bh_buf_init(&out, 1024);
	request("GET", "/nothing/here", NULL, -1, 5000, &status, &out);
	assert_int_equal(status, 404);
	assert_string_equal(out.data, "{\"message\":\"page not found\"}\n");
	bh_buf_free(&out);
}

struct held_client {
	CURLcode rc;
	long status;
	struct bh_buf out;
};

static void *held_client_main(void *arg)
{
	struct held_client *hc = arg;

	hc->rc = request("GET", "/held", NULL, -1, 10000, &hc->status, &hc->out);
	return NULL;
}

/* SIGTERM: the listener stops accepting at once, the request in flight
 * still completes, then the loop ends. */
static void test_graceful_stop(void **state)
{
	struct held_client hc = {0};
	struct bh_buf out;
	pthread_t t;
	long status = 0;
	char c;

	bh_buf_init(&hc.out, 1024);
	bh_buf_init(&out, 1024);
	assert_int_equal(pthread_create(&t, NULL, held_client_main, &hc), 0);
	assert_int_equal(read(started_pipe[0], &c, 1), 1);
	send_sigterm();
	/* The loop may serve a ping or two before it reads the signal: retry
	 * until the listener refuses (no sleeping, each try is a round trip). */
	for (int i = 0;
	     i < 1000 && request("GET", "/_ping", NULL, -1, 2000, &status, &out) == CURLE_OK; i++)
		bh_buf_reset(&out);
	assert_int_equal(request("GET", "/_ping", NULL, -1, 2000, &status, &out),
	                 CURLE_COULDNT_CONNECT);
	srv_call_on_loop(held, stream_piece, "bye\n");
	srv_call_on_loop(held, stream_last, NULL);
	pthread_join(t, NULL);
	assert_int_equal(hc.rc, CURLE_OK);
	assert_int_equal(hc.status, 200);
	assert_string_equal(hc.out.data, "bye\n");
	pthread_join(loop_thread, NULL); /* ends by itself: nothing in flight */
	loop_joined = true;
	bh_buf_free(&hc.out);
	bh_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping),          cmocka_unit_test(test_body),
	    cmocka_unit_test(test_body_limits),   cmocka_unit_test(test_big_reply),
	    cmocka_unit_test(test_deferred),      cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_client_gone),   cmocka_unit_test(test_not_found),
	    cmocka_unit_test(test_graceful_stop), /* last: it stops the server */
	};
	int r;

	signal(SIGPIPE, SIG_IGN);
	bh_log_set_level(getenv("T_DEBUG") ? BH_LOG_DEBUG : BH_LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return r;
}
