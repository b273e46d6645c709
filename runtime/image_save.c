/* berth save: images -> one tar streamed to a sink, as a docker-archive
 * (manifest.json, repositories, blobs/sha256/...) or an OCI image layout
 * (oci-layout, index.json, blobs/sha256/...).  Layers are the kept tars
 * when present (same digests as the original), else re-tarred from the
 * unpacked dir into a temp file first (a tar header needs the size). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-image-archive.h"
#include "runtime/registry-internal.h"
#include "runtime/rt-image-internal.h"

#define MAX_SAVE    1000
#define COPY_BLOCK  65536
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX    "application/vnd.oci.image.index.v1+json"
#define MT_CONFIG   "application/vnd.oci.image.config.v1+json"
#define MT_LAYER    "application/vnd.oci.image.layer.v1.tar"

struct save {
	struct rt_store *s;
	struct archive *a;
	enum rt_save_format fmt;
	char *tmpdir;
	char **written; /* blob hexes already in the archive */
	size_t nwritten;
	json_t *manifest;     /* docker: manifest.json */
	json_t *repositories; /* docker: repositories */
	json_t *index;        /* oci: index.json manifests */
	struct bh_err *err;
};

static bool written(struct save *sv, const char *hex)
{
	for (size_t i = 0; i < sv->nwritten; i++)
		if (strcmp(sv->written[i], hex) == 0)
			return true;
	sv->written = bh_realloc(sv->written, (sv->nwritten + 1) * sizeof(char *));
	sv->written[sv->nwritten++] = bh_strdup(hex);
	return false;
}

static int put_header(struct save *sv, const char *name, int64_t size, bool dir)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : 0644);
	archive_entry_set_size(e, dir ? 0 : size);
	archive_entry_set_mtime(e, 0, 0);
	r = archive_write_header(sv->a, e);
	archive_entry_free(e);
	if (r < ARCHIVE_WARN)
		return bh_err_set(sv->err, EIO, "save %s: %s", name, archive_error_string(sv->a));
	return 0;
}

static int put_mem(struct save *sv, const char *name, const void *data, size_t len)
{
	if (put_header(sv, name, (int64_t)len, false) < 0)
		return -1;
	if (len > 0 && archive_write_data(sv->a, data, len) < 0)
		return bh_err_set(sv->err, EIO, "save %s: %s", name, archive_error_string(sv->a));
	return 0;
}

static int put_json(struct save *sv, const char *name, json_t *j)
{
	cleanup_free char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	return put_mem(sv, name, text, strlen(text));
}

static int put_file(struct save *sv, const char *name, const char *path)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	cleanup_free char *buf = bh_malloc(COPY_BLOCK);
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		return bh_err_sys(sv->err, errno, "save: open %s", path);
	if (put_header(sv, name, st.st_size, false) < 0)
		return -1;
	while ((n = read(fd, buf, COPY_BLOCK)) > 0)
		if (archive_write_data(sv->a, buf, (size_t)n) < 0)
			return bh_err_set(sv->err, EIO, "save %s: %s", name,
			                  archive_error_string(sv->a));
	return n < 0 ? bh_err_sys(sv->err, errno, "save: read %s", path) : 0;
}

/* Where a layer's bytes come from, in order of preference: the kept
 * uncompressed tar (its digest is the diff id), the compressed blob a pull
 * kept (registry_pull.c: same diff id once decompressed), else a fresh tar
 * of the unpacked dir (its digest may differ from the diff id). */
struct layer_src {
	char *path;
	char hex[65]; /* digest of the bytes sent */
	uint64_t size;
	bool same_diff;         /* the config's diff id still holds */
	const char *media_type; /* for the OCI manifest */
};

/* A pulled image's layer descriptors from its kept manifest; NULL if none. */
static struct rt_reg_desc *pulled_layers(struct rt_store *s, const char *id, size_t want)
{
	cleanup_free char *data = NULL;
	struct rt_reg_desc cfg, *layers = NULL;
	json_t *rec = NULL, *doc = NULL;
	struct bh_err e;
	size_t n = 0, len = 0;
	char mhex[65];

	if (reg_record_read(s, id + 7, &rec, &e) < 0)
		return NULL;
	if (rt_store_digest_hex(json_string_value(json_object_get(rec, "manifest")), mhex) == 0 &&
	    rt_store_get_blob(s, mhex, RT_STORE_MAX_JSON, &data, &len, &e) == 0 &&
	    (doc = json_loadb(data, len, 0, NULL)) != NULL &&
	    (rt_reg_manifest_parse(doc, &cfg, &layers, &n, &e) < 0 || n != want)) {
		free(layers);
		layers = NULL;
	}
	json_decref(doc);
	json_decref(rec);
	return layers;
}

static const char *oci_layer_type(const char *mt)
{
	if (strstr(mt, "zstd"))
		return MT_LAYER "+zstd";
	if (strstr(mt, "gzip"))
		return MT_LAYER "+gzip";
	return MT_LAYER;
}

static int layer_file(struct save *sv, const char *diff, const struct rt_reg_desc *pulled,
                      struct layer_src *src)
{
	cleanup_free char *dir = bh_asprintf("%s/layers/sha256/%s", rt_store_path(sv->s), diff);
	cleanup_free char *kept = bh_path_join(dir, RT_LAYER_TAR);
	cleanup_free char *root = bh_path_join(dir, "root");
	cleanup_free char *blob = NULL;
	struct stat st;

	src->media_type = MT_LAYER;
	src->same_diff = true;
	if (!rt_store_layer_present(sv->s, diff))
		return bh_err_set(sv->err, EIO, "layer sha256:%s missing from store", diff);
	if (stat(kept, &st) == 0) {
		src->path = steal_pointer(&kept);
		memcpy(src->hex, diff, 65);
		src->size = (uint64_t)st.st_size;
		return 0;
	}
	blob = pulled ? bh_asprintf("%s/blobs/sha256/%s", rt_store_path(sv->s), pulled->hex) : NULL;
	if (blob && stat(blob, &st) == 0 && st.st_size == pulled->size) {
		src->path = steal_pointer(&blob);
		memcpy(src->hex, pulled->hex, 65);
		src->size = (uint64_t)st.st_size;
		src->media_type = oci_layer_type(pulled->media_type);
		return 0;
	}
	src->path = bh_asprintf("%s/%s.tar", sv->tmpdir, diff);
	if (rt_tar_dir_to_file(root, RT_TAR_OVERLAY, src->path, src->hex, &src->size, sv->err) < 0)
		return -1;
	src->same_diff = strcmp(src->hex, diff) == 0;
	return 0;
}

static int put_blob_file(struct save *sv, const char *hex, const char *path)
{
	cleanup_free char *name = bh_asprintf("blobs/sha256/%s", hex);

	return written(sv, hex) ? 0 : put_file(sv, name, path);
}

static int put_blob_mem(struct save *sv, const char *hex, const char *data, size_t len)
{
	cleanup_free char *name = bh_asprintf("blobs/sha256/%s", hex);

	return written(sv, hex) ? 0 : put_mem(sv, name, data, len);
}

/* Sends every layer of config; rewrites its diff_ids when a re-tarred
 * layer has another digest.  layers gets [{digest, size, mediaType}]. */
static int put_layers(struct save *sv, const char *id, json_t *config, json_t *layers)
{
	json_t *diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids"), *d;
	cleanup_free struct rt_reg_desc *pulled = pulled_layers(sv->s, id, json_array_size(diffs));
	size_t i;

	json_array_foreach(diffs, i, d)
	{
		struct layer_src src = {0};
		cleanup_free char *digest = NULL;
		char diff[65];
		int r;
		if (rt_store_digest_hex(json_string_value(d), diff) < 0)
			return bh_err_set(sv->err, EIO, "config: bad diff_id %zu", i);
		r = layer_file(sv, diff, pulled ? &pulled[i] : NULL, &src);
		if (r == 0)
			r = put_blob_file(sv, src.hex, src.path);
		free(src.path);
		if (r < 0)
			return bh_err_wrap(sv->err, "layer %zu", i);
		digest = bh_asprintf("sha256:%s", src.hex);
		if (!src.same_diff)
			json_array_set_new(diffs, i, json_string(digest));
		json_array_append_new(layers,
		                      json_pack("{ss sI ss}", "digest", digest, "size",
		                                (json_int_t)src.size, "mediaType", src.media_type));
	}
	return 0;
}

static void add_docker(struct save *sv, const char *cfg_hex, json_t *layers, const char *ref)
{
	json_t *names = json_array(), *tags = json_array(), *l;
	size_t i;

	json_array_foreach(layers, i, l)
	{
		cleanup_free char *n = bh_asprintf(
		    "blobs/sha256/%s", json_string_value(json_object_get(l, "digest")) + 7);
		json_array_append_new(names, json_string(n));
	}
	if (ref != NULL) {
		cleanup_free char *fam = rt_image_ref_familiar(ref);
		cleanup_free char *repo = bh_strndup(fam, (size_t)(strrchr(fam, ':') - fam));
		json_t *r = json_object_get(sv->repositories, repo);
		json_array_append_new(tags, json_string(fam));
		if (r == NULL) {
			r = json_object();
			json_object_set_new(sv->repositories, repo, r);
		}
		json_object_set_new(r, strrchr(fam, ':') + 1, json_string(cfg_hex));
	}
	cleanup_free char *cname = bh_asprintf("blobs/sha256/%s", cfg_hex);
	json_array_append_new(sv->manifest, json_pack("{ss so so}", "Config", cname, "RepoTags",
	                                              tags, "Layers", names));
}

static int add_oci(struct save *sv, const char *cfg_hex, size_t cfg_len, json_t *layers,
                   const char *ref)
{
	json_t *m, *desc;
	char hex[65];
	cleanup_free char *cdig = bh_asprintf("sha256:%s", cfg_hex), *text = NULL, *mdig = NULL;

	m = json_pack("{si ss s{ss ss sI} sO}", "schemaVersion", 2, "mediaType", MT_MANIFEST,
	              "config", "mediaType", MT_CONFIG, "digest", cdig, "size", (json_int_t)cfg_len,
	              "layers", layers);
	text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	rt_store_sha256_hex(text, strlen(text), hex);
	mdig = bh_asprintf("sha256:%s", hex);
	desc = json_pack("{ss ss sI}", "mediaType", MT_MANIFEST, "digest", mdig, "size",
	                 (json_int_t)strlen(text));
	if (ref != NULL) {
		json_object_set_new(desc, "annotations",
		                    json_pack("{ss ss}", "io.containerd.image.name", ref,
		                              "org.opencontainers.image.ref.name",
		                              strrchr(ref, ':') + 1));
	}
	json_array_append_new(sv->index, desc);
	return put_blob_mem(sv, hex, text, strlen(text));
}

/* ref is the normalised tag the user named, or NULL for an id. */
static int save_one(struct save *sv, const char *id, const char *ref)
{
	cleanup_free char *data = NULL, *text = NULL;
	json_t *config = NULL, *layers = json_array();
	cleanup_free char *before = NULL;
	size_t len = 0;
	char hex[65];
	int r = rt_store_get_blob(sv->s, id + 7, RT_STORE_MAX_JSON, &data, &len, sv->err);

	if (r == 0 && (config = json_loadb(data, len, 0, NULL)) == NULL)
		r = bh_err_set(sv->err, EIO, "image %s: bad config", id);
	if (r == 0) {
		before = json_dumps(json_object_get(config, "rootfs"), JSON_COMPACT);
		r = put_layers(sv, id, config, layers);
	}
	if (r == 0) {
		text = json_dumps(json_object_get(config, "rootfs"), JSON_COMPACT);
		if (strcmp(text, before) == 0) { /* the original bytes: the same image id */
			free(text);
			text = bh_strndup(data, len);
		} else {
			free(text);
			text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
		}
		rt_store_sha256_hex(text, strlen(text), hex);
		r = put_blob_mem(sv, hex, text, strlen(text));
	}
	if (r == 0 && sv->fmt == RT_SAVE_DOCKER)
		add_docker(sv, hex, layers, ref);
	else if (r == 0)
		r = add_oci(sv, hex, strlen(text), layers, ref);
	json_decref(layers);
	json_decref(config);
	return r < 0 ? bh_err_wrap(sv->err, "save %s", ref ? ref : id) : 0;
}

/* The normalised tag a reference names, or NULL when it names an id. */
static char *named_tag(struct rt_store *s, const char *ref, const char *id)
{
	struct bh_err ignored;
	char *n = rt_image_ref_normalize(ref, &ignored);
	json_t *index = NULL;
	const char *target;
	bool ok;

	if (n == NULL || rt_store_tags_read(s, &index, &ignored) < 0) {
		free(n);
		return NULL;
	}
	target = rt_store_tags_get(index, n);
	ok = target != NULL && strcmp(target, id) == 0;
	json_decref(index);
	if (!ok) {
		free(n);
		return NULL;
	}
	return n;
}

static int save_all(struct save *sv, char *const *refs)
{
	size_t n = 0;

	while (refs[n])
		n++;
	if (n == 0 || n > MAX_SAVE)
		return bh_err_set(sv->err, EINVAL, "save: 1 to %d images", MAX_SAVE);
	/* Every image and layer is checked before the first byte: most errors
	 * then reach the client as a status, not as a truncated stream. */
	for (size_t i = 0; i < n; i++) {
		char id[RT_IMAGE_ID_LEN];
		char **dirs = NULL;
		if (rt_image_resolve(sv->s, refs[i], id, sv->err) < 0 ||
		    rt_image_layer_dirs(sv->s, id, &dirs, sv->err) < 0)
			return bh_err_wrap(sv->err, "save %s", refs[i]);
		rt_image_strv_free(dirs);
	}
	if (put_header(sv, "blobs", 0, true) < 0 || put_header(sv, "blobs/sha256", 0, true) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char id[RT_IMAGE_ID_LEN];
		cleanup_free char *tag = NULL;
		if (rt_image_resolve(sv->s, refs[i], id, sv->err) < 0)
			return -1;
		tag = named_tag(sv->s, refs[i], id);
		if (save_one(sv, id, tag) < 0)
			return -1;
	}
	if (sv->fmt == RT_SAVE_DOCKER)
		return put_json(sv, "manifest.json", sv->manifest) < 0
		           ? -1
		           : put_json(sv, "repositories", sv->repositories);
	json_t *layout = json_pack("{ss}", "imageLayoutVersion", "1.0.0");
	json_t *index = json_pack("{si ss sO}", "schemaVersion", 2, "mediaType", MT_INDEX,
	                          "manifests", sv->index);
	int r = put_json(sv, "oci-layout", layout);
	if (r == 0)
		r = put_json(sv, "index.json", index);
	json_decref(layout);
	json_decref(index);
	return r;
}

int rt_image_save(struct rt_store *s, char *const *refs, enum rt_save_format fmt, rt_sink_fn sink,
                  void *arg, struct bh_err *err)
{
	struct save sv = {.s = s, .fmt = fmt, .err = err};
	struct rt_sink_gate gate = {.fn = sink, .arg = arg};
	struct bh_err ignored;
	int r = -1;

	sv.manifest = json_array();
	sv.repositories = json_object();
	sv.index = json_array();
	sv.tmpdir = rt_store_mkdtemp(s, "save", err);

	if (sv.tmpdir != NULL && (sv.a = rt_tar_writer_new(rt_sink_gate, &gate, err)) != NULL) {
		r = save_all(&sv, refs);
		gate.shut = r < 0;
		if (archive_write_close(sv.a) != ARCHIVE_OK && r == 0)
			r = bh_err_set(err, EIO, "save: %s", archive_error_string(sv.a));
		archive_write_free(sv.a);
	}
	if (sv.tmpdir)
		bh_rm_rf(sv.tmpdir, &ignored);
	free(sv.tmpdir);
	for (size_t i = 0; i < sv.nwritten; i++)
		free(sv.written[i]);
	free(sv.written);
	json_decref(sv.manifest);
	json_decref(sv.repositories);
	json_decref(sv.index);
	return r;
}
