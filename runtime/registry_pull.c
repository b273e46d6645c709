/* Pull: manifest (index -> this platform), config, then the layers on a
 * few threads, each blob hashed as it streams to a private temp file,
 * renamed into blobs/sha256 once verified, unpacked (diff id verified) and
 * committed.  The image, its record and its tag are registered last, under
 * the store's lock: an interrupted pull leaves complete layers at most. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/registry-internal.h"

#define PROGRESS_STEP (512u * 1024) /* bytes between "Downloading" events */

struct pull {
	struct rt_store *st;
	const struct rt_reg_opts *o;
	rt_reg_progress_fn fn;
	void *arg;
	struct rt_reg_ref ref;
	char *label; /* "127.0.0.1:5000/x:tag" for messages */
	struct reg_sess sess;
	struct bh_buf manifest;
	char mdigest[72];
	char mtype[128];
	struct rt_reg_desc config;
	struct rt_reg_desc *layers;
	size_t n;
	char **diffs; /* diff id hexes */
	/* the layer workers */
	pthread_mutex_t mu;
	size_t next;
	bool failed;
	struct bh_err first_err;
};

static void emit(struct pull *p, const char *status, const char *id, int64_t cur, int64_t total)
{
	json_t *ev = json_pack("{ss}", "status", status);

	if (id)
		json_object_set_new(ev, "id", json_string(id));
	if (total > 0 || cur > 0)
		json_object_set_new(
		    ev, "progressDetail",
		    json_pack("{sIsI}", "current", (json_int_t)cur, "total", (json_int_t)total));
	if (p->fn)
		p->fn(p->arg, ev);
	json_decref(ev);
}

static void emit_text(struct pull *p, const char *id, const char *prefix, const char *a)
{
	cleanup_free char *s = bh_asprintf("%s%s", prefix, a);

	emit(p, s, id, 0, 0);
}

/* ---- manifests ------------------------------------------------------------------ */

static int get_manifest(struct pull *p, const char *reference, struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("/v2/%s/manifests/%s", p->ref.repo, reference);
	struct reg_rq rq = {.method = "GET", .url = url, .body = &p->manifest};
	char hex[65];
	int r;

	bh_buf_free(&p->manifest);
	bh_buf_init(&p->manifest, RT_REG_MAX_MANIFEST);
	r = reg_do(&p->sess, &rq, err);
	if (r == 0 && rq.status == 404)
		r = bh_err_set(err, ENOENT, "manifest for %s not found: manifest unknown",
		               p->label);
	else if (r == 0 && rq.status != 200)
		r = reg_status_err(&rq, err, "pull %s", p->label);
	if (r == 0) {
		rt_store_sha256_hex(p->manifest.data ? p->manifest.data : "", p->manifest.len, hex);
		snprintf(p->mdigest, sizeof(p->mdigest), "sha256:%s", hex);
		bh_strlcpy(p->mtype, rq.ctype, sizeof(p->mtype));
		p->mtype[strcspn(p->mtype, "; ")] = '\0';
		if ((bh_str_has_prefix(reference, "sha256:") &&
		     strcmp(reference, p->mdigest) != 0) ||
		    (rq.digest[0] && strcmp(rq.digest, p->mdigest) != 0))
			r = bh_err_set(err, EIO, "pull %s: manifest digest mismatch: content is %s",
			               p->label, p->mdigest);
	}
	reg_rq_free(&rq);
	return r;
}

static json_t *manifest_json(struct pull *p, struct bh_err *err)
{
	json_error_t je;
	json_t *doc = json_loadb(p->manifest.data ? p->manifest.data : "", p->manifest.len, 0, &je);
	const char *mt;

	if (!json_is_object(doc)) {
		json_decref(doc);
		bh_err_set(err, EINVAL, "pull %s: malformed manifest: %s", p->label, je.text);
		return NULL;
	}
	mt = json_string_value(json_object_get(doc, "mediaType"));
	if (p->mtype[0] == '\0' || strcmp(p->mtype, "application/json") == 0)
		bh_strlcpy(p->mtype, mt ? mt : RT_MT_OCI_MANIFEST, sizeof(p->mtype));
	return doc;
}

/* The image manifest for this platform, parsed into config and layers. */
static int resolve_manifest(struct pull *p, struct bh_err *err)
{
	struct rt_platform plat;
	struct rt_reg_desc pick;
	json_t *doc;
	int r;

	if (get_manifest(p, p->ref.digest ? p->ref.digest : p->ref.tag, err) < 0 ||
	    (doc = manifest_json(p, err)) == NULL)
		return -1;
	if (rt_reg_is_index(p->mtype, doc)) {
		r = rt_platform_parse(p->o->platform, &plat, err);
		if (r == 0)
			r = rt_reg_index_pick(doc, &plat, &pick, err);
		json_decref(doc);
		if (r < 0)
			return bh_err_wrap(err, "pull %s", p->label);
		if (get_manifest(p, pick.digest, err) < 0 || (doc = manifest_json(p, err)) == NULL)
			return -1;
		if (rt_reg_is_index(p->mtype, doc)) {
			json_decref(doc);
			return bh_err_set(err, EINVAL, "pull %s: nested manifest lists", p->label);
		}
	}
	r = rt_reg_manifest_parse(doc, &p->config, &p->layers, &p->n, err);
	json_decref(doc);
	return r < 0 ? bh_err_wrap(err, "pull %s: malformed manifest", p->label) : 0;
}

/* ---- blobs ------------------------------------------------------------------------ */

struct blob_sink {
	struct pull *p;
	const struct rt_reg_desc *d;
	const struct reg_rq *rq;
	int fd;
	struct bh_buf *mem;
	struct rt_sha256 *h;
	int64_t got, last;
	bool first;    /* the first bytes of this attempt */
	bool sink_err; /* the content was refused: no retry */
	char id[13];
};

/* A resumed attempt answered 200 instead of 206: the server ignored the
 * Range, so start the file and the hash over. */
static int restart_file(struct blob_sink *b, struct bh_err *err)
{
	char junk[65];

	if (b->fd < 0 || ftruncate(b->fd, 0) < 0 || lseek(b->fd, 0, SEEK_SET) < 0)
		return bh_err_sys(err, errno, "blob %s: restart", b->d->digest);
	rt_store_sha256_final(b->h, junk);
	b->h = rt_store_sha256_new();
	b->got = b->last = 0;
	return 0;
}

static int write_blob(struct blob_sink *b, const char *q, size_t left, struct bh_err *err)
{
	while (b->fd >= 0 && left > 0) {
		ssize_t n = write(b->fd, q, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bh_err_sys(err, errno, "write blob %s", b->d->digest);
		q += n;
		left -= (size_t)n;
	}
	return 0;
}

static int blob_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct blob_sink *b = arg;

	b->sink_err = true; /* until this chunk is taken */
	if (b->first && b->got > 0 && b->rq->status == 200 && restart_file(b, err) < 0)
		return -1;
	b->first = false;
	b->got += (int64_t)len;
	if (b->got > b->d->size)
		return bh_err_set(err, EIO,
		                  "blob %s: digest mismatch: more than the %lld bytes "
		                  "the manifest says",
		                  b->d->digest, (long long)b->d->size);
	rt_store_sha256_update(b->h, data, len);
	if (b->mem && bh_buf_append(b->mem, data, len) < 0)
		return bh_err_set(err, EFBIG, "blob %s: larger than %zu bytes", b->d->digest,
		                  b->mem->max);
	if (write_blob(b, data, len, err) < 0)
		return -1;
	if (b->id[0] && (b->got - b->last >= PROGRESS_STEP || b->got == b->d->size)) {
		b->last = b->got;
		emit(b->p, "Downloading", b->id, b->got, b->d->size);
	}
	b->sink_err = false;
	return 0;
}

/* One GET, resumed with Range after a cut transfer: the file and the hash
 * hold exactly the bytes received so far, so verification stays whole. */
static int fetch_attempts(struct reg_sess *s, struct reg_rq *rq, struct blob_sink *b,
                          struct bh_err *err)
{
	for (int attempt = 0;; attempt++) {
		int r;
		rq->range_from = b->got;
		b->first = true;
		b->sink_err = false;
		r = reg_do(s, rq, err);
		if (r == 0 || b->sink_err || b->fd < 0 || b->got == 0 ||
		    attempt >= RT_REG_RESUMES || (s->cancel && *s->cancel))
			return r;
		bh_warn("blob %s: transfer cut after %lld bytes, resuming: %s", b->d->digest,
		        (long long)b->got, err->msg);
	}
}

/* GET the blob into fd or mem, verifying size and sha256 as it streams. */
static int fetch_blob(struct pull *p, struct reg_sess *s, const struct rt_reg_desc *d, int fd,
                      struct bh_buf *mem, bool progress, struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("/v2/%s/blobs/%s", p->ref.repo, d->digest);
	struct blob_sink b = {.p = p, .d = d, .fd = fd, .mem = mem};
	struct reg_rq rq = {
	    .method = "GET", .url = url, .sink = blob_sink, .sink_arg = &b, .follow = true};
	char got[65];
	int r;

	b.rq = &rq;
	if (progress)
		snprintf(b.id, sizeof(b.id), "%.12s", d->hex);
	b.h = rt_store_sha256_new();
	r = fetch_attempts(s, &rq, &b, err);
	rt_store_sha256_final(b.h, got);
	if (r == 0 && rq.status != 200 && rq.status != 206)
		r = reg_status_err(&rq, err, "blob %s", d->digest);
	else if (r == 0 && (b.got != d->size || strcmp(got, d->hex) != 0))
		r = bh_err_set(err, EIO,
		               "blob %s: digest mismatch: received %lld bytes with "
		               "digest sha256:%s",
		               d->digest, (long long)b.got, got);
	reg_rq_free(&rq);
	return r;
}

static int fetch_config(struct pull *p, char **data, size_t *len, struct bh_err *err)
{
	struct bh_buf mem;

	if (p->config.size > (int64_t)RT_REG_MAX_MANIFEST)
		return bh_err_set(err, EFBIG, "pull %s: config larger than %u bytes", p->label,
		                  RT_REG_MAX_MANIFEST);
	bh_buf_init(&mem, RT_REG_MAX_MANIFEST);
	if (fetch_blob(p, &p->sess, &p->config, -1, &mem, false, err) < 0) {
		bh_buf_free(&mem);
		return bh_err_wrap(err, "pull %s: config", p->label);
	}
	*data = mem.data ? mem.data : bh_strdup("");
	*len = mem.len;
	return 0;
}

static int read_diffs(struct pull *p, const char *data, size_t len, struct bh_err *err)
{
	json_t *cfg = json_loadb(data, len, 0, NULL);
	json_t *d = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	int r = 0;

	if (!json_is_array(d) || json_array_size(d) != p->n)
		r = bh_err_set(err, EINVAL, "pull %s: config has %zu diff_ids for %zu layers",
		               p->label, json_array_size(d), p->n);
	p->diffs = bh_calloc(p->n + 1, sizeof(char *));
	for (size_t i = 0; r == 0 && i < p->n; i++) {
		char hex[65];
		if (rt_store_digest_hex(json_string_value(json_array_get(d, i)), hex) < 0)
			r = bh_err_set(err, EINVAL, "pull %s: diff_id %zu is not sha256", p->label,
			               i);
		else
			p->diffs[i] = bh_strdup(hex);
	}
	json_decref(cfg);
	return r;
}

/* ---- layers ------------------------------------------------------------------------ */

static int download_layer(struct pull *p, struct reg_sess *s, const struct rt_reg_desc *d,
                          const char *final, struct bh_err *err)
{
	cleanup_free char *tmp = bh_asprintf("%s/tmp/blob-%s-XXXXXX", rt_store_path(p->st), d->hex);
	cleanup_close int fd = mkstemp(tmp);
	int r;

	if (fd < 0)
		return bh_err_sys(err, errno, "create %s", tmp);
	r = fetch_blob(p, s, d, fd, NULL, true, err);
	if (r == 0 && fsync(fd) < 0)
		r = bh_err_sys(err, errno, "sync %s", tmp);
	/* content-addressed and verified: the rename makes it appear whole */
	if (r == 0 && rename(tmp, final) < 0)
		r = bh_err_sys(err, errno, "store blob %s", d->digest);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int pull_layer(struct pull *p, struct reg_sess *s, size_t i, struct bh_err *err)
{
	const struct rt_reg_desc *d = &p->layers[i];
	cleanup_free char *blob = reg_blob_path(p->st, d->hex);
	cleanup_free char *tmpdir = NULL;
	char id[13];
	uint64_t size = 0;
	int r;

	snprintf(id, sizeof(id), "%.12s", d->hex);
	if (rt_store_layer_present(p->st, p->diffs[i])) {
		emit(p, "Already exists", id, 0, 0);
		return 0;
	}
	emit(p, "Pulling fs layer", id, 0, 0);
	if (!bh_path_exists(blob) && download_layer(p, s, d, blob, err) < 0)
		return bh_err_wrap(err, "pull %s: layer %zu", p->label, i);
	emit(p, "Verifying Checksum", id, 0, 0);
	emit(p, "Download complete", id, 0, 0);
	emit(p, "Extracting", id, 0, 0);
	if (reg_layer_unpack(p->st, blob, p->diffs[i], &tmpdir, &size, err) < 0)
		return bh_err_wrap(err, "pull %s: layer %s", p->label, d->digest);
	pthread_mutex_lock(&p->st->lock);
	r = rt_store_layer_commit(p->st, tmpdir, p->diffs[i], size, err);
	pthread_mutex_unlock(&p->st->lock);
	if (r < 0)
		return bh_err_wrap(err, "pull %s: commit layer", p->label);
	emit(p, "Pull complete", id, 0, 0);
	return 0;
}

static void *layer_worker(void *arg)
{
	struct pull *p = arg;
	struct reg_sess s;
	struct bh_err err;

	bh_err_clear(&err);
	reg_sess_clone(&p->sess, &s, &err);
	for (;;) {
		size_t i;
		pthread_mutex_lock(&p->mu);
		i = p->next++;
		bool stop = p->failed || i >= p->n;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (pull_layer(p, &s, i, &err) < 0) {
			pthread_mutex_lock(&p->mu);
			if (!p->failed)
				p->first_err = err;
			p->failed = true;
			pthread_mutex_unlock(&p->mu);
		}
	}
	reg_sess_close(&s);
	return NULL;
}

static int pull_layers(struct pull *p, struct bh_err *err)
{
	pthread_t t[RT_REG_PARALLEL];
	size_t nt = p->n < RT_REG_PARALLEL ? p->n : RT_REG_PARALLEL, started = 0;

	pthread_mutex_init(&p->mu, NULL);
	for (size_t i = 0; i < nt; i++)
		if (pthread_create(&t[i], NULL, layer_worker, p) == 0)
			started++;
	if (started == 0 && p->n > 0)
		layer_worker(p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&p->mu);
	if (p->failed) {
		*err = p->first_err;
		return -1;
	}
	return 0;
}

/* ---- registering the image ----------------------------------------------------------------- */

static int register_locked(struct pull *p, const char *cfg, size_t cfg_len, uint64_t size,
                           struct bh_err *err)
{
	cleanup_free char *repo_digest = bh_asprintf("%s@%s", p->ref.name, p->mdigest);
	cleanup_free char *tagged = NULL;
	char id[RT_IMAGE_ID_LEN];
	json_t *index = NULL;
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->n; i++)
		if (!rt_store_layer_present(p->st, p->diffs[i]))
			r = bh_err_set(err, EAGAIN, "layer sha256:%s was removed during the pull",
			               p->diffs[i]);
	if (r == 0)
		r = rt_store_put_blob(p->st, cfg, cfg_len, p->config.hex, err);
	if (r == 0)
		r = rt_store_put_blob(p->st, p->manifest.data, p->manifest.len, p->mdigest + 7,
		                      err);
	if (r == 0)
		r = reg_record_update(p->st, p->config.hex, p->mdigest, p->mtype, repo_digest,
		                      p->ref.name, err);
	if (r == 0)
		r = rt_store_image_put(p->st, p->config.hex, size, err);
	if (r < 0 || p->ref.tag == NULL)
		return r;
	tagged = bh_asprintf("%s:%s", p->ref.name, p->ref.tag);
	snprintf(id, sizeof(id), "sha256:%s", p->config.hex);
	r = rt_store_tags_read(p->st, &index, err);
	if (r == 0) {
		rt_store_tags_set(index, tagged, id);
		r = rt_store_tags_write(p->st, index, err);
	}
	json_decref(index);
	return r;
}

static int register_image(struct pull *p, const char *cfg, size_t cfg_len, struct bh_err *err)
{
	uint64_t total = 0;
	int r;

	for (size_t i = 0; i < p->n; i++) {
		uint64_t sz = 0;
		if (rt_store_layer_size(p->st, p->diffs[i], &sz) == 0)
			total += sz;
	}
	pthread_mutex_lock(&p->st->lock);
	r = register_locked(p, cfg, cfg_len, total, err);
	pthread_mutex_unlock(&p->st->lock);
	return r < 0 ? bh_err_wrap(err, "pull %s: register", p->label) : 0;
}

static int pull_run(struct pull *p, struct bh_err *err)
{
	cleanup_free char *cfg = NULL;
	cleanup_free char *familiar = rt_image_ref_familiar(p->ref.name);
	size_t cfg_len = 0;
	bool had;

	if (reg_sess_open(&p->sess, p->ref.host, p->ref.repo, false, p->o, err) < 0 ||
	    reg_sess_connect(&p->sess, err) < 0)
		return bh_err_wrap(err, "pull %s", p->label);
	if (resolve_manifest(p, err) < 0)
		return -1;
	emit_text(p, p->ref.tag ? p->ref.tag : p->ref.digest, "Pulling from ", p->ref.repo);
	if (fetch_config(p, &cfg, &cfg_len, err) < 0 || read_diffs(p, cfg, cfg_len, err) < 0)
		return -1;
	had = rt_store_image_present(p->st, p->config.hex);
	if (pull_layers(p, err) < 0 || register_image(p, cfg, cfg_len, err) < 0)
		return -1;
	emit_text(p, NULL, "Digest: ", p->mdigest);
	if (p->ref.tag) {
		cleanup_free char *t = bh_asprintf("%s:%s", familiar, p->ref.tag);
		emit_text(p, NULL,
		          had ? "Status: Image is up to date for "
		              : "Status: Downloaded newer image for ",
		          t);
	} else {
		cleanup_free char *t = bh_asprintf("%s@%s", familiar, p->ref.digest);
		emit_text(p, NULL,
		          had ? "Status: Image is up to date for "
		              : "Status: Downloaded newer image for ",
		          t);
	}
	return 0;
}

int rt_registry_pull(struct rt_store *s, const char *ref, const struct rt_reg_opts *o,
                     rt_reg_progress_fn fn, void *arg, struct bh_err *err)
{
	struct pull p = {.st = s, .o = o, .fn = fn, .arg = arg};
	cleanup_free char *familiar = NULL;
	int r;

	bh_buf_init(&p.manifest, RT_REG_MAX_MANIFEST);
	if (rt_reg_ref_parse(ref, &p.ref, err) < 0)
		return -1;
	familiar = rt_image_ref_familiar(p.ref.name);
	p.label = p.ref.tag ? bh_asprintf("%s:%s", familiar, p.ref.tag)
	                    : bh_asprintf("%s@%s", familiar, p.ref.digest);
	/* Layers are committed one by one before the image: prune must keep them. */
	rt_store_hold(s);
	r = pull_run(&p, err);
	rt_store_release(s);
	if (r == 0)
		bh_info("pulled %s (%s)", p.label, p.mdigest);
	reg_sess_close(&p.sess);
	bh_buf_free(&p.manifest);
	free(p.layers);
	rt_image_strv_free(p.diffs);
	free(p.label);
	rt_reg_ref_free(&p.ref);
	return r;
}
