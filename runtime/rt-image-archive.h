/* Image archives and commits: deterministic layer tars written from a
 * directory (an unpacked layer or a container's overlay upper dir), save
 * (docker-archive / OCI layout), import, commit, history, prune and the
 * store consistency check.  Directories are walked with dir fds and
 * O_NOFOLLOW: a container's upper dir is untrusted and may hold symlinks.
 *
 * Kept layer tars: a committed layer dir may hold "layer.tar", the exact
 * uncompressed tar whose sha256 is the diff id (written by load, commit and
 * import).  save sends it as is, so digests match the original; without
 * it the layer is re-tarred from root/ (then the diff id may change and
 * save writes a rewritten config, i.e. a new image id). */
#ifndef BERTH_RT_IMAGE_ARCHIVE_H
#define BERTH_RT_IMAGE_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/common.h"
#include "runtime/rt-image.h"

struct archive;

#define RT_LAYER_TAR "layer.tar"

/* Where archive bytes go: returns < 0 with err set to stop. */
typedef int (*rt_sink_fn)(void *arg, const void *data, size_t len, struct bh_err *err);

enum rt_tar_mode {
	RT_TAR_PLAIN,   /* a filesystem tree as it is (export) */
	RT_TAR_OVERLAY, /* an overlay dir: char 0/0 -> .wh.NAME, opaque -> .wh..wh..opq */
};

/* Writes the tree under dirfd into the open archive writer a: entries in
 * byte order of their names, paths relative ("bin/sh"), mtime in whole
 * seconds, no atime/ctime, hardlinks kept, symlinks never followed.  The
 * same tree gives the same bytes. */
int rt_tar_dir(int dirfd, struct archive *a, enum rt_tar_mode mode, struct bh_err *err);
/* A new deterministic tar writer (pax restricted, no compression) that
 * sends its bytes to sink. */
struct archive *rt_tar_writer_new(rt_sink_fn sink, void *arg, struct bh_err *err);
/* A sink in front of another that can be shut: after a failure the writer's
 * end-of-archive blocks must not reach the client (a truncated stream must
 * not look like a complete tar, and no byte may precede an error reply). */
struct rt_sink_gate {
	rt_sink_fn fn;
	void *arg;
	bool shut;
};
int rt_sink_gate(void *gate, const void *data, size_t len, struct bh_err *err);
/* Writes the tree of dir into file path (created 0600) and returns its
 * sha256 hex and size. */
int rt_tar_dir_to_file(const char *dir, enum rt_tar_mode mode, const char *path, char hex[65],
                       uint64_t *size, struct bh_err *err);

/* ---- save ------------------------------------------------------------------ */
enum rt_save_format { RT_SAVE_DOCKER, RT_SAVE_OCI };
/* Writes one tar holding the images named by refs (NULL-terminated) to
 * sink.  Nothing is held in memory but one config at a time. */
int rt_image_save(struct rt_store *s, char *const *refs, enum rt_save_format fmt, rt_sink_fn sink,
                  void *arg, struct bh_err *err);

/* ---- commit and import ------------------------------------------------------- */
struct rt_commit_opts {
	const char *parent_id;  /* "sha256:..." the container's image */
	const char *upper_dir;  /* the container's overlay upper dir */
	json_t *config;         /* the container's Config (Cmd, Env, ...); borrowed */
	const char *comment;    /* may be NULL */
	const char *author;     /* may be NULL */
	const char *created_by; /* history text; may be NULL */
	const char *ref;        /* tag to set; NULL for none */
};
int rt_image_commit(struct rt_store *s, const struct rt_commit_opts *o, char id[RT_IMAGE_ID_LEN],
                    struct bh_err *err);

/* A rootfs tar (plain, gzip, zstd, ...) read from fd -> a one-layer image
 * with the host's os/arch and no Cmd; changes (may be NULL) is merged into
 * its "config" object (e.g. {"Cmd": ["sh"]}). */
int rt_image_import(struct rt_store *s, int fd, json_t *changes, const char *ref,
                    const char *comment, char id[RT_IMAGE_ID_LEN], struct bh_err *err);

/* Docker's --change "CMD [\"sh\"]" / "ENV A=b" / "WORKDIR /x" / "USER u" /
 * "ENTRYPOINT [...]" / "LABEL k=v" / "EXPOSE 80" applied to a config
 * object. */
int rt_image_apply_change(json_t *config, const char *change, struct bh_err *err);

/* ---- queries and garbage ----------------------------------------------------- */
/* GET /images/{name}/history: [{Id, Created, CreatedBy, Tags, Size,
 * Comment}], newest first. */
int rt_image_history(struct rt_store *s, const char *id, json_t **out, struct bh_err *err);

/* Removes every tag of image id without deleting it (rmi -f of an image a
 * container uses: the image stays, dangling).  report gets Untagged rows. */
int rt_image_untag_all(struct rt_store *s, const char *id, json_t *report, struct bh_err *err);

/* Deletes dangling images (no tag), or with all every image, except those
 * in keep (ids "sha256:..." used by containers; NULL-terminated, may be
 * NULL); then layer dirs, blobs and registry records no image references
 * (all kept while the store is held by a pull).  *out is Docker's
 * {"ImagesDeleted": [...], "SpaceReclaimed": N}. */
int rt_image_prune(struct rt_store *s, bool all, char *const *keep, json_t **out,
                   struct bh_err *err);

/* Consistency check: every tag names a present image, every image's config
 * blob verifies and its layers are committed, no temp leftovers, no orphan
 * blob or registry record (not checked while a pull holds the store; a
 * failed pull's fetched blobs are orphans until prune).  *problems
 * is a new JSON array of one-line strings (empty when all is well). */
int rt_store_check(struct rt_store *s, json_t **problems, struct bh_err *err);

/* ---- export -------------------------------------------------------------------- */
/* The merged filesystem of layers (lowest first) + upper, mounted read-only
 * in a private temp dir under the store, written as a tar to sink, then
 * unmounted. */
int rt_rootfs_export(struct rt_store *s, char *const *layers, const char *upper, rt_sink_fn sink,
                     void *arg, struct bh_err *err);

/* ---- private to runtime/image_*.c ------------------------------------------------ */
/* tmpdir (from rt_store_mkdtemp) holds RT_LAYER_TAR with sha256 diff_hex:
 * unpacks it into tmpdir/root, appends the layer (diff id, and history
 * entry hist unless NULL, stolen) to config, commits layer, config, image
 * record and tag ref (may be NULL).  tmpdir is consumed either way. */
int rt_image_finish_layer(struct rt_store *s, const char *tmpdir, const char *diff_hex,
                          json_t *config, json_t *hist, const char *ref, char id[RT_IMAGE_ID_LEN],
                          struct bh_err *err);
/* Keys of a container Config that an image config keeps. */
void rt_image_copy_run_config(json_t *dst, json_t *src);

#endif
