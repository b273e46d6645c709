/* What the registry client keeps in the image store: the distribution
 * record of an image (its manifest digest, RepoDigests, source repositories)
 * and layers unpacked from compressed blobs with their diff id verified. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/registry-internal.h"

#define READ_BLOCK  65536
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

/* The decompressed stream passes through here on its way to the tar
 * reader: one pass hashes (diff id) and unpacks. */
struct hashed {
	struct archive *raw;
	struct rt_sha256 *h;
	uint64_t n, max;
	char buf[READ_BLOCK];
};

static la_ssize_t hashed_read(struct archive *a, void *cd, const void **buf)
{
	struct hashed *x = cd;
	la_ssize_t r = archive_read_data(x->raw, x->buf, sizeof(x->buf));

	if (r < 0) {
		archive_set_error(a, EIO, "%s", archive_error_string(x->raw));
		return -1;
	}
	x->n += (uint64_t)r;
	if (x->n > x->max) {
		/* decompression bomb: the limit counts decompressed bytes */
		archive_set_error(a, EFBIG, "decompressed layer larger than %llu bytes",
		                  (unsigned long long)x->max);
		return -1;
	}
	rt_store_sha256_update(x->h, x->buf, (size_t)r);
	*buf = x->buf;
	return r;
}

static int unpack_stream(struct hashed *x, int rootfd, uint64_t *size, struct bh_err *err)
{
	struct archive *tar = archive_read_new();
	struct rt_layer_limits lim;
	const void *p;
	la_ssize_t n;
	int r;

	rt_layer_limits_default(&lim);
	x->max = lim.max_bytes + (1ULL << 30); /* contents plus tar headers */
	archive_read_support_format_tar(tar);
	if (archive_read_open(tar, x, NULL, hashed_read, NULL) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "layer: %s", archive_error_string(tar));
	else
		r = rt_layer_unpack(rootfd, tar, &lim, size, err);
	archive_read_free(tar);
	/* Hash the tar's trailing padding too: the diff id covers every byte. */
	while (r == 0 && (n = hashed_read(x->raw, x, &p)) > 0)
		;
	if (r == 0 && n < 0)
		r = bh_err_set(err, EIO, "layer: %s", archive_error_string(x->raw));
	return r;
}

static int unpack_file(const char *file, int rootfd, const char *diff_hex, uint64_t *size,
                       struct bh_err *err)
{
	struct hashed *x = bh_calloc(1, sizeof(*x));
	struct archive_entry *e;
	char got[65];
	int r;

	x->raw = archive_read_new();
	x->h = rt_store_sha256_new();
	archive_read_support_filter_all(x->raw);
	archive_read_support_format_raw(x->raw);
	if (archive_read_open_filename(x->raw, file, READ_BLOCK) != ARCHIVE_OK ||
	    archive_read_next_header(x->raw, &e) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "layer: %s", archive_error_string(x->raw));
	else
		r = unpack_stream(x, rootfd, size, err);
	rt_store_sha256_final(x->h, got);
	archive_read_free(x->raw);
	free(x);
	if (r == 0 && strcmp(got, diff_hex) != 0)
		r = bh_err_set(err, EINVAL, "content has diff id sha256:%s, config says sha256:%s",
		               got, diff_hex);
	return r;
}

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
	if (unpack_file(file, rootfd, diff_hex, size, err) < 0) {
		bh_rm_rf(dir, &ignored);
		return -1;
	}
	*tmpdir = steal_pointer(&dir);
	return 0;
}
