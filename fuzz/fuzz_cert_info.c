/* libFuzzer target: the certificate parser berthd runs on every peer
 * certificate (DER, pki_cert_info_from_der), the PEM/DER file reader the
 * CLI and berthd use for ca.pem and cert.pem (pki_cert_info_from_file), and
 * the cert/key pair check run on imported or given TLS files
 * (pki_check_pair, the same temp file as both cert and key). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/certs.h"
#include "fuzz/fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_info(const struct pki_cert_info *info)
{
	if (strlen(info->fingerprint) != PKI_FINGERPRINT_LEN)
		abort();
	for (const char *p = info->subject; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort(); /* text fields are sanitised */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	struct pki_cert_info info;
	struct bh_err err = {0};

	if (pki_cert_info_from_der(data, size, &info, &err) == 0) {
		check_info(&info);
		pki_cert_info_free(&info);
	}
	if (path == NULL)
		path = fz_path("cert.pem");
	fz_write_file(path, data, size, 0600);
	if (pki_cert_info_from_file(path, &info, &err) == 0) {
		check_info(&info);
		pki_cert_info_free(&info);
		pki_check_pair(path, path, &err); /* a PEM bundle with cert and key */
	}
	return 0;
}
