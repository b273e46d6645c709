/* libFuzzer target: what a hostile registry (or a client naming one) hands
 * berthd during a pull — runtime/registry_parse.c.  The first byte picks the
 * parser, the rest is its input:
 *   0 a reference (rt_reg_ref_parse), 1 a WWW-Authenticate header
 *   (rt_reg_challenge_parse), 2 "platform\n" + a manifest list
 *   (rt_platform_parse, rt_reg_is_index, rt_reg_index_pick),
 *   3 a manifest (rt_reg_manifest_parse), 4 an X-Registry-Auth value
 *   (rt_reg_auth_decode), 5 "host\ninsecure..." (rt_reg_plain_http_allowed).
 * Invariants: every refusal carries a message; accepted references have a
 * domain/repo name, exactly one of tag and digest, and parse again to the
 * same fields; challenge fields are terminated; picked and parsed
 * descriptors hold a 64-hex digest, a size >= 0 and at most 500 layers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt-registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64u << 10)

static void check_err(const struct bh_err *err)
{
	if (err->msg[0] == '\0')
		abort(); /* a refusal without a message */
}

static void check_desc(const struct rt_reg_desc *d)
{
	if (strlen(d->digest) != 71 || strncmp(d->digest, "sha256:", 7) != 0 ||
	    strcmp(d->digest + 7, d->hex) != 0 || strspn(d->hex, "0123456789abcdef") != 64 ||
	    d->size < 0 || memchr(d->media_type, '\0', sizeof(d->media_type)) == NULL)
		abort();
}

static void check_ref_again(const char *text, const struct rt_reg_ref *r)
{
	struct rt_reg_ref again;
	struct bh_err err = {0};
	char *full =
	    bh_asprintf("%s%s%s", r->name, r->tag ? ":" : "@", r->tag ? r->tag : r->digest);

	if (rt_reg_ref_parse(full, &again, &err) < 0) {
		fprintf(stderr, "%s -> %s: %s\n", text, full, err.msg);
		abort(); /* the normalised form does not parse */
	}
	if (strcmp(again.name, r->name) != 0 || strcmp(again.host, r->host) != 0 ||
	    strcmp(again.repo, r->repo) != 0 || strcmp(again.domain, r->domain) != 0)
		abort();
	rt_reg_ref_free(&again);
	free(full);
}

static void fuzz_ref(const char *text)
{
	struct rt_reg_ref r;
	struct bh_err err = {0};
	size_t dl;

	if (rt_reg_ref_parse(text, &r, &err) < 0) {
		check_err(&err);
		return;
	}
	dl = strlen(r.domain);
	if ((r.tag == NULL) == (r.digest == NULL) || r.domain[0] == '\0' || r.repo[0] == '\0' ||
	    strncmp(r.name, r.domain, dl) != 0 || r.name[dl] != '/' ||
	    strcmp(r.name + dl + 1, r.repo) != 0)
		abort();
	check_ref_again(text, &r);
	rt_reg_ref_free(&r);
}

static void fuzz_challenge(const char *text)
{
	struct rt_reg_challenge ch;

	if (rt_reg_challenge_parse(text, &ch) < 0)
		return;
	if (ch.scheme[0] == '\0' || memchr(ch.realm, '\0', sizeof(ch.realm)) == NULL ||
	    memchr(ch.service, '\0', sizeof(ch.service)) == NULL ||
	    memchr(ch.scope, '\0', sizeof(ch.scope)) == NULL)
		abort();
}

static json_t *load(const char *text)
{
	return json_loadb(text, strlen(text), 0, NULL);
}

static void fuzz_index(char *text)
{
	char *nl = strchr(text, '\n');
	struct rt_platform plat;
	struct rt_reg_desc pick;
	struct bh_err err = {0};
	json_t *doc;

	if (nl == NULL)
		return;
	*nl = '\0';
	if (rt_platform_parse(text, &plat, &err) < 0) {
		check_err(&err);
		return;
	}
	if (plat.os[0] == '\0' || plat.arch[0] == '\0')
		abort();
	doc = load(nl + 1);
	(void)rt_reg_is_index(json_string_value(json_object_get(doc, "mediaType")), doc);
	if (rt_reg_index_pick(doc, &plat, &pick, &err) < 0)
		check_err(&err);
	else
		check_desc(&pick);
	json_decref(doc);
}

static void fuzz_manifest(const char *text)
{
	struct rt_reg_desc config, *layers = NULL;
	struct bh_err err = {0};
	json_t *doc = load(text);
	size_t n = 0;

	if (rt_reg_manifest_parse(doc, &config, &layers, &n, &err) < 0) {
		check_err(&err);
	} else {
		check_desc(&config);
		if (n > 500)
			abort();
		for (size_t i = 0; i < n; i++)
			check_desc(&layers[i]);
	}
	free(layers);
	json_decref(doc);
}

static void fuzz_auth(const char *text)
{
	struct rt_reg_auth a;
	struct bh_err err = {0};

	if (rt_reg_auth_decode(text, &a, &err) < 0) {
		check_err(&err);
		return;
	}
	if ((a.username && !*a.username) || (a.password && !*a.password))
		abort(); /* empty fields are NULL */
	rt_reg_auth_clear(&a);
}

static void fuzz_plain_http(char *text)
{
	const char *list[8] = {0};
	size_t n = 0;
	char *p = strchr(text, '\n');

	while (p != NULL && n + 1 < sizeof(list) / sizeof(list[0])) {
		*p++ = '\0';
		list[n++] = p;
		p = strchr(p, '\n');
	}
	(void)rt_reg_plain_http_allowed(text, list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	text = bh_strndup((const char *)data + 1, size - 1);
	switch (data[0] % 6) {
	case 0:
		fuzz_ref(text);
		break;
	case 1:
		fuzz_challenge(text);
		break;
	case 2:
		fuzz_index(text);
		break;
	case 3:
		fuzz_manifest(text);
		break;
	case 4:
		fuzz_auth(text);
		break;
	default:
		fuzz_plain_http(text);
		break;
	}
	free(text);
	return 0;
}
