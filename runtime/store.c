/* The content-addressed image store under DATA_ROOT/image: blobs by sha256,
 * the imagedb, unpacked layers and the tag index.  Everything appears by an
 * atomic rename; the mutex serialises read-modify-write of the tag index. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "runtime/rt-image-internal.h"
#include "runtime/registry-internal.h"

#define MARKER "committed"

struct rt_sha256 {
	EVP_MD_CTX *ctx;
};

struct rt_sha256 *rt_store_sha256_new(void)
{
	struct rt_sha256 *h = bh_calloc(1, sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		abort(); /* allocation failure, the house rule */
	return h;
}

void rt_store_sha256_update(struct rt_sha256 *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
		abort();
}

void rt_store_sha256_final(struct rt_sha256 *h, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != sizeof(md))
		abort();
	bh_hex(md, sizeof(md), hex);
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void rt_store_sha256_hex(const void *data, size_t len, char hex[65])
{
	struct rt_sha256 *h = rt_store_sha256_new();

	rt_store_sha256_update(h, data, len);
	rt_store_sha256_final(h, hex);
}

bool rt_store_is_hex64(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 64 && s[64] == '\0';
}

int rt_store_digest_hex(const char *digest, char hex[65])
{
	if (digest == NULL || !bh_str_has_prefix(digest, "sha256:") ||
	    !rt_store_is_hex64(digest + 7))
		return -1;
	memcpy(hex, digest + 7, 65);
	return 0;
}

const char *rt_store_path(const struct rt_store *s)
{
	return s->root;
}

static char *sub(struct rt_store *s, const char *a, const char *b)
{
	return b ? bh_asprintf("%s/%s/%s", s->root, a, b) : bh_asprintf("%s/%s", s->root, a);
}

/* Temp files of an interrupted bh_write_file_atomic ("<name>.tmp-XXXXXX"). */
static void sweep_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp-") != NULL)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* Removes tmp/ leftovers and layer dirs whose marker was never written
 * (a crash mid-commit): a half-unpacked layer must never be used. */
static int sweep(struct rt_store *s, struct bh_err *err)
{
	cleanup_free char *tmp = sub(s, "tmp", NULL);
	cleanup_free char *layers = sub(s, "layers/sha256", NULL);
	cleanup_free char *blobs = sub(s, "blobs/sha256", NULL);
	cleanup_free char *imagedb = sub(s, "imagedb/sha256", NULL);
	DIR *d;
	struct dirent *de;

	if (bh_rm_rf(tmp, err) < 0 || bh_mkdir_p(tmp, 0700, err) < 0)
		return -1;
	sweep_tmp_files(blobs);
	sweep_tmp_files(imagedb);
	sweep_tmp_files(s->root);
	d = opendir(layers);
	if (d == NULL)
		return bh_err_sys(err, errno, "open %s", layers);
	while ((de = readdir(d)) != NULL) {
		cleanup_free char *marker = NULL, *dir = NULL;
		if (de->d_name[0] == '.')
			continue;
		dir = bh_path_join(layers, de->d_name);
		marker = bh_path_join(dir, MARKER);
		if (!bh_path_exists(marker)) {
			bh_warn("image store: removing uncommitted layer %s", dir);
			bh_rm_rf(dir, err);
		}
	}
	closedir(d);
	return 0;
}

int rt_store_open(const char *data_root, struct rt_store **out, struct bh_err *err)
{
	static const char *const dirs[] = {"blobs/sha256", "imagedb/sha256", "layers/sha256",
	                                   "tmp"};
	struct rt_store *s = bh_calloc(1, sizeof(*s));
	struct bh_err gc_err;

	s->root = bh_path_join(data_root, "image");
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		cleanup_free char *p = sub(s, dirs[i], NULL);
		if (bh_mkdir_p(p, 0700, err) < 0)
			goto fail;
	}
	if (sweep(s, err) < 0)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
	/* A pull or load killed with the daemon stored blobs before its image:
	 * nobody holds the store yet, and nothing will ever reference them. */
	if (reg_gc_sweep(s, NULL, &gc_err) < 0)
		bh_warn("image store: sweeping orphan blobs: %s", gc_err.msg);
	*out = s;
	return 0;
fail:
	bh_err_wrap(err, "open image store %s", s->root);
	free(s->root);
	free(s);
	return -1;
}

void rt_store_close(struct rt_store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->root);
	free(s);
}

void rt_image_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

int rt_store_put_blob(struct rt_store *s, const void *data, size_t len, const char *hex,
                      struct bh_err *err)
{
	char got[65];
	cleanup_free char *path = NULL;

	rt_store_sha256_hex(data, len, got);
	if (hex && strcmp(hex, got) != 0)
		return bh_err_set(err, EINVAL, "blob sha256:%s: content has digest sha256:%s", hex,
		                  got);
	path = sub(s, "blobs/sha256", got);
	if (bh_path_exists(path))
		return 0; /* content-addressed: same name, same bytes */
	return bh_write_file_atomic(path, data, len, 0600, err);
}

int rt_store_get_blob(struct rt_store *s, const char *hex, size_t max, char **data, size_t *len,
                      struct bh_err *err)
{
	cleanup_free char *path = sub(s, "blobs/sha256", hex);
	cleanup_free char *buf = NULL;
	size_t n = 0;
	char got[65];

	if (!rt_store_is_hex64(hex))
		return bh_err_set(err, EINVAL, "blob %s: not a sha256 hex digest", hex);
	if (bh_read_file(path, max, &buf, &n, err) < 0)
		return -1;
	rt_store_sha256_hex(buf, n, got);
	if (strcmp(got, hex) != 0)
		return bh_err_set(err, EIO, "blob sha256:%s: corrupt in store", hex);
	*data = steal_pointer(&buf);
	if (len)
		*len = n;
	return 0;
}

char *rt_store_mkdtemp(struct rt_store *s, const char *prefix, struct bh_err *err)
{
	char *p = bh_asprintf("%s/tmp/%s-XXXXXX", s->root, prefix);

	if (mkdtemp(p) == NULL) {
		bh_err_sys(err, errno, "create %s", p);
		free(p);
		return NULL;
	}
	return p;
}

char *rt_store_layer_root(struct rt_store *s, const char *diffid_hex)
{
	return bh_asprintf("%s/layers/sha256/%s/root", s->root, diffid_hex);
}

bool rt_store_layer_present(struct rt_store *s, const char *diffid_hex)
{
	cleanup_free char *p = bh_asprintf("%s/layers/sha256/%s/" MARKER, s->root, diffid_hex);

	return bh_path_exists(p);
}

int rt_store_layer_size(struct rt_store *s, const char *diffid_hex, uint64_t *size)
{
	cleanup_free char *p = bh_asprintf("%s/layers/sha256/%s/size", s->root, diffid_hex);
	cleanup_free char *buf = NULL;
	struct bh_err e;
	long v;

	if (bh_read_file(p, 64, &buf, NULL, &e) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	if (bh_parse_long(buf, 0, INT64_MAX, &v) < 0)
		return -1;
	*size = (uint64_t)v;
	return 0;
}

int rt_store_layer_commit(struct rt_store *s, const char *tmpdir, const char *diffid_hex,
                          uint64_t size, struct bh_err *err)
{
	cleanup_free char *final = bh_asprintf("%s/layers/sha256/%s", s->root, diffid_hex);
	cleanup_free char *sizef = bh_path_join(tmpdir, "size");
	cleanup_free char *marker = bh_path_join(tmpdir, MARKER);
	char num[32];
	int fd;

	if (rt_store_layer_present(s, diffid_hex))
		return bh_rm_rf(tmpdir, err);
	snprintf(num, sizeof(num), "%llu\n", (unsigned long long)size);
	if (bh_write_file_atomic(sizef, num, strlen(num), 0600, err) < 0)
		return -1;
	/* The tree must be on disk before the marker says it is complete. */
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	if (bh_write_file_atomic(marker, "", 0, 0600, err) < 0)
		return -1;
	if (bh_rm_rf(final, err) < 0) /* an uncommitted leftover */
		return -1;
	if (rename(tmpdir, final) < 0)
		return bh_err_sys(err, errno, "commit layer %s", diffid_hex);
	return 0;
}

int rt_store_image_put(struct rt_store *s, const char *hex, uint64_t size, struct bh_err *err)
{
	cleanup_free char *path = sub(s, "imagedb/sha256", hex);
	cleanup_free char *text = NULL;
	json_t *rec = json_pack("{sI}", "size", (json_int_t)size);
	int r;

	text = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	r = bh_write_file_atomic(path, text, strlen(text), 0600, err);
	return r;
}

bool rt_store_image_present(struct rt_store *s, const char *hex)
{
	cleanup_free char *path = NULL;

	if (!rt_store_is_hex64(hex))
		return false;
	path = sub(s, "imagedb/sha256", hex);
	return bh_path_exists(path);
}

int rt_store_image_get(struct rt_store *s, const char *hex, json_t **rec, struct bh_err *err)
{
	cleanup_free char *path = sub(s, "imagedb/sha256", hex);
	cleanup_free char *buf = NULL;
	json_error_t je;

	if (bh_read_file(path, 4096, &buf, NULL, err) < 0)
		return -1;
	*rec = json_loads(buf, 0, &je);
	if (*rec == NULL || !json_is_object(*rec))
		return bh_err_set(err, EIO, "image %s: bad record: %s", hex, je.text);
	return 0;
}

int rt_store_image_ids(struct rt_store *s, char ***hexes, struct bh_err *err)
{
	cleanup_free char *dir = sub(s, "imagedb/sha256", NULL);
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = bh_calloc(1, sizeof(*v));
	size_t n = 0;

	if (d == NULL) {
		free(v);
		return bh_err_sys(err, errno, "open %s", dir);
	}
	while ((de = readdir(d)) != NULL) {
		if (!rt_store_is_hex64(de->d_name))
			continue;
		v = bh_realloc(v, (n + 2) * sizeof(*v));
		v[n++] = bh_strdup(de->d_name);
		v[n] = NULL;
	}
	closedir(d);
	*hexes = v;
	return 0;
}

int rt_store_tags_read(struct rt_store *s, json_t **index, struct bh_err *err)
{
	cleanup_free char *path = sub(s, "repositories.json", NULL);
	cleanup_free char *buf = NULL;
	json_error_t je;

	if (!bh_path_exists(path)) {
		*index = json_pack("{s{}}", "Repositories");
		return 0;
	}
	if (bh_read_file(path, RT_STORE_MAX_INDEX, &buf, NULL, err) < 0)
		return -1;
	*index = json_loads(buf, 0, &je);
	if (*index == NULL || !json_is_object(json_object_get(*index, "Repositories"))) {
		json_decref(*index);
		return bh_err_set(err, EIO, "%s: not a tag index: %s", path, je.text);
	}
	return 0;
}

int rt_store_tags_write(struct rt_store *s, json_t *index, struct bh_err *err)
{
	cleanup_free char *path = sub(s, "repositories.json", NULL);
	cleanup_free char *text = json_dumps(index, JSON_INDENT(1) | JSON_SORT_KEYS);

	return bh_write_file_atomic(path, text, strlen(text), 0600, err);
}

/* "docker.io/library/busybox:latest" -> "docker.io/library/busybox". */
static char *repo_of(const char *ref)
{
	const char *colon = strrchr(ref, ':');
	const char *slash = strrchr(ref, '/');

	if (colon && (slash == NULL || colon > slash))
		return bh_strndup(ref, (size_t)(colon - ref));
	return bh_strdup(ref);
}

void rt_store_tags_set(json_t *index, const char *ref, const char *id)
{
	json_t *repos = json_object_get(index, "Repositories");
	cleanup_free char *repo = repo_of(ref);
	const char *key;
	json_t *tags, *v;

	json_object_foreach(repos, key, tags)
	{
		if (json_is_object(tags))
			json_object_del(tags, ref); /* a ref lives in one repo only */
	}
	tags = json_object_get(repos, repo);
	if (!json_is_object(tags)) {
		tags = json_object();
		json_object_set_new(repos, repo, tags);
	}
	v = json_string(id);
	json_object_set_new(tags, ref, v);
}

const char *rt_store_tags_get(json_t *index, const char *ref)
{
	cleanup_free char *repo = repo_of(ref);
	json_t *tags = json_object_get(json_object_get(index, "Repositories"), repo);

	return json_string_value(json_object_get(tags, ref));
}

void rt_store_tags_del(json_t *index, const char *ref)
{
	cleanup_free char *repo = repo_of(ref);
	json_t *repos = json_object_get(index, "Repositories");
	json_t *tags = json_object_get(repos, repo);

	json_object_del(tags, ref);
	if (json_is_object(tags) && json_object_size(tags) == 0)
		json_object_del(repos, repo);
}

char **rt_store_tags_of(json_t *index, const char *id)
{
	char **v = bh_calloc(1, sizeof(*v));
	size_t n = 0;
	const char *repo, *ref;
	json_t *tags, *target;

	json_object_foreach(json_object_get(index, "Repositories"), repo, tags)
	{
		json_object_foreach(tags, ref, target)
		{
			if (!json_is_string(target) || strcmp(json_string_value(target), id) != 0)
				continue;
			v = bh_realloc(v, (n + 2) * sizeof(*v));
			v[n++] = bh_strdup(ref);
			v[n] = NULL;
		}
	}
	return v;
}

int rt_store_image_del(struct rt_store *s, const char *hex, struct bh_err *err)
{
	cleanup_free char *rec = sub(s, "imagedb/sha256", hex);
	cleanup_free char *blob = sub(s, "blobs/sha256", hex);

	/* The record first: without it the image is gone, whatever follows. */
	if (unlink(rec) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "remove %s", rec);
	if (unlink(blob) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "remove %s", blob);
	return 0;
}

int rt_store_layer_remove(struct rt_store *s, const char *diffid_hex, struct bh_err *err)
{
	cleanup_free char *dir = bh_asprintf("%s/layers/sha256/%s", s->root, diffid_hex);
	cleanup_free char *marker = bh_path_join(dir, MARKER);

	/* Marker first: a crash half-way leaves a dir that open() sweeps. */
	if (unlink(marker) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "remove %s", marker);
	return bh_rm_rf(dir, err);
}
