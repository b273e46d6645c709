/* certs: berth's PKI — ECDSA P-256 keys, the CA, server and client
 * certificates, certificate inspection and fingerprints.  The only module that
 * includes mbedtls.  Trusts nothing it parses: PEM/DER input may be hostile. */
#ifndef BERTH_CERTS_H
#define BERTH_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/common.h"

#define PKI_FINGERPRINT_LEN 64 /* hex chars of a SHA-256, without NUL */
#define PKI_DEFAULT_DAYS    365

struct pki_init_opts {
	const char *dir;
	const char *const *hosts; /* extra DNS SANs for the server cert */
	size_t n_hosts;
	const char *const *ips; /* extra IP SANs (v4 or v6 text) */
	size_t n_ips;
	int days; /* validity of the leaf certs; 0 = PKI_DEFAULT_DAYS */
	bool force; /* overwrite an existing CA */
};

/* Writes ca.pem, ca-key.pem, server-cert.pem, server-key.pem, cert.pem, key.pem
 * into o->dir (created 0700; keys 0600).  The server cert always carries the
 * SANs localhost and 127.0.0.1 and EKU serverAuth; cert.pem is an admin client
 * cert (CN=admin, EKU clientAuth).  Refuses an existing CA unless o->force. */
int pki_init(const struct pki_init_opts *o, struct bh_err *err);

/* Issues a client cert with CN=name signed by the CA in ca_dir, written to
 * out_dir as ca.pem, cert.pem, key.pem (the docker CLI's names). */
int pki_issue_client(const char *name, const char *ca_dir, const char *out_dir, int days,
		     struct bh_err *err);

enum pki_eku { PKI_EKU_SERVER = 1, PKI_EKU_CLIENT = 2 };

struct pki_cert_info {
	char subject[512];
	char issuer[512];
	char common_name[256];
	char **dns_sans; /* owned */
	size_t n_dns_sans;
	char **ip_sans; /* owned, text form */
	size_t n_ip_sans;
	int64_t not_before; /* unix seconds, UTC */
	int64_t not_after;
	char key_type[32]; /* "ECDSA P-256", "RSA 2048", ... */
	char fingerprint[PKI_FINGERPRINT_LEN + 1]; /* SHA-256 of the DER, lower hex */
	char serial[80];
	bool is_ca;
	int eku; /* PKI_EKU_* bits; 0 if the extension is absent */
};

int pki_cert_info_from_der(const uint8_t *der, size_t len, struct pki_cert_info *info,
			   struct bh_err *err);
/* Reads the first certificate of a PEM file. */
int pki_cert_info_from_file(const char *path, struct pki_cert_info *info, struct bh_err *err);
void pki_cert_info_free(struct pki_cert_info *info);

/* SHA-256 of a DER certificate as lower-case hex. */
void pki_fingerprint_der(const uint8_t *der, size_t len, char out[PKI_FINGERPRINT_LEN + 1]);

/* Checks that cert_path holds a parseable certificate and key_path the
 * matching private key; the error names the offending file. */
int pki_check_pair(const char *cert_path, const char *key_path, struct bh_err *err);

#endif
