/* libFuzzer target: the enrollment inputs from outside.  The first byte picks
 * the parser: even, the token text a user pastes into `berth context create
 * --token` (pki_token_decode, then the address check on each address); odd,
 * the CSR a client sends to POST /_berth/enroll (pki_csr_check: parse and
 * signature verification).  A decoded token must encode again and decode to
 * the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/certs.h"
#include "fuzz/fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_token(const struct pki_token *a, const struct pki_token *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->pin, b->pin) != 0 ||
	    strcmp(a->secret, b->secret) != 0 || a->n_addrs != b->n_addrs)
		abort();
	for (size_t i = 0; i < a->n_addrs; i++)
		if (strcmp(a->addrs[i], b->addrs[i]) != 0)
			abort();
}

static void token_round_trip(const char *text)
{
	struct pki_token t, back;
	struct bh_err err = {0};
	uint8_t hash[32];
	char *again = NULL;

	if (pki_token_decode(text, &t, &err) < 0) {
		if (err.msg[0] == '\0')
			abort(); /* a refusal always says why */
		return;
	}
	for (size_t i = 0; i < t.n_addrs; i++)
		if (pki_token_check_addr(t.addrs[i], &err) < 0)
			abort(); /* decode checked them */
	if (pki_token_secret_hash(t.secret, hash) < 0)
		abort();
	if (pki_token_encode(&t, &again, &err) < 0 || pki_token_decode(again, &back, &err) < 0)
		abort();
	same_token(&t, &back);
	free(again);
	pki_token_wipe(&t);
	pki_token_wipe(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bh_err err = {0};
	char *text;

	if (size == 0 || size > 64 * 1024)
		return 0;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] % 2 == 0) {
		token_round_trip(text);
		pki_token_check_addr(text, &err);
	} else {
		pki_csr_check(text, size - 1, &err);
	}
	free(text);
	return 0;
}
