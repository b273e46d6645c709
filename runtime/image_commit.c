/* berth commit: a container's overlay upper dir -> a deterministic layer
 * tar with OCI whiteouts, kept beside its unpacked copy, and a new image =
 * the parent's layers + that layer, config inherited from the parent with
 * the container's run settings, one history entry appended. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-image-archive.h"
#include "runtime/rt-image-internal.h"

static const char *const run_keys[] = {"Env",        "Cmd",    "Entrypoint",   "WorkingDir",
                                       "User",       "Labels", "ExposedPorts", "Volumes",
                                       "StopSignal", "Shell",  "OnBuild",      NULL};

void rt_image_copy_run_config(json_t *dst, json_t *src)
{
	for (size_t i = 0; run_keys[i]; i++) {
		json_t *v = json_object_get(src, run_keys[i]);
		if (v != NULL && !json_is_null(v))
			json_object_set(dst, run_keys[i], v);
		else
			json_object_del(dst, run_keys[i]);
	}
}

/* Unpacks tmpdir/layer.tar into tmpdir/root with the normal unpacker: the
 * layer dir then looks exactly like one that was loaded. */
static int unpack_kept(const char *tmpdir, uint64_t *size, struct bh_err *err)
{
	cleanup_free char *root = bh_path_join(tmpdir, "root");
	cleanup_free char *tar = bh_path_join(tmpdir, RT_LAYER_TAR);
	cleanup_close int rootfd = -1;
	struct rt_layer_limits lim;
	struct archive *a;
	int r;

	if (mkdir(root, 0755) < 0 || (rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return bh_err_sys(err, errno, "create %s", root);
	rt_layer_limits_default(&lim);
	a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, tar, 65536) != ARCHIVE_OK)
		r = bh_err_set(err, EIO, "read %s: %s", tar, archive_error_string(a));
	else
		r = rt_layer_unpack(rootfd, a, &lim, size, err);
	archive_read_free(a);
	return r;
}

static void append_layer(json_t *config, const char *diff_hex, json_t *hist)
{
	json_t *rootfs = json_object_get(config, "rootfs");
	json_t *diffs;
	cleanup_free char *d = bh_asprintf("sha256:%s", diff_hex);

	if (!json_is_object(rootfs)) {
		rootfs = json_object();
		json_object_set_new(config, "rootfs", rootfs);
	}
	json_object_set_new(rootfs, "type", json_string("layers"));
	diffs = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(diffs)) {
		diffs = json_array();
		json_object_set_new(rootfs, "diff_ids", diffs);
	}
	json_array_append_new(diffs, json_string(d));
	if (hist == NULL)
		return;
	if (!json_is_array(json_object_get(config, "history")))
		json_object_set_new(config, "history", json_array());
	json_array_append_new(json_object_get(config, "history"), hist);
}

/* Under s->lock: every layer of config is committed; the image's size. */
static int layers_ready(struct rt_store *s, json_t *config, uint64_t *total, struct bh_err *err)
{
	json_t *d;
	size_t i;

	*total = 0;
	json_array_foreach(json_object_get(json_object_get(config, "rootfs"), "diff_ids"), i, d)
	{
		char hex[65];
		uint64_t sz = 0;
		if (rt_store_digest_hex(json_string_value(d), hex) < 0 ||
		    !rt_store_layer_present(s, hex))
			return bh_err_set(err, EAGAIN, "layer %zu was removed meanwhile; retry", i);
		if (rt_store_layer_size(s, hex, &sz) == 0)
			*total += sz;
	}
	return 0;
}

static int commit_locked(struct rt_store *s, const char *tmpdir, const char *diff_hex,
                         uint64_t size, const char *text, const char *hex, const char *ref,
                         struct bh_err *err)
{
	json_t *config = json_loads(text, 0, NULL), *index = NULL;
	uint64_t total = 0;
	char id[RT_IMAGE_ID_LEN];
	int r = rt_store_layer_commit(s, tmpdir, diff_hex, size, err);

	if (r == 0)
		r = layers_ready(s, config, &total, err);
	if (r == 0)
		r = rt_store_put_blob(s, text, strlen(text), hex, err);
	if (r == 0)
		r = rt_store_image_put(s, hex, total, err);
	if (r == 0 && ref != NULL && (r = rt_store_tags_read(s, &index, err)) == 0) {
		snprintf(id, sizeof(id), "sha256:%s", hex);
		rt_store_tags_set(index, ref, id);
		r = rt_store_tags_write(s, index, err);
	}
	json_decref(index);
	json_decref(config);
	return r;
}

int rt_image_finish_layer(struct rt_store *s, const char *tmpdir, const char *diff_hex,
                          json_t *config, json_t *hist, const char *ref, char id[RT_IMAGE_ID_LEN],
                          struct bh_err *err)
{
	cleanup_free char *normalized = NULL;
	cleanup_free char *text = NULL;
	struct bh_err ignored;
	uint64_t size = 0;
	char hex[65];
	int r = 0;

	if (ref != NULL && (normalized = rt_image_ref_normalize(ref, err)) == NULL)
		r = -1;
	if (r == 0)
		r = unpack_kept(tmpdir, &size, err);
	if (r < 0) {
		json_decref(hist);
		bh_rm_rf(tmpdir, &ignored);
		return -1;
	}
	append_layer(config, diff_hex, hist);
	text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
	rt_store_sha256_hex(text, strlen(text), hex);
	pthread_mutex_lock(&s->lock);
	r = commit_locked(s, tmpdir, diff_hex, size, text, hex, normalized, err);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		bh_rm_rf(tmpdir, &ignored); /* not renamed: still ours */
		return -1;
	}
	snprintf(id, RT_IMAGE_ID_LEN, "sha256:%s", hex);
	return 0;
}

static json_t *history_entry(const char *created, const char *by, const char *comment,
                             const char *author)
{
	json_t *h = json_pack("{ss}", "created", created);

	if (by && *by)
		json_object_set_new(h, "created_by", json_string(by));
	if (comment && *comment)
		json_object_set_new(h, "comment", json_string(comment));
	if (author && *author)
		json_object_set_new(h, "author", json_string(author));
	return h;
}

/* The child config: the parent's, with the container's run settings. */
static json_t *child_config(struct rt_store *s, const struct rt_commit_opts *o, const char *created,
                            struct bh_err *err)
{
	json_t *parent = NULL, *cfg, *run;

	if (rt_image_config(s, o->parent_id, &parent, err) < 0)
		return NULL;
	cfg = json_deep_copy(parent);
	json_decref(parent);
	run = json_object_get(cfg, "config");
	if (!json_is_object(run)) {
		run = json_object();
		json_object_set_new(cfg, "config", run);
	}
	if (json_is_object(o->config))
		rt_image_copy_run_config(run, o->config);
	json_object_set_new(cfg, "created", json_string(created));
	if (o->author && *o->author)
		json_object_set_new(cfg, "author", json_string(o->author));
	else
		json_object_del(cfg, "author");
	return cfg;
}

int rt_image_commit(struct rt_store *s, const struct rt_commit_opts *o, char id[RT_IMAGE_ID_LEN],
                    struct bh_err *err)
{
	cleanup_free char *tmpdir = NULL, *tar = NULL;
	char created[40], diff_hex[65];
	struct bh_err ignored;
	uint64_t tsize = 0;
	json_t *config;
	int r;

	bh_rfc3339_now(created);
	config = child_config(s, o, created, err);
	if (config == NULL)
		return bh_err_wrap(err, "commit");
	tmpdir = rt_store_mkdtemp(s, "layer", err);
	if (tmpdir == NULL) {
		json_decref(config);
		return bh_err_wrap(err, "commit");
	}
	tar = bh_path_join(tmpdir, RT_LAYER_TAR);
	r = rt_tar_dir_to_file(o->upper_dir, RT_TAR_OVERLAY, tar, diff_hex, &tsize, err);
	if (r < 0)
		bh_rm_rf(tmpdir, &ignored);
	else
		r = rt_image_finish_layer(
		    s, tmpdir, diff_hex, config,
		    history_entry(created, o->created_by, o->comment, o->author), o->ref, id, err);
	json_decref(config);
	return r < 0 ? bh_err_wrap(err, "commit") : 0;
}
