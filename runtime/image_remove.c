/* Removing images: untagging, deleting the image record and config, and
 * deleting layers that no remaining image uses.  All under the store's
 * mutex, so a concurrent load re-checks its layers before it commits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/registry-internal.h"

/* The diff id hexes of image id, lowest first. */
static int diff_hexes(struct rt_store *s, const char *id, char ***out, struct bh_err *err)
{
	json_t *config = NULL, *d;
	json_t *diffs;
	char **v;
	size_t i;

	if (rt_image_config(s, id, &config, err) < 0)
		return -1;
	diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	v = bh_calloc(json_array_size(diffs) + 1, sizeof(*v));
	json_array_foreach(diffs, i, d)
	{
		char hex[65] = "";
		rt_store_digest_hex(json_string_value(d), hex);
		v[i] = bh_strdup(hex);
	}
	json_decref(config);
	*out = v;
	return 0;
}

static bool strv_has(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* Every diff id used by the images still present. */
static int layers_in_use(struct rt_store *s, char ***out, struct bh_err *err)
{
	char **ids = NULL, **all = bh_calloc(1, sizeof(*all));
	size_t n = 0;

	if (rt_store_image_ids(s, &ids, err) < 0) {
		free(all);
		return -1;
	}
	for (char **p = ids; *p; p++) {
		cleanup_free char *id = bh_asprintf("sha256:%s", *p);
		char **diffs = NULL;
		if (diff_hexes(s, id, &diffs, err) < 0)
			continue; /* an unreadable image cannot pin anything */
		for (char **d = diffs; *d; d++) {
			all = bh_realloc(all, (n + 2) * sizeof(*all));
			all[n++] = steal_pointer(d);
			all[n] = NULL;
		}
		rt_image_strv_free(diffs);
	}
	rt_image_strv_free(ids);
	*out = all;
	return 0;
}

static void report_add(json_t *report, const char *key, const char *value)
{
	json_array_append_new(report, json_pack("{ss}", key, value));
}

static int delete_image(struct rt_store *s, const char *id, json_t *report, struct bh_err *err)
{
	char **diffs = NULL, **used = NULL;
	int r;

	if (diff_hexes(s, id, &diffs, err) < 0)
		return -1;
	r = rt_store_image_del(s, id + strlen("sha256:"), err);
	if (r == 0) {
		report_add(report, "Deleted", id);
		r = layers_in_use(s, &used, err);
	}
	for (char **d = diffs; r == 0 && *d; d++) {
		cleanup_free char *layer = bh_asprintf("sha256:%s", *d);
		/* While a pull holds the store its "already present" layers must stay;
		 * orphans are removed by the next image prune (image_gc.c). */
		if (**d == '\0' || strv_has(used, *d) || !rt_store_layer_present(s, *d) ||
		    s->holds > 0)
			continue;
		r = rt_store_layer_remove(s, *d, err);
		if (r == 0)
			report_add(report, "Deleted", layer);
	}
	/* its manifest and layer blobs, unless another image names them */
	if (r == 0)
		r = reg_gc_sweep(s, NULL, err);
	rt_image_strv_free(diffs);
	rt_image_strv_free(used);
	return r;
}

static void untag(json_t *index, const char *ref, json_t *report)
{
	cleanup_free char *familiar = rt_image_ref_familiar(ref);

	rt_store_tags_del(index, ref);
	report_add(report, "Untagged", familiar);
}

static int remove_locked(struct rt_store *s, const char *ref, const char *id, bool force,
                         json_t *index, json_t *report, struct bh_err *err)
{
	struct bh_err ignored;
	cleanup_free char *normalized = rt_image_ref_normalize(ref, &ignored);
	const char *target = normalized ? rt_store_tags_get(index, normalized) : NULL;
	char **tags = rt_store_tags_of(index, id);
	size_t ntags = 0;
	int r;

	while (tags[ntags])
		ntags++;
	if (target && strcmp(target, id) == 0) {
		untag(index, normalized, report);
		ntags--;
	} else if (ntags > 1 && !force) {
		rt_image_strv_free(tags);
		return bh_err_set(err, EBUSY,
		                  "conflict: unable to delete %.12s (must be forced) - image is "
		                  "referenced in multiple repositories",
		                  id + 7);
	} else {
		for (char **t = tags; *t; t++)
			untag(index, *t, report);
		ntags = 0;
	}
	rt_image_strv_free(tags);
	r = rt_store_tags_write(s, index, err);
	if (r == 0 && ntags == 0)
		r = delete_image(s, id, report, err);
	return r;
}

int rt_image_remove(struct rt_store *s, const char *ref, bool force, json_t **report,
                    struct bh_err *err)
{
	char id[RT_IMAGE_ID_LEN];
	json_t *index = NULL, *rep = json_array();
	int r;

	if (rt_image_resolve(s, ref, id, err) < 0) {
		json_decref(rep);
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	r = rt_store_tags_read(s, &index, err);
	if (r == 0)
		r = remove_locked(s, ref, id, force, index, rep, err);
	pthread_mutex_unlock(&s->lock);
	json_decref(index);
	if (r == 0 && report)
		*report = json_incref(rep);
	json_decref(rep);
	return r < 0 ? bh_err_wrap(err, "remove image %s", ref) : 0;
}
