/* client/http.c: requests over a unix socket against an in-process fake
 * daemon (one thread), the one-connection rule, body limits, streaming,
 * the daemon's error messages, and the libcurl error -> message mapping. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "client/client-internal.h"

struct fake {
	char dir[64];
	char sock[128];
	char host[160];
	int listen_fd;
	int stop[2];
	pthread_t thread;
	int accepts; /* connections the fake saw */
	int requests;
	char last_request[8192]; /* headers and body of the last request */
};

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int reply(int fd, int status, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head),
	         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	         status, strlen(body));
	if (send_all(fd, head, strlen(head)) < 0)
		return -1;
	return send_all(fd, body, strlen(body));
}

static int reply_big(int fd, size_t size)
{
	static char chunk[65536];
	char head[128];

	memset(chunk, 'x', sizeof(chunk));
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
	if (send_all(fd, head, strlen(head)) < 0)
		return -1;
	while (size > 0) {
		size_t n = size < sizeof(chunk) ? size : sizeof(chunk);
		if (send_all(fd, chunk, n) < 0)
			return -1; /* the client gave up: expected for /big */
		size -= n;
	}
	return 0;
}

static int route(struct fake *f, int fd, const char *req)
{
	if (strncmp(req, "GET /v1.43/version ", 19) == 0)
		return reply(fd, 200, "{\"Version\":\"fake-1\"}");
	if (strstr(req, " /v1.43/echo") != NULL)
		return reply(fd, 200, "{}");
	if (strstr(req, " /v1.43/missing ") != NULL)
		return reply(fd, 404, "{\"message\":\"no such \\u001b[31mthing\"}");
	if (strstr(req, " /v1.43/boom ") != NULL)
		return reply(fd, 500, "{\"message\":\"exploded\"}");
	if (strstr(req, " /v1.43/plain ") != NULL)
		return reply(fd, 403, "not json");
	if (strstr(req, " /v1.43/notjson ") != NULL)
		return reply(fd, 200, "<html>");
	if (strstr(req, " /v1.43/big ") != NULL)
		return reply_big(fd, CLI_BODY_MAX + 1);
	if (strstr(req, " /v1.43/stream ") != NULL)
		return reply_big(fd, 300000);
	return reply(fd, 404, "{\"message\":\"page not found\"}");
}

/* read() that gives up when the test stops the fake (a failed assertion
 * can leave the client's connection open). */
static ssize_t read_or_stop(struct fake *f, int fd, char *buf, size_t n)
{
	struct pollfd p[2] = {{fd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};

	if (poll(p, 2, -1) < 0 || p[1].revents)
		return -1;
	return read(fd, buf, n);
}

/* Reads one request (headers, then Content-Length bytes of body). */
static int read_request(struct fake *f, int fd, char *buf, size_t cap)
{
	size_t len = 0;
	char *end = NULL, *cl;
	long body = 0;

	while (end == NULL) {
		ssize_t n = read_or_stop(f, fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	cl = strstr(buf, "Content-Length: ");
	if (cl != NULL && cl < end)
		body = strtol(cl + 16, NULL, 10);
	while ((long)len < (end + 4 - buf) + body) {
		ssize_t n = read_or_stop(f, fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return 0;
}

static void serve_conn(struct fake *f, int fd)
{
	char req[8192];

	while (read_request(f, fd, req, sizeof(req)) == 0) {
		f->requests++;
		memcpy(f->last_request, req, sizeof(req));
		if (route(f, fd, req) < 0)
			break;
	}
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p[2] = {{f->listen_fd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			int fd = accept(f->listen_fd, NULL, NULL);
			if (fd < 0)
				continue;
			f->accepts++;
			serve_conn(f, fd); /* one connection at a time is all a CLI needs */
		}
	}
	return NULL;
}

static int setup(void **state)
{
	struct fake *f = bh_calloc(1, sizeof(*f));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-cli-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/d.sock", f->dir);
	snprintf(f->host, sizeof(f->host), "unix://%s", f->sock);
	bh_strlcpy(sa.sun_path, f->sock, sizeof(sa.sun_path));
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 8), 0);
	assert_int_equal(pipe(f->stop), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	*state = f;
	return 0;
}

/* Joins the fake; call after the client has closed its connection. */
static void fake_stop(struct fake *f)
{
	if (f->stop[1] < 0)
		return;
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->stop[1]);
	f->stop[1] = -1;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	struct bh_err err;

	fake_stop(f);
	close(f->stop[0]);
	close(f->listen_fd);
	assert_int_equal(bh_rm_rf(f->dir, &err), 0);
	free(f);
	return 0;
}

static void target_for(struct fake *f, struct ctx_target *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "t";
	t->host = f->host;
}

static void test_one_connection_many_requests(void **state)
{
	struct fake *f = *state;
	struct ctx_target t;
	struct cli_http *h;
	struct bh_buf body;
	struct bh_err err = {0};
	struct cli_http_req get = {.method = "GET", .path = "/version"};
	static const char payload[] = "{\"Image\":\"busybox\"}";
	struct cli_http_req post = {
	    .method = "POST", .path = "/echo", .body = payload, .body_len = sizeof(payload) - 1};
	struct cli_http_req del = {.method = "DELETE", .path = "/echo?force=1"};

	target_for(f, &t);
	assert_int_equal(cli_http_open(&t, &h, &err), 0);
	assert_int_equal(cli_http_do(h, &get, &body, &err), 200);
	assert_string_equal(body.data, "{\"Version\":\"fake-1\"}");
	bh_buf_free(&body);

	assert_int_equal(cli_http_do(h, &post, &body, &err), 200);
	bh_buf_free(&body);
	assert_non_null(strstr(f->last_request, "POST /v1.43/echo HTTP/1.1\r\n"));
	assert_non_null(strstr(f->last_request, "Content-Length: 19\r\n"));
	assert_non_null(strstr(f->last_request, "Content-Type: application/json\r\n"));
	assert_null(strstr(f->last_request, "Transfer-Encoding"));
	assert_null(strstr(f->last_request, "Expect:"));
	assert_non_null(strstr(f->last_request, payload));

	assert_int_equal(cli_http_do(h, &del, &body, &err), 200);
	bh_buf_free(&body);
	assert_non_null(strstr(f->last_request, "DELETE /v1.43/echo?force=1 HTTP/1.1\r\n"));
	cli_http_close(h);
	fake_stop(f);
	assert_int_equal(f->requests, 3);
	assert_int_equal(f->accepts, 1);
}

static void test_body_limit(void **state)
{
	struct fake *f = *state;
	struct ctx_target t;
	struct cli_http *h;
	struct bh_buf body;
	struct bh_err err = {0};
	struct cli_http_req big = {.method = "GET", .path = "/big"};

	target_for(f, &t);
	assert_int_equal(cli_http_open(&t, &h, &err), 0);
	assert_int_equal(cli_http_do(h, &big, &body, &err), -1);
	assert_non_null(strstr(err.msg, "larger than"));
	assert_null(body.data);
	cli_http_close(h);
}

struct counter {
	size_t bytes;
	size_t stop_after;
};

static int count_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct counter *c = arg;

	c->bytes += len;
	if (c->stop_after && c->bytes >= c->stop_after)
		return bh_err_set(err, ECANCELED, "sink had enough");
	return 0;
}

static void test_stream(void **state)
{
	struct fake *f = *state;
	struct ctx_target t;
	struct cli_http *h;
	struct bh_err err = {0};
	struct cli_http_req rq = {.method = "GET", .path = "/stream"};
	struct counter c = {0};

	target_for(f, &t);
	assert_int_equal(cli_http_open(&t, &h, &err), 0);
	assert_int_equal(cli_http_stream(h, &rq, count_sink, &c, &err), 200);
	assert_int_equal(c.bytes, 300000);
	c = (struct counter){0, 1000};
	assert_int_equal(cli_http_stream(h, &rq, count_sink, &c, &err), -1);
	assert_string_equal(err.msg, "sink had enough");
	cli_http_close(h);
}

static void cli_for(struct fake *f, struct cli *cli)
{
	memset(cli, 0, sizeof(*cli));
	cli->host = f->host;
	cli->config_dir = f->dir;
}

static void test_api_errors(void **state)
{
	struct fake *f = *state;
	struct cli cli;
	json_t *j = NULL;

	cli_for(f, &cli);
	assert_int_equal(cli_api_get_json(&cli, "/version", &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "Version")), "fake-1");
	json_decref(j);

	assert_int_equal(cli_api_get_json(&cli, "/missing", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_CMD);
	assert_non_null(strstr(cli.err.msg, " (from -H): ")); /* names the daemon */
	assert_non_null(strstr(cli.err.msg, "no such ?[31mthing")); /* no raw ESC */

	assert_int_equal(cli_api_get_json(&cli, "/boom", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_DAEMON);
	assert_non_null(strstr(cli.err.msg, ": exploded"));

	assert_int_equal(cli_api_get_json(&cli, "/plain", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_CMD);
	assert_non_null(strstr(cli.err.msg, "HTTP 403"));

	assert_int_equal(cli_api_get_json(&cli, "/notjson", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_DAEMON);
	assert_non_null(strstr(cli.err.msg, "not JSON"));
	cli_conn_free(&cli);
	fake_stop(f);
	assert_int_equal(f->accepts, 1);
}

static void test_cannot_connect(void **state)
{
	struct fake *f = *state;
	struct cli cli;
	char host[200];
	json_t *j = NULL;

	cli_for(f, &cli);
	snprintf(host, sizeof(host), "unix://%s/nobody.sock", f->dir);
	cli.host = host;
	assert_int_equal(cli_api_get_json(&cli, "/version", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_DAEMON);
	assert_non_null(strstr(cli.err.msg, "cannot connect to berthd at unix://"));
	assert_non_null(strstr(cli.err.msg, "no such socket"));
	cli_conn_free(&cli);

	cli_for(f, &cli);
	cli.host = NULL;
	cli.context = "ghost";
	assert_int_equal(cli_api_get_json(&cli, "/version", &j), -1);
	assert_int_equal(cli.exit_code, CLI_EXIT_CMD);
	assert_string_equal(cli.err.msg,
	                    "context \"ghost\" not found (berth context ls lists them)");
	cli_conn_free(&cli);
}

static void expect(int code, long os_errno, const char *errbuf, const char *host, const char *want)
{
	char out[512];

	cli_http_describe(code, os_errno, errbuf, host, out, sizeof(out));
	if (strstr(out, want) == NULL)
		fail_msg("curl %d \"%s\": got \"%s\", want \"%s\"", code, errbuf, out, want);
}

static void test_describe(void **state)
{
	const char *h = "tcp://127.0.0.1:7443";

	expect(CURLE_COULDNT_CONNECT, ECONNREFUSED, "Failed to connect", h,
	       "cannot connect to berthd at tcp://127.0.0.1:7443: connection refused (is the "
	       "daemon running?)");
	expect(CURLE_PEER_FAILED_VERIFICATION, 0,
	       "SSL certificate problem: unable to get local issuer certificate", h,
	       "server certificate not signed by the context's CA");
	expect(CURLE_PEER_FAILED_VERIFICATION, 0,
	       "SSL certificate problem: self-signed certificate in certificate chain", h,
	       "not signed by the context's CA");
	expect(CURLE_PEER_FAILED_VERIFICATION, 0,
	       "SSL certificate problem: certificate has expired", h, "certificate has expired");
	expect(CURLE_PEER_FAILED_VERIFICATION, 0,
	       "SSL: no alternative certificate subject name matches target host name '127.0.0.2'",
	       h, "wrong host name");
	expect(CURLE_RECV_ERROR, 0,
	       "OpenSSL SSL_read: error:0A000418:SSL routines::tlsv1 alert unknown ca, errno 0", h,
	       "refused our client certificate (not signed by a CA the daemon trusts)");
	expect(CURLE_SSL_CONNECT_ERROR, 0,
	       "OpenSSL/3.0.11: error:0A000415:SSL routines::sslv3 alert certificate expired", h,
	       "refused our client certificate (it has expired)");
	expect(CURLE_SEND_ERROR, 107, "getpeername() failed with errno 107", h,
	       "most likely refused our client certificate");
	expect(CURLE_SSL_CERTPROBLEM, 0, "could not load PEM client certificate", h,
	       "cannot use the client certificate");
	expect(CURLE_COULDNT_CONNECT, EACCES, "", "unix:///run/berth/berthd.sock",
	       "permission denied");
	expect(CURLE_GOT_NOTHING, 0, "Empty reply from server", "unix:///x.sock",
	       "closed the connection: Empty reply");
	expect(CURLE_OPERATION_TIMEDOUT, 0, "", h, "timed out");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_connection_many_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cannot_connect, setup, teardown),
	    cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
