/* Writing certificates with mbedtls 2.28.  That version has no setter for
 * subjectAltName or extendedKeyUsage, so both are DER-encoded here (backwards,
 * as mbedtls_asn1_write_* work) and added as raw extensions. */
#include <errno.h>
#include <string.h>
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>

#include "certs/certs-internal.h"

#define SAN_BUF_MAX ((PKI_MAX_SANS + 3) * 260)

/* One GeneralName: the value in raw form. */
struct san {
	unsigned char tag; /* MBEDTLS_X509_SAN_DNS_NAME or _IP_ADDRESS */
	unsigned char ip[16];
	const unsigned char *v;
	size_t n;
};

static int san_write_one(unsigned char **p, unsigned char *start, const struct san *s)
{
	size_t len = 0;
	int ret;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, s->v, s->n));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, s->n));
	MBEDTLS_ASN1_CHK_ADD(
	    len, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC | s->tag));
	return (int)len;
}

static bool san_seen(const struct san *sans, size_t n, const struct san *s)
{
	for (size_t i = 0; i < n; i++) {
		if (sans[i].tag != s->tag || sans[i].n != s->n)
			continue;
		if (s->tag == MBEDTLS_X509_SAN_DNS_NAME &&
		    strncasecmp((const char *)sans[i].v, (const char *)s->v, s->n) == 0)
			return true;
		if (s->tag == MBEDTLS_X509_SAN_IP_ADDRESS && memcmp(sans[i].v, s->v, s->n) == 0)
			return true;
	}
	return false;
}

static int san_add_dns(struct san *sans, size_t *n, const char *host, struct bh_err *err)
{
	struct san s = {.tag = MBEDTLS_X509_SAN_DNS_NAME};

	if (pki_check_host(host, err) < 0)
		return -1;
	s.v = (const unsigned char *)host;
	s.n = strlen(host);
	if (!san_seen(sans, *n, &s))
		sans[(*n)++] = s;
	return 0;
}

static int san_add_ip(struct san *sans, size_t *n, const char *ip, struct bh_err *err)
{
	struct san *s = &sans[*n];

	if (pki_check_ip(ip, err) < 0)
		return -1;
	s->tag = MBEDTLS_X509_SAN_IP_ADDRESS;
	if (inet_pton(AF_INET, ip, s->ip) == 1)
		s->n = 4;
	else if (inet_pton(AF_INET6, ip, s->ip) == 1)
		s->n = 16;
	else
		return bh_err_set(err, EINVAL, "invalid IP address \"%s\"", ip);
	s->v = s->ip;
	if (!san_seen(sans, *n, s))
		(*n)++;
	return 0;
}

/* Server SANs: always localhost, 127.0.0.1 and ::1, then the caller's. */
static int san_collect(const struct pki_cert_spec *spec, struct san *sans, size_t *n,
                       struct bh_err *err)
{
	static const char *const def_ips[] = {"127.0.0.1", "::1"};

	if (spec->n_hosts + spec->n_ips > PKI_MAX_SANS)
		return bh_err_set(err, E2BIG, "too many --host/--ip names (at most %d)",
		                  PKI_MAX_SANS);
	*n = 0;
	if (san_add_dns(sans, n, "localhost", err) < 0)
		return -1;
	for (size_t i = 0; i < spec->n_hosts; i++)
		if (san_add_dns(sans, n, spec->hosts[i], err) < 0)
			return -1;
	for (size_t i = 0; i < 2; i++)
		if (san_add_ip(sans, n, def_ips[i], err) < 0)
			return -1;
	for (size_t i = 0; i < spec->n_ips; i++)
		if (san_add_ip(sans, n, spec->ips[i], err) < 0)
			return -1;
	return 0;
}

static int san_encode(unsigned char **p, unsigned char *start, const struct san *sans, size_t n)
{
	size_t len = 0;
	int ret;

	for (size_t i = n; i-- > 0;)
		MBEDTLS_ASN1_CHK_ADD(len, san_write_one(p, start, &sans[i]));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(
	                              p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return (int)len;
}

static int ext_add_san(mbedtls_x509write_cert *crt, const struct pki_cert_spec *spec,
                       struct bh_err *err)
{
	struct san sans[PKI_MAX_SANS + 3];
	cleanup_free unsigned char *buf = bh_malloc(SAN_BUF_MAX);
	unsigned char *p = buf + SAN_BUF_MAX;
	size_t n = 0;
	int ret;

	if (san_collect(spec, sans, &n, err) < 0)
		return -1;
	ret = san_encode(&p, buf, sans, n);
	if (ret < 0)
		return pki_err_mbed(err, ret, "encode subjectAltName");
	ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
	                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
	                                          p, (size_t)ret);
	return ret != 0 ? pki_err_mbed(err, ret, "add subjectAltName") : 0;
}

static int eku_encode(unsigned char **p, unsigned char *start, enum pki_kind kind)
{
	size_t len = 0;
	int ret;

	if (kind == PKI_KIND_SERVER)
		MBEDTLS_ASN1_CHK_ADD(
		    len, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_SERVER_AUTH,
		                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
	else
		MBEDTLS_ASN1_CHK_ADD(
		    len, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_CLIENT_AUTH,
		                                MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_tag(
	                              p, start, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return (int)len;
}

static int ext_add_eku(mbedtls_x509write_cert *crt, enum pki_kind kind, struct bh_err *err)
{
	unsigned char buf[64];
	unsigned char *p = buf + sizeof(buf);
	int ret = eku_encode(&p, buf, kind);

	if (ret < 0)
		return pki_err_mbed(err, ret, "encode extendedKeyUsage");
	ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
	                                          MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
	                                          0, p, (size_t)ret);
	return ret != 0 ? pki_err_mbed(err, ret, "add extendedKeyUsage") : 0;
}

/* A random positive 128-bit serial (RFC 5280: positive, at most 20 bytes). */
static int set_serial(struct pki_rng *rng, mbedtls_x509write_cert *crt, struct bh_err *err)
{
	unsigned char b[16];
	mbedtls_mpi serial;
	int ret;

	if (pki_rng_bytes(rng, b, sizeof(b), err) < 0)
		return -1;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, full 16 bytes */
	mbedtls_mpi_init(&serial);
	ret = mbedtls_mpi_read_binary(&serial, b, sizeof(b));
	if (ret == 0)
		ret = mbedtls_x509write_crt_set_serial(crt, &serial);
	mbedtls_mpi_free(&serial);
	return ret != 0 ? pki_err_mbed(err, ret, "set serial") : 0;
}

static int set_validity(mbedtls_x509write_cert *crt, const struct pki_cert_spec *spec,
                        struct bh_err *err)
{
	char nb[16], na[16];
	int ret;

	if (spec->not_after <= spec->not_before)
		return bh_err_set(err, EINVAL, "certificate validity ends before it starts");
	if (pki_time_mbed(spec->not_before, nb, err) < 0 ||
	    pki_time_mbed(spec->not_after, na, err) < 0)
		return -1;
	ret = mbedtls_x509write_crt_set_validity(crt, nb, na);
	return ret != 0 ? pki_err_mbed(err, ret, "set validity") : 0;
}

static int set_names(mbedtls_x509write_cert *crt, const struct pki_cert_spec *spec,
                     const struct pki_issuer *issuer, struct bh_err *err)
{
	int ret = mbedtls_x509write_crt_set_subject_name(crt, spec->subject);

	if (ret != 0)
		return pki_err_mbed(err, ret, "subject \"%s\"", spec->subject);
	ret = mbedtls_x509write_crt_set_issuer_name(crt, issuer->name);
	if (ret != 0)
		return pki_err_mbed(err, ret, "issuer \"%s\"", issuer->name);
	return 0;
}

static int set_constraints(mbedtls_x509write_cert *crt, enum pki_kind kind, struct bh_err *err)
{
	/* pathlen 0: our CA signs leaves only, never another CA. */
	int ret = mbedtls_x509write_crt_set_basic_constraints(crt, kind == PKI_KIND_CA, 0);
	unsigned int ku;

	if (ret != 0)
		return pki_err_mbed(err, ret, "set basicConstraints");
	ret = mbedtls_x509write_crt_set_subject_key_identifier(crt);
	if (ret == 0)
		ret = mbedtls_x509write_crt_set_authority_key_identifier(crt);
	if (ret != 0)
		return pki_err_mbed(err, ret, "set key identifiers");
	ku = kind == PKI_KIND_CA ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN
	                         : MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
	ret = mbedtls_x509write_crt_set_key_usage(crt, ku);
	return ret != 0 ? pki_err_mbed(err, ret, "set keyUsage") : 0;
}

static int cert_fill(struct pki_rng *rng, mbedtls_x509write_cert *crt,
                     const struct pki_cert_spec *spec, mbedtls_pk_context *key,
                     const struct pki_issuer *issuer, struct bh_err *err)
{
	mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(crt, key);
	mbedtls_x509write_crt_set_issuer_key(crt, issuer->key);
	if (set_names(crt, spec, issuer, err) < 0 || set_serial(rng, crt, err) < 0 ||
	    set_validity(crt, spec, err) < 0 || set_constraints(crt, spec->kind, err) < 0)
		return -1;
	if (spec->kind == PKI_KIND_CA)
		return 0;
	if (spec->kind == PKI_KIND_SERVER && ext_add_san(crt, spec, err) < 0)
		return -1;
	return ext_add_eku(crt, spec->kind, err);
}

int pki_cert_write(struct pki_rng *rng, const struct pki_cert_spec *spec, mbedtls_pk_context *key,
                   const struct pki_issuer *issuer, char *pem, size_t cap, struct bh_err *err)
{
	mbedtls_x509write_cert crt;
	int ret;

	mbedtls_x509write_crt_init(&crt);
	if (cert_fill(rng, &crt, spec, key, issuer, err) < 0) {
		mbedtls_x509write_crt_free(&crt);
		return -1;
	}
	ret = mbedtls_x509write_crt_pem(&crt, (unsigned char *)pem, cap, mbedtls_ctr_drbg_random,
	                                &rng->drbg);
	mbedtls_x509write_crt_free(&crt);
	if (ret != 0)
		return pki_err_mbed(err, ret, "sign certificate \"%s\"", spec->subject);
	return 0;
}

int pki_key_generate(struct pki_rng *rng, mbedtls_pk_context *key, struct bh_err *err)
{
	int ret = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));

	if (ret == 0)
		ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
		                          mbedtls_ctr_drbg_random, &rng->drbg);
	if (ret != 0)
		return pki_err_mbed(err, ret, "generate a P-256 key");
	return 0;
}

int pki_key_generate_pem(struct pki_rng *rng, mbedtls_pk_context *key, char **pem,
                         struct bh_err *err)
{
	int ret;

	if (pki_key_generate(rng, key, err) < 0)
		return -1;
	*pem = bh_calloc(1, PKI_KEY_PEM_MAX);
	ret = mbedtls_pk_write_key_pem(key, (unsigned char *)*pem, PKI_KEY_PEM_MAX);
	if (ret != 0)
		return pki_err_mbed(err, ret, "encode the private key");
	return 0;
}

static int pair_fill(struct pki_rng *rng, const struct pki_cert_spec *spec,
                     const struct pki_issuer *issuer, mbedtls_pk_context *key,
                     struct pki_pem_pair *out, struct bh_err *err)
{
	const struct pki_issuer self = {.key = key, .name = spec->subject};

	if (pki_key_generate_pem(rng, key, &out->key, err) < 0)
		return -1;
	out->cert = bh_calloc(1, PKI_CERT_PEM_MAX);
	return pki_cert_write(rng, spec, key, issuer ? issuer : &self, out->cert, PKI_CERT_PEM_MAX,
	                      err);
}

int pki_pair_make(struct pki_rng *rng, const struct pki_cert_spec *spec,
                  const struct pki_issuer *issuer, mbedtls_pk_context *key,
                  struct pki_pem_pair *out, struct bh_err *err)
{
	mbedtls_pk_context local;
	int r;

	mbedtls_pk_init(&local);
	out->cert = out->key = NULL;
	r = pair_fill(rng, spec, issuer, key ? key : &local, out, err);
	mbedtls_pk_free(&local);
	if (r < 0)
		pki_pair_free(out);
	return r;
}

void pki_pair_free(struct pki_pem_pair *p)
{
	if (p->key) {
		bh_wipe(p->key, PKI_KEY_PEM_MAX);
		free(p->key);
	}
	free(p->cert);
	p->key = p->cert = NULL;
}
