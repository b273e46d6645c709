/* What the registry client keeps in the image store: the distribution
 * record of an image (its manifest digest, RepoDigests, source repositories)
 * and layers unpacked from compressed blobs with their diff id verified. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/registry-internal.h"

#define MAX_RECORD  (1u << 20)
#define MAX_ENTRIES 64 /* repo digests or sources kept per image */

char *reg_blob_path(struct rt_store *st, const char *hex)
{
	return bh_asprintf("%s/blobs/sha256/%s", rt_store_path(st), hex);
}

static char *record_path(struct rt_store *st, const char *hex)
{
	return bh_asprintf("%s/distribution/sha256/%s.json", rt_store_path(st), hex);
}

int reg_record_read(struct rt_store *st, const char *hex, json_t **rec, struct bh_err *err)
{
	cleanup_free char *path = record_path(st, hex);
	cleanup_free char *text = NULL;

	if (!bh_path_exists(path))
		return bh_err_set(err, ENOENT, "no registry record for image sha256:%.12s", hex);
	if (bh_read_file(path, MAX_RECORD, &text, NULL, err) < 0)
		return -1;
	*rec = json_loads(text, 0, NULL);
	if (!json_is_object(*rec)) {
		json_decref(*rec);
		return bh_err_set(err, EIO, "%s: not a JSON object", path);
	}
	return 0;
}

/* Adds s to the array key of rec unless present; the newest goes first. */
static void add_unique(json_t *rec, const char *key, const char *s)
{
	json_t *arr = json_object_get(rec, key), *v;
	size_t i;

	if (s == NULL)
		return;
	if (!json_is_array(arr)) {
		arr = json_array();
		json_object_set_new(rec, key, arr);
	}
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return;
	}
	json_array_insert_new(arr, 0, json_string(s));
	while (json_array_size(arr) > MAX_ENTRIES)
		json_array_remove(arr, json_array_size(arr) - 1);
}

int reg_record_update(struct rt_store *st, const char *hex, const char *manifest_digest,
                      const char *media_type, const char *repo_digest, const char *source,
                      struct bh_err *err)
{
	cleanup_free char *dir = bh_asprintf("%s/distribution/sha256", rt_store_path(st));
	cleanup_free char *path = record_path(st, hex);
	cleanup_free char *text = NULL;
	json_t *rec = NULL;
	struct bh_err ignored;
	int r;

	if (bh_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (reg_record_read(st, hex, &rec, &ignored) < 0)
		rec = json_object();
	if (manifest_digest) {
		json_object_set_new(rec, "manifest", json_string(manifest_digest));
		json_object_set_new(rec, "mediaType", json_string(media_type));
	}
	add_unique(rec, "repoDigests", repo_digest);
	add_unique(rec, "sources", source);
	text = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	r = bh_write_file_atomic(path, text, strlen(text), 0600, err);
	return r;
}

json_t *rt_registry_repo_digests(struct rt_store *st, const char *id)
{
	struct bh_err ignored;
	json_t *rec = NULL, *out, *arr, *v;
	size_t i;

	if (!bh_str_has_prefix(id, "sha256:") || reg_record_read(st, id + 7, &rec, &ignored) < 0)
		return json_array();
	arr = json_object_get(rec, "repoDigests");
	out = json_array();
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v)) {
			char *f = rt_image_ref_familiar(json_string_value(v));
			json_array_append_new(out, json_string(f));
			free(f);
		}
	}
	json_decref(rec);
	return out;
}

/* ---- layers ------------------------------------------------------------------------- */

int reg_layer_unpack(struct rt_store *st, const char *file, const char *diff_hex, char **tmpdir,
                     uint64_t *size, struct bh_err *err)
{
	cleanup_free char *dir = rt_store_mkdtemp(st, "layer", err);
	cleanup_free char *root = NULL;
	cleanup_close int rootfd = -1;
	struct bh_err ignored;

	if (dir == NULL)
		return -1;
	root = bh_path_join(dir, "root");
	if (mkdir(root, 0755) < 0 ||
	    (rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		bh_err_sys(err, errno, "create %s", root);
		bh_rm_rf(dir, &ignored);
		return -1;
	}
	if (rt_layer_unpack_verified(file, rootfd, diff_hex, NULL, size, err) < 0) {
		bh_rm_rf(dir, &ignored);
		return -1;
	}
	*tmpdir = steal_pointer(&dir);
	return 0;
}
