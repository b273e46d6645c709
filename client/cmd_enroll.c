/* Enrollment on the client: `berth trust add NAME` without --cert (a token),
 * `berth context create NAME --token TOKEN` and `berth context renew [NAME]`,
 * plus the expiry check of a context's client certificate.
 *
 * The private key is made here and never sent: only a CSR travels.  The
 * enrollment connection trusts the daemon by the server-key pin the token
 * carries (libcurl's CURLOPT_PINNEDPUBLICKEY) and nothing else; there is no
 * way to turn that check off.  The context is written only once a
 * certificate for our key has arrived. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "certs/certs.h"
#include "client/client-internal.h"

#define ENROLL_TIMEOUT_S 30
#define ENROLL_BODY_MAX  (256 * 1024)

/* ---- trust add NAME (a token) ------------------------------------------------- */

static void when(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "%lld", (long long)t);
}

int cli_trust_token(struct cli *cli, const char *name, const char *role, long expires_s,
                    int cert_days)
{
	json_t *req = json_pack("{s:s, s:s, s:I, s:i}", "Name", name, "Role", role, "ExpiresIn",
	                        (json_int_t)expires_s, "CertDays", cert_days);
	cleanup_free char *text = json_dumps(req, JSON_COMPACT);
	struct cli_http_req rq = {.method = "POST", .path = "/_berth/trust/tokens"};
	json_t *resp = NULL;
	const char *token, *exp;
	char safe[128];

	json_decref(req);
	rq.body = text;
	rq.body_len = strlen(text);
	if (cli_api_json(cli, &rq, &resp) < 0)
		return -1;
	token = json_string_value(json_object_get(resp, "Token"));
	exp = json_string_value(json_object_get(resp, "Expires"));
	if (token == NULL || !bh_str_has_prefix(token, PKI_TOKEN_PREFIX)) {
		json_decref(resp);
		return cli_fail(cli, CLI_EXIT_DAEMON, "trust add %s: the daemon sent no token",
		                name);
	}
	/* The token alone on stdout (TOKEN=$(berth trust add ci)); how to use it
	 * on stderr. */
	printf("%s\n", token);
	cli_sanitize(exp ? exp : "?", safe, sizeof(safe));
	fprintf(stderr,
	        "token for %s (%s): single use, expires %s; on the new machine run\n"
	        "  berth context create NAME --token TOKEN\n",
	        name, role, safe);
	json_decref(resp);
	return 0;
}

/* ---- the expiry check ---------------------------------------------------------- */

int cli_cert_check_expiry(struct cli *cli, const struct ctx_target *t)
{
	struct pki_cert_info info;
	struct bh_err err = {0};
	char at[64];
	int64_t now = (int64_t)time(NULL);

	if (t->tls.cert == NULL || !ctx_host_is_tcp(t->host))
		return 0;
	if (pki_cert_info_from_file(t->tls.cert, &info, &err) < 0)
		return 0; /* the TLS layer will say what is wrong with the file */
	when(info.not_after, at, sizeof(at));
	if (info.not_after < now) {
		pki_cert_info_free(&info);
		/* Said before connecting: a refused handshake with TLS 1.3
		 * often reaches the client as a bare connection reset. */
		return cli_fail(cli, CLI_EXIT_DAEMON,
		                "%s (%s): the client certificate expired at %s; renewal needs a "
		                "valid one: ask an admin for a new token (berth trust add NAME) "
		                "and run berth context create --token",
		                t->name, t->host, at);
	}
	pki_cert_info_free(&info);
	return 0;
}

/* ---- the enrollment request ------------------------------------------------------ */

struct enroll {
	struct pki_token tok;
	struct pki_enroll_kit kit;
	const char *addr; /* the address that answered */
	struct bh_buf body;
	json_t *resp;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct bh_buf *b = arg;

	return bh_buf_append(b, data, size * n) < 0 ? 0 : size * n;
}

static void enroll_setopt(CURL *c, struct enroll *e, const char *url, const char *pin,
                          struct curl_slist *hdrs, const char *body, struct curl_blob *cert,
                          struct curl_blob *key)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ENROLL_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &e->body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* We hold no CA yet: the daemon is recognised by its key alone, the
	 * pin from the token.  curl checks the pin whatever VERIFYPEER says. */
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin);
	curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, cert);
	curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, key);
	curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
}

/* Why an enrollment request failed below HTTP.  -1: try the next address. */
static int enroll_fail(CURLcode rc, const char *addr, const char *errbuf, struct bh_err *err)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		bh_err_set(err, EIO, "cannot reach berthd at %s: %s", addr, why);
		return -1;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		/* berthd lets a self-signed certificate through the handshake only
		 * while some token is pending: no reply means there is none. */
		bh_err_set(err, EACCES,
		           "berthd at %s refused the enrollment connection: it has no pending "
		           "token, so this token is already used, expired or unknown (%s)",
		           addr, why);
		return -2;
	default:
		bh_err_set(err, EIO, "cannot enroll at %s: %s", addr, why);
		return -2;
	}
}

/* One attempt at addr.  > 0: the HTTP status; -1: this address cannot be
 * reached (try the next); -2: stop (pin mismatch, TLS refusal). */
static int enroll_post(struct enroll *e, const char *addr, const char *body, struct bh_err *err)
{
	cleanup_free char *url =
	    bh_asprintf("https://%s/v%s/_berth/enroll", addr, BERTH_API_VERSION);
	cleanup_free char *pin = bh_asprintf("sha256//%s", e->tok.pin);
	/* NOCOPY: the kit outlives the handle, and libcurl keeps no unwiped
	 * copy of the key. */
	struct curl_blob cert = {e->kit.self_cert, strlen(e->kit.self_cert), CURL_BLOB_NOCOPY};
	struct curl_blob key = {e->kit.key, strlen(e->kit.key), CURL_BLOB_NOCOPY};
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode rc;

	if (c == NULL) {
		curl_slist_free_all(hdrs);
		bh_err_set(err, EIO, "cannot create a libcurl handle");
		return -2;
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	bh_buf_reset(&e->body);
	e->errbuf[0] = '\0';
	enroll_setopt(c, e, url, pin, hdrs, body, &cert, &key);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_OK)
		return (int)status;
	if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
		bh_err_set(err, EPERM,
		           "the daemon at %s is not the one the token names: its server key does "
		           "not match the token's pin (wrong address, or someone in between); "
		           "nothing was sent",
		           addr);
		return -2;
	}
	return enroll_fail(rc, addr, e->errbuf, err);
}

static char *enroll_body(const struct enroll *e)
{
	json_t *j = json_pack("{s:s, s:s}", "Secret", e->tok.secret, "CSR", e->kit.csr);
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

/* Tries the token's addresses in order until one answers. */
static int enroll_send(struct cli *cli, struct enroll *e)
{
	cleanup_free char *body = enroll_body(e);
	struct bh_err err = {0};
	char msg[600];
	int status = -1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return cli_fail(cli, CLI_EXIT_DAEMON, "cannot initialise libcurl");
	for (size_t i = 0; i < e->tok.n_addrs && status == -1; i++) {
		e->addr = e->tok.addrs[i];
		status = enroll_post(e, e->addr, body, &err);
	}
	bh_wipe(body, strlen(body));
	if (status < 0)
		return cli_fail(cli, CLI_EXIT_DAEMON, "context create: %s", err.msg);
	if (status != 201) {
		cli_daemon_message(status, &e->body, msg, sizeof(msg));
		return cli_fail(cli, CLI_EXIT_CMD, "context create: %s refused the enrollment: %s",
		                e->addr, msg);
	}
	e->resp = json_loadb(e->body.data, e->body.len, 0, NULL);
	if (!json_is_object(e->resp))
		return cli_fail(cli, CLI_EXIT_DAEMON, "context create: %s sent no JSON", e->addr);
	return 0;
}

/* ---- checking what came back ---------------------------------------------------- */

/* The certificate must carry our public key: the same pin as the throwaway
 * certificate made from it. */
static int cert_is_ours(const char *cert_pem, const char *our_cert_pem, struct bh_err *err)
{
	cleanup_free uint8_t *a = NULL, *b = NULL;
	char pa[PKI_PIN_LEN + 1], pb[PKI_PIN_LEN + 1];
	size_t la = 0, lb = 0;

	if (pki_pem_first_der(cert_pem, strlen(cert_pem), &a, &la, err) < 0 ||
	    pki_spki_pin_der(a, la, pa, err) < 0 ||
	    pki_pem_first_der(our_cert_pem, strlen(our_cert_pem), &b, &lb, err) < 0 ||
	    pki_spki_pin_der(b, lb, pb, err) < 0)
		return -1;
	if (strcmp(pa, pb) != 0)
		return bh_err_set(err, EINVAL, "the certificate is not for our key");
	return 0;
}

static int resp_pems(struct cli *cli, json_t *resp, const char *ours, const char **cert,
                     const char **ca)
{
	struct bh_err err = {0};
	uint8_t *der = NULL;
	size_t len = 0;

	*cert = json_string_value(json_object_get(resp, "Certificate"));
	*ca = json_string_value(json_object_get(resp, "CA"));
	if (*cert == NULL || *ca == NULL)
		return cli_fail(cli, CLI_EXIT_DAEMON, "the daemon's reply lacks Certificate or CA");
	if (cert_is_ours(*cert, ours, &err) < 0 || pki_cert_verify_pem(*cert, *ca, &err) < 0 ||
	    pki_pem_first_der(*ca, strlen(*ca), &der, &len, &err) < 0)
		return cli_fail(cli, CLI_EXIT_DAEMON, "the daemon's certificate is unusable: %s",
		                err.msg);
	free(der);
	return 0;
}

/* ---- writing: a private staging directory, then the store ---------------------- */

static char *stage_dir(struct cli *cli)
{
	cleanup_free char *leaf = bh_asprintf(".enroll-%ld", (long)getpid());

	return bh_path_join(cli->config_dir, leaf);
}

static int stage_write(const char *dir, const char *ca, const char *cert, const char *key,
                       struct bh_err *err)
{
	cleanup_free char *pca = bh_path_join(dir, "ca.pem");
	cleanup_free char *pcert = bh_path_join(dir, "cert.pem");
	cleanup_free char *pkey = bh_path_join(dir, "key.pem");
	struct bh_err ignored;

	if (bh_path_exists(dir))
		bh_rm_rf(dir, &ignored);
	if (bh_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if ((key && bh_write_file_atomic(pkey, key, strlen(key), 0600, err) < 0) ||
	    bh_write_file_atomic(pcert, cert, strlen(cert), 0644, err) < 0 ||
	    bh_write_file_atomic(pca, ca, strlen(ca), 0644, err) < 0)
		return -1;
	return 0;
}

/* The store has its own copies now. */
static void stage_remove(const char *dir)
{
	struct bh_err ignored;

	bh_rm_rf(dir, &ignored);
}

/* A string field of the daemon's reply, sanitised ("?" when absent). */
static void resp_str(json_t *resp, const char *key, char *out, size_t n)
{
	const char *v = json_string_value(json_object_get(resp, key));

	cli_sanitize(v ? v : "?", out, n);
}

static void print_warning(json_t *resp)
{
	char w[256];

	if (!json_is_string(json_object_get(resp, "Warning")))
		return;
	resp_str(resp, "Warning", w, sizeof(w));
	fprintf(stderr, "berth: warning: %s\n", w);
}

static void print_created(const struct ctx_create_opts *o, json_t *resp)
{
	char name[80], role[32], until[64];

	resp_str(resp, "Name", name, sizeof(name));
	resp_str(resp, "Role", role, sizeof(role));
	resp_str(resp, "NotAfter", until, sizeof(until));
	printf("%s\n", o->name);
	fprintf(stderr, "context %s: %s as %s (%s), certificate valid until %s\n", o->name, o->host,
	        name, role, until);
	print_warning(resp);
}

static int enroll_commit(struct cli *cli, const struct ctx_create_opts *given, struct enroll *e)
{
	cleanup_free char *dir = stage_dir(cli);
	cleanup_free char *host = bh_asprintf("tcp://%s", e->addr);
	struct ctx_create_opts o = *given;
	const char *cert, *ca;
	struct bh_err err = {0};

	if (resp_pems(cli, e->resp, e->kit.self_cert, &cert, &ca) < 0)
		return -1;
	o.host = host;
	memset(&o.tls, 0, sizeof(o.tls));
	o.tls.dir = dir;
	if (stage_write(dir, ca, cert, e->kit.key, &err) < 0 ||
	    ctx_create(cli->config_dir, &o, &err) < 0)
		/* The token is used up: keep what it bought. */
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context create %s: the certificate was issued but the context "
		                "could not be written: %s (key, cert and CA are in %s)",
		                o.name, err.msg, dir);
	stage_remove(dir);
	print_created(&o, e->resp);
	return 0;
}

/* ---- context create NAME --token TOKEN -------------------------------------------- */

static int enroll_precheck(struct cli *cli, const struct ctx_create_opts *o, struct enroll *e,
                           const char *token)
{
	struct ctx_meta m;
	struct bh_err err = {0};

	if (o->host != NULL || o->tls.dir || o->tls.ca || o->tls.cert || o->tls.key)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context create: --token brings the host and the TLS material; "
		                "drop --host, --tls-dir, --ca, --cert and --key");
	if (pki_token_decode(token, &e->tok, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context create: %s", err.msg);
	/* Before the token is used up: the context must be writable. */
	if (ctx_name_check_new(o->name, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context create: %s", err.msg);
	if (ctx_load(cli->config_dir, o->name, &m, &err) == 0) {
		ctx_meta_free(&m);
		return cli_fail(cli, CLI_EXIT_CMD, "context create: context \"%s\" already exists",
		                o->name);
	}
	if (pki_enroll_kit_make(e->tok.name, &e->kit, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context create: %s", err.msg);
	return 0;
}

int cli_context_create_token(struct cli *cli, const struct ctx_create_opts *o, const char *token)
{
	struct enroll e;
	int r;

	memset(&e, 0, sizeof(e));
	bh_buf_init(&e.body, ENROLL_BODY_MAX);
	r = enroll_precheck(cli, o, &e, token);
	if (r == 0)
		r = enroll_send(cli, &e);
	if (r == 0)
		r = enroll_commit(cli, o, &e);
	json_decref(e.resp);
	bh_buf_free(&e.body);
	pki_enroll_kit_free(&e.kit);
	pki_token_wipe(&e.tok);
	return r;
}

/* ---- context renew [NAME] ------------------------------------------------------ */

static const char renew_usage[] =
    "Usage: berth context renew [NAME] [--cert-days N]\n\n"
    "Renew the client certificate of context NAME (default: the one in effect)\n"
    "over mutual TLS while it is still valid.  The key stays on this machine; the\n"
    "daemon signs a new certificate for it with the same identity and role\n"
    "(--cert-days, default 30, at most the daemon's max-cert-days).  The old\n"
    "certificate stays valid until it expires.\n";

enum { O_CERT_DAYS = 2000 };

static const struct option renew_opts[] = {
    {"cert-days", required_argument, NULL, O_CERT_DAYS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int renew_opt(struct cli *cli, int c, const char *arg, void *data)
{
	long *days = data;

	if (c != O_CERT_DAYS)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: unexpected option");
	if (bh_parse_long(arg, 1, PKI_MAX_DAYS, days) < 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context renew: --cert-days \"%.40s\": want 1..%d", arg,
		                PKI_MAX_DAYS);
	return 0;
}

/* The context to renew: resolved like any command, but it must be a stored
 * context with TLS material (not -H or BERTH_HOST). */
static int renew_target(struct cli *cli, const struct ctx_target **t)
{
	if (cli_target(cli, t) < 0)
		return -1;
	if ((*t)->source == CTX_SRC_FLAG_HOST || (*t)->source == CTX_SRC_ENV_HOST)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context renew: %s is not a context (renew works on a stored one)",
		                (*t)->host);
	if ((*t)->tls.cert == NULL || !ctx_host_is_tcp((*t)->host))
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context renew: context %s has no client certificate", (*t)->name);
	return cli_cert_check_expiry(cli, *t);
}

static int renew_request(struct cli *cli, const struct ctx_target *t, long days, json_t **resp)
{
	struct pki_cert_info info;
	struct bh_err err = {0};
	struct cli_http_req rq = {.method = "POST", .path = "/_berth/renew"};
	cleanup_free char *csr = NULL, *text = NULL;
	json_t *body;
	int r;

	if (pki_cert_info_from_file(t->tls.cert, &info, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: %s", err.msg);
	r = pki_csr_for_key_file(t->tls.key, info.common_name[0] ? info.common_name : "berth", &csr,
	                         &err);
	pki_cert_info_free(&info);
	if (r < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: %s", err.msg);
	body = json_pack("{s:s}", "CSR", csr);
	if (days > 0)
		json_object_set_new(body, "CertDays", json_integer(days));
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	rq.body = text;
	rq.body_len = strlen(text);
	return cli_api_json(cli, &rq, resp);
}

/* Only cert.pem (and ca.pem) change: the key is the one we had, so the
 * context never pairs a new cert with a wrong key. */
static int renew_commit(struct cli *cli, const struct ctx_target *t, json_t *resp)
{
	cleanup_free char *dir = stage_dir(cli), *ours = NULL;
	cleanup_free char *pca = bh_path_join(dir, "ca.pem"),
	                  *pcert = bh_path_join(dir, "cert.pem");
	struct ctx_update_opts u;
	const char *cert, *ca;
	struct bh_err err = {0};
	int r;

	if (bh_read_file(t->tls.cert, CTX_FILE_MAX, &ours, NULL, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: %s", err.msg);
	if (resp_pems(cli, resp, ours, &cert, &ca) < 0)
		return -1;
	memset(&u, 0, sizeof(u));
	u.tls.ca = pca;
	u.tls.cert = pcert;
	u.tls.key = t->tls.key;
	r = stage_write(dir, ca, cert, NULL, &err);
	if (r == 0)
		r = ctx_update(cli->config_dir, t->name, &u, &err);
	stage_remove(dir);
	if (r < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: %s", err.msg);
	return 0;
}

int cli_context_renew(struct cli *cli, int argc, char **argv)
{
	long days = 0;
	struct cli_opts o = {"context renew", renew_usage, "", renew_opts, renew_opt, &days};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	const struct ctx_target *t;
	json_t *resp = NULL;
	char until[64];
	int n = cli_getopt(cli, argc, argv, &o, pos), r;

	if (n < 0)
		return n;
	if (n > 1)
		return cli_fail(cli, CLI_EXIT_CMD, "context renew: unexpected argument \"%.80s\"",
		                pos[1]);
	if (n == 1)
		cli->context = pos[0];
	if (renew_target(cli, &t) < 0 || renew_request(cli, t, days, &resp) < 0)
		return -1;
	r = renew_commit(cli, t, resp);
	if (r == 0) {
		resp_str(resp, "NotAfter", until, sizeof(until));
		printf("%s\n", t->name);
		fprintf(stderr, "context %s: new certificate valid until %s\n", t->name, until);
		print_warning(resp);
	}
	json_decref(resp);
	return r;
}
