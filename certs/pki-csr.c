/* Enrollment PKI: public-key pins, the client's key + CSR + throwaway
 * self-signed certificate, and berthd's CA signing a CSR.  A CSR is hostile
 * input: mbedtls parses it without checking its signature (STACK.md), so we
 * verify it here, and only its public key is used: the subject comes from the
 * caller (the token's name), never from the CSR. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_csr.h>

#include "certs/certs-internal.h"

#define SPKI_DER_MAX    4096
#define CSR_PEM_CAP     4096
#define SELF_CERT_HOURS 1
#define RSA_MIN_BITS    2048

/* ---- pins ------------------------------------------------------------------ */

static int pin_of_pk(mbedtls_pk_context *pk, char out[PKI_PIN_LEN + 1], struct bh_err *err)
{
	unsigned char buf[SPKI_DER_MAX], hash[32];
	cleanup_free char *b64 = NULL;
	int n = mbedtls_pk_write_pubkey_der(pk, buf, sizeof(buf));

	if (n <= 0)
		return pki_err_mbed(err, n, "encode the public key");
	/* mbedtls writes DER at the end of the buffer. */
	mbedtls_sha256_ret(buf + sizeof(buf) - n, (size_t)n, hash, 0);
	b64 = bh_base64_encode(hash, sizeof(hash), false);
	if (bh_strlcpy(out, b64, PKI_PIN_LEN + 1) < 0 || strlen(b64) != PKI_PIN_LEN)
		return bh_err_set(err, EINVAL, "public key pin has an unexpected length");
	return 0;
}

int pki_spki_pin_der(const uint8_t *der, size_t len, char out[PKI_PIN_LEN + 1], struct bh_err *err)
{
	mbedtls_x509_crt crt;
	int ret;

	if (len > PKI_MAX_DER)
		return bh_err_set(err, EFBIG, "certificate larger than %d bytes", PKI_MAX_DER);
	mbedtls_x509_crt_init(&crt);
	ret = mbedtls_x509_crt_parse_der(&crt, der, len);
	if (ret != 0)
		ret = pki_err_mbed(err, ret, "bad certificate");
	else
		ret = pin_of_pk(&crt.pk, out, err);
	mbedtls_x509_crt_free(&crt);
	return ret;
}

int pki_spki_pin_file(const char *cert_path, char out[PKI_PIN_LEN + 1], struct bh_err *err)
{
	cleanup_free unsigned char *der = NULL;
	size_t len = 0;

	if (pki_file_first_der(cert_path, &der, &len, err) < 0)
		return -1;
	if (pki_spki_pin_der(der, len, out, err) < 0)
		return bh_err_wrap(err, "%s", cert_path);
	return 0;
}

int pki_pem_first_der(const char *pem, size_t len, uint8_t **der, size_t *der_len,
                      struct bh_err *err)
{
	cleanup_free char *text = bh_strndup(pem, len);
	mbedtls_pem_context ctx;
	size_t used = 0;
	int ret;

	if (len > PKI_MAX_PEM)
		return bh_err_set(err, EFBIG, "PEM text larger than %d bytes", PKI_MAX_PEM);
	mbedtls_pem_init(&ctx);
	ret = mbedtls_pem_read_buffer(&ctx, "-----BEGIN CERTIFICATE-----",
	                              "-----END CERTIFICATE-----", (const unsigned char *)text,
	                              NULL, 0, &used);
	if (ret != 0) {
		mbedtls_pem_free(&ctx);
		return pki_err_mbed(err, ret, "no PEM certificate");
	}
	*der = bh_malloc(ctx.buflen ? ctx.buflen : 1);
	memcpy(*der, ctx.buf, ctx.buflen);
	*der_len = ctx.buflen;
	mbedtls_pem_free(&ctx);
	return 0;
}

static int crt_from_pem(const char *pem, mbedtls_x509_crt *crt, struct bh_err *err)
{
	cleanup_free uint8_t *der = NULL;
	size_t len = 0;
	int ret;

	if (pki_pem_first_der(pem, strlen(pem), &der, &len, err) < 0)
		return -1;
	ret = mbedtls_x509_crt_parse_der(crt, der, len);
	return ret != 0 ? pki_err_mbed(err, ret, "bad certificate") : 0;
}

int pki_cert_verify_pem(const char *cert_pem, const char *ca_pem, struct bh_err *err)
{
	mbedtls_x509_crt crt, ca;
	uint32_t flags = 0;
	int r;

	mbedtls_x509_crt_init(&crt);
	mbedtls_x509_crt_init(&ca);
	r = crt_from_pem(cert_pem, &crt, err);
	if (r == 0)
		r = crt_from_pem(ca_pem, &ca, err);
	if (r == 0 && mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL) != 0) {
		char why[256];
		mbedtls_x509_crt_verify_info(why, sizeof(why), "", flags);
		why[strcspn(why, "\n")] = '\0';
		r = bh_err_set(err, EINVAL, "the certificate does not verify against the CA: %s",
		               why);
	}
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return r;
}

/* ---- the client's side --------------------------------------------------- */

static int csr_write(struct pki_rng *rng, mbedtls_pk_context *key, const char *cn, char **out,
                     struct bh_err *err)
{
	char subject[PKI_MAX_NAME + 16];
	mbedtls_x509write_csr w;
	int ret;

	if (pki_check_name(cn, err) < 0)
		return -1;
	snprintf(subject, sizeof(subject), "O=berth,CN=%s", cn);
	mbedtls_x509write_csr_init(&w);
	mbedtls_x509write_csr_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_csr_set_key(&w, key);
	ret = mbedtls_x509write_csr_set_subject_name(&w, subject);
	*out = bh_calloc(1, CSR_PEM_CAP);
	if (ret == 0)
		ret = mbedtls_x509write_csr_pem(&w, (unsigned char *)*out, CSR_PEM_CAP,
		                                mbedtls_ctr_drbg_random, &rng->drbg);
	mbedtls_x509write_csr_free(&w);
	if (ret != 0) {
		free(*out);
		*out = NULL;
		return pki_err_mbed(err, ret, "write the CSR");
	}
	return 0;
}

/* Self-signed: subject = issuer, the same key.  OpenSSL reports it as
 * DEPTH_ZERO_SELF_SIGNED_CERT, which berthd lets through only while an
 * enrollment token is pending, and only to the enrollment route. */
static int self_cert_write(struct pki_rng *rng, mbedtls_pk_context *key, char **out,
                           struct bh_err *err)
{
	static const char subject[] = "O=berth,CN=" PKI_ENROLL_CN;
	int64_t now = (int64_t)time(NULL);
	struct pki_cert_spec spec = {.kind = PKI_KIND_CLIENT,
	                             .subject = subject,
	                             .not_before = now - 300,
	                             .not_after = now + SELF_CERT_HOURS * 3600};
	struct pki_issuer self = {.key = key, .name = subject};

	*out = bh_calloc(1, PKI_CERT_PEM_MAX);
	if (pki_cert_write(rng, &spec, key, &self, *out, PKI_CERT_PEM_MAX, err) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int kit_fill(struct pki_rng *rng, mbedtls_pk_context *key, const char *cn,
                    struct pki_enroll_kit *out, struct bh_err *err)
{
	if (pki_key_generate_pem(rng, key, &out->key, err) < 0)
		return -1;
	if (csr_write(rng, key, cn, &out->csr, err) < 0)
		return -1;
	return self_cert_write(rng, key, &out->self_cert, err);
}

int pki_enroll_kit_make(const char *cn, struct pki_enroll_kit *out, struct bh_err *err)
{
	mbedtls_pk_context key;
	struct pki_rng rng;
	int r;

	memset(out, 0, sizeof(*out));
	if (pki_rng_init(&rng, err) < 0)
		return -1;
	mbedtls_pk_init(&key);
	r = kit_fill(&rng, &key, cn, out, err);
	mbedtls_pk_free(&key);
	pki_rng_free(&rng);
	if (r < 0)
		pki_enroll_kit_free(out);
	return r;
}

void pki_enroll_kit_free(struct pki_enroll_kit *kit)
{
	if (kit->key != NULL) {
		bh_wipe(kit->key, PKI_KEY_PEM_MAX);
		free(kit->key);
	}
	free(kit->csr);
	free(kit->self_cert);
	memset(kit, 0, sizeof(*kit));
}

int pki_csr_for_key_file(const char *key_path, const char *cn, char **csr_pem, struct bh_err *err)
{
	mbedtls_pk_context key;
	struct pki_rng rng;
	int r;

	mbedtls_pk_init(&key);
	r = pki_key_load(key_path, &key, err);
	if (r == 0 && (r = pki_rng_init(&rng, err)) == 0) {
		r = csr_write(&rng, &key, cn, csr_pem, err);
		pki_rng_free(&rng);
	}
	mbedtls_pk_free(&key);
	return r;
}

/* ---- berthd's side: checking and signing a CSR -------------------------- */

static int csr_verify_sig(mbedtls_x509_csr *csr, struct bh_err *err)
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr->sig_md);
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	int ret;

	if (md == NULL)
		return bh_err_set(err, EINVAL, "CSR: unsupported signature hash");
	ret = mbedtls_md(md, csr->cri.p, csr->cri.len, hash);
	if (ret != 0)
		return pki_err_mbed(err, ret, "CSR: hash");
	/* Proof of possession: whoever sent it holds the private key. */
	ret = mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, &csr->pk, csr->sig_md, hash,
	                            mbedtls_md_get_size(md), csr->sig.p, csr->sig.len);
	if (ret != 0)
		return bh_err_set(err, EINVAL, "CSR: the signature does not verify");
	return 0;
}

static int csr_check_key(mbedtls_x509_csr *csr, struct bh_err *err)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(&csr->pk);

	if (t == MBEDTLS_PK_ECKEY && mbedtls_pk_ec(csr->pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1)
		return 0;
	if (t == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(&csr->pk) >= RSA_MIN_BITS)
		return 0;
	return bh_err_set(err, EINVAL, "CSR: the key must be ECDSA P-256 or RSA >= %d bits",
	                  RSA_MIN_BITS);
}

static int csr_parse(const char *pem, size_t len, mbedtls_x509_csr *csr, struct bh_err *err)
{
	cleanup_free char *text = NULL;
	int ret;

	if (pem == NULL || len == 0)
		return bh_err_set(err, EINVAL, "CSR: missing");
	if (len > PKI_CSR_MAX)
		return bh_err_set(err, EINVAL, "CSR: larger than %d bytes", PKI_CSR_MAX);
	if (strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----") == NULL)
		return bh_err_set(err, EINVAL, "CSR: not a PEM certificate request");
	/* PEM input must be NUL-terminated and the NUL counted. */
	text = bh_strndup(pem, len);
	ret = mbedtls_x509_csr_parse(csr, (const unsigned char *)text, strlen(text) + 1);
	if (ret != 0)
		return pki_err_mbed(err, ret, "CSR");
	if (csr_verify_sig(csr, err) < 0)
		return -1;
	return csr_check_key(csr, err);
}

int pki_csr_check(const char *csr_pem, size_t len, struct bh_err *err)
{
	mbedtls_x509_csr csr;
	int r;

	mbedtls_x509_csr_init(&csr);
	r = csr_parse(csr_pem, len, &csr, err);
	mbedtls_x509_csr_free(&csr);
	return r;
}

struct signer {
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	char name[1024];
};

static int signer_load(const char *dir, struct signer *s, struct bh_err *err)
{
	cleanup_free char *cert = bh_path_join(dir, "ca.pem");
	cleanup_free char *key = bh_path_join(dir, "ca-key.pem");
	int ret;

	if (!bh_path_exists(key))
		return bh_err_set(err, ENOTSUP,
		                  "this daemon cannot sign certificates: %s is missing (enrollment "
		                  "needs the CA key on this host)",
		                  key);
	if (pki_crt_load(cert, &s->crt, err) < 0 || pki_key_load(key, &s->key, err) < 0)
		return -1;
	if (mbedtls_pk_check_pair(&s->crt.pk, &s->key) != 0)
		return bh_err_set(err, EINVAL, "%s does not match %s", key, cert);
	if (!s->crt.ca_istrue)
		return bh_err_set(err, EINVAL, "%s is not a CA certificate", cert);
	if (pki_time_from_x509(&s->crt.valid_to) < (int64_t)time(NULL))
		return bh_err_set(err, EINVAL, "%s has expired", cert);
	ret = mbedtls_x509_dn_gets(s->name, sizeof(s->name), &s->crt.subject);
	return ret < 0 ? pki_err_mbed(err, ret, "CA subject") : 0;
}

static int sign_with(struct signer *s, mbedtls_x509_csr *csr, const struct pki_csr_sign_opts *o,
                     char **cert_pem, struct bh_err *err)
{
	char subject[PKI_MAX_NAME + 16];
	int64_t now = (int64_t)time(NULL), ca_end = pki_time_from_x509(&s->crt.valid_to);
	struct pki_cert_spec spec = {.kind = PKI_KIND_CLIENT, .subject = subject};
	struct pki_issuer issuer = {.key = &s->key, .name = s->name};
	struct pki_rng rng;
	int r;

	snprintf(subject, sizeof(subject), "O=berth,CN=%s", o->name);
	spec.not_before = now - PKI_SKEW_SECONDS;
	spec.not_after = now + (int64_t)o->days * PKI_DAY;
	if (spec.not_after > ca_end)
		spec.not_after = ca_end;
	if (pki_rng_init(&rng, err) < 0)
		return -1;
	*cert_pem = bh_calloc(1, PKI_CERT_PEM_MAX);
	r = pki_cert_write(&rng, &spec, &csr->pk, &issuer, *cert_pem, PKI_CERT_PEM_MAX, err);
	pki_rng_free(&rng);
	if (r < 0) {
		free(*cert_pem);
		*cert_pem = NULL;
	}
	return r;
}

static int csr_sign_checked(const struct pki_csr_sign_opts *o, char **cert_pem, char **ca_pem,
                            struct bh_err *err)
{
	cleanup_free char *ca_path = bh_path_join(o->ca_dir, "ca.pem");
	mbedtls_x509_csr csr;
	struct signer s;
	int r;

	mbedtls_x509_csr_init(&csr);
	mbedtls_x509_crt_init(&s.crt);
	mbedtls_pk_init(&s.key);
	r = csr_parse(o->csr_pem, o->csr_len, &csr, err);
	if (r == 0)
		r = signer_load(o->ca_dir, &s, err);
	if (r == 0)
		r = bh_read_file(ca_path, PKI_MAX_PEM, ca_pem, NULL, err);
	if (r == 0 && (r = sign_with(&s, &csr, o, cert_pem, err)) < 0) {
		free(*ca_pem);
		*ca_pem = NULL;
	}
	mbedtls_x509_csr_free(&csr);
	mbedtls_x509_crt_free(&s.crt);
	mbedtls_pk_free(&s.key);
	return r;
}

int pki_csr_sign(const struct pki_csr_sign_opts *o, char **cert_pem, char **ca_pem,
                 struct bh_err *err)
{
	*cert_pem = *ca_pem = NULL;
	if (pki_check_name(o->name, err) < 0)
		return -1;
	if (o->days < 1 || o->days > PKI_MAX_DAYS)
		return bh_err_set(err, ERANGE, "certificate lifetime %d days: must be 1..%d",
		                  o->days, PKI_MAX_DAYS);
	if (o->ca_dir == NULL || *o->ca_dir == '\0')
		return bh_err_set(err, ENOTSUP, "this daemon has no CA directory");
	return csr_sign_checked(o, cert_pem, ca_pem, err);
}
