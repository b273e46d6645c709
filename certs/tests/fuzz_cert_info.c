/* libFuzzer target for the certificate parser the daemon runs on every peer
 * certificate.  Build: cmake -DCMAKE_C_COMPILER=clang -DBERTH_FUZZ=ON, target
 * fuzz_cert_info; run: fuzz_cert_info -max_len=4096 CORPUS_DIR. */
#include <stddef.h>
#include <stdint.h>

#include "certs/certs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_cert_info info;
	struct bh_err err;

	if (pki_cert_info_from_der(data, size, &info, &err) == 0)
		pki_cert_info_free(&info);
	return 0;
}
