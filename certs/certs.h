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
#define PKI_CA_DAYS         3652  /* ten years */
#define PKI_MAX_DAYS        36500 /* |days| above this is refused */
#define PKI_MAX_NAME        64    /* longest CN pki_issue accepts */

struct pki_init_opts {
	const char *dir;
	const char *const *hosts; /* extra DNS SANs for the server cert */
	size_t n_hosts;
	const char *const *ips; /* extra IP SANs (v4 or v6 text) */
	size_t n_ips;
	int days;   /* validity of the leaf certs; 0 = PKI_DEFAULT_DAYS */
	bool force; /* overwrite an existing CA */
};

/* Writes ca.pem, ca-key.pem, server-cert.pem, server-key.pem, cert.pem, key.pem
 * into o->dir (created 0700, or tightened to 0700; keys 0600, certs 0644).
 * The server cert (CN=berthd) always carries the SANs localhost, 127.0.0.1 and
 * ::1 and EKU serverAuth; cert.pem is an admin client cert (CN=admin, EKU
 * clientAuth).  Subjects are "O=berth, CN=..." (CN last); the CA's CN carries a
 * random suffix.  Refuses an existing CA unless o->force.  Each file is written
 * atomically, the CA last; the set of six is not one transaction. */
int pki_init(const struct pki_init_opts *o, struct bh_err *err);

/* Issues a client cert with CN=name signed by the CA in ca_dir, written to
 * out_dir as ca.pem, cert.pem, key.pem (the docker CLI's names).  Replaces
 * existing files there (pki_issue with force).  See pki_issue for days. */
int pki_issue_client(const char *name, const char *ca_dir, const char *out_dir, int days,
                     struct bh_err *err);

enum pki_eku { PKI_EKU_SERVER = 1, PKI_EKU_CLIENT = 2, PKI_EKU_OTHER = 4 };

/* pki_issue: one leaf certificate signed by the CA in ca_dir (ca.pem and
 * ca-key.pem, as pki_init writes them).
 * days > 0: valid from an hour ago (clock skew) until now + days.
 * days < 0: an EXPIRED cert for tests, valid for one day ending |days| days ago.
 * days == 0: PKI_DEFAULT_DAYS. */
struct pki_issue_opts {
	const char *ca_dir;
	const char *out_dir;      /* created 0700 */
	const char *name;         /* the CN; see pki_check_name() */
	enum pki_eku eku;         /* PKI_EKU_CLIENT or PKI_EKU_SERVER */
	const char *const *hosts; /* extra DNS SANs; server certs only */
	size_t n_hosts;
	const char *const *ips; /* extra IP SANs; server certs only */
	size_t n_ips;
	int days;
	/* false: write ca.pem, cert.pem, key.pem (docker's client names);
	 * true: write ca.pem, server-cert.pem, server-key.pem (berthd's names). */
	bool server_file_names;
	bool force; /* replace an existing key/cert in out_dir */
};

/* A server cert from PKI_EKU_SERVER carries, like pki_init's, the SANs
 * localhost, 127.0.0.1 and ::1 besides hosts and ips.  Writes the key first,
 * then the cert, then ca.pem, each atomically. */
int pki_issue(const struct pki_issue_opts *o, struct bh_err *err);

/* Input checks with one-line errors naming the value. */
int pki_check_host(const char *host, struct bh_err *err); /* DNS name (LDH labels, '*.' ok) */
int pki_check_ip(const char *ip, struct bh_err *err);     /* IPv4 or IPv6 text */
int pki_check_name(const char *name, struct bh_err *err); /* CN: printable, no ,=+\"<>; */

struct pki_cert_info {
	char subject[512];
	char issuer[512];
	char common_name[256]; /* the LAST CN of the subject; "" if none */
	char **dns_sans;       /* owned */
	size_t n_dns_sans;
	char **ip_sans; /* owned, text form */
	size_t n_ip_sans;
	int64_t not_before; /* unix seconds, UTC */
	int64_t not_after;
	char key_type[32];                         /* "ECDSA P-256", "RSA 2048", ... */
	char fingerprint[PKI_FINGERPRINT_LEN + 1]; /* SHA-256 of the DER, lower hex */
	char serial[80];
	bool is_ca;
	int eku;             /* PKI_EKU_* bits; 0 if the extension is absent */
	char key_usage[160]; /* "digitalSignature,keyCertSign"; "" if absent */
	int version;         /* X.509 version, 1..3 */
};

/* Parses one DER certificate.  Never crashes on hostile input; len above
 * 64 KiB is refused.  Text fields are sanitised (bytes outside printable ASCII
 * come back as '?').  On success free *info with pki_cert_info_free(). */
int pki_cert_info_from_der(const uint8_t *der, size_t len, struct pki_cert_info *info,
                           struct bh_err *err);
/* Reads the first certificate of a PEM file (a DER file works too). */
int pki_cert_info_from_file(const char *path, struct pki_cert_info *info, struct bh_err *err);
/* The same for the first certificate of a PEM text held in memory. */
int pki_cert_info_from_pem(const char *pem, size_t len, struct pki_cert_info *info,
                           struct bh_err *err);
void pki_cert_info_free(struct pki_cert_info *info);

/* SHA-256 of a DER certificate as lower-case hex. */
void pki_fingerprint_der(const uint8_t *der, size_t len, char out[PKI_FINGERPRINT_LEN + 1]);

/* Checks that cert_path holds a parseable certificate and key_path the
 * matching private key; the error names the offending file. */
int pki_check_pair(const char *cert_path, const char *key_path, struct bh_err *err);

/* ---- enrollment (pki-csr.c, pki-token.c) ----------------------------------
 * A client makes its key locally and sends only a CSR; berthd's CA signs it
 * for the identity a token (or the caller's certificate) names.  The CSR is
 * hostile: its signature is verified and nothing but its public key is used. */
#define PKI_PIN_LEN       44          /* base64 of a SHA-256, padded */
#define PKI_CSR_MAX       (16 * 1024) /* largest CSR PEM accepted */
#define PKI_ENROLL_CN     "berth-enroll" /* CN of the throwaway self-signed cert */

/* SHA-256 of a certificate's SubjectPublicKeyInfo in base64: libcurl's
 * CURLOPT_PINNEDPUBLICKEY "sha256//<pin>". */
int pki_spki_pin_der(const uint8_t *der, size_t len, char out[PKI_PIN_LEN + 1],
                     struct bh_err *err);
int pki_spki_pin_file(const char *cert_path, char out[PKI_PIN_LEN + 1], struct bh_err *err);

/* What a client needs to enroll: a fresh P-256 key, a CSR signed with it and a
 * self-signed clientAuth certificate of the same key, valid for an hour, that
 * it presents during the enrollment handshake.  All PEM, owned; key wiped by
 * pki_enroll_kit_free. */
struct pki_enroll_kit {
	char *key;
	char *csr;
	char *self_cert;
};
int pki_enroll_kit_make(const char *cn, struct pki_enroll_kit *out, struct bh_err *err);
void pki_enroll_kit_free(struct pki_enroll_kit *kit);
/* A CSR (PEM, owned) for the existing key in key_path (renewal). */
int pki_csr_for_key_file(const char *key_path, const char *cn, char **csr_pem, struct bh_err *err);

/* Signs a client certificate (EKU clientAuth, subject O=berth,CN=name: never
 * taken from the CSR) for the public key of csr_pem with the CA in ca_dir
 * (ca.pem, ca-key.pem).  Valid from an hour ago for days (1..PKI_MAX_DAYS),
 * never past the CA.  Refuses a CSR that does not parse, whose signature does
 * not verify or whose key is not ECDSA P-256 / RSA >= 2048.  *cert_pem and
 * *ca_pem are owned by the caller.  A missing ca-key.pem fails with ENOTSUP. */
struct pki_csr_sign_opts {
	const char *ca_dir;
	const char *csr_pem;
	size_t csr_len;
	const char *name;
	int days;
};
int pki_csr_sign(const struct pki_csr_sign_opts *o, char **cert_pem, char **ca_pem,
                 struct bh_err *err);
/* Checks a CSR without signing it: parses, verifies its signature. */
int pki_csr_check(const char *csr_pem, size_t len, struct bh_err *err);

/* Checks that the first certificate of cert_pem is signed by the first of
 * ca_pem and valid now (what an enrolling client checks before it writes a
 * context that could never connect). */
int pki_cert_verify_pem(const char *cert_pem, const char *ca_pem, struct bh_err *err);

/* The DER of the first certificate of a PEM text (owned), for fingerprints. */
int pki_pem_first_der(const char *pem, size_t len, uint8_t **der, size_t *der_len,
                      struct bh_err *err);

/* Enrollment token: "berth1-" + base64url(JSON {"n": name, "a": ["host:port",
 * ...], "p": pin, "s": secret}).  The text is hostile on decode (a user pastes
 * it): bounded, every field checked. */
#define PKI_TOKEN_PREFIX     "berth1-"
#define PKI_TOKEN_MAX        4096 /* longest token text */
#define PKI_TOKEN_MAX_ADDRS  16
#define PKI_TOKEN_ADDR_MAX   300 /* "host:port", "[v6]:port" */
#define PKI_TOKEN_SECRET_LEN 64  /* hex of 32 random bytes */
struct pki_token {
	char name[PKI_MAX_NAME + 1];
	char addrs[PKI_TOKEN_MAX_ADDRS][PKI_TOKEN_ADDR_MAX];
	size_t n_addrs;
	char pin[PKI_PIN_LEN + 1];
	char secret[PKI_TOKEN_SECRET_LEN + 1];
};
/* *out owned by the caller (it holds the secret: wipe it). */
int pki_token_encode(const struct pki_token *t, char **out, struct bh_err *err);
int pki_token_decode(const char *text, struct pki_token *t, struct bh_err *err);
void pki_token_wipe(struct pki_token *t);
/* 32 random bytes as hex. */
int pki_token_secret_new(char out[PKI_TOKEN_SECRET_LEN + 1], struct bh_err *err);
/* SHA-256 of the secret's 32 bytes (what berthd stores); -1 unless secret is
 * 64 hex digits. */
int pki_token_secret_hash(const char *secret, uint8_t out[32]);
/* Checks "host:port" / "[v6]:port" (port 1..65535, host a DNS name or IP). */
int pki_token_check_addr(const char *addr, struct bh_err *err);

#endif
