/* The trust store: DATA_ROOT/trust.json holds who may connect (identities
 * keyed by certificate fingerprint, with a role) and the pending enrollment
 * tokens (sha-256 of the secret only).  The file is trusted only as far as
 * it parses completely: any bad field makes srv_trust_open fail, naming the
 * file, so a torn or tampered store never degrades into "trust nothing"
 * or "trust everything" silently.  One mutex guards the memory; a second
 * one orders the writes so an older snapshot never overwrites a newer. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server-internal.h"

#define TRUST_FILE        "trust.json"
#define TRUST_FILE_MAX    (4 * 1024 * 1024)
#define TRUST_MAX_ENTRIES 4096
#define TRUST_MAX_TOKENS  1024
#define TRUST_FLUSH_S     60 /* last_seen reaches the disk at most this often */
#define TRUST_VERSION     1

struct trust_token {
	struct srv_token tok;
	uint8_t hash[32];
	bool used;
};

struct srv_trust {
	pthread_mutex_t mu;       /* the fields below */
	pthread_mutex_t write_mu; /* orders whole snapshots onto the disk */
	char *path;
	struct srv_trust_entry *e;
	size_t n;
	struct trust_token *tok;
	size_t ntok;
	bool seen_dirty;
	int64_t last_flush;
	bool is_new;
};

static const char *const role_names[] = {"enroll", "viewer", "operator", "admin"};

const char *srv_role_name(enum srv_role role)
{
	if ((unsigned)role < sizeof(role_names) / sizeof(role_names[0]))
		return role_names[role];
	return "?";
}

int srv_role_parse(const char *s, enum srv_role *out)
{
	/* "enroll" is not a role anyone can be given: it is the absence of one */
	for (int r = SRV_ROLE_VIEWER; r <= SRV_ROLE_ADMIN; r++) {
		if (s != NULL && strcmp(s, role_names[r]) == 0) {
			*out = (enum srv_role)r;
			return 0;
		}
	}
	return -1;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static bool fp_valid(const char *fp)
{
	size_t i;

	for (i = 0; fp[i] != '\0'; i++)
		if (!((fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'a' && fp[i] <= 'f')))
			return false;
	return i == 64;
}

/* Identity names end up in CNs, tables and log lines: printable, no spaces. */
static bool name_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '@'))
			return false;
	}
	return i > 0 && i < 64;
}

/* ---- JSON <-> memory --------------------------------------------------------- */

static json_t *entry_json(const struct srv_trust_entry *e)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "Name", e->name, "Fingerprint",
	                 e->fingerprint, "Role", srv_role_name(e->role), "Created",
	                 (json_int_t)e->created, "Expires", (json_int_t)e->expires, "LastSeen",
	                 (json_int_t)e->last_seen, "Revoked", e->revoked);
}

static json_t *token_json(const struct trust_token *t)
{
	char hex[65];

	bh_hex(t->hash, sizeof(t->hash), hex);
	return json_pack("{s:s, s:s, s:I, s:i, s:s, s:b}", "Name", t->tok.name, "Role",
	                 srv_role_name(t->tok.role), "Expires", (json_int_t)t->tok.expires,
	                 "CertDays", t->tok.cert_days, "SecretSHA256", hex, "Used", t->used);
}

/* Caller holds mu.  Tokens past their expiry are dropped here: used or not,
 * they can never be taken again. */
static char *store_dump(struct srv_trust *t)
{
	json_t *ids = json_array(), *toks = json_array(), *root;
	int64_t now = now_s();
	char *text;

	for (size_t i = 0; i < t->n; i++)
		json_array_append_new(ids, entry_json(&t->e[i]));
	for (size_t i = 0; i < t->ntok; i++)
		if (t->tok[i].tok.expires > now)
			json_array_append_new(toks, token_json(&t->tok[i]));
	root = json_pack("{s:i, s:o, s:o}", "Version", TRUST_VERSION, "Identities", ids, "Tokens",
	                 toks);
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		abort(); /* allocation failure (house rule) */
	return text;
}

static int role_from(json_t *v, enum srv_role *out)
{
	return json_is_string(v) ? srv_role_parse(json_string_value(v), out) : -1;
}

static int int_from(json_t *v, int64_t *out)
{
	if (!json_is_integer(v))
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int str_from(json_t *v, char *out, size_t size)
{
	if (!json_is_string(v))
		return -1;
	return bh_strlcpy(out, json_string_value(v), size);
}

static int entry_parse(json_t *o, struct srv_trust_entry *e)
{
	json_t *rev = json_object_get(o, "Revoked");

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o) || str_from(json_object_get(o, "Name"), e->name, sizeof(e->name)) ||
	    !name_valid(e->name) ||
	    str_from(json_object_get(o, "Fingerprint"), e->fingerprint, sizeof(e->fingerprint)) ||
	    !fp_valid(e->fingerprint) || role_from(json_object_get(o, "Role"), &e->role) ||
	    int_from(json_object_get(o, "Created"), &e->created) ||
	    int_from(json_object_get(o, "Expires"), &e->expires) ||
	    int_from(json_object_get(o, "LastSeen"), &e->last_seen) || !json_is_boolean(rev))
		return -1;
	e->revoked = json_is_true(rev);
	return 0;
}

static int hex_to_hash(const char *hex, uint8_t out[32])
{
	if (!fp_valid(hex))
		return -1;
	for (int i = 0; i < 32; i++) {
		char b[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
		out[i] = (uint8_t)strtoul(b, NULL, 16);
	}
	return 0;
}

static int token_parse(json_t *o, struct trust_token *t)
{
	json_t *used = json_object_get(o, "Used"), *days = json_object_get(o, "CertDays");
	char hex[65];

	memset(t, 0, sizeof(*t));
	if (!json_is_object(o) ||
	    str_from(json_object_get(o, "Name"), t->tok.name, sizeof(t->tok.name)) ||
	    !name_valid(t->tok.name) || role_from(json_object_get(o, "Role"), &t->tok.role) ||
	    int_from(json_object_get(o, "Expires"), &t->tok.expires) || !json_is_integer(days) ||
	    json_integer_value(days) < 1 || json_integer_value(days) > 36500 ||
	    str_from(json_object_get(o, "SecretSHA256"), hex, sizeof(hex)) ||
	    hex_to_hash(hex, t->hash) || !json_is_boolean(used))
		return -1;
	t->tok.cert_days = (int)json_integer_value(days);
	t->used = json_is_true(used);
	return 0;
}

static int store_parse_entries(struct srv_trust *t, json_t *ids, struct bh_err *err)
{
	size_t i;
	json_t *v;

	if (!json_is_array(ids) || json_array_size(ids) > TRUST_MAX_ENTRIES)
		return bh_err_set(err, EINVAL, "Identities is not an array of at most %d",
		                  TRUST_MAX_ENTRIES);
	t->e = bh_calloc(json_array_size(ids) + 1, sizeof(*t->e));
	json_array_foreach(ids, i, v)
	{
		if (entry_parse(v, &t->e[i]) < 0)
			return bh_err_set(err, EINVAL, "Identities[%zu] is malformed", i);
		t->n = i + 1;
	}
	return 0;
}

static int store_parse_tokens(struct srv_trust *t, json_t *toks, struct bh_err *err)
{
	size_t i;
	json_t *v;

	if (!json_is_array(toks) || json_array_size(toks) > TRUST_MAX_TOKENS)
		return bh_err_set(err, EINVAL, "Tokens is not an array of at most %d",
		                  TRUST_MAX_TOKENS);
	t->tok = bh_calloc(json_array_size(toks) + 1, sizeof(*t->tok));
	json_array_foreach(toks, i, v)
	{
		if (token_parse(v, &t->tok[i]) < 0)
			return bh_err_set(err, EINVAL, "Tokens[%zu] is malformed", i);
		t->ntok = i + 1;
	}
	return 0;
}

static int store_parse(struct srv_trust *t, const char *text, struct bh_err *err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	json_t *ver;
	int rc = -1;

	if (root == NULL)
		return bh_err_set(err, EINVAL, "not JSON (line %d: %s)", jerr.line, jerr.text);
	ver = json_object_get(root, "Version");
	if (!json_is_object(root) || !json_is_integer(ver) ||
	    json_integer_value(ver) != TRUST_VERSION)
		bh_err_set(err, EINVAL, "not a version %d trust store", TRUST_VERSION);
	else if (store_parse_entries(t, json_object_get(root, "Identities"), err) == 0 &&
	         store_parse_tokens(t, json_object_get(root, "Tokens"), err) == 0)
		rc = 0;
	json_decref(root);
	return rc;
}

/* ---- writing ------------------------------------------------------------------ */

/* Takes mu itself; the caller must not hold it. */
static int store_write(struct srv_trust *t, struct bh_err *err)
{
	char *text;
	int rc;

	pthread_mutex_lock(&t->write_mu);
	pthread_mutex_lock(&t->mu);
	text = store_dump(t);
	t->seen_dirty = false;
	t->last_flush = now_s();
	pthread_mutex_unlock(&t->mu);
	rc = bh_write_file_atomic(t->path, text, strlen(text), 0600, err);
	pthread_mutex_unlock(&t->write_mu);
	free(text);
	if (rc < 0)
		return bh_err_wrap(err, "trust store %s", t->path);
	return 0;
}

int srv_trust_open(const char *data_root, struct srv_trust **out, struct bh_err *err)
{
	struct srv_trust *t = bh_calloc(1, sizeof(*t));
	cleanup_free char *text = NULL;
	size_t len;

	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->write_mu, NULL);
	t->path = bh_path_join(data_root, TRUST_FILE);
	t->e = bh_calloc(1, sizeof(*t->e));
	t->tok = bh_calloc(1, sizeof(*t->tok));
	t->last_flush = now_s();
	if (!bh_path_exists(t->path)) {
		t->is_new = true;
		if (store_write(t, err) < 0)
			goto fail;
		*out = t;
		return 0;
	}
	if (bh_read_file(t->path, TRUST_FILE_MAX, &text, &len, err) < 0) {
		bh_err_wrap(err, "trust store");
		goto fail;
	}
	free(t->e);
	free(t->tok);
	t->e = NULL;
	t->tok = NULL;
	if (strlen(text) != len || store_parse(t, text, err) < 0) {
		if (strlen(text) != len)
			bh_err_set(err, EINVAL, "NUL byte in the file");
		bh_err_wrap(err, "trust store %s", t->path);
		goto fail;
	}
	*out = t;
	return 0;
fail:
	srv_trust_free(t);
	return -1;
}

bool srv_trust_is_new(struct srv_trust *t)
{
	bool r;

	pthread_mutex_lock(&t->mu);
	r = t->is_new;
	t->is_new = false;
	pthread_mutex_unlock(&t->mu);
	return r;
}

void srv_trust_free(struct srv_trust *t)
{
	struct bh_err err;

	if (t == NULL)
		return;
	if (t->seen_dirty && srv_trust_flush(t, &err) < 0)
		bh_warn("%s", err.msg);
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->write_mu);
	free(t->path);
	free(t->e);
	free(t->tok);
	free(t);
}

int srv_trust_flush(struct srv_trust *t, struct bh_err *err)
{
	return store_write(t, err);
}

bool srv_trust_flush_due(struct srv_trust *t, int64_t now)
{
	bool due;

	pthread_mutex_lock(&t->mu);
	due = t->seen_dirty && now - t->last_flush >= TRUST_FLUSH_S;
	if (due)
		t->last_flush = now; /* claimed: one flush per period, not one per caller */
	pthread_mutex_unlock(&t->mu);
	return due;
}

/* ---- identities ---------------------------------------------------------------- */

static struct srv_trust_entry *find_fp(struct srv_trust *t, const char *fp)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].fingerprint, fp) == 0)
			return &t->e[i];
	return NULL;
}

static int entry_verdict(const struct srv_trust_entry *e, const char *fp, int64_t now,
                         struct bh_err *err)
{
	char when[40];

	if (e == NULL)
		return bh_err_set(err, EACCES, "certificate %.12s is not in the trust store", fp);
	if (e->revoked)
		return bh_err_set(err, EACCES, "identity %s (certificate %.12s) is revoked",
		                  e->name, fp);
	if (e->expires <= now) {
		bh_rfc3339(when, e->expires, 0);
		return bh_err_set(err, EACCES, "identity %s (certificate %.12s) expired at %s",
		                  e->name, fp, when);
	}
	return 0;
}

int srv_trust_check(struct srv_trust *t, const char *fp, struct srv_trust_entry *out,
                    struct bh_err *err)
{
	struct srv_trust_entry *e;
	int rc;

	pthread_mutex_lock(&t->mu);
	e = find_fp(t, fp);
	rc = entry_verdict(e, fp, now_s(), err);
	if (rc == 0 && out != NULL)
		*out = *e;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static int entry_check_new(struct srv_trust *t, const struct srv_trust_entry *e, struct bh_err *err)
{
	const struct srv_trust_entry *old;

	if (!name_valid(e->name))
		return bh_err_set(err, EINVAL,
		                  "identity name '%.64s': 1 to 63 of a-z A-Z 0-9 - _ . @", e->name);
	if (!fp_valid(e->fingerprint))
		return bh_err_set(err, EINVAL, "fingerprint '%.70s': not 64 lowercase hex digits",
		                  e->fingerprint);
	if (e->role < SRV_ROLE_VIEWER || e->role > SRV_ROLE_ADMIN)
		return bh_err_set(err, EINVAL, "identity %s: no such role", e->name);
	old = find_fp(t, e->fingerprint);
	if (old != NULL && old->revoked)
		return bh_err_set(err, EEXIST,
		                  "certificate %.12s was revoked (identity %s); issue a new one",
		                  e->fingerprint, old->name);
	if (old != NULL)
		return bh_err_set(err, EEXIST, "certificate %.12s is already trusted as %s",
		                  e->fingerprint, old->name);
	if (t->n >= TRUST_MAX_ENTRIES)
		return bh_err_set(err, ENOSPC, "trust store full (%d identities)",
		                  TRUST_MAX_ENTRIES);
	return 0;
}

int srv_trust_add(struct srv_trust *t, const struct srv_trust_entry *e, struct bh_err *err)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	rc = entry_check_new(t, e, err);
	if (rc == 0) {
		t->e = bh_realloc(t->e, (t->n + 1) * sizeof(*t->e));
		t->e[t->n] = *e;
		t->e[t->n].revoked = false;
		if (t->e[t->n].created == 0)
			t->e[t->n].created = now_s();
		t->n++;
	}
	pthread_mutex_unlock(&t->mu);
	if (rc < 0)
		return -1;
	if (store_write(t, err) < 0) {
		/* not durable: not trusted either */
		pthread_mutex_lock(&t->mu);
		struct srv_trust_entry *added = find_fp(t, e->fingerprint);
		if (added != NULL)
			*added = t->e[--t->n];
		pthread_mutex_unlock(&t->mu);
		return -1;
	}
	return 0;
}

int srv_trust_revoke(struct srv_trust *t, const char *name_or_fp, struct bh_err *err)
{
	int count = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].revoked)
			continue;
		if (strcmp(t->e[i].name, name_or_fp) == 0 ||
		    strcmp(t->e[i].fingerprint, name_or_fp) == 0) {
			t->e[i].revoked = true;
			count++;
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (count == 0)
		return bh_err_set(err, ENOENT, "no trusted identity or fingerprint '%.80s'",
		                  name_or_fp);
	/* Memory is already revoked (refused from now on) even if the write
	 * fails; the error tells the admin it will not survive a restart. */
	if (store_write(t, err) < 0)
		return -1;
	return count;
}

json_t *srv_trust_list_json(struct srv_trust *t)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++)
		json_array_append_new(arr, entry_json(&t->e[i]));
	pthread_mutex_unlock(&t->mu);
	return arr;
}

void srv_trust_seen(struct srv_trust *t, const char *fp, int64_t now)
{
	struct srv_trust_entry *e;

	pthread_mutex_lock(&t->mu);
	e = find_fp(t, fp);
	if (e != NULL && e->last_seen != now) {
		e->last_seen = now;
		t->seen_dirty = true;
	}
	pthread_mutex_unlock(&t->mu);
}

/* ---- tokens --------------------------------------------------------------------- */

int srv_trust_token_add(struct srv_trust *t, const struct srv_token *tok,
                        const uint8_t secret_sha256[32], struct bh_err *err)
{
	int64_t now = now_s();
	size_t live = 0;

	if (!name_valid(tok->name))
		return bh_err_set(err, EINVAL,
		                  "identity name '%.64s': 1 to 63 of a-z A-Z 0-9 - _ . @",
		                  tok->name);
	if (tok->role < SRV_ROLE_VIEWER || tok->role > SRV_ROLE_ADMIN)
		return bh_err_set(err, EINVAL, "token %s: no such role", tok->name);
	if (tok->expires <= now || tok->cert_days < 1 || tok->cert_days > 36500)
		return bh_err_set(err, EINVAL, "token %s: expiry or certificate days out of range",
		                  tok->name);
	pthread_mutex_lock(&t->mu);
	/* forget expired tokens first so the bound counts live ones */
	for (size_t i = 0; i < t->ntok; i++)
		if (t->tok[i].tok.expires > now)
			t->tok[live++] = t->tok[i];
	t->ntok = live;
	if (t->ntok >= TRUST_MAX_TOKENS) {
		pthread_mutex_unlock(&t->mu);
		return bh_err_set(err, ENOSPC, "too many pending tokens (%d)", TRUST_MAX_TOKENS);
	}
	t->tok = bh_realloc(t->tok, (t->ntok + 1) * sizeof(*t->tok));
	memset(&t->tok[t->ntok], 0, sizeof(t->tok[0]));
	t->tok[t->ntok].tok = *tok;
	memcpy(t->tok[t->ntok].hash, secret_sha256, 32);
	t->ntok++;
	pthread_mutex_unlock(&t->mu);
	return store_write(t, err);
}

/* Constant time: the hash of a guessed secret must not leak how close it was. */
static bool hash_equal(const uint8_t a[32], const uint8_t b[32])
{
	uint8_t d = 0;

	for (int i = 0; i < 32; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static struct trust_token *find_token(struct srv_trust *t, const uint8_t h[32])
{
	struct trust_token *found = NULL;

	for (size_t i = 0; i < t->ntok; i++)
		if (hash_equal(t->tok[i].hash, h))
			found = &t->tok[i];
	return found;
}

int srv_trust_token_take(struct srv_trust *t, const uint8_t secret_sha256[32],
                         struct srv_token *out, struct bh_err *err)
{
	struct trust_token *k;
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	k = find_token(t, secret_sha256);
	if (k == NULL)
		rc = bh_err_set(err, EACCES, "enrollment token is unknown");
	else if (k->used)
		rc = bh_err_set(err, EACCES, "enrollment token %s was already used", k->tok.name);
	else if (k->tok.expires <= now_s())
		rc = bh_err_set(err, EACCES, "enrollment token %s expired", k->tok.name);
	else {
		k->used = true;
		*out = k->tok;
	}
	pthread_mutex_unlock(&t->mu);
	if (rc < 0)
		return -1;
	/* Durable before the caller signs anything: a crash after this point
	 * cannot bring the token back. */
	if (store_write(t, err) < 0) {
		pthread_mutex_lock(&t->mu);
		k = find_token(t, secret_sha256);
		if (k != NULL)
			k->used = false;
		pthread_mutex_unlock(&t->mu);
		return -1;
	}
	return 0;
}

bool srv_trust_tokens_pending(struct srv_trust *t)
{
	int64_t now = now_s();
	bool any = false;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->ntok && !any; i++)
		any = !t->tok[i].used && t->tok[i].tok.expires > now;
	pthread_mutex_unlock(&t->mu);
	return any;
}
