/* Push of images that were loaded, imported or committed: they have no
 * registry manifest, so one is built here, once, and kept like a pulled one
 * (manifest blob + distribution record), so RepoDigests appear after the
 * push and a second push sends identical bytes and the identical digest.
 *
 * Choice: layers go up UNCOMPRESSED, as Docker schema 2's
 * application/vnd.docker.image.rootfs.diff.tar.  The kept layer.tar (its
 * sha256 is the diff id) is hard-linked into blobs/sha256/<diff id>: no
 * recompression, no dependency on a compressor's output staying byte-stable
 * across zlib versions, and the blob digest equals the diff id, which
 * every puller can verify.  The cost is transfer size (no gzip).
 *
 * A layer without a kept tar (the layer of a pulled parent under a
 * committed image) is sent as the compressed blob its pull kept, found
 * through the distribution records. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/registry-internal.h"
#include "runtime/rt-image-archive.h"

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_TAR    "application/vnd.docker.image.rootfs.diff.tar"

static json_t *descriptor(const char *mtype, int64_t size, const char *hex)
{
	cleanup_free char *digest = bh_asprintf("sha256:%s", hex);

	return json_pack("{ss sI ss}", "mediaType", mtype, "size", (json_int_t)size, "digest",
	                 digest);
}

/* layers/sha256/<hex>/layer.tar -> blobs/sha256/<hex> (a hard link: same
 * bytes, same digest). */
static int kept_tar_blob(struct rt_store *st, const char *hex, json_t **desc, struct bh_err *err)
{
	cleanup_free char *tar =
	    bh_asprintf("%s/layers/sha256/%s/%s", rt_store_path(st), hex, RT_LAYER_TAR);
	cleanup_free char *blob = reg_blob_path(st, hex);
	struct stat sb;

	if (stat(tar, &sb) < 0)
		return bh_err_sys(err, errno, "stat %s", tar);
	if (link(tar, blob) < 0 && errno != EEXIST)
		return bh_err_sys(err, errno, "link %s", blob);
	*desc = descriptor(MT_DOCKER_TAR, (int64_t)sb.st_size, hex);
	return 0;
}

/* The layer descriptor the manifest of pulled image rec_hex gives diff id
 * hex, when its blob is still in the store; 0 when found, -1 if not. */
static int pulled_desc(struct rt_store *st, const char *rec_hex, const char *hex, json_t **desc)
{
	cleanup_free char *mdata = NULL;
	struct rt_reg_desc cfg, *layers = NULL;
	json_t *rec = NULL, *config = NULL, *man = NULL, *diffs;
	cleanup_free char *id = bh_asprintf("sha256:%s", rec_hex);
	struct bh_err e;
	char mhex[65];
	size_t n = 0, mlen = 0, i;
	int r = -1;

	if (reg_record_read(st, rec_hex, &rec, &e) < 0)
		return -1;
	if (rt_store_digest_hex(json_string_value(json_object_get(rec, "manifest")), mhex) == 0 &&
	    rt_store_get_blob(st, mhex, RT_REG_MAX_MANIFEST, &mdata, &mlen, &e) == 0 &&
	    (man = json_loadb(mdata, mlen, 0, NULL)) != NULL &&
	    rt_reg_manifest_parse(man, &cfg, &layers, &n, &e) == 0 &&
	    rt_image_config(st, id, &config, &e) == 0) {
		diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
		for (i = 0; r < 0 && i < n && i < json_array_size(diffs); i++) {
			cleanup_free char *blob = reg_blob_path(st, layers[i].hex);
			char dh[65];
			if (rt_store_digest_hex(json_string_value(json_array_get(diffs, i)), dh) ==
			        0 &&
			    strcmp(dh, hex) == 0 && bh_path_exists(blob)) {
				*desc =
				    descriptor(layers[i].media_type, layers[i].size, layers[i].hex);
				r = 0;
			}
		}
	}
	free(layers);
	json_decref(config);
	json_decref(man);
	json_decref(rec);
	return r;
}

static int find_pulled_blob(struct rt_store *st, const char *hex, json_t **desc, struct bh_err *err)
{
	cleanup_free char *dir = bh_asprintf("%s/distribution/sha256", rt_store_path(st));
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = -1;

	while (d && r < 0 && (de = readdir(d)) != NULL) {
		char rec_hex[65];
		if (strlen(de->d_name) != 64 + 5 || strcmp(de->d_name + 64, ".json") != 0)
			continue;
		snprintf(rec_hex, sizeof(rec_hex), "%.64s", de->d_name);
		if (rt_store_is_hex64(rec_hex))
			r = pulled_desc(st, rec_hex, hex, desc);
	}
	if (d)
		closedir(d);
	if (r < 0)
		bh_err_set(err, ENOENT, "layer sha256:%s has neither a kept tar nor a pulled blob",
		           hex);
	return r;
}

static int layer_desc(struct rt_store *st, const char *hex, json_t **desc, struct bh_err *err)
{
	cleanup_free char *tar =
	    bh_asprintf("%s/layers/sha256/%s/%s", rt_store_path(st), hex, RT_LAYER_TAR);

	if (bh_path_exists(tar))
		return kept_tar_blob(st, hex, desc, err);
	return find_pulled_blob(st, hex, desc, err);
}

/* The manifest document of image id (its config blob is clen bytes). */
static int build_doc(struct rt_store *st, const char *id, size_t clen, json_t *config, json_t **out,
                     struct bh_err *err)
{
	json_t *diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	json_t *layers = json_array(), *d, *desc;
	size_t i;

	json_array_foreach(diffs, i, d)
	{
		char hex[65];
		int r = rt_store_digest_hex(json_string_value(d), hex) < 0
		            ? bh_err_set(err, EINVAL, "bad diff id in image %s", id)
		            : layer_desc(st, hex, &desc, err);
		if (r < 0) {
			json_decref(layers);
			return -1;
		}
		json_array_append_new(layers, desc);
	}
	*out = json_pack("{si ss so so}", "schemaVersion", 2, "mediaType", RT_MT_DOCKER_MANIFEST,
	                 "config", descriptor(MT_DOCKER_CONFIG, (int64_t)clen, id + 7), "layers",
	                 layers);
	return 0;
}

static int build_locked(struct rt_store *st, const char *id, struct bh_err *err)
{
	cleanup_free char *cdata = NULL;
	cleanup_free char *text = NULL;
	cleanup_free char *mdigest = NULL;
	json_t *config = NULL, *doc = NULL;
	size_t clen = 0;
	char mhex[65];
	int r;

	if (rt_store_get_blob(st, id + 7, RT_REG_MAX_MANIFEST, &cdata, &clen, err) < 0)
		return bh_err_wrap(err, "manifest for %.19s", id);
	config = json_loadb(cdata, clen, 0, NULL);
	r = config ? build_doc(st, id, clen, config, &doc, err)
	           : bh_err_set(err, EINVAL, "config of %s is not JSON", id);
	json_decref(config);
	if (r < 0)
		return bh_err_wrap(err, "manifest for %.19s", id);
	/* jansson keeps insertion order: the same image gives the same bytes. */
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	rt_store_sha256_hex(text, strlen(text), mhex);
	mdigest = bh_asprintf("sha256:%s", mhex);
	r = rt_store_put_blob(st, text, strlen(text), mhex, err);
	if (r == 0)
		r = reg_record_update(st, id + 7, mdigest, RT_MT_DOCKER_MANIFEST, NULL, NULL, err);
	return r < 0 ? bh_err_wrap(err, "manifest for %.19s", id) : 0;
}

/* Under the store's mutex from the first blob link to the record: garbage
 * collection (image_gc.c) never sees a linked layer blob unreferenced. */
int reg_manifest_build(struct rt_store *st, const char *id, struct bh_err *err)
{
	int r;

	pthread_mutex_lock(&st->lock);
	r = build_locked(st, id, err);
	pthread_mutex_unlock(&st->lock);
	return r;
}
