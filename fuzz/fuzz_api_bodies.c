/* libFuzzer target: the JSON request bodies and query values berthd takes
 * from any operator, without creating anything.  The first byte picks:
 *   0 a POST /containers/create body: ctr_parse_create, then the merge with
 *     a fixed image config (ctr_merge_image, ctr_argv) and the container
 *     record round trip (ctr_record_json -> ctr_record_parse) that berthd
 *     reads back at start;
 *   1 GET /containers/json's filters: ctr_filters_parse, ctr_filters_match
 *     on a labelled container; POST /images/prune's: srv_image_prune_filters;
 *   2 a POST /containers/{id}/exec body: srv_exec_body_check;
 *   3 path and query words: ctr_name_valid, ctr_signal_parse,
 *     srv_sf_signal_parse, srv_role_parse.
 * Invariants: refusals carry a message; an accepted create gives two
 * objects whose merged command is a non-empty array of strings and whose
 * record reads back to the same Config and HostConfig; accepted filters
 * hold only the four keys with arrays of strings; an accepted exec has a
 * console size of 0x0 or within 1..SRV_SF_TTY_MAX; signals are 1..64; an
 * accepted token has a valid name, a role, an expiry within 7 days and
 * 1..max-cert-days; an accepted certificate has a 64-hex fingerprint. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/certs.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64u << 10)

static void check_err(const struct bh_err *err)
{
	if (err->msg[0] == '\0')
		abort(); /* a refusal without a message */
}

static json_t *image_config(void)
{
	return json_pack("{s:[s], s:[s], s:s, s:s, s:{s:s}}", "Cmd", "sh", "Env", "PATH=/bin",
	                 "WorkingDir", "/", "User", "0", "Labels", "from", "image");
}

static void check_argv(json_t *cfg)
{
	json_t *argv = ctr_argv(cfg), *item;
	size_t i;

	if (json_array_size(argv) == 0)
		abort(); /* a merged config with nothing to run */
	json_array_foreach(argv, i, item) if (!json_is_string(item)) abort();
	json_decref(argv);
}

/* What berthd writes to the container's record reads back the same. */
static void check_record(json_t *cfg, json_t *hc)
{
	struct ctr *c = ctr_alloc(), *back = ctr_alloc();
	struct bh_err err = {0};
	json_t *rec;

	memset(c->id, 'a', 64);
	bh_strlcpy(c->name, "fuzz", sizeof(c->name));
	bh_strlcpy(c->created, "2026-01-01T00:00:00Z", sizeof(c->created));
	bh_strlcpy(c->image_ref, "busybox", sizeof(c->image_ref));
	c->config = json_incref(cfg);
	c->host_config = json_incref(hc);
	rec = ctr_record_json(c);
	if (rec == NULL || ctr_record_parse(rec, back, &err) < 0) {
		fprintf(stderr, "record: %s\n", err.msg);
		abort();
	}
	if (!json_equal(back->config, cfg) || !json_equal(back->host_config, hc))
		abort();
	json_decref(rec);
	ctr_free(c);
	ctr_free(back);
}

static void fuzz_create(json_t *body)
{
	struct bh_err err = {0};
	json_t *cfg, *hc, *img;

	if (ctr_parse_create(body, 2, &cfg, &hc, &err) < 0) {
		check_err(&err);
		return;
	}
	if (!json_is_object(cfg) || !json_is_object(hc))
		abort();
	img = image_config();
	if (ctr_merge_image(cfg, img, &err) < 0)
		check_err(&err);
	else
		check_argv(cfg);
	check_record(cfg, hc);
	json_decref(img);
	json_decref(cfg);
	json_decref(hc);
}

static struct ctr *labelled(void)
{
	struct ctr *c = ctr_alloc();

	memset(c->id, 'a', 64);
	bh_strlcpy(c->name, "web_1", sizeof(c->name));
	c->status = CTR_RUNNING;
	c->config = json_pack("{s:{s:s, s:s}}", "Labels", "app", "web", "tier", "");
	c->host_config = json_object();
	return c;
}

static void fuzz_filters(const char *text)
{
	static const char *const keys[] = {"name", "status", "id", "label"};
	struct bh_err err = {0};
	struct ctr *c;
	json_t *f, *v, *item;
	const char *k;
	size_t i, n = 0;

	if (ctr_filters_parse(text, &f, &err) < 0) {
		check_err(&err);
		return;
	}
	json_object_foreach(f, k, v)
	{
		for (i = 0; i < 4; i++)
			n += strcmp(k, keys[i]) == 0;
		if (!json_is_array(v))
			abort();
		json_array_foreach(v, i, item) if (!json_is_string(item)) abort();
	}
	if (n != json_object_size(f))
		abort(); /* a filter key the list does not know */
	c = labelled();
	(void)ctr_filters_match(f, c);
	ctr_free(c);
	json_decref(f);
}

static void fuzz_prune_filters(const char *text)
{
	struct bh_err err = {0};
	bool all;

	if (srv_image_prune_filters(text, &all, &err) < 0)
		check_err(&err);
}

static void fuzz_exec(json_t *body)
{
	struct srv_exec_info *in = bh_calloc(1, sizeof(*in));
	struct bh_err err = {0};

	if (srv_exec_body_check(body, in, &err) < 0) {
		check_err(&err);
	} else if ((in->rows == 0) != (in->cols == 0) || in->rows > SRV_SF_TTY_MAX ||
	           in->cols > SRV_SF_TTY_MAX) {
		abort();
	}
	free(in);
}

static void fuzz_token_body(json_t *body, uint8_t max)
{
	int max_days = max % 120 + 1;
	int64_t now = (int64_t)time(NULL);
	struct srv_token tok;
	struct bh_err err = {0};

	memset(&tok, 0, sizeof(tok));
	if (srv_token_body_parse(body, max_days, &tok, &err) < 0) {
		check_err(&err);
		return;
	}
	if (pki_check_name(tok.name, &err) < 0 || srv_role_name(tok.role) == NULL ||
	    tok.expires <= now || tok.expires > now + 7 * 86400 + 5 || tok.cert_days < 1 ||
	    tok.cert_days > max_days)
		abort();
}

/* Without a TLS dir: the chain check against this daemon's CA is OpenSSL's
 * verification, not berth's parsing. */
static void fuzz_trust_body(json_t *body)
{
	struct srv_trust_entry e;
	struct bh_err err = {0};

	memset(&e, 0, sizeof(e));
	if (srv_trust_body_parse(NULL, body, &e, &err) < 0) {
		check_err(&err);
		return;
	}
	if (strlen(e.fingerprint) != 64 || strspn(e.fingerprint, "0123456789abcdef") != 64 ||
	    srv_role_name(e.role) == NULL || memchr(e.name, '\0', sizeof(e.name)) == NULL)
		abort();
}

static void fuzz_words(const char *text)
{
	enum srv_role role;
	int s;

	(void)ctr_name_valid(text);
	s = ctr_signal_parse(text);
	if (s != -1 && (s < 1 || s > 64))
		abort();
	s = srv_sf_signal_parse(text);
	if (s != -1 && (s < 1 || s > 64))
		abort();
	if (srv_role_parse(text, &role) == 0 && srv_role_name(role) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	json_t *body;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	text = bh_strndup((const char *)data + 1, size - 1);
	switch (data[0] % 6) {
	case 0:
	case 2:
		/* as srv_req_body_json loads it */
		body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
		if (data[0] % 6 == 0)
			fuzz_create(body);
		else
			fuzz_exec(body);
		json_decref(body);
		break;
	case 4:
		/* the byte before the body: this daemon's max-cert-days */
		body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
		fuzz_token_body(body, data[0]);
		json_decref(body);
		break;
	case 1:
		fuzz_filters(text);
		fuzz_prune_filters(text);
		break;
	case 5:
		body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
		fuzz_trust_body(body);
		json_decref(body);
		break;
	default:
		fuzz_words(text);
		break;
	}
	free(text);
	return 0;
}
