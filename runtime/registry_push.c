/* Push: the image's stored manifest is sent unchanged (so its digest stays
 * the one it was pulled with; a loaded, imported or committed image gets
 * one built and kept on its first push, registry_manifest.c), after every blob it names: a HEAD
 * says which the registry has; a blob known to come from another repository of the same registry is
 * mounted from there; the rest goes up monolithically (POST uploads/ -> 202 Location, PUT
 * Location&digest=).  Login checks credentials against /v2/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry-internal.h"

struct push {
	struct rt_store *st;
	rt_reg_progress_fn fn;
	void *arg;
	struct rt_reg_ref ref;
	char *label;
	struct reg_sess sess;
	json_t *rec;
};

static void pemit(struct push *p, const char *status, const char *id)
{
	json_t *ev = json_pack("{ss}", "status", status);

	if (id)
		json_object_set_new(ev, "id", json_string(id));
	if (p->fn)
		p->fn(p->arg, ev);
	json_decref(ev);
}

static int blob_exists(struct push *p, const struct rt_reg_desc *d, bool *yes, struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("/v2/%s/blobs/%s", p->ref.repo, d->digest);
	struct reg_rq rq = {.method = "HEAD", .url = url, .follow = true};
	int r = reg_do(&p->sess, &rq, err);

	if (r == 0 && rq.status != 200 && rq.status != 404)
		r = reg_status_err(&rq, err, "push %s: HEAD blob %s", p->label, d->digest);
	*yes = r == 0 && rq.status == 200;
	reg_rq_free(&rq);
	return r;
}

/* A source repository on this registry other than the target, or NULL. */
static const char *mount_source(struct push *p)
{
	json_t *v;
	size_t i;
	size_t dl = strlen(p->ref.domain);

	json_array_foreach(json_object_get(p->rec, "sources"), i, v)
	{
		const char *s = json_string_value(v);
		if (s && strncmp(s, p->ref.domain, dl) == 0 && s[dl] == '/' &&
		    strcmp(s + dl + 1, p->ref.repo) != 0)
			return s + dl + 1;
	}
	return NULL;
}

static char *upload_url(struct push *p, const char *location, const char *digest)
{
	const char *sep = strchr(location, '?') ? "&" : "?";

	/* "sha256:<hex>": ':' is allowed in a query (RFC 3986), nothing to escape */
	return bh_asprintf("%s%sdigest=%s", location, sep, digest);
}

static int upload(struct push *p, const struct rt_reg_desc *d, const char *location,
                  struct bh_err *err)
{
	cleanup_free char *path = reg_blob_path(p->st, d->hex);
	cleanup_free char *url = NULL;
	cleanup_fclose FILE *f = fopen(path, "rb");
	struct reg_rq rq = {.method = "PUT",
	                    .content_type = "application/octet-stream",
	                    .file = f,
	                    .len = (size_t)d->size};
	int r;

	if (f == NULL)
		return bh_err_sys(err, errno, "push %s: blob %s not in the store", p->label,
		                  d->digest);
	/* The PUT carries our token: only to the registry itself, never to a
	 * host a (hostile) Location names. */
	if (location[0] != '/' &&
	    !(bh_str_has_prefix(location, p->sess.base) && location[strlen(p->sess.base)] == '/'))
		return bh_err_set(err, EIO,
		                  "push %s: registry gave an upload location on another "
		                  "host",
		                  p->label);
	url = upload_url(p, location, d->digest);
	rq.url = url;
	r = reg_do(&p->sess, &rq, err);
	if (r == 0 && rq.status != 201)
		r = reg_status_err(&rq, err, "push %s: upload blob %s", p->label, d->digest);
	reg_rq_free(&rq);
	return r;
}

static int push_blob(struct push *p, const struct rt_reg_desc *d, struct bh_err *err)
{
	const char *from = mount_source(p);
	cleanup_free char *url = NULL;
	struct reg_rq rq = {.method = "POST"};
	char id[13];
	bool have = false;
	int r;

	snprintf(id, sizeof(id), "%.12s", d->hex);
	if (blob_exists(p, d, &have, err) < 0)
		return -1;
	if (have) {
		pemit(p, "Layer already exists", id);
		return 0;
	}
	url = from ? bh_asprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", p->ref.repo, d->digest,
	                         from)
	           : bh_asprintf("/v2/%s/blobs/uploads/", p->ref.repo);
	rq.url = url;
	pemit(p, "Preparing", id);
	r = reg_do(&p->sess, &rq, err);
	if (r == 0 && rq.status == 201) {
		cleanup_free char *m = bh_asprintf("Mounted from %s", from);
		pemit(p, m, id);
	} else if (r == 0 && rq.status == 202 && rq.location[0]) {
		pemit(p, "Pushing", id);
		r = upload(p, d, rq.location, err);
		if (r == 0)
			pemit(p, "Pushed", id);
	} else if (r == 0) {
		r = reg_status_err(&rq, err, "push %s: start upload", p->label);
	}
	reg_rq_free(&rq);
	return r;
}

static int put_manifest(struct push *p, const char *data, size_t len, const char *mtype,
                        char digest[72], struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("/v2/%s/manifests/%s", p->ref.repo, p->ref.tag);
	struct reg_rq rq = {
	    .method = "PUT", .url = url, .content_type = mtype, .data = data, .len = len};
	char hex[65];
	int r = reg_do(&p->sess, &rq, err);

	if (r == 0 && rq.status != 201)
		r = reg_status_err(&rq, err, "push %s: manifest", p->label);
	rt_store_sha256_hex(data, len, hex);
	snprintf(digest, 72, "sha256:%s", hex);
	if (r == 0 && rq.digest[0] && strcmp(rq.digest, digest) != 0)
		r = bh_err_set(err, EIO, "push %s: registry stored digest %s, sent %s", p->label,
		               rq.digest, digest);
	reg_rq_free(&rq);
	return r;
}

static int load_manifest(struct push *p, const char *id, char **data, size_t *len,
                         struct bh_err *err)
{
	char hex[65];
	struct bh_err ignored;

	if (reg_record_read(p->st, id + 7, &p->rec, &ignored) < 0 ||
	    rt_store_digest_hex(json_string_value(json_object_get(p->rec, "manifest")), hex) < 0) {
		/* loaded, imported or committed: build (once) and keep a manifest */
		json_decref(p->rec);
		p->rec = NULL;
		if (reg_manifest_build(p->st, id, err) < 0 ||
		    reg_record_read(p->st, id + 7, &p->rec, err) < 0 ||
		    rt_store_digest_hex(json_string_value(json_object_get(p->rec, "manifest")),
		                        hex) < 0)
			return bh_err_wrap(err, "push %s", p->label);
	}
	return rt_store_get_blob(p->st, hex, RT_REG_MAX_MANIFEST, data, len, err);
}

static int push_all(struct push *p, const char *data, size_t len, struct bh_err *err)
{
	json_t *doc = json_loadb(data, len, 0, NULL);
	struct rt_reg_desc config, *layers = NULL;
	size_t n = 0;
	int r = rt_reg_manifest_parse(doc, &config, &layers, &n, err);

	json_decref(doc);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = push_blob(p, &layers[i], err);
	if (r == 0)
		r = push_blob(p, &config, err);
	free(layers);
	return r;
}

static int push_run(struct push *p, const struct rt_reg_opts *o, struct bh_err *err)
{
	cleanup_free char *data = NULL;
	cleanup_free char *msg = NULL;
	char id[RT_IMAGE_ID_LEN], digest[72];
	const char *mtype;
	size_t len = 0;

	if (rt_image_resolve(p->st, p->label, id, err) < 0)
		return bh_err_set(err, ENOENT, "An image does not exist locally with the tag: %s",
		                  p->label);
	if (load_manifest(p, id, &data, &len, err) < 0)
		return -1;
	mtype = json_string_value(json_object_get(p->rec, "mediaType"));
	msg = bh_asprintf("The push refers to repository [%s]", p->ref.name);
	pemit(p, msg, NULL);
	if (reg_sess_open(&p->sess, p->ref.host, p->ref.repo, true, o, err) < 0 ||
	    reg_sess_connect(&p->sess, err) < 0)
		return bh_err_wrap(err, "push %s", p->label);
	if (push_all(p, data, len, err) < 0 ||
	    put_manifest(p, data, len, mtype ? mtype : RT_MT_OCI_MANIFEST, digest, err) < 0)
		return -1;
	free(msg);
	msg = bh_asprintf("%s: digest: %s size: %zu", p->ref.tag, digest, len);
	pemit(p, msg, NULL);
	{
		cleanup_free char *rd = bh_asprintf("%s@%s", p->ref.name, digest);
		pthread_mutex_lock(&p->st->lock);
		reg_record_update(p->st, id + 7, NULL, NULL, rd, p->ref.name, err);
		pthread_mutex_unlock(&p->st->lock);
	}
	return 0;
}

int rt_registry_push(struct rt_store *s, const char *ref, const struct rt_reg_opts *o,
                     rt_reg_progress_fn fn, void *arg, struct bh_err *err)
{
	struct push p = {.st = s, .fn = fn, .arg = arg};
	cleanup_free char *familiar = NULL;
	int r;

	if (rt_reg_ref_parse(ref, &p.ref, err) < 0)
		return -1;
	if (p.ref.tag == NULL) {
		rt_reg_ref_free(&p.ref);
		return bh_err_set(err, EINVAL, "push %s: a tag is needed, not a digest", ref);
	}
	familiar = rt_image_ref_familiar(p.ref.name);
	p.label = bh_asprintf("%s:%s", familiar, p.ref.tag);
	r = push_run(&p, o, err);
	if (r == 0)
		bh_info("pushed %s", p.label);
	reg_sess_close(&p.sess);
	json_decref(p.rec);
	free(p.label);
	rt_reg_ref_free(&p.ref);
	return r;
}

int rt_registry_login(const char *registry, const struct rt_reg_opts *o, struct bh_err *err)
{
	struct reg_sess s;
	struct reg_rq rq = {.method = "GET", .url = "/v2/"};
	const char *host = registry;
	int r;

	if (bh_str_has_prefix(host, "https://"))
		host += 8;
	else if (bh_str_has_prefix(host, "http://"))
		host += 7;
	/* "https://index.docker.io/v1/" (what docker login sends): the host only */
	cleanup_free char *hostonly = bh_strndup(host, strcspn(host, "/"));

	host = hostonly;
	if (*host == '\0' || strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0)
		host = "registry-1.docker.io";
	if (reg_sess_open(&s, host, NULL, false, o, err) < 0)
		return -1;
	r = reg_sess_connect(&s, err);
	/* A token or a Basic line was obtained with the credentials: try it. */
	if (r == 0 && s.authz != NULL)
		r = reg_do(&s, &rq, err);
	if (r == 0 && s.authz != NULL && rq.status != 200)
		r = reg_status_err(&rq, err, "GET /v2/");
	reg_rq_free(&rq);
	reg_sess_close(&s);
	return r < 0 ? bh_err_wrap(err, "login to %s", host) : 0;
}
