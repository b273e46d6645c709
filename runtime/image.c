/* Image queries on the store: references, resolution, listing, configs and
 * layer directories. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/rt-image-internal.h"
#include "runtime/rt-registry.h"

#define MAX_REF 512

/* A path component: [a-z0-9]+ joined by '.', '_', "__" or '-'s. */
static bool valid_component(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_tag(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static bool valid_domain(const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '.' || d[i] == '-' || d[i] == ':'))
			return false;
	return n > 0;
}

/* The first component is a registry if it has a '.' or a ':' or is
 * "localhost", as in docker/distribution. */
static bool is_domain(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

static bool valid_path(const char *p)
{
	if (*p == '\0')
		return false; /* ":tag" or "host/": a reference needs a repository name */
	while (*p) {
		size_t n = strcspn(p, "/");
		if (!valid_component(p, n))
			return false;
		p += n;
		if (*p == '/' && *++p == '\0')
			return false;
	}
	return true;
}

char *rt_image_ref_normalize(const char *ref, struct bh_err *err)
{
	cleanup_free char *name = NULL;
	const char *tag = "latest", *slash, *colon, *path;
	cleanup_free char *domain = NULL;
	char *out;

	if (strlen(ref) == 0 || strlen(ref) > MAX_REF || strchr(ref, '@')) {
		bh_err_set(err, EINVAL, "invalid reference format: %s", ref);
		return NULL;
	}
	colon = strrchr(ref, ':');
	slash = strrchr(ref, '/');
	name = (colon && (!slash || colon > slash)) ? bh_strndup(ref, (size_t)(colon - ref))
	                                            : bh_strdup(ref);
	if (colon && (!slash || colon > slash))
		tag = colon + 1;
	slash = strchr(name, '/');
	if (slash && is_domain(name, (size_t)(slash - name))) {
		domain = bh_strndup(name, (size_t)(slash - name));
		path = slash + 1;
	} else {
		domain = bh_strdup("docker.io");
		path = name;
	}
	if (strcmp(domain, "index.docker.io") == 0) {
		free(domain);
		domain = bh_strdup("docker.io");
	}
	if (!valid_domain(domain, strlen(domain)) || !valid_path(path) || !valid_tag(tag)) {
		bh_err_set(err, EINVAL, "invalid reference format: %s", ref);
		return NULL;
	}
	if (strcmp(domain, "docker.io") == 0 && strchr(path, '/') == NULL)
		out = bh_asprintf("docker.io/library/%s:%s", path, tag);
	else
		out = bh_asprintf("%s/%s:%s", domain, path, tag);
	/* The limit holds for the result too, so that a stored (normalised)
	 * reference always normalises again to itself. */
	if (strlen(out) > MAX_REF) {
		free(out);
		bh_err_set(err, EINVAL, "invalid reference format: %s (too long)", ref);
		return NULL;
	}
	return out;
}

char *rt_image_ref_familiar(const char *normalized)
{
	const char *p = normalized;

	if (bh_str_has_prefix(p, "docker.io/")) {
		p += strlen("docker.io/");
		if (bh_str_has_prefix(p, "library/") && strchr(p + 8, '/') == NULL)
			p += strlen("library/");
	}
	return bh_strdup(p);
}

static int resolve_prefix(struct rt_store *s, const char *prefix, char id[RT_IMAGE_ID_LEN],
                          struct bh_err *err)
{
	char **ids = NULL;
	int found = 0;

	if (rt_store_image_ids(s, &ids, err) < 0)
		return -1;
	for (char **p = ids; *p; p++) {
		if (!bh_str_has_prefix(*p, prefix))
			continue;
		if (found++ == 0)
			snprintf(id, RT_IMAGE_ID_LEN, "sha256:%s", *p);
	}
	rt_image_strv_free(ids);
	if (found > 1)
		return bh_err_set(err, EINVAL, "short id %s is ambiguous", prefix);
	return found == 1 ? 0 : bh_err_set(err, ENOENT, "No such image: %s", prefix);
}

static int resolve_tag(struct rt_store *s, const char *normalized, char id[RT_IMAGE_ID_LEN],
                       struct bh_err *err)
{
	json_t *index = NULL;
	const char *target;
	int r = -1;

	if (rt_store_tags_read(s, &index, err) < 0)
		return -1;
	target = rt_store_tags_get(index, normalized);
	if (target && rt_store_image_present(s, target + strlen("sha256:"))) {
		bh_strlcpy(id, target, RT_IMAGE_ID_LEN);
		r = 0;
	}
	json_decref(index);
	return r;
}

int rt_image_resolve(struct rt_store *s, const char *ref, char id[RT_IMAGE_ID_LEN],
                     struct bh_err *err)
{
	const char *hex = bh_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
	size_t nhex = strspn(hex, "0123456789abcdef");
	cleanup_free char *normalized = NULL;
	struct bh_err ignored;

	if (rt_store_is_hex64(hex)) {
		if (!rt_store_image_present(s, hex))
			return bh_err_set(err, ENOENT, "No such image: %s", ref);
		snprintf(id, RT_IMAGE_ID_LEN, "sha256:%s", hex);
		return 0;
	}
	if (hex == ref) {
		normalized = rt_image_ref_normalize(ref, &ignored);
		if (normalized && resolve_tag(s, normalized, id, err) == 0)
			return 0;
	}
	/* Docker matches names before short ids: "abc" may be either. */
	if (nhex > 0 && hex[nhex] == '\0')
		return resolve_prefix(s, hex, id, err);
	if (normalized == NULL)
		return bh_err_set(err, EINVAL, "invalid reference format: %s", ref);
	return bh_err_set(err, ENOENT, "No such image: %s", ref);
}

static int id_hex(const char *id, char hex[65], struct bh_err *err)
{
	if (rt_store_digest_hex(id, hex) < 0)
		return bh_err_set(err, EINVAL, "image id %s: not sha256:<hex>", id);
	return 0;
}

int rt_image_config(struct rt_store *s, const char *id, json_t **config, struct bh_err *err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	char hex[65];
	json_error_t je;

	if (id_hex(id, hex, err) < 0)
		return -1;
	if (!rt_store_image_present(s, hex))
		return bh_err_set(err, ENOENT, "No such image: %s", id);
	if (rt_store_get_blob(s, hex, RT_STORE_MAX_JSON, &data, &len, err) < 0)
		return bh_err_wrap(err, "image %s", id);
	*config = json_loadb(data, len, 0, &je);
	if (*config == NULL || !json_is_object(*config))
		return bh_err_set(err, EIO, "image %s: config is not a JSON object", id);
	return 0;
}

int rt_image_layer_dirs(struct rt_store *s, const char *id, char ***dirs, struct bh_err *err)
{
	json_t *config = NULL, *diffs, *d;
	char **v;
	size_t i;
	char hex[65];

	if (rt_image_config(s, id, &config, err) < 0)
		return -1;
	diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	v = bh_calloc(json_array_size(diffs) + 1, sizeof(*v));
	json_array_foreach(diffs, i, d)
	{
		if (rt_store_digest_hex(json_string_value(d), hex) < 0 ||
		    !rt_store_layer_present(s, hex)) {
			rt_image_strv_free(v);
			json_decref(config);
			return bh_err_set(err, EIO, "image %s: layer %zu missing from store", id,
			                  i);
		}
		v[i] = rt_store_layer_root(s, hex);
	}
	json_decref(config);
	*dirs = v;
	return 0;
}

int rt_image_tag(struct rt_store *s, const char *id, const char *ref, struct bh_err *err)
{
	cleanup_free char *normalized = rt_image_ref_normalize(ref, err);
	json_t *index = NULL;
	char hex[65];
	int r;

	if (normalized == NULL || id_hex(id, hex, err) < 0)
		return -1;
	if (!rt_store_image_present(s, hex))
		return bh_err_set(err, ENOENT, "No such image: %s", id);
	pthread_mutex_lock(&s->lock);
	r = rt_store_tags_read(s, &index, err);
	if (r == 0) {
		rt_store_tags_set(index, normalized, id);
		r = rt_store_tags_write(s, index, err);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(index);
	return r;
}

/* RFC 3339 "2024-01-02T03:04:05.123Z" or with "+hh:mm" -> unix seconds. */
static int64_t parse_created(const char *s)
{
	struct tm tm = {0};
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	int64_t t;

	if (p == NULL)
		return 0;
	t = (int64_t)timegm(&tm);
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if ((*p == '+' || *p == '-') && strlen(p) == 6) {
		int64_t off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
		              ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		t += *p == '+' ? -off : off;
	}
	return t;
}

/* Tags of every image: id -> JSON array of familiar refs. */
static json_t *tags_by_id(json_t *index)
{
	json_t *out = json_object(), *tags, *v;
	const char *repo, *ref;

	json_object_foreach(json_object_get(index, "Repositories"), repo, tags)
	{
		json_object_foreach(tags, ref, v)
		{
			const char *id = json_string_value(v);
			cleanup_free char *familiar = NULL;
			json_t *arr;
			if (id == NULL)
				continue;
			arr = json_object_get(out, id);
			if (arr == NULL) {
				arr = json_array();
				json_object_set_new(out, id, arr);
			}
			familiar = rt_image_ref_familiar(ref);
			json_array_append_new(arr, json_string(familiar));
		}
	}
	return out;
}

static json_t *list_entry(struct rt_store *s, const char *hex, json_t *tags, struct bh_err *err)
{
	char id[RT_IMAGE_ID_LEN];
	json_t *config = NULL, *rec = NULL, *labels, *out;
	json_int_t size;

	snprintf(id, sizeof(id), "sha256:%s", hex);
	if (rt_image_config(s, id, &config, err) < 0 || rt_store_image_get(s, hex, &rec, err) < 0) {
		json_decref(config);
		return NULL;
	}
	size = json_integer_value(json_object_get(rec, "size"));
	labels = json_object_get(json_object_get(config, "config"), "Labels");
	tags = json_object_get(tags, id);
	out = json_pack(
	    "{ss ss so so sI sI sI sI sO sI}", "Id", id, "ParentId", "", "RepoTags",
	    tags ? json_incref(tags) : json_array(), "RepoDigests",
	    rt_registry_repo_digests(s, id), "Created",
	    (json_int_t)parse_created(json_string_value(json_object_get(config, "created"))),
	    "Size", size, "SharedSize", (json_int_t)-1, "VirtualSize", size, "Labels",
	    json_is_object(labels) ? labels : json_null(), "Containers", (json_int_t)-1);
	json_decref(config);
	json_decref(rec);
	return out;
}

static int by_created_desc(const void *a, const void *b)
{
	json_int_t ca = json_integer_value(json_object_get(*(json_t *const *)a, "Created"));
	json_int_t cb = json_integer_value(json_object_get(*(json_t *const *)b, "Created"));

	return ca < cb ? 1 : ca > cb ? -1 : 0;
}

static json_t *sorted(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v = bh_calloc(n + 1, sizeof(*v));
	json_t *out = json_array();

	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), by_created_desc);
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

int rt_image_list(struct rt_store *s, json_t **out, struct bh_err *err)
{
	char **ids = NULL;
	json_t *index = NULL, *tags, *arr = json_array();
	int r = -1;

	if (rt_store_tags_read(s, &index, err) < 0 || rt_store_image_ids(s, &ids, err) < 0)
		goto out;
	tags = tags_by_id(index);
	for (char **p = ids; *p; p++) {
		json_t *e = list_entry(s, *p, tags, err);
		if (e == NULL && err->code == ENOENT)
			continue; /* removed since the directory was read */
		if (e == NULL) {
			json_decref(tags);
			goto out;
		}
		json_array_append_new(arr, e);
	}
	json_decref(tags);
	*out = sorted(steal_pointer(&arr));
	r = 0;
out:
	json_decref(arr);
	json_decref(index);
	rt_image_strv_free(ids);
	return r < 0 ? bh_err_wrap(err, "list images") : 0;
}

static json_t *inspect_doc(const char *id, json_t *config, json_t *tags, json_int_t size,
                           json_t *digests)
{
	json_t *cfg = json_object_get(config, "config");
	json_t *rootfs = json_object_get(config, "rootfs");
	const char *created = json_string_value(json_object_get(config, "created"));
	const char *arch = json_string_value(json_object_get(config, "architecture"));
	const char *os = json_string_value(json_object_get(config, "os"));
	const char *author = json_string_value(json_object_get(config, "author"));
	json_t *layers = json_object_get(rootfs, "diff_ids");

	layers = json_is_array(layers) ? json_incref(layers) : json_array();
	return json_pack(
	    "{ss so so ss ss ss ss ss sO ss ss sI sI s{ss so} s{ss}}", "Id", id, "RepoTags",
	    tags ? json_incref(tags) : json_array(), "RepoDigests", digests, "Parent", "",
	    "Comment", "",
	    "Created", created ? created : "1970-01-01T00:00:00Z", "DockerVersion", "", "Author",
	    author ? author : "", "Config", json_is_object(cfg) ? cfg : json_null(), "Architecture",
	    arch ? arch : "", "Os", os ? os : "", "Size", size, "VirtualSize", size, "RootFS",
	    "Type", "layers", "Layers", layers, "Metadata", "LastTagTime", "0001-01-01T00:00:00Z");
}

int rt_image_inspect(struct rt_store *s, const char *id, json_t **out, struct bh_err *err)
{
	json_t *config = NULL, *rec = NULL, *index = NULL, *tags = NULL;
	char hex[65];
	int r = -1;

	if (id_hex(id, hex, err) < 0 || rt_image_config(s, id, &config, err) < 0)
		return -1;
	if (rt_store_image_get(s, hex, &rec, err) == 0 && rt_store_tags_read(s, &index, err) == 0) {
		tags = tags_by_id(index);
		*out = inspect_doc(id, config, json_object_get(tags, id),
		                   json_integer_value(json_object_get(rec, "size")),
		                   rt_registry_repo_digests(s, id)); /* pulled images */
		r = *out ? 0 : bh_err_set(err, EIO, "image %s: cannot build inspect document", id);
	}
	json_decref(tags);
	json_decref(index);
	json_decref(rec);
	json_decref(config);
	return r;
}
