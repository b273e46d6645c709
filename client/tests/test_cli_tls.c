/* client/http.c over mutual TLS against an in-process OpenSSL server: the
 * context's CA is the only trust anchor (not the system store, not
 * SSL_CERT_FILE), the host name is checked, our client cert is sent, and
 * each failure becomes its one-line hint. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "certs/certs.h"
#include "client/client-internal.h"

static char pki_a[64], pki_b[64]; /* two unrelated CAs */

struct tls_fake {
	SSL_CTX *ctx;
	int listen_fd;
	int port;
	int stop[2];
	pthread_t thread;
	int served;
};

static void make_pki(char *dir)
{
	struct pki_init_opts o = {0};
	struct bh_err err = {0};

	snprintf(dir, 64, "/tmp/berth-cli-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	o.dir = dir;
	o.force = true;
	if (pki_init(&o, &err) < 0)
		fail_msg("pki_init: %s", err.msg);
}

static char *in(const char *dir, const char *file)
{
	return bh_path_join(dir, file);
}

static void serve_one(struct tls_fake *f, int fd)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                           "Content-Length: 15\r\n\r\n{\"Version\":\"t\"}";
	SSL *ssl = SSL_new(f->ctx);
	char buf[4096];
	int n, got = 0;

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		while ((n = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got)) > 0) {
			got += n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n") != NULL)
				break;
		}
		if (n > 0 && SSL_write(ssl, resp, (int)sizeof(resp) - 1) > 0)
			f->served++;
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
}

static void *fake_main(void *arg)
{
	struct tls_fake *f = arg;

	for (;;) {
		struct pollfd p[2] = {{f->listen_fd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			int fd = accept(f->listen_fd, NULL, NULL);
			if (fd >= 0)
				serve_one(f, fd);
		}
	}
	return NULL;
}

/* A server with the certs of pki_dir (server-cert.pem) that wants client
 * certs signed by client_ca_dir's CA, listening on addr (a loopback address). */
static void fake_start(struct tls_fake *f, const char *pki_dir, const char *client_ca_dir,
                       const char *addr)
{
	cleanup_free char *cert = in(pki_dir, "server-cert.pem");
	cleanup_free char *key = in(pki_dir, "server-key.pem");
	cleanup_free char *ca = in(client_ca_dir, "ca.pem");
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate_file(f->ctx, cert, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(f->ctx, key, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_load_verify_locations(f->ctx, ca, NULL), 1);
	SSL_CTX_set_verify(f->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&sa, &len), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pipe(f->stop), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct tls_fake *f)
{
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->listen_fd);
	SSL_CTX_free(f->ctx);
}

/* One GET /version with the client material of tls_dir; returns the status
 * or -1 with err filled. */
static int get_version(const char *addr, int port, const char *tls_dir, struct bh_err *err)
{
	cleanup_free char *host = bh_asprintf("tcp://%s:%d", addr, port);
	struct ctx_target t = {.name = "t", .host = host};
	struct cli_http_req rq = {.method = "GET", .path = "/version"};
	struct cli_http *h;
	struct bh_buf body;
	int r;

	t.tls.ca = in(tls_dir, "ca.pem");
	t.tls.cert = in(tls_dir, "cert.pem");
	t.tls.key = in(tls_dir, "key.pem");
	assert_int_equal(ctx_target_read_pem(&t, err), 0); /* as ctx_resolve does */
	assert_int_equal(cli_http_open(&t, &h, err), 0);
	r = cli_http_do(h, &rq, &body, err);
	if (r >= 0) {
		assert_string_equal(body.data, "{\"Version\":\"t\"}");
		bh_buf_free(&body);
	}
	cli_http_close(h);
	ctx_tls_free(&t.tls);
	free(t.pem.ca);
	free(t.pem.cert);
	free(t.pem.key);
	return r;
}

static void test_mtls_ok(void **state)
{
	struct tls_fake f;
	struct bh_err err = {0};

	fake_start(&f, pki_a, pki_a, "127.0.0.1");
	assert_int_equal(get_version("127.0.0.1", f.port, pki_a, &err), 200);
	fake_stop(&f);
	assert_int_equal(f.served, 1);
}

/* The daemon's cert comes from another CA; SSL_CERT_FILE names that CA, so a
 * client that fell back to OpenSSL's default trust would accept it. */
static void test_foreign_server_ca_refused(void **state)
{
	struct tls_fake f;
	struct bh_err err = {0};
	cleanup_free char *ca_b = in(pki_b, "ca.pem");

	setenv("SSL_CERT_FILE", ca_b, 1);
	setenv("CURL_CA_BUNDLE", ca_b, 1);
	fake_start(&f, pki_b, pki_a, "127.0.0.1");
	assert_int_equal(get_version("127.0.0.1", f.port, pki_a, &err), -1);
	assert_non_null(strstr(err.msg, "server certificate not signed by the context's CA"));
	fake_stop(&f);
	unsetenv("SSL_CERT_FILE");
	unsetenv("CURL_CA_BUNDLE");
	assert_int_equal(f.served, 0);
}

static void test_wrong_host_name(void **state)
{
	struct tls_fake f;
	struct bh_err err = {0};

	/* 127.0.0.2 is loopback too, but not among the cert's SANs. */
	fake_start(&f, pki_a, pki_a, "127.0.0.2");
	assert_int_equal(get_version("127.0.0.2", f.port, pki_a, &err), -1);
	assert_non_null(strstr(err.msg, "wrong host name"));
	fake_stop(&f);
	assert_int_equal(f.served, 0);
}

static void test_client_cert_refused(void **state)
{
	struct tls_fake f;
	struct bh_err err = {0};
	char dir[64];
	cleanup_free char *ca_a = in(pki_a, "ca.pem");
	cleanup_free char *ca_mixed = NULL, *cert_b = in(pki_b, "cert.pem");
	cleanup_free char *key_b = in(pki_b, "key.pem"), *cert_m = NULL, *key_m = NULL;
	cleanup_free char *data = NULL;
	size_t len;

	/* Trusts the right server CA, but presents a client cert of CA B. */
	snprintf(dir, sizeof(dir), "/tmp/berth-cli-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	ca_mixed = in(dir, "ca.pem");
	cert_m = in(dir, "cert.pem");
	key_m = in(dir, "key.pem");
	assert_int_equal(bh_read_file(ca_a, 1 << 20, &data, &len, &err), 0);
	assert_int_equal(bh_write_file_atomic(ca_mixed, data, len, 0644, &err), 0);
	free(data);
	assert_int_equal(bh_read_file(cert_b, 1 << 20, &data, &len, &err), 0);
	assert_int_equal(bh_write_file_atomic(cert_m, data, len, 0644, &err), 0);
	free(data);
	assert_int_equal(bh_read_file(key_b, 1 << 20, &data, &len, &err), 0);
	assert_int_equal(bh_write_file_atomic(key_m, data, len, 0600, &err), 0);

	fake_start(&f, pki_a, pki_a, "127.0.0.1");
	assert_int_equal(get_version("127.0.0.1", f.port, dir, &err), -1);
	assert_non_null(strstr(err.msg, "client certificate"));
	fake_stop(&f);
	assert_int_equal(f.served, 0);
	assert_int_equal(bh_rm_rf(dir, &err), 0);
}

static int group_setup(void **state)
{
	make_pki(pki_a);
	make_pki(pki_b);
	return 0;
}

static int group_teardown(void **state)
{
	struct bh_err err;

	bh_rm_rf(pki_a, &err);
	bh_rm_rf(pki_b, &err);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mtls_ok),
	    cmocka_unit_test(test_foreign_server_ca_refused),
	    cmocka_unit_test(test_wrong_host_name),
	    cmocka_unit_test(test_client_cert_refused),
	};

	/* The fake writes alerts to clients that already hung up. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
