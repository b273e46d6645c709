/* Enrollment: admins make single-use tokens (POST /_berth/trust/tokens), a
 * client holding one trades a CSR for a certificate (POST /_berth/enroll,
 * reachable with a throwaway self-signed cert only while a token is pending),
 * and a trusted identity renews its own certificate (POST /_berth/renew).
 * The CA key never leaves TLS_DIR; the client's key never reaches us.
 * Bodies are hostile: bounded by the router, every field checked here.  The
 * signing and the trust-store writes (fsync) run on the worker pool. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "certs/certs.h"
#include "server/server-internal.h"

#define TOKEN_EXPIRES_DEFAULT 900         /* 15 minutes */
#define TOKEN_EXPIRES_MAX     (7 * 86400) /* a token is meant to be used soon */
#define CERT_DAYS_DEFAULT     30
#define UNKNOWN_TOKEN         "enrollment token is unknown"

struct enroll_job {
	struct srv_server *srv;
	char tls_dir[4096];
	int max_days;
	/* token */
	struct srv_token tok;
	struct pki_token text; /* name, addresses, pin, secret */
	/* enroll / renew */
	char *csr;
	char *secret;
	char name[64];
	enum srv_role role;
	int days;
	bool capped;
	/* results */
	char *out;  /* the token text */
	char *cert; /* PEM */
	char *ca;   /* PEM */
	int64_t not_after;
};

static struct enroll_job *job_new(struct srv_req *req)
{
	struct enroll_job *j = bh_calloc(1, sizeof(*j));

	j->srv = req->srv;
	bh_strlcpy(j->tls_dir, req->srv->cfg.tls_dir ? req->srv->cfg.tls_dir : "",
	           sizeof(j->tls_dir));
	j->max_days = srv_config_max_cert_days(&req->srv->cfg);
	return j;
}

static void job_free(struct enroll_job *j)
{
	pki_token_wipe(&j->text);
	if (j->out)
		bh_wipe(j->out, strlen(j->out));
	if (j->secret)
		bh_wipe(j->secret, strlen(j->secret));
	free(j->out);
	free(j->secret);
	free(j->csr);
	free(j->cert);
	free(j->ca);
	free(j);
}

/* Enrollment needs a trust store, TLS material and the CA key on this host:
 * without them it cannot work at all (501), said before anything is used up. */
static int need_signer(struct srv_server *srv, struct bh_err *err)
{
	cleanup_free char *key = NULL;

	if (srv->trust == NULL)
		return bh_err_set(err, ENOTSUP, "this daemon has no trust store");
	if (srv->cfg.tls_dir == NULL)
		return bh_err_set(err, ENOTSUP, "this daemon has no TLS directory (--tls-dir)");
	key = bh_path_join(srv->cfg.tls_dir, "ca-key.pem");
	if (!bh_path_exists(key))
		return bh_err_set(err, ENOTSUP,
		                  "this daemon cannot sign certificates: %s is missing (enrollment "
		                  "needs the CA key on this host; berth certs init writes it)",
		                  key);
	return 0;
}

static int days_field(json_t *body, const char *key, int max, int *out, struct bh_err *err)
{
	json_t *v = json_object_get(body, key);
	json_int_t d;

	if (v == NULL || json_is_null(v)) {
		*out = CERT_DAYS_DEFAULT < max ? CERT_DAYS_DEFAULT : max;
		return 0;
	}
	if (!json_is_integer(v))
		return bh_err_set(err, EINVAL, "%s must be an integer (days)", key);
	d = json_integer_value(v);
	if (d < 1 || d > PKI_MAX_DAYS)
		return bh_err_set(err, EINVAL, "%s %lld: must be 1..%d", key, (long long)d,
		                  PKI_MAX_DAYS);
	/* Refused, not silently shortened: the caller asked for something this
	 * daemon will not give, and should know before anyone relies on it. */
	if (d > max)
		return bh_err_set(err, EINVAL,
		                  "%s %lld is above this daemon's max-cert-days (%d): ask for at "
		                  "most %d",
		                  key, (long long)d, max, max);
	*out = (int)d;
	return 0;
}

static void reply_cert(struct srv_req *req, struct enroll_job *j)
{
	char na[40];
	json_t *o;

	bh_rfc3339(na, j->not_after, 0);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "Certificate", j->cert, "CA", j->ca, "Name",
	              j->name, "Role", srv_role_name(j->role), "NotAfter", na);
	if (j->capped)
		json_object_set_new(
		    o, "Warning",
		    json_sprintf("certificate lifetime capped to %d days (max-cert-days)",
		                 j->days));
	srv_reply_json(req, 201, o);
}

static void cert_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct enroll_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		reply_cert(req, j);
	job_free(j);
}

/* ---- token addresses ---------------------------------------------------------- */

static void addr_add(struct pki_token *t, const char *host, int port)
{
	bool v6 = strchr(host, ':') != NULL;
	char a[PKI_TOKEN_ADDR_MAX];

	if (t->n_addrs >= PKI_TOKEN_MAX_ADDRS)
		return;
	snprintf(a, sizeof(a), v6 ? "[%s]:%d" : "%s:%d", host, port);
	for (size_t i = 0; i < t->n_addrs; i++)
		if (strcmp(t->addrs[i], a) == 0)
			return;
	bh_strlcpy(t->addrs[t->n_addrs++], a, PKI_TOKEN_ADDR_MAX);
}

static bool is_loopback(const char *ip)
{
	return bh_str_has_prefix(ip, "127.") || strcmp(ip, "::1") == 0;
}

/* A wildcard listener is reached at the server cert's IP SANs: other hosts
 * first (a token is mostly used elsewhere), loopback last. */
static void addr_add_sans(struct pki_token *t, const struct pki_cert_info *info, int port)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < info->n_ip_sans; i++)
			if (is_loopback(info->ip_sans[i]) == (pass == 1))
				addr_add(t, info->ip_sans[i], port);
}

static int token_addrs(struct enroll_job *j, struct bh_err *err)
{
	cleanup_free char *cert = bh_path_join(j->tls_dir, "server-cert.pem");
	struct srv_server *srv = j->srv;
	struct pki_cert_info info;

	if (pki_cert_info_from_file(cert, &info, err) < 0)
		return -1;
	for (size_t i = 0; i < srv->n_listeners; i++) {
		const struct srv_listener *l = &srv->listeners[i];
		const char *colon = strrchr(l->url, ':');
		long port;

		if (l->spec.kind != SRV_LISTEN_TCP || colon == NULL ||
		    bh_parse_long(colon + 1, 1, 65535, &port) < 0)
			continue;
		if (strcmp(l->spec.host, "0.0.0.0") == 0 || strcmp(l->spec.host, "::") == 0)
			addr_add_sans(&j->text, &info, (int)port);
		else
			addr_add(&j->text, l->spec.host, (int)port);
	}
	pki_cert_info_free(&info);
	if (j->text.n_addrs == 0)
		return bh_err_set(err, ENOTSUP,
		                  "this daemon has no tcp:// listener to enroll over");
	return 0;
}

/* ---- POST /_berth/trust/tokens (admin) ----------------------------------------- */

static int token_work(void *arg, struct bh_err *err)
{
	struct enroll_job *j = arg;
	cleanup_free char *cert = bh_path_join(j->tls_dir, "server-cert.pem");
	uint8_t hash[32];
	int r;

	if (token_addrs(j, err) < 0 || pki_spki_pin_file(cert, j->text.pin, err) < 0 ||
	    pki_token_secret_new(j->text.secret, err) < 0)
		return -1;
	bh_strlcpy(j->text.name, j->tok.name, sizeof(j->text.name));
	if (pki_token_encode(&j->text, &j->out, err) < 0)
		return -1;
	pki_token_secret_hash(j->text.secret, hash);
	r = srv_trust_token_add(j->srv->trust, &j->tok, hash, err);
	bh_wipe(hash, sizeof(hash));
	return r;
}

static void token_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct enroll_job *j = arg;
	char exp[40];

	if (rc < 0) {
		srv_reply_error(req, err);
	} else {
		bh_rfc3339(exp, j->tok.expires, 0);
		srv_reply_json(req, 201,
		               json_pack("{s:s, s:s, s:s, s:s, s:i}", "Token", j->out, "Name",
		                         j->tok.name, "Role", srv_role_name(j->tok.role), "Expires",
		                         exp, "CertDays", j->tok.cert_days));
	}
	job_free(j);
}

static int token_role(json_t *body, enum srv_role *out, struct bh_err *err)
{
	json_t *v = json_object_get(body, "Role");

	if (v == NULL || json_is_null(v)) {
		*out = SRV_ROLE_OPERATOR;
		return 0;
	}
	if (!json_is_string(v) || srv_role_parse(json_string_value(v), out) < 0)
		return bh_err_set(err, EINVAL, "Role must be viewer, operator or admin");
	return 0;
}

static int token_expires(json_t *body, int64_t *out, struct bh_err *err)
{
	json_t *v = json_object_get(body, "ExpiresIn");
	json_int_t s = TOKEN_EXPIRES_DEFAULT;

	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v))
			return bh_err_set(err, EINVAL, "ExpiresIn must be an integer (seconds)");
		s = json_integer_value(v);
	}
	if (s < 1 || s > TOKEN_EXPIRES_MAX)
		return bh_err_set(err, EINVAL, "ExpiresIn %lld: must be 1..%d seconds",
		                  (long long)s, TOKEN_EXPIRES_MAX);
	*out = (int64_t)time(NULL) + s;
	return 0;
}

int srv_token_body_parse(json_t *body, int max_days, struct srv_token *tok, struct bh_err *err)
{
	const char *name = json_string_value(json_object_get(body, "Name"));

	if (name == NULL)
		return bh_err_set(err, EINVAL, "Name is required");
	if (pki_check_name(name, err) < 0)
		return -1;
	bh_strlcpy(tok->name, name, sizeof(tok->name));
	if (token_role(body, &tok->role, err) < 0 || token_expires(body, &tok->expires, err) < 0)
		return -1;
	return days_field(body, "CertDays", max_days, &tok->cert_days, err);
}

int srv_h_trust_token(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL;
	struct enroll_job *j;
	int r;

	if (need_signer(req->srv, err) < 0 || srv_req_body_json(req, &body, err) < 0)
		return -1;
	j = job_new(req);
	r = srv_token_body_parse(body, j->max_days, &j->tok, err);
	json_decref(body);
	if (r < 0) {
		job_free(j);
		return bh_err_wrap(err, "enrollment token");
	}
	srv_defer(req, token_work, token_done, j);
	return 0;
}

/* ---- signing, shared by enroll and renew ---------------------------------------- */

static int sign_and_trust(struct enroll_job *j, struct bh_err *err)
{
	struct pki_csr_sign_opts o = {j->tls_dir, j->csr, strlen(j->csr), j->name, j->days};
	struct srv_trust_entry e = {0};
	cleanup_free uint8_t *der = NULL;
	struct pki_cert_info info;
	size_t len = 0;

	if (pki_csr_sign(&o, &j->cert, &j->ca, err) < 0 ||
	    pki_pem_first_der(j->cert, strlen(j->cert), &der, &len, err) < 0 ||
	    pki_cert_info_from_der(der, len, &info, err) < 0)
		return -1;
	j->not_after = info.not_after;
	bh_strlcpy(e.name, j->name, sizeof(e.name));
	bh_strlcpy(e.fingerprint, info.fingerprint, sizeof(e.fingerprint));
	e.role = j->role;
	e.created = (int64_t)time(NULL);
	e.expires = info.not_after;
	pki_cert_info_free(&info);
	if (srv_trust_add(j->srv->trust, &e, err) < 0)
		return -1;
	bh_info("certificate signed for %s, trusted as %s until %lld (fp=%.12s)", e.name,
	        srv_role_name(e.role), (long long)e.expires, e.fingerprint);
	return 0;
}

static int csr_field(json_t *body, struct enroll_job *j, struct bh_err *err)
{
	json_t *v = json_object_get(body, "CSR");

	if (!json_is_string(v) || json_string_length(v) == 0)
		return bh_err_set(err, EINVAL, "CSR is required (PEM)");
	if (json_string_length(v) > PKI_CSR_MAX)
		return bh_err_set(err, EINVAL, "CSR larger than %d bytes", PKI_CSR_MAX);
	j->csr = bh_strndup(json_string_value(v), json_string_length(v));
	return 0;
}

/* ---- POST /_berth/enroll (anyone with a pending token's secret) ----------------- */

static int enroll_work(void *arg, struct bh_err *err)
{
	struct enroll_job *j = arg;
	uint8_t hash[32];
	int r;

	/* The CSR first: a malformed one must not use the token up. */
	if (pki_csr_check(j->csr, strlen(j->csr), err) < 0)
		return -1;
	if (pki_token_secret_hash(j->secret, hash) < 0)
		return bh_err_set(err, EACCES, UNKNOWN_TOKEN);
	r = srv_trust_token_take(j->srv->trust, hash, &j->tok, err);
	bh_wipe(hash, sizeof(hash));
	if (r < 0)
		return -1;
	bh_strlcpy(j->name, j->tok.name, sizeof(j->name));
	j->role = j->tok.role;
	/* max-cert-days may have been lowered since the token was made. */
	j->days = j->tok.cert_days;
	if (j->days > j->max_days) {
		j->days = j->max_days;
		j->capped = true;
	}
	return sign_and_trust(j, err);
}

int srv_h_enroll(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL, *s;
	struct enroll_job *j;
	int r;

	if (need_signer(req->srv, err) < 0 || srv_req_body_json(req, &body, err) < 0)
		return -1;
	j = job_new(req);
	s = json_object_get(body, "Secret");
	r = csr_field(body, j, err);
	if (r == 0 && !json_is_string(s))
		r = bh_err_set(err, EINVAL, "Secret is required");
	if (r == 0)
		j->secret = bh_strndup(json_string_value(s), PKI_TOKEN_SECRET_LEN + 1);
	json_decref(body);
	bh_wipe(req->body.data, req->body.len); /* it holds the secret */
	if (r < 0) {
		job_free(j);
		return bh_err_wrap(err, "enroll");
	}
	srv_defer(req, enroll_work, cert_done, j);
	return 0;
}

/* ---- POST /_berth/renew (the caller's own identity) ----------------------------- */

static int renew_work(void *arg, struct bh_err *err)
{
	return sign_and_trust(arg, err);
}

int srv_h_renew(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL;
	struct enroll_job *j;
	int r;

	if (req->id.is_unix || req->id.name[0] == '\0')
		return bh_err_set(err, EINVAL,
		                  "renew: only a client certificate from the trust store can be "
		                  "renewed (this connection has none)");
	if (need_signer(req->srv, err) < 0 || srv_req_body_json(req, &body, err) < 0)
		return -1;
	j = job_new(req);
	bh_strlcpy(j->name, req->id.name, sizeof(j->name));
	j->role = req->id.role;
	r = csr_field(body, j, err);
	if (r == 0)
		r = days_field(body, "CertDays", j->max_days, &j->days, err);
	json_decref(body);
	if (r < 0) {
		job_free(j);
		return bh_err_wrap(err, "renew");
	}
	srv_defer(req, renew_work, cert_done, j);
	return 0;
}
