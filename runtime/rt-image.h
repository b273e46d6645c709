/* Images: a content-addressed store under DATA_ROOT/image, loading of
 * docker-archive and OCI-layout tars, and the layer unpacker.  Trusts no
 * image content: every digest is verified, every layer entry is written
 * relative to the layer's root fd and can never touch anything outside it.
 *
 * Layout of DATA_ROOT/image:
 *   blobs/sha256/<hex>          verified blobs: image configs; for images pulled
 *                               from a registry also their manifest and compressed
 *                               layer blobs, as fetched (push sends the same bytes,
 *                               so digests survive a round trip).
 *   distribution/sha256/<hex>.json  pulled images: manifest digest, media type,
 *                               RepoDigests, source repositories (rt-registry.h)
 *   imagedb/sha256/<hex>        one small JSON per image present (id = config digest)
 *   layers/sha256/<diffid hex>/ root/ (the unpacked tree, an overlayfs lowerdir),
 *                               size, and "committed" written last; layer.tar, the
 *                               uncompressed tar of that diff id, for layers that
 *                               were loaded, committed or imported (save sends it:
 *                               rt-image-archive.h)
 *   repositories.json           the tag index, written atomically
 *   tmp/                        work space, emptied by rt_store_open()
 *
 * Concurrency: one struct rt_store per data root per process (berthd).  All
 * functions may be called from several threads: a mutex serialises changes to
 * the tag index and commits; blobs, layers and imagedb entries appear by
 * atomic rename only, so readers never see a partial one.  Long work
 * (reading the tar, unpacking layers) runs outside the mutex.  Two processes
 * sharing one data root are not supported. */
#ifndef BERTH_RT_IMAGE_H
#define BERTH_RT_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/common.h"

struct archive;
struct rt_store;

/* Opens (creating if needed) DATA_ROOT/image; removes leftovers of
 * interrupted work: tmp/ contents and layer dirs without their marker. */
int rt_store_open(const char *data_root, struct rt_store **out, struct bh_err *err);
void rt_store_close(struct rt_store *s);
/* DATA_ROOT/image; owned by the store. */
const char *rt_store_path(const struct rt_store *s);

/* Frees a NULL-terminated string vector (NULL is fine). */
void rt_image_strv_free(char **v);

/* Loads a docker-archive (`docker save`) or OCI image-layout tar read from
 * fd (a file or a pipe; read to EOF, not closed).  label names the input in
 * error messages ("busybox.tar").  On success *loaded (may be NULL) is a
 * NULL-terminated vector, one string per image: its familiar tag
 * ("busybox:latest") for each tag, or its id ("sha256:<hex>") when the
 * image has none.  On failure nothing is registered: no tag, no image, no
 * layer dir. */
int rt_image_load(struct rt_store *s, int fd, const char *label, char ***loaded,
                  struct bh_err *err);
int rt_image_load_path(struct rt_store *s, const char *path, char ***loaded, struct bh_err *err);

/* GET /images/json: a new JSON array of objects with Docker's fields: Id
 * ("sha256:<hex>"), ParentId, RepoTags, RepoDigests, Created (unix seconds),
 * Size, SharedSize, VirtualSize, Labels, Containers.  Newest first. */
int rt_image_list(struct rt_store *s, json_t **out, struct bh_err *err);

/* Resolves "busybox", "busybox:latest", "docker.io/library/busybox:latest",
 * "sha256:<hex>", "<hex>" or a unique short id prefix to the image id
 * "sha256:<64 hex>" (id must hold 72 bytes).  err->code is ENOENT for
 * "No such image", EINVAL for a malformed reference. */
#define RT_IMAGE_ID_LEN 72
int rt_image_resolve(struct rt_store *s, const char *ref, char id[RT_IMAGE_ID_LEN],
                     struct bh_err *err);

/* The image config document (a new reference; json_decref it) of image id
 * ("sha256:<hex>").  The runtime settings are in its "config" object: Env,
 * Cmd, Entrypoint, WorkingDir, User, Labels, ExposedPorts. */
int rt_image_config(struct rt_store *s, const char *id, json_t **config, struct bh_err *err);

/* The unpacked layer root directories of image id, lowest first (the order
 * overlayfs wants reversed in lowerdir=).  *dirs is NULL-terminated. */
int rt_image_layer_dirs(struct rt_store *s, const char *id, char ***dirs, struct bh_err *err);

/* GET /images/{name}/json: a new object with Docker's ImageInspect fields
 * (Id, RepoTags, RepoDigests, Parent, Comment, Created, DockerVersion,
 * Author, Config, Architecture, Os, Size, VirtualSize, RootFS, Metadata). */
int rt_image_inspect(struct rt_store *s, const char *id, json_t **out, struct bh_err *err);

/* DELETE /images/{name}: by tag, untags it and deletes the image when that
 * was its last tag; by id, deletes the image and all its tags (err->code
 * EBUSY, "must be forced", when it has several tags and !force).  Layers no
 * other image uses are deleted.  *report (may be NULL) is Docker's reply:
 * [{"Untagged": ref}, {"Deleted": "sha256:..."}].  The runtime does not know
 * about containers: the caller must refuse (409) while one uses the image. */
int rt_image_remove(struct rt_store *s, const char *ref, bool force, json_t **report,
                    struct bh_err *err);

/* Points ref (normalised, e.g. "busybox" -> docker.io/library/busybox:latest)
 * at image id, replacing an older target. */
int rt_image_tag(struct rt_store *s, const char *id, const char *ref, struct bh_err *err);

/* Reference normalisation after docker/distribution: "busybox" ->
 * "docker.io/library/busybox:latest".  Returns a new string or NULL (with
 * err, EINVAL) for an invalid reference or a digest reference. */
char *rt_image_ref_normalize(const char *ref, struct bh_err *err);
/* The short form Docker prints: "docker.io/library/busybox:latest" ->
 * "busybox:latest".  New string. */
char *rt_image_ref_familiar(const char *normalized);

/* ---- layer unpacking -----------------------------------------------------
 * Extracts the tar stream in a (opened by the caller, any compression) into
 * the directory rootfd.  No entry can create, change or link anything
 * outside rootfd, whatever its name, symlinks or hardlinks.  OCI whiteouts
 * become overlayfs whiteouts (char device 0/0) and opaque dirs get
 * trusted.overlay.opaque=y.  Ownership and device nodes only as root. */
struct rt_layer_limits {
	uint64_t max_entries;
	uint64_t max_bytes; /* total size of file contents (decompression bombs) */
	size_t max_name;    /* bytes in one entry name or link target */
};
void rt_layer_limits_default(struct rt_layer_limits *l);
/* *size (may be NULL) is the total size of regular-file contents written. */
int rt_layer_unpack(int rootfd, struct archive *a, const struct rt_layer_limits *lim,
                    uint64_t *size, struct bh_err *err);

#endif
