/* Mutual TLS end to end, in process: a berthd loop on 127.0.0.1 with a
 * PKI from certs/, libcurl as the client.  Regression tests for STACK.md's
 * trap (lws accepts client certs OpenSSL rejected) and for server certs
 * used to log in as a client; SIGHUP reload without dropping the listener. */
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
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/certs.h"
#include "server/server-internal.h"

static struct srv_server srv;
static int sig_pipe[2];
static char dir[64];
static pthread_t loop_thread;
static int port;

static char *path(const char *a, const char *b)
{
	static char bufs[8][256];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, 256, "%s/%s/%s", dir, a, b);
	return p;
}

static void copy_file(const char *from, const char *to)
{
	struct bh_err err;
	char *data;
	size_t len;

	assert_int_equal(bh_read_file(from, 1 << 20, &data, &len, &err), 0);
	assert_int_equal(bh_write_file_atomic(to, data, len, 0600, &err), 0);
	free(data);
}

static void send_signal(int signo)
{
	struct signalfd_siginfo si;

	memset(&si, 0, sizeof(si));
	si.ssi_signo = (uint32_t)signo;
	assert_int_equal(write(sig_pipe[1], &si, sizeof(si)), (ssize_t)sizeof(si));
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	bh_buf_append(arg, p, size * n);
	return size * n;
}

/* GET path as the client whose cert/key live in client_dir (NULL: none),
 * trusting the CA in ca_dir. */
static CURLcode get(const char *client_dir, const char *ca_dir, const char *url_path, long *status,
                    struct bh_buf *out)
{
	CURL *c = curl_easy_init();
	char url[128];
	CURLcode rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, url_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, path(ca_dir, "ca.pem"));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (client_dir) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, path(client_dir, "cert.pem"));
		curl_easy_setopt(c, CURLOPT_SSLKEY, path(client_dir, "key.pem"));
	}
	*status = 0;
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	return rc;
}

static void write_pem(const char *file, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	if (cert)
		assert_int_equal(PEM_write_X509(f, cert), 1);
	else
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static EVP_PKEY *read_key(const char *file)
{
	FILE *f = fopen(file, "r");
	EVP_PKEY *k;

	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

static X509 *read_cert(const char *file)
{
	FILE *f = fopen(file, "r");
	X509 *c;

	assert_non_null(f);
	c = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(c);
	return c;
}

/* A clientAuth cert from the right CA whose validity ended yesterday
 * (certs/ refuses to issue one, so OpenSSL makes it here). */
static void make_expired_client(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *ca_key = read_key(path("pki", "ca-key.pem"));
	X509 *ca = read_cert(path("pki", "ca.pem")), *x = X509_new();
	X509_EXTENSION *eku;
	struct bh_err err;

	assert_non_null(key);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), -86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"expired", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_pubkey(x, key);
	eku = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "clientAuth");
	X509_add_ext(x, eku, -1);
	X509_EXTENSION_free(eku);
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	assert_int_equal(bh_mkdir_p(path("expired", ""), 0700, &err), 0);
	write_pem(path("expired", "cert.pem"), x, NULL);
	write_pem(path("expired", "key.pem"), NULL, key);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

static void *loop_main(void *arg)
{
	srv_lws_run(&srv);
	return NULL;
}

static void make_pki(const char *name)
{
	struct pki_init_opts o = {0};
	struct bh_err err;

	o.dir = path(name, "");
	if (pki_init(&o, &err) < 0)
		fail_msg("pki_init: %s", err.msg);
}

static int setup(void **state)
{
	struct bh_err err;
	const char *colon;

	snprintf(dir, sizeof(dir), "%s/berthd-tls-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	make_pki("pki");
	make_pki("other");
	/* A "client" that presents the server's own certificate. */
	assert_int_equal(bh_mkdir_p(path("as-server", ""), 0700, &err), 0);
	copy_file(path("pki", "server-cert.pem"), path("as-server", "cert.pem"));
	copy_file(path("pki", "server-key.pem"), path("as-server", "key.pem"));
	make_expired_client();
	assert_int_equal(pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	memset(&srv, 0, sizeof(srv));
	srv_config_init(&srv.cfg);
	srv.cfg.listen[0] = bh_strdup("tcp://127.0.0.1:0");
	srv.cfg.n_listen = 1;
	srv.cfg.tls_dir = bh_asprintf("%s/pki", dir);
	srv.cfg.data_root = bh_strdup(dir);
	srv.cfg.exec_root = bh_strdup(dir);
	srv.cfg.log_level = BH_LOG_ERROR;
	srv.sigfd = sig_pipe[0];
	if (srv_lws_start(&srv, &err) < 0)
		fail_msg("start: %s", err.msg);
	colon = strrchr(srv.listeners[0].url, ':');
	assert_non_null(colon);
	port = atoi(colon + 1);
	assert_true(port > 0);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	struct bh_err err;

	send_signal(SIGTERM);
	pthread_join(loop_thread, NULL);
	srv_lws_stop(&srv);
	srv_config_free(&srv.cfg);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	assert_int_equal(bh_rm_rf(dir, &err), 0);
	return 0;
}

static void test_admin_cert_accepted(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1 << 20);
	assert_int_equal(get("pki", "pki", "/info", &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_non_null(strstr(out.data, "\"Type\":\"tls\",\"CommonName\":\"admin\""));
	bh_buf_free(&out);
}

static void test_no_client_cert_refused(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1024);
	assert_int_not_equal(get(NULL, "pki", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 0);
	bh_buf_free(&out);
}

/* STACK.md: without our verify callback lws accepted certs from any CA. */
static void test_foreign_ca_client_cert_refused(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1024);
	assert_int_not_equal(get("other", "pki", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 0);
	bh_buf_free(&out);
}

/* STACK.md: lws also accepted expired client certs. */
static void test_expired_client_cert_refused(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1024);
	assert_int_not_equal(get("expired", "pki", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 0);
	bh_buf_free(&out);
}

/* The server's key must not log in as a client (EKU serverAuth only). */
static void test_server_cert_as_client_refused(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1024);
	assert_int_not_equal(get("as-server", "pki", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 0);
	bh_buf_free(&out);
}

static void test_check_dir_names_the_file(void **state)
{
	struct bh_err err;

	assert_int_equal(srv_tls_check_dir(path("pki", ""), &err), 0);
	assert_int_equal(bh_mkdir_p(path("bad", ""), 0700, &err), 0);
	copy_file(path("pki", "ca.pem"), path("bad", "ca.pem"));
	copy_file(path("pki", "server-cert.pem"), path("bad", "server-cert.pem"));
	copy_file(path("other", "server-key.pem"), path("bad", "server-key.pem"));
	assert_true(srv_tls_check_dir(path("bad", ""), &err) < 0);
	assert_non_null(strstr(err.msg, "bad/server-key.pem does not match"));
	unlink(path("bad", "ca.pem"));
	assert_true(srv_tls_check_dir(path("bad", ""), &err) < 0);
	assert_non_null(strstr(err.msg, "ca.pem"));
}

/* Bad material on SIGHUP changes nothing; good material is used by the
 * next connection on the same listener. */
static void test_sighup_reload(void **state)
{
	struct bh_buf out;
	long status;

	bh_buf_init(&out, 1 << 20);
	copy_file(path("other", "server-key.pem"), path("pki", "server-key.pem"));
	send_signal(SIGHUP);
	assert_int_equal(get("pki", "pki", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 200);

	copy_file(path("other", "ca.pem"), path("pki", "ca.pem"));
	copy_file(path("other", "server-cert.pem"), path("pki", "server-cert.pem"));
	copy_file(path("other", "server-key.pem"), path("pki", "server-key.pem"));
	send_signal(SIGHUP);
	/* The old client (and the old server CA) no longer fit ... */
	assert_int_not_equal(get("pki", "other", "/_ping", &status, &out), CURLE_OK);
	/* ... the new ones do, on the same port. */
	bh_buf_reset(&out);
	assert_int_equal(get("other", "other", "/_ping", &status, &out), CURLE_OK);
	assert_int_equal(status, 200);
	assert_string_equal(out.data, "OK");
	bh_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admin_cert_accepted),
	    cmocka_unit_test(test_no_client_cert_refused),
	    cmocka_unit_test(test_foreign_ca_client_cert_refused),
	    cmocka_unit_test(test_server_cert_as_client_refused),
	    cmocka_unit_test(test_expired_client_cert_refused),
	    cmocka_unit_test(test_check_dir_names_the_file),
	    cmocka_unit_test(test_sighup_reload), /* last: it swaps the PKI */
	};
	int r;

	signal(SIGPIPE, SIG_IGN);
	bh_log_set_level(BH_LOG_ERROR);
	unsetenv("CURL_CA_BUNDLE");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return r;
}
