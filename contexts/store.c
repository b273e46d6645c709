/* The context store: names, hosts, meta.json and reading contexts back. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

bool ctx_name_is_valid(const char *name)
{
	size_t n;

	if (name == NULL || !isalnum((unsigned char)name[0]))
		return false;
	for (n = 1; name[n] != '\0'; n++) {
		unsigned char c = (unsigned char)name[n];
		if (n >= CTX_NAME_MAX)
			return false;
		if (!isalnum(c) && c != '_' && c != '.' && c != '+' && c != '-')
			return false;
	}
	return true;
}

int ctx_name_check_new(const char *name, struct bh_err *err)
{
	if (!ctx_name_is_valid(name))
		return bh_err_set(err, EINVAL,
		                  "invalid context name \"%.80s\": use 1-64 of a-z A-Z 0-9 _ . + - "
		                  "starting with a letter or digit",
		                  name ? name : "");
	if (strcmp(name, CTX_DEFAULT_NAME) == 0)
		return bh_err_set(err, EINVAL,
		                  "\"default\" is the built-in context (the local socket) and "
		                  "cannot be created or removed");
	return 0;
}

bool ctx_host_is_tcp(const char *host)
{
	return host != NULL && bh_str_has_prefix(host, "tcp://");
}

static bool chars_ok(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
			return false;
	return n > 0;
}

static int check_tcp(const char *url, const char *rest, struct bh_err *err)
{
	const char *port;
	long v;

	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (close == NULL || close[1] != ':' ||
		    !chars_ok(rest + 1, (size_t)(close - rest - 1), ":."))
			goto bad;
		port = close + 2;
	} else {
		const char *colon = strrchr(rest, ':');
		if (colon == NULL || !chars_ok(rest, (size_t)(colon - rest), ".-"))
			goto bad;
		port = colon + 1;
	}
	if (bh_parse_long(port, 1, 65535, &v) < 0)
		goto bad;
	return 0;
bad:
	return bh_err_set(err, EINVAL, "invalid host \"%.200s\": expected tcp://HOST:PORT", url);
}

int ctx_host_check(const char *host, struct bh_err *err)
{
	if (host == NULL || host[0] == '\0')
		return bh_err_set(err, EINVAL,
		                  "empty host: expected tcp://HOST:PORT or unix:///PATH");
	if (ctx_host_is_tcp(host))
		return check_tcp(host, host + strlen("tcp://"), err);
	if (bh_str_has_prefix(host, "unix://")) {
		const char *path = host + strlen("unix://");
		size_t n = strlen(path);
		/* sockaddr_un's sun_path is 108 bytes on Linux, 104 on macOS. */
		if (path[0] != '/' || n > 103 || !chars_ok(path, n, "/._-+@:,="))
			return bh_err_set(err, EINVAL,
			                  "invalid host \"%.200s\": expected unix:///ABSOLUTE/PATH "
			                  "(at most 103 bytes)",
			                  host);
		return 0;
	}
	return bh_err_set(
	    err, EINVAL, "invalid host \"%.200s\": expected tcp://HOST:PORT or unix:///PATH", host);
}

int ctx_config_dir(const struct ctx_env *env, char **out, struct bh_err *err)
{
	if (env->berth_config != NULL && env->berth_config[0] != '\0') {
		*out = bh_strdup(env->berth_config);
		return 0;
	}
	return ctx_plat_default_config_dir(env, out, err);
}

void ctx_tls_free(struct ctx_tls *tls)
{
	free(tls->ca);
	free(tls->cert);
	free(tls->key);
	tls->ca = tls->cert = tls->key = NULL;
}

void ctx_meta_free(struct ctx_meta *m)
{
	free(m->name);
	free(m->description);
	free(m->host);
	free(m->created);
	ctx_tls_free(&m->tls);
	ctx_labels_free(m);
	memset(m, 0, sizeof(*m));
}

void ctx_list_free(struct ctx_meta *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ctx_meta_free(&list[i]);
	free(list);
}

static void pem_free(struct ctx_pem *p, bool secret)
{
	if (p->data != NULL && secret)
		bh_wipe(p->data, p->len);
	free(p->data);
	p->data = NULL;
	p->len = 0;
}

void ctx_material_free(struct ctx_material *m)
{
	pem_free(&m->ca, false);
	pem_free(&m->cert, false);
	pem_free(&m->key, true);
	m->present = false;
}

char *ctx_contexts_dir(const char *config_dir)
{
	return bh_path_join(config_dir, "contexts");
}

char *ctx_dir(const char *config_dir, const char *name)
{
	cleanup_free char *d = ctx_contexts_dir(config_dir);

	return bh_path_join(d, name);
}

int ctx_json_load_file(const char *path, json_t **out, struct bh_err *err)
{
	cleanup_free char *data = NULL;
	size_t len;
	json_error_t jerr;
	json_t *doc;

	if (bh_read_file(path, CTX_FILE_MAX, &data, &len, err) < 0)
		return -1;
	doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return bh_err_set(err, EINVAL, "%s: line %d column %d: %s", path, jerr.line,
		                  jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bh_err_set(err, EINVAL, "%s: not a JSON object", path);
	}
	*out = doc;
	return 0;
}

static int meta_string(json_t *doc, const char *key, bool required, const char *label, char **out,
                       struct bh_err *err)
{
	json_t *v = json_object_get(doc, key);

	if (v == NULL && !required) {
		*out = bh_strdup("");
		return 0;
	}
	if (!json_is_string(v))
		return bh_err_set(err, EINVAL, "%s: \"%s\" must be a string", label, key);
	*out = bh_strdup(json_string_value(v));
	return 0;
}

static int meta_bool(json_t *doc, const char *key, const char *label, bool *out,
                     struct bh_err *err)
{
	json_t *v = json_object_get(doc, key);

	if (v == NULL) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return bh_err_set(err, EINVAL, "%s: \"%s\" must be true or false", label, key);
	*out = json_is_true(v);
	return 0;
}

int ctx_meta_parse(json_t *doc, const char *label, struct ctx_meta *out, struct bh_err *err)
{
	memset(out, 0, sizeof(*out));
	if (meta_string(doc, "Host", true, label, &out->host, err) < 0 ||
	    meta_string(doc, "Description", false, label, &out->description, err) < 0 ||
	    meta_string(doc, "Created", false, label, &out->created, err) < 0)
		goto fail;
	if (ctx_host_check(out->host, err) < 0) {
		bh_err_wrap(err, "%s", label);
		goto fail;
	}
	if (meta_bool(doc, "Protected", label, &out->is_protected, err) < 0)
		goto fail;
	if (ctx_labels_parse(doc, label, out, err) < 0)
		goto fail;
	if (strlen(out->description) > CTX_DESCRIPTION_MAX) {
		bh_err_set(err, EINVAL, "%s: Description longer than %d bytes", label,
		           CTX_DESCRIPTION_MAX);
		goto fail;
	}
	return 0;
fail:
	ctx_meta_free(out);
	return -1;
}

char *ctx_meta_dump(const struct ctx_meta *m)
{
	json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "Name", m->name, "Description",
	                        m->description ? m->description : "", "Host", m->host,
	                        "Created", m->created ? m->created : "");
	char *s, *r;

	if (m->is_protected)
		json_object_set_new(doc, "Protected", json_true());
	ctx_labels_dump(m, doc);
	s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (s == NULL)
		abort(); /* only on allocation failure: the house rule */
	r = bh_asprintf("%s\n", s);
	free(s);
	return r;
}

/* Sets tls to the stored files if the context has TLS material. */
static int stored_tls(const char *dir, struct ctx_tls *tls, struct bh_err *err)
{
	cleanup_free char *tdir = bh_path_join(dir, "tls");
	char *ca = bh_path_join(tdir, "ca.pem");

	if (!bh_path_exists(ca)) {
		free(ca);
		return 0;
	}
	tls->ca = ca;
	tls->cert = bh_path_join(tdir, "cert.pem");
	tls->key = bh_path_join(tdir, "key.pem");
	if (!bh_path_exists(tls->cert) || !bh_path_exists(tls->key)) {
		bh_err_set(err, ENOENT,
		           "%s: incomplete TLS material (need ca.pem, cert.pem, key.pem)", tdir);
		ctx_tls_free(tls);
		return -1;
	}
	return 0;
}

static void load_default(struct ctx_meta *out)
{
	memset(out, 0, sizeof(*out));
	out->name = bh_strdup(CTX_DEFAULT_NAME);
	out->description = bh_strdup("the local berthd socket");
	out->host = bh_strdup(CTX_DEFAULT_HOST);
	out->created = bh_strdup("");
}

int ctx_load(const char *config_dir, const char *name, struct ctx_meta *out, struct bh_err *err)
{
	cleanup_free char *dir = NULL;
	cleanup_free char *path = NULL;
	json_t *doc = NULL;
	int r;

	if (name != NULL && strcmp(name, CTX_DEFAULT_NAME) == 0) {
		load_default(out);
		return 0;
	}
	if (!ctx_name_is_valid(name))
		return bh_err_set(err, ENOENT,
		                  "context \"%.80s\" not found (berth context ls lists them)",
		                  name ? name : "");
	dir = ctx_dir(config_dir, name);
	path = bh_path_join(dir, "meta.json");
	if (!bh_path_exists(path))
		return bh_err_set(err, ENOENT,
		                  "context \"%s\" not found (berth context ls lists them)", name);
	if (ctx_json_load_file(path, &doc, err) < 0)
		return -1;
	r = ctx_meta_parse(doc, path, out, err);
	json_decref(doc);
	if (r < 0)
		return -1;
	out->name = bh_strdup(name);
	if (stored_tls(dir, &out->tls, err) < 0) {
		ctx_meta_free(out);
		return -1;
	}
	return 0;
}

static int cmp_meta(const void *a, const void *b)
{
	const struct ctx_meta *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int list_dir(const char *config_dir, DIR *d, struct ctx_meta **list, size_t *n,
                    struct bh_err *err)
{
	struct dirent *de;
	size_t cap = *n;

	while ((de = readdir(d)) != NULL) {
		/* Temp dirs start with '.', which no valid name does. */
		if (!ctx_name_is_valid(de->d_name) || strcmp(de->d_name, CTX_DEFAULT_NAME) == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*list = bh_realloc(*list, cap * sizeof(**list));
		}
		if (ctx_load(config_dir, de->d_name, &(*list)[*n], err) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

int ctx_list(const char *config_dir, struct ctx_meta **out, size_t *n, struct bh_err *err)
{
	cleanup_free char *cdir = ctx_contexts_dir(config_dir);
	struct ctx_meta *list = bh_calloc(1, sizeof(*list));
	size_t count = 1;
	DIR *d;
	int r;

	load_default(&list[0]);
	d = opendir(cdir);
	if (d == NULL && errno != ENOENT) {
		ctx_list_free(list, count);
		return bh_err_sys(err, errno, "open %s", cdir);
	}
	if (d != NULL) {
		r = list_dir(config_dir, d, &list, &count, err);
		closedir(d);
		if (r < 0) {
			ctx_list_free(list, count);
			return -1;
		}
	}
	qsort(list + 1, count - 1, sizeof(*list), cmp_meta);
	*out = list;
	*n = count;
	return 0;
}
