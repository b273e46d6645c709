/* BERTH_CONTEXT_BUNDLE: a whole exported context (the base64 of the tar that
 * `berth context export` writes) used from memory, for CI runners that must
 * not leave a key on disk.  The text comes from the environment, so it is
 * treated like an imported archive: the same checks (ctx_archive_parse), and
 * nothing is ever written.  Decoded key bytes are wiped before release. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

#define BUNDLE_TEXT_MAX (CTX_ARCHIVE_MAX / 3 * 4 + 4096) /* base64 plus line breaks */

/* The base64 text without the white space that `base64` wraps it with. */
static char *strip_space(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *out = bh_malloc(n + 1);

	for (size_t i = 0; i < n; i++)
		if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t')
			out[j++] = s[i];
	out[j] = '\0';
	return out;
}

static int decode(const char *b64, char **tar, size_t *len, struct bh_err *err)
{
	char *text;
	int r;

	if (strlen(b64) > BUNDLE_TEXT_MAX)
		return bh_err_set(err, EFBIG, "longer than %d bytes", BUNDLE_TEXT_MAX);
	text = strip_space(b64);
	r = bh_base64_decode(text, CTX_ARCHIVE_MAX, tar, len);
	bh_wipe(text, strlen(text)); /* it holds the key, encoded */
	free(text);
	if (r < 0)
		return bh_err_set(err, EINVAL,
		                  "not base64 (set it to the base64 of `berth context export "
		                  "NAME -`)");
	return 0;
}

int ctx_key_pem_check(const char *key, size_t len, struct bh_err *err)
{
	/* An encrypted key would make a TLS library ask for a pass phrase on
	 * the terminal, or worse (libcurl 7.88 crashes on a key blob that
	 * needs one it was not given): refuse it before any connection. */
	if (memmem(key, len, "PRIVATE KEY-----", 16) == NULL)
		return bh_err_set(err, EINVAL, "the key is not a PEM private key");
	if (memmem(key, len, "ENCRYPTED", 9) != NULL)
		return bh_err_set(err, EINVAL,
		                  "the key is encrypted; berth needs it unencrypted (kept 0600, "
		                  "or in memory with BERTH_CONTEXT_BUNDLE)");
	return 0;
}

/* Moves the material into the target's in-memory PEM set. */
static void take_pem(struct ctx_material *m, struct ctx_tls_pem *pem)
{
	pem->ca = steal_pointer(&m->ca.data);
	pem->ca_len = m->ca.len;
	pem->cert = steal_pointer(&m->cert.data);
	pem->cert_len = m->cert.len;
	pem->key = steal_pointer(&m->key.data);
	pem->key_len = m->key.len;
	memset(m, 0, sizeof(*m));
}

/* A cert that does not match its key fails at the first handshake, with
 * the TLS library's word for it. */
static int fill(struct ctx_meta *meta, struct ctx_material *m, struct ctx_target *out,
                struct bh_err *err)
{
	if (m->present && ctx_key_pem_check(m->key.data, m->key.len, err) < 0)
		return -1;
	out->name = meta->name ? steal_pointer(&meta->name) : bh_strdup("BERTH_CONTEXT_BUNDLE");
	out->host = steal_pointer(&meta->host);
	out->is_protected = meta->is_protected;
	out->source = CTX_SRC_ENV_BUNDLE;
	out->reason = bh_strdup("from BERTH_CONTEXT_BUNDLE");
	if (m->present)
		take_pem(m, &out->pem);
	return 0;
}

int ctx_bundle_load(const char *b64, struct ctx_target *out, struct bh_err *err)
{
	struct ctx_material m;
	struct ctx_meta meta;
	char *tar = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (decode(b64, &tar, &len, err) < 0)
		return bh_err_wrap(err, "BERTH_CONTEXT_BUNDLE");
	r = ctx_archive_parse(tar, len, &meta, &m, err);
	bh_wipe(tar, len);
	free(tar);
	if (r < 0)
		return bh_err_wrap(err, "BERTH_CONTEXT_BUNDLE");
	r = fill(&meta, &m, out, err);
	ctx_meta_free(&meta);
	ctx_material_free(&m);
	if (r < 0) {
		ctx_target_free(out);
		return bh_err_wrap(err, "BERTH_CONTEXT_BUNDLE");
	}
	return 0;
}
