/* certs internals shared by the files of certs/: the random generator, the
 * certificate writer and small helpers.  Only the files of certs/ include this (and
 * through it mbedtls). */
#ifndef BERTH_CERTS_INTERNAL_H
#define BERTH_CERTS_INTERNAL_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "certs/certs.h"

#define PKI_MAX_PEM      (1024 * 1024) /* largest PEM/DER file we read */
#define PKI_MAX_DER      (64 * 1024)   /* largest certificate we parse */
#define PKI_CERT_PEM_MAX (32 * 1024)   /* buffer for one certificate we write */
#define PKI_KEY_PEM_MAX  2048          /* buffer for one P-256 private key PEM */
#define PKI_MAX_SANS     64            /* hosts + ips on one certificate */
#define PKI_SKEW_SECONDS 3600          /* not_before is backdated for clock skew */
#define PKI_DAY          86400

struct pki_rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

int pki_rng_init(struct pki_rng *rng, struct bh_err *err);
void pki_rng_free(struct pki_rng *rng);
int pki_rng_bytes(struct pki_rng *rng, unsigned char *out, size_t len, struct bh_err *err);

/* Fills err with "<what>: <mbedtls message>"; returns -1. */
int pki_err_mbed(struct bh_err *err, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Kinds of certificate the writer makes. */
enum pki_kind { PKI_KIND_CA, PKI_KIND_SERVER, PKI_KIND_CLIENT };

struct pki_cert_spec {
	enum pki_kind kind;
	const char *subject;      /* mbedtls DN string, e.g. "O=berth,CN=admin" */
	const char *const *hosts; /* DNS SANs (server only) */
	size_t n_hosts;
	const char *const *ips; /* IP SANs, text (server only) */
	size_t n_ips;
	int64_t not_before; /* unix seconds */
	int64_t not_after;
};

/* The issuer: the CA's key and its subject DN (for a self-signed CA the
 * subject key and spec->subject). */
struct pki_issuer {
	mbedtls_pk_context *key;
	const char *name;
};

/* Generates an ECDSA P-256 key into an initialised (empty) pk context. */
int pki_key_generate(struct pki_rng *rng, mbedtls_pk_context *key, struct bh_err *err);
/* The same, and its PEM in *pem (PKI_KEY_PEM_MAX bytes, owned by the caller). */
int pki_key_generate_pem(struct pki_rng *rng, mbedtls_pk_context *key, char **pem,
                         struct bh_err *err);
/* Writes a PEM certificate for spec into pem[cap]. */
int pki_cert_write(struct pki_rng *rng, const struct pki_cert_spec *spec, mbedtls_pk_context *key,
                   const struct pki_issuer *issuer, char *pem, size_t cap, struct bh_err *err);

/* A generated key and certificate in PEM.  key_pem is wiped when freed. */
struct pki_pem_pair {
	char *cert; /* owned */
	char *key;  /* owned, secret */
};
/* Key + cert in one step; the new key stays in *key when key != NULL. */
int pki_pair_make(struct pki_rng *rng, const struct pki_cert_spec *spec,
                  const struct pki_issuer *issuer, mbedtls_pk_context *key,
                  struct pki_pem_pair *out, struct bh_err *err);
void pki_pair_free(struct pki_pem_pair *p);

/* Loads a private key file (PEM or DER, unencrypted); the buffer is wiped. */
int pki_key_load(const char *path, mbedtls_pk_context *key, struct bh_err *err);
/* Reads path and returns the DER of its first certificate (owned). */
int pki_file_first_der(const char *path, unsigned char **der, size_t *len, struct bh_err *err);
/* Loads the first certificate of a PEM (or DER) file. */
int pki_crt_load(const char *path, mbedtls_x509_crt *crt, struct bh_err *err);

/* "YYYYMMDDhhmmss" in UTC, as mbedtls wants validity. */
int pki_time_mbed(int64_t t, char out[16], struct bh_err *err);
/* Unix seconds of an mbedtls time (proleptic Gregorian, UTC). */
int64_t pki_time_from_x509(const mbedtls_x509_time *t);

#endif
