/* Image garbage and checks: history, untag-all (rmi -f of an image in use),
 * prune (dangling or unused images, then layer dirs, blobs and registry
 * records no image references: registry_gc.c)
 * and the store consistency check.  Changes run under the store's mutex:
 * a load or pull re-checks its known layers under the same mutex before it
 * commits (layers_still_present in image_load.c), so pruning never
 * removes a layer an in-flight load will reference. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/rt-image-archive.h"
#include "runtime/registry-internal.h"
#include "runtime/rt-image-internal.h"

static bool strv_has(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

static int64_t created_secs(const char *s)
{
	struct tm tm = {0};

	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return (int64_t)timegm(&tm);
}

/* ---- history ---------------------------------------------------------------- */

static json_t *history_row(const char *id, json_t *h, json_t *tags, int64_t size)
{
	const char *by = json_string_value(json_object_get(h, "created_by"));
	const char *comment = json_string_value(json_object_get(h, "comment"));

	return json_pack("{ss sI ss sO sI ss}", "Id", id ? id : "<missing>", "Created",
	                 (json_int_t)created_secs(json_string_value(json_object_get(h, "created"))),
	                 "CreatedBy", by ? by : "", "Tags", tags ? tags : json_null(), "Size",
	                 (json_int_t)size, "Comment", comment ? comment : "");
}

static int64_t layer_size(struct rt_store *s, json_t *diffs, size_t i)
{
	char hex[65];
	uint64_t sz = 0;

	if (rt_store_digest_hex(json_string_value(json_array_get(diffs, i)), hex) < 0 ||
	    rt_store_layer_size(s, hex, &sz) < 0)
		return 0;
	return (int64_t)sz;
}

/* Without a history array: one row per layer. */
static json_t *synth_history(json_t *config, size_t nlayers)
{
	json_t *h = json_array();

	for (size_t i = 0; i < nlayers; i++)
		json_array_append_new(h, json_pack("{sO}", "created",
		                                   json_object_get(config, "created")
		                                       ? json_object_get(config, "created")
		                                       : json_null()));
	return h;
}

int rt_image_history(struct rt_store *s, const char *id, json_t **out, struct bh_err *err)
{
	json_t *config = NULL, *index = NULL, *hist, *h, *rows = json_array(), *tags = json_array();
	json_t *diffs;
	size_t i, layer;
	char **refs;

	if (rt_image_config(s, id, &config, err) < 0 || rt_store_tags_read(s, &index, err) < 0) {
		json_decref(config);
		json_decref(rows);
		json_decref(tags);
		return bh_err_wrap(err, "history %s", id);
	}
	refs = rt_store_tags_of(index, id);
	for (char **r = refs; *r; r++) {
		cleanup_free char *fam = rt_image_ref_familiar(*r);
		json_array_append_new(tags, json_string(fam));
	}
	rt_image_strv_free(refs);
	diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	hist = json_object_get(config, "history");
	hist =
	    json_is_array(hist) ? json_incref(hist) : synth_history(config, json_array_size(diffs));
	layer = 0;
	json_array_foreach(hist, i, h)
	{
		bool empty = json_is_true(json_object_get(h, "empty_layer"));
		int64_t size = empty ? 0 : layer_size(s, diffs, layer++);
		json_array_insert_new(rows, 0, history_row(NULL, h, NULL, size));
	}
	if (json_array_size(rows) > 0) {
		json_object_set_new(json_array_get(rows, 0), "Id", json_string(id));
		json_object_set(json_array_get(rows, 0), "Tags", tags);
	}
	json_decref(tags);
	json_decref(hist);
	json_decref(index);
	json_decref(config);
	*out = rows;
	return 0;
}

/* ---- untag, prune ----------------------------------------------------------------- */

int rt_image_untag_all(struct rt_store *s, const char *id, json_t *report, struct bh_err *err)
{
	json_t *index = NULL;
	char **tags;
	int r;

	pthread_mutex_lock(&s->lock);
	r = rt_store_tags_read(s, &index, err);
	if (r == 0) {
		tags = rt_store_tags_of(index, id);
		for (char **t = tags; *t; t++) {
			cleanup_free char *fam = rt_image_ref_familiar(*t);
			rt_store_tags_del(index, *t);
			json_array_append_new(report, json_pack("{ss}", "Untagged", fam));
		}
		rt_image_strv_free(tags);
		r = rt_store_tags_write(s, index, err);
	}
	pthread_mutex_unlock(&s->lock);
	json_decref(index);
	return r;
}

/* Every diff id hex referenced by a present image. */
static char **referenced_layers(struct rt_store *s)
{
	char **ids = NULL, **all = bh_calloc(1, sizeof(*all));
	size_t n = 0;
	struct bh_err e;

	if (rt_store_image_ids(s, &ids, &e) < 0)
		return all;
	for (char **p = ids; *p; p++) {
		cleanup_free char *id = bh_asprintf("sha256:%s", *p);
		json_t *config = NULL, *d;
		size_t i;
		if (rt_image_config(s, id, &config, &e) < 0)
			continue;
		json_array_foreach(json_object_get(json_object_get(config, "rootfs"), "diff_ids"),
		                   i, d)
		{
			char hex[65];
			if (rt_store_digest_hex(json_string_value(d), hex) < 0)
				continue;
			all = bh_realloc(all, (n + 2) * sizeof(*all));
			all[n++] = bh_strdup(hex);
			all[n] = NULL;
		}
		json_decref(config);
	}
	rt_image_strv_free(ids);
	return all;
}

void rt_store_hold(struct rt_store *s)
{
	pthread_mutex_lock(&s->lock);
	s->holds++;
	pthread_mutex_unlock(&s->lock);
}

void rt_store_release(struct rt_store *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->holds > 0)
		s->holds--;
	pthread_mutex_unlock(&s->lock);
}

/* Under s->lock: committed layer dirs no image references.  Skipped while
 * a pull holds the store: its layers are committed before its image. */
static int sweep_layers(struct rt_store *s, json_t *deleted, uint64_t *reclaimed,
                        struct bh_err *err)
{
	cleanup_free char *dir = bh_asprintf("%s/layers/sha256", rt_store_path(s));
	char **used = referenced_layers(s);
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (s->holds > 0) {
		if (d != NULL)
			closedir(d);
		rt_image_strv_free(used);
		return 0;
	}
	if (d == NULL) {
		rt_image_strv_free(used);
		return bh_err_sys(err, errno, "open %s", dir);
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		uint64_t sz = 0;
		if (!rt_store_is_hex64(de->d_name) || strv_has(used, de->d_name) ||
		    !rt_store_layer_present(s, de->d_name))
			continue;
		if (rt_store_layer_size(s, de->d_name, &sz) == 0)
			*reclaimed += sz;
		r = rt_store_layer_remove(s, de->d_name, err);
		if (r == 0) {
			cleanup_free char *l = bh_asprintf("sha256:%s", de->d_name);
			json_array_append_new(deleted, json_pack("{ss}", "Deleted", l));
		}
	}
	closedir(d);
	rt_image_strv_free(used);
	return r;
}

static bool prunable(json_t *index, const char *id, bool all, char *const *keep)
{
	char **tags;
	bool dangling;

	if (strv_has(keep, id))
		return false;
	tags = rt_store_tags_of(index, id);
	dangling = tags[0] == NULL;
	rt_image_strv_free(tags);
	return all || dangling;
}

/* Under s->lock. */
static int prune_locked(struct rt_store *s, bool all, char *const *keep, json_t *deleted,
                        uint64_t *reclaimed, struct bh_err *err)
{
	char **ids = NULL;
	json_t *index = NULL;
	int r = rt_store_tags_read(s, &index, err);

	if (r == 0)
		r = rt_store_image_ids(s, &ids, err);
	for (char **p = ids; r == 0 && p && *p; p++) {
		cleanup_free char *id = bh_asprintf("sha256:%s", *p);
		char **tags;
		if (!prunable(index, id, all, keep))
			continue;
		tags = rt_store_tags_of(index, id);
		for (char **t = tags; *t; t++) {
			cleanup_free char *fam = rt_image_ref_familiar(*t);
			rt_store_tags_del(index, *t);
			json_array_append_new(deleted, json_pack("{ss}", "Untagged", fam));
		}
		rt_image_strv_free(tags);
		r = rt_store_tags_write(s, index, err);
		if (r == 0)
			r = rt_store_image_del(s, *p, err);
		if (r == 0)
			json_array_append_new(deleted, json_pack("{ss}", "Deleted", id));
	}
	if (r == 0)
		r = sweep_layers(s, deleted, reclaimed, err);
	if (r == 0)
		r = reg_gc_sweep(s, reclaimed, err); /* blobs and registry records */
	rt_image_strv_free(ids);
	json_decref(index);
	return r;
}

int rt_image_prune(struct rt_store *s, bool all, char *const *keep, json_t **out,
                   struct bh_err *err)
{
	json_t *deleted = json_array();
	uint64_t reclaimed = 0;
	int r;

	pthread_mutex_lock(&s->lock);
	r = prune_locked(s, all, keep, deleted, &reclaimed, err);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		json_decref(deleted);
		return bh_err_wrap(err, "prune images");
	}
	*out =
	    json_pack("{so sI}", "ImagesDeleted", deleted, "SpaceReclaimed", (json_int_t)reclaimed);
	return 0;
}

/* ---- check -------------------------------------------------------------------- */

static void problem(json_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(json_t *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_array_append_new(p, json_string(line));
}

static void check_image(struct rt_store *s, const char *hex, json_t *p)
{
	cleanup_free char *id = bh_asprintf("sha256:%s", hex);
	json_t *config = NULL, *d;
	struct bh_err e;
	size_t i;

	if (rt_image_config(s, id, &config, &e) < 0) {
		problem(p, "image %s: %s", id, e.msg);
		return;
	}
	json_array_foreach(json_object_get(json_object_get(config, "rootfs"), "diff_ids"), i, d)
	{
		char dh[65];
		if (rt_store_digest_hex(json_string_value(d), dh) < 0)
			problem(p, "image %s: bad diff_id %s", id, json_string_value(d));
		else if (!rt_store_layer_present(s, dh))
			problem(p, "image %s: layer sha256:%s not committed", id, dh);
	}
	json_decref(config);
}

static void check_tags(struct rt_store *s, json_t *index, json_t *p)
{
	const char *repo, *ref;
	json_t *tags, *v;
	char hex[65];

	json_object_foreach(json_object_get(index, "Repositories"), repo, tags)
	{
		json_object_foreach(tags, ref, v)
		{
			if (rt_store_digest_hex(json_string_value(v), hex) < 0 ||
			    !rt_store_image_present(s, hex))
				problem(p, "tag %s points to missing image %s", ref,
				        json_string_value(v));
		}
	}
}

static void check_dir(const char *dir, bool only_tmp_files, bool markers, json_t *p)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL) {
		problem(p, "cannot open %s", dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		cleanup_free char *path = bh_path_join(dir, de->d_name);
		cleanup_free char *marker = bh_path_join(path, "committed");
		if (de->d_name[0] == '.')
			continue;
		if (!only_tmp_files && !markers)
			problem(p, "leftover temp entry %s", path);
		else if (strstr(de->d_name, ".tmp-") != NULL)
			problem(p, "leftover temp file %s", path);
		else if (markers && !bh_path_exists(marker))
			problem(p, "uncommitted layer dir %s", path);
	}
	closedir(d);
}

int rt_store_check(struct rt_store *s, json_t **problems, struct bh_err *err)
{
	const char *root = rt_store_path(s);
	cleanup_free char *tmp = bh_path_join(root, "tmp");
	cleanup_free char *blobs = bh_path_join(root, "blobs/sha256");
	cleanup_free char *imagedb = bh_path_join(root, "imagedb/sha256");
	cleanup_free char *layers = bh_path_join(root, "layers/sha256");
	json_t *p = json_array(), *index = NULL;
	char **ids = NULL;

	pthread_mutex_lock(&s->lock);
	if (rt_store_tags_read(s, &index, err) == 0) {
		check_tags(s, index, p);
		json_decref(index);
	} else {
		problem(p, "tag index: %s", err->msg);
	}
	if (rt_store_image_ids(s, &ids, err) == 0)
		for (char **h = ids; *h; h++)
			check_image(s, *h, p);
	rt_image_strv_free(ids);
	check_dir(tmp, false, false, p);
	check_dir(blobs, true, false, p);
	check_dir(imagedb, true, false, p);
	check_dir(layers, true, true, p);
	reg_gc_check(s, p);
	pthread_mutex_unlock(&s->lock);
	*problems = p;
	return 0;
}
