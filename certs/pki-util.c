/* certs helpers: the DRBG, mbedtls error text, time conversion and loading
 * keys and certificates from files with a size limit. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/error.h>
#include <mbedtls/pem.h>

#include "certs/certs-internal.h"

int pki_err_mbed(struct bh_err *err, int ret, const char *fmt, ...)
{
	char what[512], msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	mbedtls_strerror(ret, msg, sizeof(msg));
	return bh_err_set(err, EINVAL, "%s: %s", what, msg);
}

int pki_rng_init(struct pki_rng *rng, struct bh_err *err)
{
	static const char pers[] = "berth-pki";
	int ret;

	mbedtls_entropy_init(&rng->entropy);
	mbedtls_ctr_drbg_init(&rng->drbg);
	ret = mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
	                            (const unsigned char *)pers, sizeof(pers) - 1);
	if (ret != 0) {
		pki_rng_free(rng);
		return pki_err_mbed(err, ret, "seed the random generator");
	}
	return 0;
}

void pki_rng_free(struct pki_rng *rng)
{
	mbedtls_ctr_drbg_free(&rng->drbg);
	mbedtls_entropy_free(&rng->entropy);
}

int pki_rng_bytes(struct pki_rng *rng, unsigned char *out, size_t len, struct bh_err *err)
{
	int ret = mbedtls_ctr_drbg_random(&rng->drbg, out, len);

	if (ret != 0)
		return pki_err_mbed(err, ret, "random bytes");
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * well-known civil-date algorithm), so we need neither timegm nor _mkgmtime. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t pki_time_from_x509(const mbedtls_x509_time *t)
{
	int64_t days = days_from_civil(t->year, t->mon, t->day);

	return days * PKI_DAY + (int64_t)t->hour * 3600 + (int64_t)t->min * 60 + t->sec;
}

int pki_time_mbed(int64_t t, char out[16], struct bh_err *err)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 1950 ||
	    tm.tm_year + 1900 > 9999)
		return bh_err_set(err, ERANGE, "certificate time %lld is out of range",
		                  (long long)t);
	snprintf(out, 16, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

int pki_key_load(const char *path, mbedtls_pk_context *key, struct bh_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	if (bh_read_file(path, PKI_MAX_PEM, &buf, &len, err) < 0)
		return -1;
	/* PEM input must include its NUL in the length; DER must not. */
	if (strstr(buf, "-----BEGIN ") != NULL)
		len++;
	ret = mbedtls_pk_parse_key(key, (const unsigned char *)buf, len, NULL, 0);
	bh_wipe(buf, len);
	free(buf);
	if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
		return bh_err_set(err, EINVAL, "%s: the key is encrypted; berth needs a plain key",
		                  path);
	if (ret != 0)
		return pki_err_mbed(err, ret, "%s: not a private key", path);
	return 0;
}

/* Extracts the first CERTIFICATE block of a PEM text as DER (owned). */
static int pem_first_cert(const char *path, const char *text, unsigned char **der, size_t *len,
                          struct bh_err *err)
{
	mbedtls_pem_context pem;
	size_t used = 0;
	int ret;

	mbedtls_pem_init(&pem);
	ret = mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----",
	                              "-----END CERTIFICATE-----", (const unsigned char *)text,
	                              NULL, 0, &used);
	if (ret != 0) {
		mbedtls_pem_free(&pem);
		if (ret == MBEDTLS_ERR_PEM_NO_HEADER_FOOTER_PRESENT)
			return bh_err_set(err, EINVAL, "%s: no certificate in the file", path);
		return pki_err_mbed(err, ret, "%s: bad PEM certificate", path);
	}
	*der = bh_malloc(pem.buflen ? pem.buflen : 1);
	memcpy(*der, pem.buf, pem.buflen);
	*len = pem.buflen;
	mbedtls_pem_free(&pem);
	return 0;
}

/* Reads path and returns the DER of its first certificate (owned). */
int pki_file_first_der(const char *path, unsigned char **der, size_t *len, struct bh_err *err)
{
	cleanup_free char *buf = NULL;
	size_t n = 0;

	if (bh_read_file(path, PKI_MAX_PEM, &buf, &n, err) < 0)
		return -1;
	if (strstr(buf, "-----BEGIN CERTIFICATE-----") == NULL) {
		if (n == 0 || (unsigned char)buf[0] != 0x30)
			return bh_err_set(err, EINVAL, "%s: no certificate in the file", path);
		*der = steal_pointer(&buf);
		*len = n;
		return 0;
	}
	return pem_first_cert(path, buf, der, len, err);
}

int pki_crt_load(const char *path, mbedtls_x509_crt *crt, struct bh_err *err)
{
	cleanup_free unsigned char *der = NULL;
	size_t len = 0;
	int ret;

	if (pki_file_first_der(path, &der, &len, err) < 0)
		return -1;
	if (len > PKI_MAX_DER)
		return bh_err_set(err, EFBIG, "%s: certificate larger than %d bytes", path,
		                  PKI_MAX_DER);
	ret = mbedtls_x509_crt_parse_der(crt, der, len);
	if (ret != 0)
		return pki_err_mbed(err, ret, "%s: bad certificate", path);
	return 0;
}
