/* TLS for the TCP listeners: loading and checking the server material,
 * the client-certificate verdict, the caller's identity and SIGHUP reload.
 * Every TCP connection is mutual TLS; the client certificate is hostile
 * input until OpenSSL and the checks below have accepted it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <libwebsockets.h>

#include "certs/certs.h"
#include "server/server-internal.h"

#define PEER_CERT_MAX (64 * 1024)

/* Everything a reload swaps in, loaded and checked before anything is touched. */
struct tls_material {
	X509 *cert;
	STACK_OF(X509) * chain; /* intermediates after the leaf, may be empty */
	EVP_PKEY *key;
	X509_STORE *store;              /* trusted CAs for client certs */
	STACK_OF(X509_NAME) * ca_names; /* sent in the CertificateRequest */
};

static void material_free(struct tls_material *m)
{
	X509_free(m->cert);
	sk_X509_pop_free(m->chain, X509_free);
	EVP_PKEY_free(m->key);
	X509_STORE_free(m->store);
	sk_X509_NAME_pop_free(m->ca_names, X509_NAME_free);
	memset(m, 0, sizeof(*m));
}

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "no PEM data";
}

static BIO *open_pem(const char *path, struct bh_err *err)
{
	FILE *f = fopen(path, "r");
	BIO *bio;

	if (f == NULL) {
		bh_err_sys(err, errno, "open %s", path);
		return NULL;
	}
	bio = BIO_new_fp(f, BIO_CLOSE);
	if (bio == NULL) {
		fclose(f);
		bh_err_set(err, ENOMEM, "open %s: out of memory", path);
	}
	return bio;
}

static int load_cert_chain(struct tls_material *m, const char *path, struct bh_err *err)
{
	BIO *bio = open_pem(path, err);
	X509 *x;

	if (bio == NULL)
		return -1;
	ERR_clear_error();
	m->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	m->chain = sk_X509_new_null();
	while (m->cert && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(m->chain, x);
	BIO_free(bio);
	ERR_clear_error(); /* the loop ends on "no start line" */
	if (m->cert == NULL)
		return bh_err_set(err, EINVAL, "certificate %s: no certificate in PEM", path);
	return 0;
}

static int load_key(struct tls_material *m, const char *path, struct bh_err *err)
{
	BIO *bio = open_pem(path, err);

	if (bio == NULL)
		return -1;
	ERR_clear_error();
	m->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (m->key == NULL)
		return bh_err_set(err, EINVAL, "private key %s: %s", path, ssl_reason());
	return 0;
}

static int load_ca(struct tls_material *m, const char *path, struct bh_err *err)
{
	BIO *bio = open_pem(path, err);

	if (bio == NULL)
		return -1;
	BIO_free(bio);
	ERR_clear_error();
	m->store = X509_STORE_new();
	if (m->store == NULL || X509_STORE_load_file(m->store, path) != 1)
		return bh_err_set(err, EINVAL, "CA %s: %s", path, ssl_reason());
	m->ca_names = SSL_load_client_CA_file(path);
	if (m->ca_names == NULL)
		return bh_err_set(err, EINVAL, "CA %s: no certificate in PEM", path);
	return 0;
}

static int material_load(struct tls_material *m, const char *dir, struct bh_err *err)
{
	cleanup_free char *ca = bh_path_join(dir, "ca.pem");
	cleanup_free char *cert = bh_path_join(dir, "server-cert.pem");
	cleanup_free char *key = bh_path_join(dir, "server-key.pem");

	memset(m, 0, sizeof(*m));
	if (load_cert_chain(m, cert, err) < 0 || load_key(m, key, err) < 0 ||
	    load_ca(m, ca, err) < 0)
		goto fail;
	if (X509_check_private_key(m->cert, m->key) != 1) {
		bh_err_set(err, EINVAL, "private key %s does not match certificate %s", key, cert);
		goto fail;
	}
	return 0;
fail:
	material_free(m);
	ERR_clear_error();
	return -1;
}

int srv_tls_check_dir(const char *dir, struct bh_err *err)
{
	struct tls_material m;

	if (material_load(&m, dir, err) < 0)
		return bh_err_wrap(err, "tls");
	material_free(&m);
	return 0;
}

/* Installs the material into ctx (taking references, m stays intact).
 * The fallible steps come first, so a failure leaves ctx as it was. */
static int material_apply(SSL_CTX *ctx, const struct tls_material *m, struct bh_err *err)
{
	STACK_OF(X509) *chain = X509_chain_up_ref(m->chain);
	STACK_OF(X509_NAME) *names = SSL_dup_CA_list(m->ca_names);

	if (chain == NULL || names == NULL || X509_STORE_up_ref(m->store) != 1) {
		sk_X509_pop_free(chain, X509_free);
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		return bh_err_set(err, ENOMEM, "install TLS material: out of memory");
	}
	if (SSL_CTX_use_certificate(ctx, m->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, m->key) != 1) {
		sk_X509_pop_free(chain, X509_free);
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		X509_STORE_free(m->store);
		return bh_err_set(err, EINVAL, "install server certificate: %s", ssl_reason());
	}
	SSL_CTX_set0_chain(ctx, chain);
	SSL_CTX_set_cert_store(ctx, m->store); /* frees the old store */
	SSL_CTX_set_client_CA_list(ctx, names);
	return 0;
}

int srv_tls_reload(void *const *ssl_ctxs, size_t n, const char *dir, struct bh_err *err)
{
	struct tls_material m;
	int r = 0;

	/* Read and check once, then install the same objects everywhere. */
	if (material_load(&m, dir, err) < 0)
		return bh_err_wrap(err, "tls reload");
	for (size_t i = 0; i < n && r == 0; i++)
		r = material_apply(ssl_ctxs[i], &m, err);
	material_free(&m);
	return r;
}

void srv_peer_address(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[64] = "?";

	snprintf(out, size, "?");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%d", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%d", host, ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		snprintf(out, size, "unix");
	}
}

static void peer_address(X509_STORE_CTX *xctx, char *out, size_t size)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());

	srv_peer_address(ssl ? SSL_get_fd(ssl) : -1, out, size);
}

static void reject_log(X509_STORE_CTX *xctx, const char *why)
{
	char peer[96], subject[256] = "?";
	X509 *cert = X509_STORE_CTX_get_current_cert(xctx);

	if (cert)
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	peer_address(xctx, peer, sizeof(peer));
	bh_warn("tls: client certificate from %s rejected: %s (subject %s)", peer, why, subject);
}

/* Enrollment: a self-signed client certificate (the throwaway one of
 * `berth context create --token`) gets through only while a token waits; the
 * gate then lets it reach the SRV_ROLE_ENROLL routes and nothing else. */
static bool enroll_open(struct srv_server *srv)
{
	return srv != NULL && srv->trust != NULL && srv_trust_tokens_pending(srv->trust);
}

int srv_tls_cert_fingerprint(void *x509, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(x509, EVP_sha256(), md, &n) != 1 || n != 32)
		return -1;
	bh_hex(md, 32, out);
	return 0;
}

/* Authorization comes from the trust store, not from "signed by our CA":
 * a CA-valid certificate that is unknown, revoked or expired in the store
 * is refused here, during the handshake. */
static int trust_verdict(struct srv_server *srv, X509_STORE_CTX *xctx, X509 *cert)
{
	char fp[65];
	struct bh_err err;

	if (srv == NULL || srv->trust == NULL)
		return 0; /* no store (unit tests): the CA decides */
	if (srv_tls_cert_fingerprint(cert, fp) < 0) {
		reject_log(xctx, "cannot compute the fingerprint");
		return 1;
	}
	bh_err_clear(&err);
	if (srv_trust_check(srv->trust, fp, NULL, &err) < 0) {
		reject_log(xctx, err.msg);
		return 1;
	}
	return 0;
}

int srv_tls_verify(struct srv_server *srv, void *x509_ctx, int preverify_ok)
{
	X509_STORE_CTX *xctx = x509_ctx;
	int depth = X509_STORE_CTX_get_error_depth(xctx);
	bool self_signed = X509_STORE_CTX_get_error(xctx) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
	X509 *cert;

	if (depth == 0 && self_signed) {
		if (enroll_open(srv))
			return 0;
		reject_log(xctx, "self-signed certificate and no enrollment token pending");
		return 1;
	}
	/* STACK.md's trap: lws accepts foreign-CA and expired certs unless this
	 * callback turns OpenSSL's verdict into a rejection. */
	if (!preverify_ok) {
		reject_log(xctx, X509_verify_cert_error_string(X509_STORE_CTX_get_error(xctx)));
		return 1;
	}
	if (depth != 0)
		return 0;
	cert = X509_STORE_CTX_get_current_cert(xctx);
	/* A server certificate of the same CA must not log in as a client:
	 * require an explicit clientAuth extended key usage on the leaf. */
	if (cert == NULL || !(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT)) {
		reject_log(xctx, "extended key usage does not allow clientAuth");
		return 1;
	}
	return trust_verdict(srv, xctx, cert);
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static int identity_from_der(const uint8_t *der, size_t len, struct srv_identity *id,
                             struct bh_err *err)
{
	struct pki_cert_info info;

	memset(&info, 0, sizeof(info));
	if (pki_cert_info_from_der(der, len, &info, err) < 0)
		return bh_err_wrap(err, "client certificate");
	pki_fingerprint_der(der, len, id->fingerprint);
	bh_strlcpy(id->cn, info.common_name, sizeof(id->cn));
	pki_cert_info_free(&info);
	id->is_unix = false;
	snprintf(id->text, sizeof(id->text), "cn=%s fp=%.12s", id->cn, id->fingerprint);
	sanitize(id->text);
	return 0;
}

int srv_tls_identity(struct lws *wsi, struct srv_identity *id, struct bh_err *err)
{
	SSL *ssl = lws_get_ssl(lws_get_network_wsi(wsi));
	X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	unsigned char *der = NULL;
	int len, r;

	if (cert == NULL)
		return bh_err_set(err, EACCES, "no client certificate");
	len = i2d_X509(cert, &der);
	X509_free(cert);
	if (len <= 0 || len > PEER_CERT_MAX) {
		OPENSSL_free(der);
		return bh_err_set(err, EACCES, "client certificate: cannot encode");
	}
	r = identity_from_der(der, (size_t)len, id, err);
	OPENSSL_free(der);
	/* let through by srv_tls_verify only while enrollment is open */
	id->self_signed = SSL_get_verify_result(ssl) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
	srv_peer_address(SSL_get_fd(ssl), id->addr, sizeof(id->addr));
	return r;
}

/* The first certificate of a PEM text, checked the way the handshake will
 * check it (chain to TLS_DIR/ca.pem, purpose clientAuth) so that nothing is
 * trusted that could never connect. */
static int cert_chain_check(const char *tls_dir, X509 *cert, struct bh_err *err)
{
	cleanup_free char *ca = bh_path_join(tls_dir, "ca.pem");
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	ERR_clear_error();
	if (store == NULL || ctx == NULL || X509_STORE_load_file(store, ca) != 1)
		bh_err_set(err, EIO, "CA %s: %s", ca, ssl_reason());
	else if (X509_STORE_CTX_init(ctx, store, cert, NULL) != 1 ||
	         X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
		bh_err_set(err, ENOMEM, "certificate check: out of memory");
	else if (X509_verify_cert(ctx) != 1)
		bh_err_set(err, EINVAL, "certificate not accepted by this daemon's CA: %s",
		           X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	else if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
	         !(X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT))
		bh_err_set(err, EINVAL, "certificate is not for clients (no clientAuth usage)");
	else
		rc = 0;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

static int cert_entry_fill(X509 *cert, struct srv_trust_entry *e, char cn[256],
                           struct bh_err *err)
{
	unsigned char *der = NULL;
	struct pki_cert_info info;
	int len = i2d_X509(cert, &der);

	if (len <= 0 || len > PEER_CERT_MAX) {
		OPENSSL_free(der);
		return bh_err_set(err, EINVAL, "certificate: cannot encode");
	}
	memset(&info, 0, sizeof(info));
	if (pki_cert_info_from_der(der, (size_t)len, &info, err) < 0) {
		OPENSSL_free(der);
		return -1;
	}
	pki_fingerprint_der(der, (size_t)len, e->fingerprint);
	OPENSSL_free(der);
	e->expires = info.not_after;
	bh_strlcpy(cn, info.common_name, 256);
	pki_cert_info_free(&info);
	return 0;
}

int srv_tls_cert_entry(const char *tls_dir, const char *pem, size_t len,
                       struct srv_trust_entry *e, char cn[256], struct bh_err *err)
{
	BIO *bio;
	X509 *cert;
	int rc;

	if (len > PEER_CERT_MAX)
		return bh_err_set(err, EFBIG, "certificate: over %d bytes", PEER_CERT_MAX);
	bio = BIO_new_mem_buf(pem, (int)len);
	ERR_clear_error();
	cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (cert == NULL)
		return bh_err_set(err, EINVAL, "certificate: no PEM certificate");
	rc = tls_dir != NULL ? cert_chain_check(tls_dir, cert, err) : 0;
	if (rc == 0)
		rc = cert_entry_fill(cert, e, cn, err);
	X509_free(cert);
	return rc;
}
