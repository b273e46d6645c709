/* The pure parts of the registry client: references, WWW-Authenticate
 * challenges, platforms, manifests and X-Registry-Auth.  No I/O here: every
 * function is unit-tested and fuzzable on its own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "runtime/rt-host.h"
#include "runtime/rt-image.h"
#include "runtime/rt-registry.h"

#define MAX_LAYERS 500
#define MAX_AUTH   (16u << 10)

void rt_reg_ref_free(struct rt_reg_ref *r)
{
	free(r->domain);
	free(r->host);
	free(r->repo);
	free(r->name);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

static bool valid_digest(const char *d)
{
	return bh_str_has_prefix(d, "sha256:") && strlen(d) == 71 &&
	       strspn(d + 7, "0123456789abcdef") == 64;
}

int rt_reg_ref_parse(const char *ref, struct rt_reg_ref *out, struct bh_err *err)
{
	const char *at = strchr(ref, '@');
	cleanup_free char *base = at ? bh_strndup(ref, (size_t)(at - ref)) : bh_strdup(ref);
	cleanup_free char *norm = NULL;
	char *colon, *slash;

	memset(out, 0, sizeof(*out));
	if (at && !valid_digest(at + 1))
		return bh_err_set(err, EINVAL, "invalid reference format: %s (bad digest)", ref);
	norm = rt_image_ref_normalize(base, err);
	if (norm == NULL)
		return -1;
	colon = strrchr(norm, ':'); /* the tag: normalize always adds one */
	slash = strchr(norm, '/');
	out->tag = at ? NULL : bh_strdup(colon + 1);
	out->digest = at ? bh_strdup(at + 1) : NULL;
	*colon = '\0';
	out->name = bh_strdup(norm);
	out->domain = bh_strndup(norm, (size_t)(slash - norm));
	out->repo = bh_strdup(slash + 1);
	out->host = strcmp(out->domain, "docker.io") == 0 ? bh_strdup("registry-1.docker.io")
	                                                  : bh_strdup(out->domain);
	return 0;
}

/* One `key="value"` or `key=value` pair; returns the rest or NULL. */
static const char *next_param(const char *p, char *key, size_t klen, char *val, size_t vlen)
{
	size_t n = 0, k;

	p += strspn(p, " \t,");
	k = strcspn(p, "= \t,");
	if (k == 0 || k >= klen || p[k] != '=')
		return NULL;
	memcpy(key, p, k);
	key[k] = '\0';
	p += k + 1;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 >= vlen)
				return NULL;
			val[n++] = *p;
		}
		if (*p++ != '"')
			return NULL;
	} else {
		for (; *p && *p != ',' && *p != ' '; p++) {
			if (n + 1 >= vlen)
				return NULL;
			val[n++] = *p;
		}
	}
	val[n] = '\0';
	return p;
}

int rt_reg_challenge_parse(const char *hdr, struct rt_reg_challenge *out)
{
	size_t n = strcspn(hdr, " \t");
	const char *p = hdr + n;
	char key[32], val[1024];

	memset(out, 0, sizeof(*out));
	if (n == 0 || n >= sizeof(out->scheme))
		return -1;
	memcpy(out->scheme, hdr, n);
	while (*(p += strspn(p, " \t,")) != '\0') {
		p = next_param(p, key, sizeof(key), val, sizeof(val));
		if (p == NULL)
			return -1;
		if (strcasecmp(key, "realm") == 0 &&
		    bh_strlcpy(out->realm, val, sizeof(out->realm)) < 0)
			return -1;
		if (strcasecmp(key, "service") == 0 &&
		    bh_strlcpy(out->service, val, sizeof(out->service)) < 0)
			return -1;
		if (strcasecmp(key, "scope") == 0 &&
		    bh_strlcpy(out->scope, val, sizeof(out->scope)) < 0)
			return -1;
	}
	if (strcasecmp(out->scheme, "bearer") == 0 && out->realm[0] == '\0')
		return -1; /* a bearer challenge without a realm names no token server */
	return 0;
}

int rt_platform_parse(const char *s, struct rt_platform *p, struct bh_err *err)
{
	struct utsname u;
	const char *a, *v;

	memset(p, 0, sizeof(*p));
	if (s == NULL || *s == '\0') {
		uname(&u);
		bh_strlcpy(p->os, "linux", sizeof(p->os));
		bh_strlcpy(p->arch, rt_arch_from_machine(u.machine), sizeof(p->arch));
		return 0;
	}
	a = strchr(s, '/');
	v = a ? strchr(a + 1, '/') : NULL;
	if (a == NULL || a == s || a[1] == '\0' || a[1] == '/' ||
	    (v && (v[1] == '\0' || strchr(v + 1, '/'))) || (size_t)(a - s) >= sizeof(p->os) ||
	    strlen(a + 1) >= sizeof(p->arch))
		return bh_err_set(err, EINVAL, "invalid platform \"%s\": want os/arch[/variant]",
		                  s);
	memcpy(p->os, s, (size_t)(a - s));
	if (v) {
		memcpy(p->arch, a + 1, (size_t)(v - a - 1));
		bh_strlcpy(p->variant, v + 1, sizeof(p->variant));
	} else {
		bh_strlcpy(p->arch, a + 1, sizeof(p->arch));
	}
	return 0;
}

bool rt_platform_match(json_t *platform, const struct rt_platform *want)
{
	const char *os = json_string_value(json_object_get(platform, "os"));
	const char *arch = json_string_value(json_object_get(platform, "architecture"));
	const char *var = json_string_value(json_object_get(platform, "variant"));

	if (os == NULL || arch == NULL || strcmp(os, want->os) != 0 ||
	    strcmp(arch, want->arch) != 0)
		return false;
	if (want->variant[0] == '\0' || strcmp(want->arch, "amd64") == 0)
		return true;
	if (var == NULL || *var == '\0')
		return strcmp(want->arch, "arm64") == 0 && strcmp(want->variant, "v8") == 0;
	return strcmp(var, want->variant) == 0;
}

bool rt_reg_is_index(const char *media_type, json_t *doc)
{
	if (media_type && (strcmp(media_type, RT_MT_OCI_INDEX) == 0 ||
	                   strcmp(media_type, RT_MT_DOCKER_LIST) == 0))
		return true;
	return json_is_array(json_object_get(doc, "manifests")) &&
	       json_object_get(doc, "config") == NULL;
}

static int desc_parse(json_t *d, struct rt_reg_desc *out, struct bh_err *err)
{
	const char *digest = json_string_value(json_object_get(d, "digest"));
	const char *mt = json_string_value(json_object_get(d, "mediaType"));
	json_t *size = json_object_get(d, "size");

	memset(out, 0, sizeof(*out));
	if (digest == NULL || !valid_digest(digest))
		return bh_err_set(err, EINVAL, "descriptor without a sha256 digest");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return bh_err_set(err, EINVAL, "descriptor %.19s: bad size", digest);
	bh_strlcpy(out->digest, digest, sizeof(out->digest));
	bh_strlcpy(out->hex, digest + 7, sizeof(out->hex));
	out->size = (int64_t)json_integer_value(size);
	if (mt != NULL && bh_strlcpy(out->media_type, mt, sizeof(out->media_type)) < 0)
		return bh_err_set(err, EINVAL, "descriptor %.19s: media type too long", digest);
	return 0;
}

int rt_reg_index_pick(json_t *index, const struct rt_platform *p, struct rt_reg_desc *out,
                      struct bh_err *err)
{
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(index, "manifests"), i, d)
	{
		if (rt_platform_match(json_object_get(d, "platform"), p))
			return desc_parse(d, out, err);
	}
	return bh_err_set(err, ENOENT, "no matching manifest for %s/%s%s%s in the manifest list",
	                  p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
}

int rt_reg_manifest_parse(json_t *doc, struct rt_reg_desc *config, struct rt_reg_desc **layers,
                          size_t *n, struct bh_err *err)
{
	json_t *ls = json_object_get(doc, "layers"), *d;
	struct rt_reg_desc *v;
	size_t i;

	if (json_integer_value(json_object_get(doc, "schemaVersion")) != 2)
		return bh_err_set(err, EINVAL, "unsupported manifest: schemaVersion is not 2");
	if (desc_parse(json_object_get(doc, "config"), config, err) < 0)
		return bh_err_wrap(err, "manifest config");
	if (!json_is_array(ls) || json_array_size(ls) > MAX_LAYERS)
		return bh_err_set(err, EINVAL, "layers missing, not an array or more than %d",
		                  MAX_LAYERS);
	v = bh_calloc(json_array_size(ls) + 1, sizeof(*v));
	json_array_foreach(ls, i, d)
	{
		if (desc_parse(d, &v[i], err) < 0) {
			free(v);
			return bh_err_wrap(err, "manifest layer %zu", i);
		}
	}
	*layers = v;
	*n = json_array_size(ls);
	return 0;
}

void rt_reg_auth_clear(struct rt_reg_auth *a)
{
	if (a->password)
		bh_wipe(a->password, strlen(a->password));
	free(a->username);
	free(a->password);
	free(a->serveraddress);
	memset(a, 0, sizeof(*a));
}

static char *dup_field(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v && *v ? bh_strdup(v) : NULL;
}

int rt_reg_auth_decode(const char *header, struct rt_reg_auth *out, struct bh_err *err)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	json_t *o;
	const char *tok;

	memset(out, 0, sizeof(*out));
	if (header == NULL || *header == '\0')
		return 0;
	if (bh_base64_decode(header, MAX_AUTH, &text, &len) < 0)
		return bh_err_set(err, EINVAL, "X-Registry-Auth: not base64");
	o = json_loadb(text, len, 0, NULL);
	bh_wipe(text, len);
	if (!json_is_object(o)) {
		json_decref(o);
		return bh_err_set(err, EINVAL, "X-Registry-Auth: not a JSON object");
	}
	out->username = dup_field(o, "username");
	out->password = dup_field(o, "password");
	out->serveraddress = dup_field(o, "serveraddress");
	tok = json_string_value(json_object_get(o, "identitytoken"));
	if (out->password == NULL && tok && *tok)
		out->password = bh_strdup(tok);
	json_decref(o); /* jansson does not wipe: the copy lived in its heap briefly */
	return 0;
}

/* Loopback as Docker counts it: 127.0.0.0/8, ::1, localhost. */
static bool is_loopback(const char *host)
{
	size_t hl = strcspn(host, ":");

	return bh_str_has_prefix(host, "127.") || bh_str_has_prefix(host, "[::1]") ||
	       (hl == 9 && strncmp(host, "localhost", 9) == 0);
}

bool rt_reg_plain_http_allowed(const char *host, const char *const *insecure)
{
	size_t hl = strcspn(host, ":");

	if (is_loopback(host))
		return true;
	for (; insecure && *insecure; insecure++) {
		if (strcmp(*insecure, host) == 0)
			return true;
		/* "HOST" without a port covers every port of HOST */
		if (strchr(*insecure, ':') == NULL && strlen(*insecure) == hl &&
		    strncmp(*insecure, host, hl) == 0)
			return true;
	}
	return false;
}
