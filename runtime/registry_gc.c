/* Garbage of the blob store: blobs/sha256/<hex> (configs, manifests,
 * compressed or kept layer blobs) and distribution records that no present
 * image references.  An image references its config blob (its id), and,
 * through its distribution record, the manifest and every blob that
 * manifest names.  Swept by image prune and by rmi (image_gc.c,
 * image_remove.c) under the store's mutex, and never while a writer holds
 * the store (rt_store_hold): a pull stores its blobs before its image. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/registry-internal.h"

struct strset {
	char **v;
	size_t n;
};

static void set_add(struct strset *s, const char *hex)
{
	s->v = bh_realloc(s->v, (s->n + 2) * sizeof(*s->v));
	s->v[s->n++] = bh_strdup(hex);
	s->v[s->n] = NULL;
}

static bool set_has(const struct strset *s, const char *hex)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], hex) == 0)
			return true;
	return false;
}

/* The manifest of image hex's record and every blob it names. */
static void add_record_blobs(struct rt_store *st, const char *hex, struct strset *used)
{
	cleanup_free char *data = NULL;
	struct rt_reg_desc cfg, *layers = NULL;
	json_t *rec = NULL, *man = NULL;
	struct bh_err e;
	char mhex[65];
	size_t len = 0, n = 0;

	if (reg_record_read(st, hex, &rec, &e) < 0)
		return;
	if (rt_store_digest_hex(json_string_value(json_object_get(rec, "manifest")), mhex) == 0) {
		set_add(used, mhex);
		if (rt_store_get_blob(st, mhex, RT_REG_MAX_MANIFEST, &data, &len, &e) == 0 &&
		    (man = json_loadb(data, len, 0, NULL)) != NULL &&
		    rt_reg_manifest_parse(man, &cfg, &layers, &n, &e) == 0) {
			set_add(used, cfg.hex);
			for (size_t i = 0; i < n; i++)
				set_add(used, layers[i].hex);
		}
	}
	free(layers);
	json_decref(man);
	json_decref(rec);
}

static int blobs_in_use(struct rt_store *st, struct strset *used, struct bh_err *err)
{
	char **ids = NULL;

	if (rt_store_image_ids(st, &ids, err) < 0)
		return -1;
	for (char **p = ids; *p; p++) {
		set_add(used, *p);
		add_record_blobs(st, *p, used);
	}
	rt_image_strv_free(ids);
	return 0;
}

typedef int (*orphan_fn)(void *arg, const char *path, const char *hex, struct bh_err *err);

/* Calls fn for each blob no image uses and each record of an absent image. */
static int each_orphan(struct rt_store *st, orphan_fn fn, void *arg, struct bh_err *err)
{
	struct strset used = {0};
	const char *dirs[] = {"blobs/sha256", "distribution/sha256"};
	int r = blobs_in_use(st, &used, err);

	for (size_t k = 0; r == 0 && k < 2; k++) {
		cleanup_free char *dir = bh_path_join(rt_store_path(st), dirs[k]);
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && r == 0 && (de = readdir(d)) != NULL) {
			char hex[65];
			snprintf(hex, sizeof(hex), "%.64s", de->d_name);
			size_t len = strlen(de->d_name);
			bool name_ok =
			    k == 0 ? len == 64 : len == 69 && strcmp(de->d_name + 64, ".json") == 0;
			if (!rt_store_is_hex64(hex) || !name_ok ||
			    (k == 0 ? set_has(&used, hex) : rt_store_image_present(st, hex)))
				continue;
			cleanup_free char *path = bh_path_join(dir, de->d_name);
			r = fn(arg, path, hex, err);
		}
		if (d)
			closedir(d);
	}
	rt_image_strv_free(used.v);
	return r;
}

static int remove_orphan(void *arg, const char *path, const char *hex, struct bh_err *err)
{
	uint64_t *reclaimed = arg;
	struct stat sb;

	(void)hex;
	/* a blob hard-linked from a kept layer.tar frees nothing by itself */
	if (stat(path, &sb) == 0 && reclaimed && sb.st_nlink == 1)
		*reclaimed += (uint64_t)sb.st_size;
	if (unlink(path) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "remove %s", path);
	return 0;
}

int reg_gc_sweep(struct rt_store *st, uint64_t *reclaimed, struct bh_err *err)
{
	if (st->holds > 0)
		return 0;
	return each_orphan(st, remove_orphan, reclaimed, err);
}

static int report_orphan(void *arg, const char *path, const char *hex, struct bh_err *err)
{
	cleanup_free char *line =
	    bh_asprintf("orphan %s (no image references sha256:%.12s)", path, hex);

	(void)err;
	json_array_append_new(arg, json_string(line));
	return 0;
}

void reg_gc_check(struct rt_store *st, json_t *problems)
{
	struct bh_err e;

	if (st->holds > 0)
		return; /* a pull's blobs precede its image */
	if (each_orphan(st, report_orphan, problems, &e) < 0)
		json_array_append_new(problems, json_string(e.msg));
}
