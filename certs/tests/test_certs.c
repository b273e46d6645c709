/* certs tests.  What we write is checked through OpenSSL's eyes (the openssl
 * binary is the real peer: lws and curl use OpenSSL), what we read is checked
 * against certificates OpenSSL wrote, and the DER parser is fed garbage. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs/certs-internal.h"
#include "certs/certs.h"

extern char **environ;

static char tmpdir[256];

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/berth-certs-XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	struct bh_err err;

	return bh_rm_rf(tmpdir, &err);
}

/* A path under tmpdir; caller frees. */
static char *tpath(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *tpath(const char *fmt, ...)
{
	char rel[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	return bh_path_join(tmpdir, rel);
}

/* Runs argv (PATH lookup), returns its exit status; stdout+stderr into *out. */
static int run(char **out, const char *arg0, ...)
{
	const char *argv[32];
	posix_spawn_file_actions_t fa;
	struct bh_buf b;
	int fds[2], status, n = 0;
	pid_t pid;
	va_list ap;

	va_start(ap, arg0);
	for (const char *a = arg0; a != NULL && n < 31; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
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
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define assert_has(hay, needle)                                                                    \
	do {                                                                                       \
		if (strstr((hay), (needle)) == NULL)                                               \
			fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                       \
	} while (0)

static const char *const init_hosts[] = {"example.com", "berth.test"};
static const char *const init_ips[] = {"10.1.2.3", "2001:db8::7"};

static void do_init(const char *dir, int days, bool force)
{
	struct pki_init_opts o = {.dir = dir,
	                          .hosts = init_hosts,
	                          .n_hosts = 2,
	                          .ips = init_ips,
	                          .n_ips = 2,
	                          .days = days,
	                          .force = force};
	struct bh_err err;

	if (pki_init(&o, &err) < 0)
		fail_msg("pki_init: %s", err.msg);
}

static char *slurp(const char *path)
{
	struct bh_err err;
	char *s = NULL;

	if (bh_read_file(path, 1 << 20, &s, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	return s;
}

/* ---- what OpenSSL sees ---------------------------------------------------- */

static void test_init_openssl_verifies(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *cli = tpath("pki/cert.pem");
	cleanup_free char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL;

	do_init(dir, 30, false);
	assert_int_equal(run(&o1, "openssl", "verify", "-CAfile", ca, srv, NULL), 0);
	assert_has(o1, ": OK");
	assert_int_equal(run(&o2, "openssl", "verify", "-CAfile", ca, cli, NULL), 0);
	assert_has(o2, ": OK");
	/* The purposes hold: server cert for servers only, admin cert for clients. */
	assert_int_equal(
	    run(&o3, "openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", srv, NULL), 0);
	assert_int_not_equal(
	    run(&o4, "openssl", "verify", "-CAfile", ca, "-purpose", "sslclient", srv, NULL), 0);
}

static void test_init_openssl_text(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *cli = tpath("pki/cert.pem");
	cleanup_free char *t1 = NULL, *t2 = NULL, *t3 = NULL;

	do_init(dir, 30, false);
	assert_int_equal(run(&t1, "openssl", "x509", "-noout", "-text", "-in", srv, NULL), 0);
	assert_has(t1, "DNS:localhost");
	assert_has(t1, "DNS:example.com");
	assert_has(t1, "DNS:berth.test");
	assert_has(t1, "IP Address:127.0.0.1");
	assert_has(t1, "IP Address:0:0:0:0:0:0:0:1");
	assert_has(t1, "IP Address:10.1.2.3");
	assert_has(t1, "IP Address:2001:DB8:0:0:0:0:0:7");
	assert_has(t1, "TLS Web Server Authentication");
	assert_null(strstr(t1, "TLS Web Client Authentication"));
	assert_has(t1, "CA:FALSE");
	assert_has(t1, "Digital Signature");
	assert_has(t1, "ecdsa-with-SHA256");
	assert_has(t1, "NIST CURVE: P-256");
	assert_has(t1, "X509v3 Subject Key Identifier");
	assert_has(t1, "X509v3 Authority Key Identifier");

	assert_int_equal(run(&t2, "openssl", "x509", "-noout", "-text", "-in", cli, NULL), 0);
	assert_has(t2, "CN = admin");
	assert_has(t2, "TLS Web Client Authentication");
	assert_null(strstr(t2, "TLS Web Server Authentication"));
	assert_has(t2, "CA:FALSE");

	assert_int_equal(run(&t3, "openssl", "x509", "-noout", "-text", "-in", ca, NULL), 0);
	assert_has(t3, "X509v3 Basic Constraints: critical");
	assert_has(t3, "CA:TRUE");
	assert_has(t3, "Certificate Sign, CRL Sign");
	assert_has(t3, "X509v3 Subject Key Identifier");
}

/* openssl -checkend N exits 0 if the cert is still valid N seconds from now. */
static int checkend(const char *cert, long seconds)
{
	cleanup_free char *out = NULL;
	char n[32];

	snprintf(n, sizeof(n), "%ld", seconds);
	return run(&out, "openssl", "x509", "-noout", "-checkend", n, "-in", cert, NULL);
}

static void test_init_validity(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *cli = tpath("pki/cert.pem");
	const long day = 86400;

	do_init(dir, 30, false);
	assert_int_equal(checkend(srv, 30 * day - 600), 0);
	assert_int_not_equal(checkend(srv, 30 * day + 600), 0);
	assert_int_equal(checkend(cli, 30 * day - 600), 0);
	assert_int_not_equal(checkend(cli, 30 * day + 600), 0);
	assert_int_equal(checkend(ca, (PKI_CA_DAYS - 1) * day), 0);
	assert_int_not_equal(checkend(ca, (PKI_CA_DAYS + 1) * day), 0);
}

static void test_default_days(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *srv = tpath("pki/server-cert.pem");

	do_init(dir, 0, false);
	assert_int_equal(checkend(srv, (PKI_DEFAULT_DAYS - 1) * 86400L), 0);
	assert_int_not_equal(checkend(srv, (PKI_DEFAULT_DAYS + 1) * 86400L), 0);
}

static void test_leaf_never_outlives_ca(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	struct pki_cert_info ci, si;
	struct bh_err err;

	do_init(dir, PKI_MAX_DAYS, false);
	assert_int_equal(pki_cert_info_from_file(ca, &ci, &err), 0);
	assert_int_equal(pki_cert_info_from_file(srv, &si, &err), 0);
	assert_true(si.not_after <= ci.not_after);
	assert_true(si.not_after > ci.not_after - 60);
	pki_cert_info_free(&ci);
	pki_cert_info_free(&si);
}

static void normalise_fingerprint(const char *in, char *out, size_t cap)
{
	const char *p = strchr(in, '=');
	size_t n = 0;

	for (p = p ? p + 1 : in; *p && *p != '\n' && n + 1 < cap; p++)
		if (*p != ':')
			out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	out[n] = '\0';
}

static void test_fingerprint_matches_openssl(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *out = NULL;
	cleanup_free unsigned char *der = NULL;
	char theirs[128], ours[PKI_FINGERPRINT_LEN + 1];
	struct pki_cert_info info;
	struct bh_err err;
	size_t len;

	do_init(dir, 30, false);
	assert_int_equal(
	    run(&out, "openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", srv, NULL), 0);
	normalise_fingerprint(out, theirs, sizeof(theirs));
	assert_int_equal(strlen(theirs), PKI_FINGERPRINT_LEN);
	assert_int_equal(pki_cert_info_from_file(srv, &info, &err), 0);
	assert_string_equal(info.fingerprint, theirs);
	pki_cert_info_free(&info);
	assert_int_equal(pki_file_first_der(srv, &der, &len, &err), 0);
	pki_fingerprint_der(der, len, ours);
	assert_string_equal(ours, theirs);
}

/* ---- files on disk ---------------------------------------------------------- */

static int mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (int)(st.st_mode & 07777);
}

static void test_modes(void **state)
{
	static const char *const keys[] = {"ca-key.pem", "server-key.pem", "key.pem"};
	static const char *const certs[] = {"ca.pem", "server-cert.pem", "cert.pem"};
	cleanup_free char *dir = tpath("loose");

	/* An existing, too-open directory gets tightened. */
	assert_int_equal(mkdir(dir, 0755), 0);
	do_init(dir, 30, false);
	assert_int_equal(mode_of(dir), 0700);
	for (size_t i = 0; i < 3; i++) {
		cleanup_free char *k = tpath("loose/%s", keys[i]);
		cleanup_free char *c = tpath("loose/%s", certs[i]);

		assert_int_equal(mode_of(k), 0600);
		assert_int_equal(mode_of(c), 0644);
	}
}

static void test_refuses_existing_ca(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *cakey = tpath("pki/ca-key.pem");
	cleanup_free char *before = NULL, *key_before = NULL, *after = NULL, *key_after = NULL;
	cleanup_free char *forced = NULL;
	struct pki_init_opts o = {.dir = dir};
	struct bh_err err;

	do_init(dir, 30, false);
	before = slurp(ca);
	key_before = slurp(cakey);
	assert_true(pki_init(&o, &err) < 0);
	assert_int_equal(err.code, EEXIST);
	assert_has(err.msg, "ca.pem");
	assert_has(err.msg, "--force");
	after = slurp(ca);
	key_after = slurp(cakey);
	assert_string_equal(before, after);
	assert_string_equal(key_before, key_after);

	o.force = true;
	assert_int_equal(pki_init(&o, &err), 0);
	forced = slurp(ca);
	assert_string_not_equal(before, forced);
}

static void test_bad_input_writes_nothing(void **state)
{
	static const char *const bad_ip[] = {"10.0.0.300"};
	static const char *const bad_host[] = {"bad_host!"};
	cleanup_free char *dir = tpath("never");
	struct pki_init_opts o = {.dir = dir, .ips = bad_ip, .n_ips = 1};
	struct bh_err err;

	assert_true(pki_init(&o, &err) < 0);
	assert_has(err.msg, "10.0.0.300");
	assert_false(bh_path_exists(dir));
	o.ips = NULL;
	o.n_ips = 0;
	o.hosts = bad_host;
	o.n_hosts = 1;
	assert_true(pki_init(&o, &err) < 0);
	assert_has(err.msg, "bad_host!");
	assert_false(bh_path_exists(dir));
	o.hosts = NULL;
	o.n_hosts = 0;
	o.days = -5;
	assert_true(pki_init(&o, &err) < 0);
	assert_has(err.msg, "--days");
	assert_false(bh_path_exists(dir));
}

/* ---- pairs ------------------------------------------------------------------- */

/* The most names we allow, each as long as DNS allows, fit our buffers. */
static void test_max_sans(void **state)
{
	static char names[PKI_MAX_SANS + 1][254];
	const char *hosts[PKI_MAX_SANS + 1];
	cleanup_free char *dir = tpath("big");
	cleanup_free char *ca = tpath("big/ca.pem");
	cleanup_free char *srv = tpath("big/server-cert.pem");
	cleanup_free char *out = NULL;
	struct pki_init_opts o = {.dir = dir, .hosts = hosts, .n_hosts = PKI_MAX_SANS + 1};
	struct pki_cert_info info;
	struct bh_err err;

	for (int i = 0; i <= PKI_MAX_SANS; i++) {
		/* four labels of 62-63 chars: 253 bytes, unique by the prefix */
		memset(names[i], 'a', 253);
		names[i][63] = names[i][127] = names[i][191] = '.';
		snprintf(names[i], 4, "%03d", i);
		names[i][3] = 'a';
		names[i][253] = '\0';
		hosts[i] = names[i];
	}
	assert_true(pki_init(&o, &err) < 0);
	assert_int_equal(err.code, E2BIG);
	assert_false(bh_path_exists(dir));
	o.n_hosts = PKI_MAX_SANS;
	if (pki_init(&o, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(pki_cert_info_from_file(srv, &info, &err), 0);
	assert_int_equal(info.n_dns_sans, PKI_MAX_SANS + 1); /* + localhost */
	assert_string_equal(info.dns_sans[PKI_MAX_SANS], names[PKI_MAX_SANS - 1]);
	pki_cert_info_free(&info);
	assert_int_equal(run(&out, "openssl", "verify", "-CAfile", ca, srv, NULL), 0);
}

static void test_check_pair(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *srvkey = tpath("pki/server-key.pem");
	cleanup_free char *key = tpath("pki/key.pem");
	struct bh_err err;

	do_init(dir, 30, false);
	assert_int_equal(pki_check_pair(srv, srvkey, &err), 0);
	assert_true(pki_check_pair(srv, key, &err) < 0);
	assert_has(err.msg, "key.pem does not match");
	assert_has(err.msg, "server-cert.pem");
	/* A cert where the key should be: the error names the key file. */
	assert_true(pki_check_pair(srv, srv, &err) < 0);
	assert_has(err.msg, "server-cert.pem: not a private key");
	/* A key where the cert should be. */
	assert_true(pki_check_pair(srvkey, srvkey, &err) < 0);
	assert_has(err.msg, "server-key.pem: no certificate");
}

/* ---- issue ------------------------------------------------------------------- */

static void test_issue_client(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *out = tpath("alice");
	cleanup_free char *ca = tpath("alice/ca.pem");
	cleanup_free char *cert = tpath("alice/cert.pem");
	cleanup_free char *key = tpath("alice/key.pem");
	cleanup_free char *o1 = NULL;
	struct pki_cert_info info;
	struct bh_err err;

	do_init(dir, 30, false);
	if (pki_issue_client("alice", dir, out, 10, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(mode_of(out), 0700);
	assert_int_equal(mode_of(key), 0600);
	assert_int_equal(
	    run(&o1, "openssl", "verify", "-CAfile", ca, "-purpose", "sslclient", cert, NULL), 0);
	assert_int_equal(pki_check_pair(cert, key, &err), 0);
	assert_int_equal(pki_cert_info_from_file(cert, &info, &err), 0);
	assert_string_equal(info.common_name, "alice");
	assert_int_equal(info.eku, PKI_EKU_CLIENT);
	assert_false(info.is_ca);
	assert_int_equal(info.n_dns_sans, 0);
	pki_cert_info_free(&info);
	assert_int_equal(checkend(cert, 10 * 86400L - 600), 0);
	assert_int_not_equal(checkend(cert, 10 * 86400L + 600), 0);
}

static void test_issue_expired(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *out = tpath("old");
	cleanup_free char *ca = tpath("old/ca.pem");
	cleanup_free char *cert = tpath("old/cert.pem");
	cleanup_free char *o1 = NULL;
	struct pki_issue_opts o = {
	    .ca_dir = dir, .out_dir = out, .name = "old", .eku = PKI_EKU_CLIENT, .days = -1};
	struct pki_cert_info info;
	struct bh_err err;
	int64_t now = (int64_t)time(NULL);

	do_init(dir, 30, false);
	if (pki_issue(&o, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(pki_cert_info_from_file(cert, &info, &err), 0);
	assert_true(info.not_after < now);
	assert_true(info.not_after > now - 2 * 86400);
	assert_true(info.not_before < info.not_after);
	pki_cert_info_free(&info);
	assert_int_not_equal(run(&o1, "openssl", "verify", "-CAfile", ca, cert, NULL), 0);
	assert_has(o1, "certificate has expired");
}

static void test_issue_refuses_overwrite(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *out = tpath("bob");
	cleanup_free char *cert = tpath("bob/cert.pem");
	cleanup_free char *before = NULL, *after = NULL;
	struct pki_issue_opts o = {
	    .ca_dir = dir, .out_dir = out, .name = "bob", .eku = PKI_EKU_CLIENT};
	struct bh_err err;

	do_init(dir, 30, false);
	assert_int_equal(pki_issue(&o, &err), 0);
	before = slurp(cert);
	assert_true(pki_issue(&o, &err) < 0);
	assert_int_equal(err.code, EEXIST);
	assert_has(err.msg, "cert.pem");
	after = slurp(cert);
	assert_string_equal(before, after);
}

static void test_issue_server_only(void **state)
{
	static const char *const hosts[] = {"node1.example"};
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *out = tpath("srvonly");
	cleanup_free char *ca = tpath("srvonly/ca.pem");
	cleanup_free char *cert = tpath("srvonly/cert.pem");
	cleanup_free char *o1 = NULL, *o2 = NULL;
	struct pki_issue_opts o = {.ca_dir = dir,
	                           .out_dir = out,
	                           .name = "mallory",
	                           .eku = PKI_EKU_SERVER,
	                           .hosts = hosts,
	                           .n_hosts = 1};
	struct bh_err err;

	do_init(dir, 30, false);
	if (pki_issue(&o, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_not_equal(
	    run(&o1, "openssl", "verify", "-CAfile", ca, "-purpose", "sslclient", cert, NULL), 0);
	assert_int_equal(
	    run(&o2, "openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", cert, NULL), 0);
}

static void test_reissue_server(void **state)
{
	static const char *const ips[] = {"192.0.2.10"};
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *srvkey = tpath("pki/server-key.pem");
	cleanup_free char *before = NULL, *after = NULL, *o1 = NULL;
	struct pki_issue_opts o = {.ca_dir = dir,
	                           .out_dir = dir,
	                           .name = "berthd",
	                           .eku = PKI_EKU_SERVER,
	                           .ips = ips,
	                           .n_ips = 1,
	                           .server_file_names = true,
	                           .force = true};
	struct pki_cert_info info;
	struct bh_err err;

	do_init(dir, 30, false);
	before = slurp(srv);
	if (pki_issue(&o, &err) < 0)
		fail_msg("%s", err.msg);
	after = slurp(srv);
	assert_string_not_equal(before, after);
	assert_int_equal(pki_check_pair(srv, srvkey, &err), 0);
	assert_int_equal(mode_of(srvkey), 0600);
	assert_int_equal(run(&o1, "openssl", "verify", "-CAfile", ca, srv, NULL), 0);
	assert_int_equal(pki_cert_info_from_file(srv, &info, &err), 0);
	assert_int_equal(info.n_ip_sans, 3);
	assert_string_equal(info.ip_sans[2], "192.0.2.10");
	pki_cert_info_free(&info);
}

static void test_issue_needs_ca(void **state)
{
	cleanup_free char *dir = tpath("nothing");
	cleanup_free char *out = tpath("out");
	struct bh_err err;

	assert_true(pki_issue_client("alice", dir, out, 1, &err) < 0);
	assert_has(err.msg, "ca.pem");
	assert_true(pki_issue_client("a,CN=admin", dir, out, 1, &err) < 0);
	assert_has(err.msg, "invalid name");
}

/* ---- reading ------------------------------------------------------------------ */

static bool has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void test_info_ours(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free char *ca = tpath("pki/ca.pem");
	cleanup_free char *ser = NULL;
	struct pki_cert_info info;
	struct bh_err err;
	char theirs[128];
	int64_t now = (int64_t)time(NULL);

	do_init(dir, 30, false);
	assert_int_equal(pki_cert_info_from_file(srv, &info, &err), 0);
	assert_string_equal(info.common_name, "berthd");
	assert_string_equal(info.key_type, "ECDSA P-256");
	assert_int_equal(info.eku, PKI_EKU_SERVER);
	assert_false(info.is_ca);
	assert_int_equal(info.version, 3);
	assert_string_equal(info.key_usage, "digitalSignature");
	assert_int_equal(info.n_dns_sans, 3);
	assert_true(has(info.dns_sans, info.n_dns_sans, "localhost"));
	assert_true(has(info.dns_sans, info.n_dns_sans, "example.com"));
	assert_true(has(info.ip_sans, info.n_ip_sans, "127.0.0.1"));
	assert_true(has(info.ip_sans, info.n_ip_sans, "::1"));
	assert_true(has(info.ip_sans, info.n_ip_sans, "2001:db8::7"));
	assert_true(info.not_after - now > 30 * 86400 - 600);
	assert_true(info.not_after - now < 30 * 86400 + 600);
	assert_int_equal(strlen(info.serial), 32);
	assert_int_equal(run(&ser, "openssl", "x509", "-noout", "-serial", "-in", srv, NULL), 0);
	normalise_fingerprint(ser, theirs, sizeof(theirs));
	assert_string_equal(info.serial, theirs);
	pki_cert_info_free(&info);

	assert_int_equal(pki_cert_info_from_file(ca, &info, &err), 0);
	assert_true(info.is_ca);
	assert_int_equal(info.eku, 0);
	assert_string_equal(info.key_usage, "keyCertSign,cRLSign");
	assert_string_equal(info.subject, info.issuer);
	pki_cert_info_free(&info);
}

/* A certificate OpenSSL wrote (RSA, both EKUs) reads back right. */
static void test_info_openssl_made(void **state)
{
	cleanup_free char *key = tpath("rsa-key.pem");
	cleanup_free char *cert = tpath("rsa-cert.pem");
	cleanup_free char *out = NULL;
	struct pki_cert_info info;
	struct bh_err err;

	assert_int_equal(run(&out, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
	                     "-keyout", key, "-out", cert, "-days", "2", "-subj",
	                     "/O=acme/CN=carol", "-addext",
	                     "subjectAltName=DNS:a.example,IP:192.0.2.1,IP:2001:db8::1,"
	                     "email:x@example.com",
	                     "-addext", "extendedKeyUsage=serverAuth,clientAuth,codeSigning", NULL),
	                 0);
	assert_int_equal(pki_cert_info_from_file(cert, &info, &err), 0);
	assert_string_equal(info.common_name, "carol");
	assert_string_equal(info.key_type, "RSA 2048");
	assert_int_equal(info.eku, PKI_EKU_SERVER | PKI_EKU_CLIENT | PKI_EKU_OTHER);
	assert_int_equal(info.n_dns_sans, 1);
	assert_string_equal(info.dns_sans[0], "a.example");
	assert_int_equal(info.n_ip_sans, 2);
	assert_string_equal(info.ip_sans[0], "192.0.2.1");
	assert_string_equal(info.ip_sans[1], "2001:db8::1");
	assert_int_equal(pki_check_pair(cert, key, &err), 0);
	pki_cert_info_free(&info);
}

/* Regression (found by fuzz_cert_info): a v1 certificate has no extensions
 * and the extension walk did pointer arithmetic on NULL (clang's UBSan flags
 * that; gcc's does not). */
static void test_info_v1_cert(void **state)
{
	cleanup_free char *key = tpath("v1-key.pem");
	cleanup_free char *csr = tpath("v1.csr");
	cleanup_free char *cert = tpath("v1.pem");
	cleanup_free char *o1 = NULL, *o2 = NULL, *o3 = NULL;
	struct pki_cert_info info;
	struct bh_err err;

	assert_int_equal(run(&o1, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
	                     "-out", key, NULL),
	                 0);
	assert_int_equal(
	    run(&o2, "openssl", "req", "-new", "-key", key, "-subj", "/CN=v1", "-out", csr, NULL),
	    0);
	assert_int_equal(run(&o3, "openssl", "x509", "-req", "-in", csr, "-signkey", key, "-days",
	                     "1", "-out", cert, NULL),
	                 0);
	assert_int_equal(pki_cert_info_from_file(cert, &info, &err), 0);
	assert_int_equal(info.version, 1);
	assert_string_equal(info.common_name, "v1");
	assert_int_equal(info.n_dns_sans + info.n_ip_sans, 0);
	assert_int_equal(info.eku, 0);
	assert_false(info.is_ca);
	pki_cert_info_free(&info);
}

static void test_info_hostile_der(void **state)
{
	cleanup_free char *dir = tpath("pki");
	cleanup_free char *srv = tpath("pki/server-cert.pem");
	cleanup_free unsigned char *der = NULL;
	unsigned char junk[512];
	struct pki_cert_info info;
	struct bh_err err;
	size_t len;

	do_init(dir, 30, false);
	assert_int_equal(pki_file_first_der(srv, &der, &len, &err), 0);
	assert_int_equal(pki_cert_info_from_der(der, len, &info, &err), 0);
	pki_cert_info_free(&info);
	assert_true(pki_cert_info_from_der(NULL, 0, &info, &err) < 0);
	assert_true(pki_cert_info_from_der(der, 0, &info, &err) < 0);
	assert_true(pki_cert_info_from_der(der, PKI_MAX_DER + 1, &info, &err) < 0);
	/* Every truncation is an error, never a crash. */
	for (size_t n = 1; n < len; n++) {
		assert_true(pki_cert_info_from_der(der, n, &info, &err) < 0);
		assert_null(info.dns_sans);
	}
	/* Flipped bytes: parse or refuse, but stay in bounds (ASan build). */
	for (size_t i = 0; i < len; i++) {
		der[i] ^= 0x5a;
		if (pki_cert_info_from_der(der, len, &info, &err) == 0)
			pki_cert_info_free(&info);
		der[i] ^= 0x5a;
	}
	srand(42);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (unsigned char)rand();
		junk[0] = 0x30;
		assert_true(pki_cert_info_from_der(junk, sizeof(junk), &info, &err) < 0);
	}
}

static void test_info_not_a_cert(void **state)
{
	cleanup_free char *path = tpath("junk.pem");
	struct pki_cert_info info;
	struct bh_err err;
	const char text[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

	assert_int_equal(bh_write_file_atomic(path, text, sizeof(text) - 1, 0600, &err), 0);
	assert_true(pki_cert_info_from_file(path, &info, &err) < 0);
	assert_has(err.msg, "junk.pem");
	assert_true(pki_cert_info_from_file("/nonexistent/x.pem", &info, &err) < 0);
	assert_has(err.msg, "/nonexistent/x.pem");
}

/* ---- name checks ---------------------------------------------------------------- */

static void test_checks(void **state)
{
	char long_label[80], long_name[300];
	struct bh_err err;

	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	memset(long_name, 'a', 260);
	long_name[260] = '\0';
	assert_int_equal(pki_check_host("localhost", &err), 0);
	assert_int_equal(pki_check_host("node-1.example.com", &err), 0);
	assert_int_equal(pki_check_host("*.example.com", &err), 0);
	assert_true(pki_check_host("", &err) < 0);
	assert_true(pki_check_host("-a.com", &err) < 0);
	assert_true(pki_check_host("a-.com", &err) < 0);
	assert_true(pki_check_host("a..com", &err) < 0);
	assert_true(pki_check_host("a.com.", &err) < 0);
	assert_true(pki_check_host("a_b.com", &err) < 0);
	assert_true(pki_check_host("a.*.com", &err) < 0);
	assert_true(pki_check_host("a com", &err) < 0);
	assert_true(pki_check_host(long_label, &err) < 0);
	assert_true(pki_check_host(long_name, &err) < 0);
	assert_true(pki_check_host("evil\x1b[31m", &err) < 0);
	assert_null(strchr(err.msg, '\x1b')); /* never echo terminal escapes */

	assert_int_equal(pki_check_ip("127.0.0.1", &err), 0);
	assert_int_equal(pki_check_ip("::1", &err), 0);
	assert_int_equal(pki_check_ip("2001:db8::7", &err), 0);
	assert_true(pki_check_ip("1.2.3", &err) < 0);
	assert_true(pki_check_ip("256.1.1.1", &err) < 0);
	assert_true(pki_check_ip("fe80::1%eth0", &err) < 0);
	assert_true(pki_check_ip("localhost", &err) < 0);
	assert_true(pki_check_ip("", &err) < 0);

	assert_int_equal(pki_check_name("alice", &err), 0);
	assert_int_equal(pki_check_name("ci runner 7", &err), 0);
	assert_true(pki_check_name("", &err) < 0);
	assert_true(pki_check_name("a,CN=admin", &err) < 0);
	assert_true(pki_check_name("a=b", &err) < 0);
	assert_true(pki_check_name("a+b", &err) < 0);
	assert_true(pki_check_name("tab\there", &err) < 0);
	assert_true(pki_check_name(" alice", &err) < 0);
	assert_int_equal(pki_check_name(long_label, &err), 0); /* 64: the limit */
	long_label[64] = 'a';
	long_label[65] = '\0';
	assert_true(pki_check_name(long_label, &err) < 0);
}

/* ---- the command ------------------------------------------------------------------ */

static void test_cli(void **state)
{
	cleanup_free char *dir = tpath("clipki");
	cleanup_free char *out = tpath("cliout");
	cleanup_free char *srv = tpath("clipki/server-cert.pem");
	cleanup_free char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL;
	cleanup_free char *o6 = NULL, *o7 = NULL, *o8 = NULL, *o9 = NULL;

	assert_int_equal(run(&o1, CERTS_CLI, "init", "--dir", dir, "--host", "cli.example", "--ip",
	                     "198.51.100.4", "--days", "7", NULL),
	                 0);
	assert_has(o1, "Fingerprint:");
	assert_int_equal(run(&o2, CERTS_CLI, "inspect", srv, "--format", "json", NULL), 0);
	assert_has(o2, "\"cli.example\"");
	assert_has(o2, "\"198.51.100.4\"");
	assert_has(o2, "\"serverAuth\"");
	assert_has(o2, "\"IsCA\": false");
	assert_int_equal(run(&o3, CERTS_CLI, "init", "--dir", dir, NULL), 1);
	assert_has(o3, "ca.pem already exists");
	assert_null(strchr(strchr(o3, '\n') + 1, '\n')); /* one line */
	assert_int_equal(run(&o4, CERTS_CLI, "init", "--dir", dir, "--ip", "10.0.0", NULL), 1);
	assert_has(o4, "invalid IP address \"10.0.0\"");
	assert_int_equal(run(&o5, CERTS_CLI, "issue", "dave", "--ca-dir", dir, "--out", out,
	                     "--days", "-3", NULL),
	                 0);
	assert_int_equal(run(&o6, CERTS_CLI, "issue", "--help", NULL), 0);
	assert_has(o6, "EXPIRED");
	assert_int_equal(run(&o7, CERTS_CLI, "init", "--bogus", NULL), 1);
	assert_has(o7, "unknown option --bogus");
	assert_int_equal(
	    run(&o8, CERTS_CLI, "issue", "x", "--ca-dir", dir, "--out", out, "--days", "0", NULL),
	    1);
	cleanup_free char *cert = tpath("cliout/cert.pem");
	assert_int_equal(run(&o9, CERTS_CLI, "inspect", cert, NULL), 0);
	assert_has(o9, "(EXPIRED)");
	assert_has(o9, "dave");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_init_openssl_verifies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_openssl_text, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_validity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_days, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leaf_never_outlives_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fingerprint_matches_openssl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuses_existing_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_input_writes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_sans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_pair, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_expired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_refuses_overwrite, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_server_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reissue_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_issue_needs_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_ours, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_openssl_made, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_v1_cert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_hostile_der, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_info_not_a_cert, setup, teardown),
	    cmocka_unit_test(test_checks),
	    cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
