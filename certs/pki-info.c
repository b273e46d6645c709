/* Reading certificates: the facts `berth certs inspect` and the daemon's
 * peer identity need.  Input is hostile (peer certs, fuzzed DER): mbedtls
 * parses within the given length, our own second walk over the extensions
 * only uses bounded mbedtls_asn1_get_* calls, and every string that comes
 * back is cut to size and made printable. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include <mbedtls/asn1.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>

#include "certs/certs-internal.h"

#define MAX_SANS_KEPT 256 /* per kind; more are ignored */

static void make_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static char *printable_dup(const unsigned char *p, size_t n)
{
	char *s = bh_strndup((const char *)p, n > 255 ? 255 : n);

	make_printable(s);
	return s;
}

static void add_str(char ***list, size_t *n, char *s)
{
	if (*n >= MAX_SANS_KEPT) {
		free(s);
		return;
	}
	*list = bh_realloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = s;
}

static void san_entry(struct pki_cert_info *info, unsigned char tag, const unsigned char *p,
                      size_t n)
{
	char ip[64];

	if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) {
		add_str(&info->dns_sans, &info->n_dns_sans, printable_dup(p, n));
		return;
	}
	if (tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS))
		return;
	if ((n == 4 && inet_ntop(AF_INET, p, ip, sizeof(ip)) != NULL) ||
	    (n == 16 && inet_ntop(AF_INET6, p, ip, sizeof(ip)) != NULL))
		add_str(&info->ip_sans, &info->n_ip_sans, bh_strdup(ip));
	else
		add_str(&info->ip_sans, &info->n_ip_sans, bh_strdup("(invalid)"));
}

/* GeneralNames ::= SEQUENCE OF GeneralName (tag, length, value). */
static void parse_san(unsigned char *p, const unsigned char *end, struct pki_cert_info *info)
{
	size_t len;

	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
	    0)
		return;
	end = p + len;
	while (end - p >= 2) {
		unsigned char tag = *p++;

		if (mbedtls_asn1_get_len(&p, end, &len) != 0)
			return;
		san_entry(info, tag, p, len);
		p += len;
	}
}

/* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
 *                          extnValue OCTET STRING } */
static int next_ext(unsigned char **p, const unsigned char *end, mbedtls_asn1_buf *oid,
                    unsigned char **val, size_t *val_len)
{
	const unsigned char *ext_end;
	size_t len;
	int crit;

	if (mbedtls_asn1_get_tag(p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
		return -1;
	ext_end = *p + len;
	if (mbedtls_asn1_get_tag(p, ext_end, &oid->len, MBEDTLS_ASN1_OID))
		return -1;
	oid->p = *p;
	*p += oid->len;
	(void)mbedtls_asn1_get_bool(p, ext_end, &crit); /* optional */
	if (mbedtls_asn1_get_tag(p, ext_end, val_len, MBEDTLS_ASN1_OCTET_STRING))
		return -1;
	*val = *p;
	*p = (unsigned char *)ext_end;
	return 0;
}

static void walk_extensions(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	unsigned char *p = crt->v3_ext.p;
	const unsigned char *end;
	size_t len;

	if (p == NULL || crt->v3_ext.len == 0) /* v1/v2 certificates */
		return;
	end = p + crt->v3_ext.len;
	if (*p == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3)) {
		if (mbedtls_asn1_get_tag(&p, end, &len, *p) != 0)
			return;
		end = p + len;
	}
	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
		return;
	end = p + len;
	while (p < end) {
		mbedtls_asn1_buf oid;
		unsigned char *val;
		size_t val_len;

		if (next_ext(&p, end, &oid, &val, &val_len) < 0)
			return;
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0)
			parse_san(val, val + val_len, info);
	}
}

static void fill_key_type(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(&crt->pk);
	const mbedtls_ecp_curve_info *ci;

	if (t == MBEDTLS_PK_RSA) {
		snprintf(info->key_type, sizeof(info->key_type), "RSA %zu",
		         mbedtls_pk_get_bitlen(&crt->pk));
		return;
	}
	if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECKEY_DH && t != MBEDTLS_PK_ECDSA) {
		snprintf(info->key_type, sizeof(info->key_type), "%s",
		         mbedtls_pk_get_name(&crt->pk));
		return;
	}
	ci = mbedtls_ecp_curve_info_from_grp_id(mbedtls_pk_ec(crt->pk)->grp.id);
	if (ci != NULL && ci->grp_id == MBEDTLS_ECP_DP_SECP256R1)
		bh_strlcpy(info->key_type, "ECDSA P-256", sizeof(info->key_type));
	else if (ci != NULL && ci->grp_id == MBEDTLS_ECP_DP_SECP384R1)
		bh_strlcpy(info->key_type, "ECDSA P-384", sizeof(info->key_type));
	else if (ci != NULL && ci->grp_id == MBEDTLS_ECP_DP_SECP521R1)
		bh_strlcpy(info->key_type, "ECDSA P-521", sizeof(info->key_type));
	else
		snprintf(info->key_type, sizeof(info->key_type), "EC %s",
		         ci ? ci->name : "unknown curve");
}

static void fill_eku(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	const mbedtls_x509_sequence *cur;

	if (!(crt->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE))
		return;
	for (cur = &crt->ext_key_usage; cur != NULL && cur->buf.p != NULL; cur = cur->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_SERVER_AUTH, &cur->buf) == 0)
			info->eku |= PKI_EKU_SERVER;
		else if (MBEDTLS_OID_CMP(MBEDTLS_OID_CLIENT_AUTH, &cur->buf) == 0)
			info->eku |= PKI_EKU_CLIENT;
		else
			info->eku |= PKI_EKU_OTHER;
	}
}

static void fill_key_usage(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {
	    {MBEDTLS_X509_KU_DIGITAL_SIGNATURE, "digitalSignature"},
	    {MBEDTLS_X509_KU_NON_REPUDIATION, "nonRepudiation"},
	    {MBEDTLS_X509_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	    {MBEDTLS_X509_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
	    {MBEDTLS_X509_KU_KEY_AGREEMENT, "keyAgreement"},
	    {MBEDTLS_X509_KU_KEY_CERT_SIGN, "keyCertSign"},
	    {MBEDTLS_X509_KU_CRL_SIGN, "cRLSign"},
	    {MBEDTLS_X509_KU_ENCIPHER_ONLY, "encipherOnly"},
	    {MBEDTLS_X509_KU_DECIPHER_ONLY, "decipherOnly"},
	};
	size_t used = 0;

	if (!(crt->ext_types & MBEDTLS_X509_EXT_KEY_USAGE))
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(crt->key_usage & names[i].bit))
			continue;
		used += (size_t)snprintf(info->key_usage + used, sizeof(info->key_usage) - used,
		                         "%s%s", used ? "," : "", names[i].name);
	}
}

/* The last CN of the subject, as most TLS stacks take it. */
static void fill_cn(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	for (const mbedtls_x509_name *n = &crt->subject; n != NULL; n = n->next) {
		size_t len;

		if (n->oid.p == NULL || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0)
			continue;
		len = n->val.len < sizeof(info->common_name) - 1 ? n->val.len
		                                                 : sizeof(info->common_name) - 1;
		memcpy(info->common_name, n->val.p, len);
		info->common_name[len] = '\0';
	}
	make_printable(info->common_name);
}

static void fill_serial(const mbedtls_x509_crt *crt, struct pki_cert_info *info)
{
	const unsigned char *p = crt->serial.p;
	size_t n = crt->serial.len;

	while (n > 1 && *p == 0) { /* DER pads positive integers with a zero */
		p++;
		n--;
	}
	if (n > (sizeof(info->serial) - 1) / 2)
		n = (sizeof(info->serial) - 1) / 2;
	if (p != NULL)
		bh_hex(p, n, info->serial);
}

static int fill_names(const mbedtls_x509_crt *crt, struct pki_cert_info *info, struct bh_err *err)
{
	if (mbedtls_x509_dn_gets(info->subject, sizeof(info->subject), &crt->subject) < 0 ||
	    mbedtls_x509_dn_gets(info->issuer, sizeof(info->issuer), &crt->issuer) < 0)
		return bh_err_set(err, EINVAL, "certificate names are too long");
	make_printable(info->subject);
	make_printable(info->issuer);
	fill_cn(crt, info);
	return 0;
}

static int fill_info(const mbedtls_x509_crt *crt, struct pki_cert_info *info, struct bh_err *err)
{
	if (fill_names(crt, info, err) < 0)
		return -1;
	info->version = crt->version;
	info->not_before = pki_time_from_x509(&crt->valid_from);
	info->not_after = pki_time_from_x509(&crt->valid_to);
	info->is_ca = (crt->ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) && crt->ca_istrue;
	fill_key_type(crt, info);
	fill_serial(crt, info);
	fill_eku(crt, info);
	fill_key_usage(crt, info);
	walk_extensions(crt, info);
	pki_fingerprint_der(crt->raw.p, crt->raw.len, info->fingerprint);
	return 0;
}

int pki_cert_info_from_der(const uint8_t *der, size_t len, struct pki_cert_info *info,
                           struct bh_err *err)
{
	mbedtls_x509_crt crt;
	int ret;

	memset(info, 0, sizeof(*info));
	if (der == NULL || len == 0)
		return bh_err_set(err, EINVAL, "empty certificate");
	if (len > PKI_MAX_DER)
		return bh_err_set(err, EFBIG, "certificate larger than %d bytes", PKI_MAX_DER);
	mbedtls_x509_crt_init(&crt);
	ret = mbedtls_x509_crt_parse_der(&crt, der, len);
	if (ret != 0) {
		mbedtls_x509_crt_free(&crt);
		return pki_err_mbed(err, ret, "bad certificate");
	}
	ret = fill_info(&crt, info, err);
	mbedtls_x509_crt_free(&crt);
	if (ret < 0)
		pki_cert_info_free(info);
	return ret;
}

int pki_cert_info_from_file(const char *path, struct pki_cert_info *info, struct bh_err *err)
{
	cleanup_free unsigned char *der = NULL;
	size_t len = 0;

	memset(info, 0, sizeof(*info));
	if (pki_file_first_der(path, &der, &len, err) < 0)
		return -1;
	if (pki_cert_info_from_der(der, len, info, err) < 0)
		return bh_err_wrap(err, "%s", path);
	return 0;
}

int pki_cert_info_from_pem(const char *pem, size_t len, struct pki_cert_info *info,
                           struct bh_err *err)
{
	cleanup_free uint8_t *der = NULL;
	size_t der_len = 0;

	memset(info, 0, sizeof(*info));
	if (pki_pem_first_der(pem, len, &der, &der_len, err) < 0)
		return -1;
	return pki_cert_info_from_der(der, der_len, info, err);
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void pki_cert_info_free(struct pki_cert_info *info)
{
	if (info == NULL)
		return;
	free_list(info->dns_sans, info->n_dns_sans);
	free_list(info->ip_sans, info->n_ip_sans);
	info->dns_sans = info->ip_sans = NULL;
	info->n_dns_sans = info->n_ip_sans = 0;
}

void pki_fingerprint_der(const uint8_t *der, size_t len, char out[PKI_FINGERPRINT_LEN + 1])
{
	unsigned char sum[32];

	mbedtls_sha256_ret(der, len, sum, 0);
	bh_hex(sum, sizeof(sum), out);
}

int pki_check_pair(const char *cert_path, const char *key_path, struct bh_err *err)
{
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	int r;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	r = pki_crt_load(cert_path, &crt, err);
	if (r == 0)
		r = pki_key_load(key_path, &key, err);
	if (r == 0 && mbedtls_pk_check_pair(&crt.pk, &key) != 0)
		r = bh_err_set(err, EINVAL, "%s does not match %s", key_path, cert_path);
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	return r;
}
