/* Private to runtime/store*.c, image*.c and layer*.c: the store's internals. */
#ifndef BERTH_RT_IMAGE_INTERNAL_H
#define BERTH_RT_IMAGE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/rt-image.h"

#define RT_STORE_MAX_JSON  (4u << 20)  /* manifests, configs, index.json */
#define RT_STORE_MAX_INDEX (16u << 20) /* repositories.json */

struct rt_store {
	char *root;           /* DATA_ROOT/image */
	pthread_mutex_t lock; /* the tag index and commits */
	/* Writers that commit layers before the image that references them (a
	 * pull commits layer by layer): while > 0, garbage collection keeps
	 * unreferenced layer dirs.  Guarded by lock; see rt_store_hold(). */
	unsigned holds;
};

/* A pull (or any writer committing layers in several steps) takes a hold
 * for its whole run so that prune (image_gc.c) does not remove the layers
 * it committed but has not registered yet; release when done, success or
 * not.  Both take s->lock themselves. */
void rt_store_hold(struct rt_store *s);
void rt_store_release(struct rt_store *s);

/* Streaming SHA-256 (OpenSSL); hex is 64 chars + NUL. */
struct rt_sha256;
struct rt_sha256 *rt_store_sha256_new(void);
void rt_store_sha256_update(struct rt_sha256 *h, const void *data, size_t len);
/* Writes the hex digest and frees h. */
void rt_store_sha256_final(struct rt_sha256 *h, char hex[65]);
void rt_store_sha256_hex(const void *data, size_t len, char hex[65]);
/* "sha256:<64 lowercase hex>" -> hex; -1 for anything else. */
int rt_store_digest_hex(const char *digest, char hex[65]);
bool rt_store_is_hex64(const char *s);

/* Unpacks the layer blob at file (plain, gzip or zstd) into rootfd and checks
 * that the decompressed stream's sha256 is diff_hex, in one pass (layer_verify.c).
 * keep (may be NULL): also writes the decompressed tar there (0600, O_EXCL). */
int rt_layer_unpack_verified(const char *file, int rootfd, const char *diff_hex,
                             const char *keep, uint64_t *size, struct bh_err *err);

/* Verifies data against hex (if non-NULL) and stores it as a blob. */
int rt_store_put_blob(struct rt_store *s, const void *data, size_t len, const char *hex,
                      struct bh_err *err);
/* Reads blob hex (at most max bytes) and verifies its digest. */
int rt_store_get_blob(struct rt_store *s, const char *hex, size_t max, char **data, size_t *len,
                      struct bh_err *err);

/* A fresh private directory under tmp/ (prefix "load" or "layer"); caller
 * frees the path and removes the directory if it is not committed. */
char *rt_store_mkdtemp(struct rt_store *s, const char *prefix, struct bh_err *err);

bool rt_store_layer_present(struct rt_store *s, const char *diffid_hex);
/* Size recorded for a committed layer; -1 if missing. */
int rt_store_layer_size(struct rt_store *s, const char *diffid_hex, uint64_t *size);
/* tmpdir holds root/ (the unpacked layer).  Writes size and the committed
 * marker, then renames tmpdir to layers/sha256/<hex>; if that layer already
 * exists tmpdir is removed instead.  Caller holds s->lock. */
int rt_store_layer_commit(struct rt_store *s, const char *tmpdir, const char *diffid_hex,
                          uint64_t size, struct bh_err *err);
char *rt_store_layer_root(struct rt_store *s, const char *diffid_hex);

/* imagedb: the set of images present, keyed by config digest hex. */
int rt_store_image_put(struct rt_store *s, const char *hex, uint64_t size, struct bh_err *err);
bool rt_store_image_present(struct rt_store *s, const char *hex);
/* The image's JSON record ({"size": N}); new reference. */
int rt_store_image_get(struct rt_store *s, const char *hex, json_t **rec, struct bh_err *err);
/* NULL-terminated vector of image id hexes. */
int rt_store_image_ids(struct rt_store *s, char ***hexes, struct bh_err *err);

/* The tag index: {"Repositories": {repo: {normalized ref: "sha256:..."}}}.
 * Reading gives a new reference; writing needs s->lock. */
int rt_store_tags_read(struct rt_store *s, json_t **index, struct bh_err *err);
int rt_store_tags_write(struct rt_store *s, json_t *index, struct bh_err *err);
/* Sets ref (normalized) -> id in index (in memory). */
void rt_store_tags_set(json_t *index, const char *ref, const char *id);
/* The id ref points to, or NULL (borrowed from index). */
const char *rt_store_tags_get(json_t *index, const char *ref);
void rt_store_tags_del(json_t *index, const char *ref);
/* The normalised refs pointing at id ("sha256:..."); NULL-terminated. */
char **rt_store_tags_of(json_t *index, const char *id);

/* Removal (caller holds s->lock): the imagedb record and config blob; a
 * layer dir, marker first. */
int rt_store_image_del(struct rt_store *s, const char *hex, struct bh_err *err);
int rt_store_layer_remove(struct rt_store *s, const char *diffid_hex, struct bh_err *err);

#endif
