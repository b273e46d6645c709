/* certs enrollment tests: CSRs, the throwaway self-signed cert, CSR signing
 * (checked with the openssl binary, the real peer), key pins (against
 * openssl's computation) and tokens (round trip and hostile text). */
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs/certs.h"

extern char **environ;

static char tmpdir[256];

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/berth-enroll-XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	struct bh_err err;

	return bh_rm_rf(tmpdir, &err);
}

static char *tpath(const char *rel)
{
	return bh_path_join(tmpdir, rel);
}

/* sh -c cmd; its exit status, stdout+stderr in *out. */
static int sh(char **out, const char *cmd)
{
	const char *argv[] = {"sh", "-c", cmd, NULL};
	posix_spawn_file_actions_t fa;
	struct bh_buf b;
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	assert_int_equal(posix_spawnp(&pid, "sh", &fa, NULL, (char **)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	bh_buf_init(&b, 1 << 20);
	for (;;) {
		char chunk[4096];
		ssize_t r = read(fds[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		assert_int_equal(bh_buf_append(&b, chunk, (size_t)r), 0);
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (b.data == NULL)
		bh_buf_append(&b, "", 0);
	*out = b.data;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define assert_has(hay, needle)                                                                    \
	do {                                                                                       \
		if (strstr((hay), (needle)) == NULL)                                               \
			fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                       \
	} while (0)

static void put(const char *rel, const char *data)
{
	cleanup_free char *p = tpath(rel);
	struct bh_err err;

	if (bh_write_file_atomic(p, data, strlen(data), 0600, &err) < 0)
		fail_msg("%s", err.msg);
}

static void make_ca(void)
{
	cleanup_free char *dir = tpath("ca");
	struct pki_init_opts o = {.dir = dir};
	struct bh_err err;

	if (pki_init(&o, &err) < 0)
		fail_msg("pki_init: %s", err.msg);
}

static char *shf(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *shf(int *status, const char *fmt, ...)
{
	char cmd[2048];
	char *out = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	*status = sh(&out, cmd);
	return out;
}

/* ---- the client's kit ----------------------------------------------------------- */

static void test_kit_openssl(void **state)
{
	struct pki_enroll_kit kit;
	struct bh_err err;
	cleanup_free char *o1 = NULL, *o2 = NULL, *o3 = NULL;
	int st;

	make_ca();
	assert_int_equal(pki_enroll_kit_make("alice", &kit, &err), 0);
	put("csr.pem", kit.csr);
	put("self.pem", kit.self_cert);
	put("key.pem", kit.key);
	o1 = shf(&st, "cd %s && openssl req -in csr.pem -noout -verify -subject", tmpdir);
	assert_int_equal(st, 0);
	assert_has(o1, "CN = alice");
	/* What berthd's OpenSSL sees: a self-signed leaf (error 18), the
	 * one case it lets through while a token is pending. */
	o2 = shf(&st, "cd %s && openssl verify -CAfile ca/ca.pem self.pem", tmpdir);
	assert_int_not_equal(st, 0);
	assert_has(o2, "error 18 ");
	o3 = shf(&st, "cd %s && openssl x509 -in self.pem -noout -text", tmpdir);
	assert_int_equal(st, 0);
	assert_has(o3, "TLS Web Client Authentication");
	assert_has(o3, "CN = " PKI_ENROLL_CN);
	{
		cleanup_free char *c = tpath("self.pem"), *k = tpath("key.pem");
		assert_int_equal(pki_check_pair(c, k, &err), 0);
	}
	pki_enroll_kit_free(&kit);
	assert_null(kit.key);
}

/* ---- signing ------------------------------------------------------------------- */

static void test_sign_openssl(void **state)
{
	struct pki_enroll_kit kit;
	cleanup_free char *ca_dir = tpath("ca");
	cleanup_free char *cert = NULL, *ca = NULL;
	cleanup_free char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL;
	struct bh_err err;
	int st;

	make_ca();
	/* The CSR asks for "mallory"; the certificate names whom berthd says. */
	assert_int_equal(pki_enroll_kit_make("mallory", &kit, &err), 0);
	struct pki_csr_sign_opts o = {ca_dir, kit.csr, strlen(kit.csr), "alice", 5};
	if (pki_csr_sign(&o, &cert, &ca, &err) < 0)
		fail_msg("%s", err.msg);
	put("cert.pem", cert);
	put("key.pem", kit.key);
	o1 = shf(&st, "cd %s && openssl verify -CAfile ca/ca.pem -purpose sslclient cert.pem",
	         tmpdir);
	assert_int_equal(st, 0);
	o2 = shf(&st, "cd %s && openssl x509 -in cert.pem -noout -subject -text", tmpdir);
	assert_has(o2, "CN = alice");
	assert_null(strstr(o2, "mallory"));
	assert_has(o2, "TLS Web Client Authentication");
	assert_null(strstr(o2, "TLS Web Server Authentication"));
	/* 5 days: valid in 4, not in 6. */
	o3 = shf(&st, "cd %s && openssl x509 -in cert.pem -noout -checkend 345600", tmpdir);
	assert_int_equal(st, 0);
	o4 = shf(&st, "cd %s && openssl x509 -in cert.pem -noout -checkend 518400", tmpdir);
	assert_int_not_equal(st, 0);
	{
		cleanup_free char *c = tpath("cert.pem"), *k = tpath("key.pem");
		cleanup_free char *cafile = tpath("ca/ca.pem"), *ca_text = NULL;
		assert_int_equal(pki_check_pair(c, k, &err), 0);
		assert_int_equal(bh_read_file(cafile, 1 << 20, &ca_text, NULL, &err), 0);
		assert_string_equal(ca, ca_text);
	}
	/* what the client checks before writing a context */
	assert_int_equal(pki_cert_verify_pem(cert, ca, &err), 0);
	assert_int_equal(pki_cert_verify_pem(kit.self_cert, ca, &err), -1);
	assert_has(err.msg, "does not verify");
	pki_enroll_kit_free(&kit);
}

/* Flips one byte of the CSR's signature: proof of possession fails. */
static char *tamper(const char *pem)
{
	const char *b = strchr(pem, '\n') + 1, *e = strstr(pem, "-----END");
	struct bh_buf body;
	char *der = NULL, *b64, *out;
	size_t len = 0;

	bh_buf_init(&body, 1 << 16);
	for (const char *p = b; p < e; p++)
		if (*p != '\n')
			bh_buf_append(&body, p, 1);
	assert_int_equal(bh_base64_decode(body.data, 1 << 16, &der, &len), 0);
	der[len - 3] ^= 0x01;
	b64 = bh_base64_encode(der, len, false);
	out = bh_asprintf("-----BEGIN CERTIFICATE REQUEST-----\n%s\n"
	                  "-----END CERTIFICATE REQUEST-----\n",
	                  b64);
	free(b64);
	free(der);
	bh_buf_free(&body);
	return out;
}

static void test_sign_refuses(void **state)
{
	struct pki_enroll_kit kit;
	cleanup_free char *ca_dir = tpath("ca"), *key = tpath("ca/ca-key.pem");
	cleanup_free char *bad = NULL;
	char *cert = NULL, *ca = NULL;
	struct bh_err err;

	make_ca();
	assert_int_equal(pki_enroll_kit_make("alice", &kit, &err), 0);
	bad = tamper(kit.csr);
	struct pki_csr_sign_opts o = {ca_dir, bad, strlen(bad), "alice", 5};
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), -1);
	assert_has(err.msg, "signature does not verify");
	assert_null(cert);
	assert_int_equal(pki_csr_check(bad, strlen(bad), &err), -1);
	assert_int_equal(pki_csr_check(kit.csr, strlen(kit.csr), &err), 0);

	o.csr_pem = "garbage";
	o.csr_len = 7;
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), -1);
	assert_has(err.msg, "CSR");
	o.csr_pem = kit.csr;
	o.csr_len = strlen(kit.csr);
	o.days = 0;
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), -1);
	o.days = 5;
	o.name = "bad,name";
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), -1);
	o.name = "alice";
	/* Without the CA key there is nothing to sign with: ENOTSUP (501). */
	assert_int_equal(unlink(key), 0);
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), -1);
	assert_int_equal(err.code, ENOTSUP);
	assert_has(err.msg, "ca-key.pem is missing");
	pki_enroll_kit_free(&kit);
}

static void test_csr_for_key_file(void **state)
{
	cleanup_free char *key = tpath("ca/key.pem"), *ca_dir = tpath("ca");
	cleanup_free char *csr = NULL, *cert = NULL, *ca = NULL, *o1 = NULL;
	cleanup_free char *certp = tpath("renewed.pem");
	struct bh_err err;
	int st;

	make_ca();
	assert_int_equal(pki_csr_for_key_file(key, "admin", &csr, &err), 0);
	struct pki_csr_sign_opts o = {ca_dir, csr, strlen(csr), "admin", 2};
	assert_int_equal(pki_csr_sign(&o, &cert, &ca, &err), 0);
	put("renewed.pem", cert);
	/* The renewed cert goes with the key the client already had. */
	assert_int_equal(pki_check_pair(certp, key, &err), 0);
	o1 = shf(&st, "cd %s && openssl verify -CAfile ca/ca.pem renewed.pem", tmpdir);
	assert_int_equal(st, 0);
}

/* ---- pins ----------------------------------------------------------------------- */

static void test_pin_matches_openssl(void **state)
{
	cleanup_free char *srv = tpath("ca/server-cert.pem");
	cleanup_free char *out = NULL;
	char pin[PKI_PIN_LEN + 1];
	struct bh_err err;
	int st;

	make_ca();
	assert_int_equal(pki_spki_pin_file(srv, pin, &err), 0);
	out = shf(&st,
	          "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der | "
	          "openssl dgst -sha256 -binary | base64",
	          srv);
	assert_int_equal(st, 0);
	out[strcspn(out, "\n")] = '\0';
	assert_string_equal(pin, out);
}

/* ---- tokens --------------------------------------------------------------------- */

static void sample(struct pki_token *t)
{
	struct bh_err err;

	memset(t, 0, sizeof(*t));
	bh_strlcpy(t->name, "ci-runner", sizeof(t->name));
	bh_strlcpy(t->addrs[0], "127.0.0.1:7443", PKI_TOKEN_ADDR_MAX);
	bh_strlcpy(t->addrs[1], "[::1]:7443", PKI_TOKEN_ADDR_MAX);
	bh_strlcpy(t->addrs[2], "build1.example.org:7443", PKI_TOKEN_ADDR_MAX);
	t->n_addrs = 3;
	bh_strlcpy(t->pin, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", sizeof(t->pin));
	assert_int_equal(pki_token_secret_new(t->secret, &err), 0);
}

static void test_token_round_trip(void **state)
{
	struct pki_token t, back;
	cleanup_free char *text = NULL;
	struct bh_err err;
	uint8_t h1[32], h2[32];

	sample(&t);
	assert_int_equal(pki_token_encode(&t, &text, &err), 0);
	assert_true(bh_str_has_prefix(text, PKI_TOKEN_PREFIX));
	assert_null(strpbrk(text + strlen(PKI_TOKEN_PREFIX), "+/= \n"));
	assert_int_equal(pki_token_decode(text, &back, &err), 0);
	assert_string_equal(back.name, t.name);
	assert_int_equal(back.n_addrs, 3);
	assert_string_equal(back.addrs[1], "[::1]:7443");
	assert_string_equal(back.pin, t.pin);
	assert_string_equal(back.secret, t.secret);
	assert_int_equal(pki_token_secret_hash(t.secret, h1), 0);
	assert_int_equal(pki_token_secret_hash(back.secret, h2), 0);
	assert_memory_equal(h1, h2, 32);
	pki_token_wipe(&back);
	assert_string_equal(back.secret, "");
}

static char *encode_json(const char *json)
{
	char *b64 = bh_base64_encode(json, strlen(json), true);
	char *t = bh_asprintf("berth1-%s", b64);

	free(b64);
	return t;
}

static void test_token_hostile(void **state)
{
	static const char *const bad_json[] = {
	    "[]",
	    "{}",
	    "{\"n\":\"a\",\"a\":[\"127.0.0.1:1\"],\"p\":\"x\",\"s\":\"00\"}",
	    "{\"n\":\"a,b\",\"a\":[\"127.0.0.1:1\"],\"p\":\"47DEQpj8HBSa+/"
	    "TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	    "\",\"s\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
	    "{\"n\":\"a\",\"a\":[],\"p\":\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"s\":"
	    "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
	    "{\"n\":\"a\",\"a\":[\"127.0.0.1:0\"],\"p\":\"47DEQpj8HBSa+/"
	    "TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	    "\",\"s\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
	    "{\"n\":\"a\",\"a\":[\"127.0.0.1:1\"],\"p\":\"47DEQpj8HBSa+/"
	    "TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	    "\",\"s\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"x\":"
	    "1}",
	    "{\"n\":\"a\",\"a\":[\"127.0.0.1:1\"],\"p\":\"47DEQpj8HBSa+/"
	    "TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	    "\",\"s\":\"000000000000000000000000000000000000000000000000000000000000000G\"}",
	};
	static const char *const good =
	    "{\"n\":\"a\",\"a\":[\"127.0.0.1:1\"],\"p\":\"47DEQpj8HBSa+/"
	    "TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	    "\",\"s\":\"0000000000000000000000000000000000000000000000000000000000000000\"}";
	struct pki_token t;
	struct bh_err err;
	char *long_text;

	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		cleanup_free char *text = encode_json(bad_json[i]);
		if (pki_token_decode(text, &t, &err) == 0)
			fail_msg("accepted %s", bad_json[i]);
		assert_has(err.msg, "token");
	}
	{
		cleanup_free char *text = encode_json(good);
		assert_int_equal(pki_token_decode(text, &t, &err), 0);
	}
	assert_int_equal(pki_token_decode("berth2-abc", &t, &err), -1);
	assert_int_equal(pki_token_decode("berth1-!!!", &t, &err), -1);
	assert_int_equal(pki_token_decode("", &t, &err), -1);
	long_text = bh_calloc(1, PKI_TOKEN_MAX + 16);
	memcpy(long_text, "berth1-", 7);
	memset(long_text + 7, 'A', PKI_TOKEN_MAX);
	assert_int_equal(pki_token_decode(long_text, &t, &err), -1);
	assert_has(err.msg, "longer");
	free(long_text);
}

static void test_token_addrs(void **state)
{
	static const char *const good[] = {"127.0.0.1:7443", "[::1]:1", "host.example:65535",
	                                   "[2001:db8::7]:443", "h:2"};
	static const char *const bad[] = {"127.0.0.1", ":7443", "[::1:7443", "[h]:1",
	                                  "a b:1",     "h:0",   "h:65536",   "*.x.org:1",
	                                  "h:1x",      "[]:1",  "h/x:1"};
	struct bh_err err;
	uint8_t h[32];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (pki_token_check_addr(good[i], &err) < 0)
			fail_msg("%s: %s", good[i], err.msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pki_token_check_addr(bad[i], &err) == 0)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(pki_token_secret_hash("00", h), -1);
	assert_int_equal(pki_token_secret_hash(
	                     "ABCDEF0000000000000000000000000000000000000000000000000000000000", h),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kit_openssl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sign_openssl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sign_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_csr_for_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_matches_openssl, setup, teardown),
	    cmocka_unit_test(test_token_round_trip),
	    cmocka_unit_test(test_token_hostile),
	    cmocka_unit_test(test_token_addrs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
