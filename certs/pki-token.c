/* Enrollment tokens: "berth1-" + base64url(JSON).  Decoding is the hostile
 * side (text a user pastes): the length is bounded before anything is
 * decoded, unknown keys are refused, and every field is checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <jansson.h>
#include <mbedtls/sha256.h>

#include "certs/certs-internal.h"

#define SECRET_BYTES 32
#define JSON_MAX     (PKI_TOKEN_MAX * 3 / 4 + 4)

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int pki_token_secret_hash(const char *secret, uint8_t out[32])
{
	uint8_t raw[SECRET_BYTES];

	if (secret == NULL || strlen(secret) != PKI_TOKEN_SECRET_LEN)
		return -1;
	for (size_t i = 0; i < SECRET_BYTES; i++) {
		int hi = hex_val(secret[2 * i]), lo = hex_val(secret[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	mbedtls_sha256_ret(raw, sizeof(raw), out, 0);
	bh_wipe(raw, sizeof(raw));
	return 0;
}

int pki_token_secret_new(char out[PKI_TOKEN_SECRET_LEN + 1], struct bh_err *err)
{
	unsigned char raw[SECRET_BYTES];
	struct pki_rng rng;
	int r;

	if (pki_rng_init(&rng, err) < 0)
		return -1;
	r = pki_rng_bytes(&rng, raw, sizeof(raw), err);
	pki_rng_free(&rng);
	if (r == 0)
		bh_hex(raw, sizeof(raw), out);
	bh_wipe(raw, sizeof(raw));
	return r;
}

static bool is_pin(const char *p)
{
	size_t n = strlen(p);

	if (n != PKI_PIN_LEN || p[n - 1] != '=')
		return false;
	for (size_t i = 0; i + 1 < n; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
	}
	return true;
}

/* host part of an address: an IP, or a DNS name (pki_check_host). */
static int check_host_part(const char *host, bool bracketed, struct bh_err *err)
{
	unsigned char buf[16];

	if (bracketed)
		return inet_pton(AF_INET6, host, buf) == 1
		           ? 0
		           : bh_err_set(err, EINVAL, "\"[%s]\" is not an IPv6 address", host);
	if (inet_pton(AF_INET, host, buf) == 1)
		return 0;
	if (strchr(host, '*') != NULL)
		return bh_err_set(err, EINVAL, "\"%s\" is not a host name", host);
	return pki_check_host(host, err);
}

int pki_token_check_addr(const char *addr, struct bh_err *err)
{
	char host[PKI_TOKEN_ADDR_MAX];
	const char *colon = strrchr(addr, ':');
	size_t hlen;
	long port;
	bool br;

	if (strlen(addr) >= PKI_TOKEN_ADDR_MAX || colon == NULL || colon == addr ||
	    bh_parse_long(colon + 1, 1, 65535, &port) < 0)
		return bh_err_set(err, EINVAL, "address \"%.80s\": want HOST:PORT", addr);
	hlen = (size_t)(colon - addr);
	br = addr[0] == '[';
	if (br && (hlen < 3 || addr[hlen - 1] != ']'))
		return bh_err_set(err, EINVAL, "address \"%.80s\": want [IPv6]:PORT", addr);
	memcpy(host, addr + br, hlen - 2 * br);
	host[hlen - 2 * br] = '\0';
	if (check_host_part(host, br, err) < 0)
		return bh_err_wrap(err, "address \"%.80s\"", addr);
	return 0;
}

/* ---- encode ------------------------------------------------------------------ */

static int check_token(const struct pki_token *t, struct bh_err *err)
{
	uint8_t h[32];

	if (pki_check_name(t->name, err) < 0)
		return -1;
	if (t->n_addrs == 0 || t->n_addrs > PKI_TOKEN_MAX_ADDRS)
		return bh_err_set(err, EINVAL, "a token carries 1..%d addresses",
		                  PKI_TOKEN_MAX_ADDRS);
	for (size_t i = 0; i < t->n_addrs; i++)
		if (pki_token_check_addr(t->addrs[i], err) < 0)
			return -1;
	if (!is_pin(t->pin))
		return bh_err_set(err, EINVAL, "the server key pin is malformed");
	if (pki_token_secret_hash(t->secret, h) < 0)
		return bh_err_set(err, EINVAL, "the secret is malformed");
	return 0;
}

int pki_token_encode(const struct pki_token *t, char **out, struct bh_err *err)
{
	json_t *addrs, *doc;
	char *text, *b64;

	*out = NULL;
	if (check_token(t, err) < 0)
		return bh_err_wrap(err, "token");
	addrs = json_array();
	for (size_t i = 0; i < t->n_addrs; i++)
		json_array_append_new(addrs, json_string(t->addrs[i]));
	doc = json_pack("{s:s, s:o, s:s, s:s}", "n", t->name, "a", addrs, "p", t->pin, "s",
	                t->secret);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (text == NULL)
		return bh_err_set(err, ENOMEM, "token: cannot encode");
	b64 = bh_base64_encode(text, strlen(text), true);
	bh_wipe(text, strlen(text));
	free(text);
	/* Padding is optional on decode: drop it, '=' is awkward in shells. */
	for (size_t n = strlen(b64); n > 0 && b64[n - 1] == '='; n--)
		b64[n - 1] = '\0';
	*out = bh_asprintf("%s%s", PKI_TOKEN_PREFIX, b64);
	bh_wipe(b64, strlen(b64));
	free(b64);
	if (strlen(*out) > PKI_TOKEN_MAX) {
		free(*out);
		*out = NULL;
		return bh_err_set(err, EINVAL, "token: longer than %d characters", PKI_TOKEN_MAX);
	}
	return 0;
}

/* ---- decode ------------------------------------------------------------------ */

static int get_str(json_t *doc, const char *key, char *out, size_t cap, struct bh_err *err)
{
	json_t *v = json_object_get(doc, key);

	if (!json_is_string(v))
		return bh_err_set(err, EINVAL, "field \"%s\" missing or not a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v) ||
	    bh_strlcpy(out, json_string_value(v), cap) < 0)
		return bh_err_set(err, EINVAL, "field \"%s\" too long or holds NUL", key);
	return 0;
}

static int get_addrs(json_t *doc, struct pki_token *t, struct bh_err *err)
{
	json_t *a = json_object_get(doc, "a"), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > PKI_TOKEN_MAX_ADDRS)
		return bh_err_set(err, EINVAL, "field \"a\": want 1..%d addresses",
		                  PKI_TOKEN_MAX_ADDRS);
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) ||
		    bh_strlcpy(t->addrs[i], json_string_value(v), PKI_TOKEN_ADDR_MAX) < 0)
			return bh_err_set(err, EINVAL, "field \"a\"[%zu]: not an address", i);
	}
	t->n_addrs = json_array_size(a);
	return 0;
}

static int parse_doc(json_t *doc, struct pki_token *t, struct bh_err *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(doc))
		return bh_err_set(err, EINVAL, "not a JSON object");
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "n") != 0 && strcmp(key, "a") != 0 && strcmp(key, "p") != 0 &&
		    strcmp(key, "s") != 0)
			return bh_err_set(err, EINVAL, "unknown field \"%.20s\"", key);
	}
	if (get_str(doc, "n", t->name, sizeof(t->name), err) < 0 ||
	    get_str(doc, "p", t->pin, sizeof(t->pin), err) < 0 ||
	    get_str(doc, "s", t->secret, sizeof(t->secret), err) < 0 || get_addrs(doc, t, err) < 0)
		return -1;
	return check_token(t, err);
}

int pki_token_decode(const char *text, struct pki_token *t, struct bh_err *err)
{
	char *json = NULL;
	size_t len = 0;
	json_t *doc;
	int r;

	memset(t, 0, sizeof(*t));
	if (text == NULL || !bh_str_has_prefix(text, PKI_TOKEN_PREFIX))
		return bh_err_set(err, EINVAL, "token: does not start with \"%s\"",
		                  PKI_TOKEN_PREFIX);
	if (strlen(text) > PKI_TOKEN_MAX)
		return bh_err_set(err, EINVAL, "token: longer than %d characters", PKI_TOKEN_MAX);
	if (bh_base64_decode(text + strlen(PKI_TOKEN_PREFIX), JSON_MAX, &json, &len) < 0)
		return bh_err_set(err, EINVAL, "token: not base64url (was it cut when pasted?)");
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	bh_wipe(json, len);
	free(json);
	r = parse_doc(doc, t, err);
	json_decref(doc);
	if (r < 0) {
		pki_token_wipe(t);
		return bh_err_wrap(err, "token");
	}
	return 0;
}

void pki_token_wipe(struct pki_token *t)
{
	bh_wipe(t, sizeof(*t));
}
