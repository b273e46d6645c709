/* Deterministic tars of a directory tree, walked with dir fds: every name is
 * opened relative to its parent fd with O_NOFOLLOW, so a symlink planted in
 * a container's upper dir is archived as a symlink and never followed
 * (CVE-2019-14271 class: a copy that resolves a container's symlinks on
 * the host).  Overlay whiteouts become OCI whiteouts in RT_TAR_OVERLAY. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-image-archive.h"
#include "runtime/rt-image-internal.h"

#define MAX_DEPTH   256
#define MAX_NAMES   1000000 /* entries in one directory */
#define COPY_BLOCK  65536
#define WH_PREFIX   ".wh."
#define WH_OPAQUE   ".wh..wh..opq"
#define MAX_LINKLEN 4096

struct link_seen {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct walk {
	struct archive *a;
	enum rt_tar_mode mode;
	struct link_seen *links;
	size_t nlinks;
	char *buf;
	struct bh_err *err;
};

struct sink_ctx {
	rt_sink_fn fn;
	void *arg;
	struct bh_err *err;
	bool failed;
};

static la_ssize_t sink_write(struct archive *a, void *cd, const void *buf, size_t len)
{
	struct sink_ctx *c = cd;

	if (c->fn(c->arg, buf, len, c->err) < 0) {
		c->failed = true;
		archive_set_error(a, c->err->code ? c->err->code : EIO, "%s", c->err->msg);
		return -1;
	}
	return (la_ssize_t)len;
}

static int sink_close(struct archive *a, void *cd)
{
	(void)a;
	free(cd);
	return ARCHIVE_OK;
}

int rt_sink_gate(void *gate, const void *data, size_t len, struct bh_err *err)
{
	struct rt_sink_gate *g = gate;

	return g->shut ? 0 : g->fn(g->arg, data, len, err);
}

struct archive *rt_tar_writer_new(rt_sink_fn sink, void *arg, struct bh_err *err)
{
	struct archive *a = archive_write_new();
	struct sink_ctx *c = bh_calloc(1, sizeof(*c));

	c->fn = sink;
	c->arg = arg;
	c->err = err;
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_none(a);
	archive_write_set_bytes_in_last_block(a, 1); /* no padding past the end blocks */
	if (archive_write_open(a, c, NULL, sink_write, sink_close) != ARCHIVE_OK) {
		bh_err_set(err, EIO, "tar writer: %s", archive_error_string(a));
		archive_write_free(a);
		return NULL;
	}
	return a;
}

static int tar_fail(struct walk *w, const char *path)
{
	if (w->err->code != 0 && w->err->msg[0] != '\0' && archive_errno(w->a) == w->err->code)
		return bh_err_wrap(w->err, "tar %s", path);
	return bh_err_set(w->err, EIO, "tar %s: %s", path, archive_error_string(w->a));
}

/* Fields shared by every entry: no atime/ctime, whole-second mtime, no
 * user or group names: the bytes depend on the tree only. */
static struct archive_entry *entry_new(const char *path, const struct stat *st)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, st->st_mode);
	archive_entry_set_uid(e, st->st_uid);
	archive_entry_set_gid(e, st->st_gid);
	archive_entry_set_mtime(e, st->st_mtime, 0);
	return e;
}

static int write_header(struct walk *w, struct archive_entry *e, const char *path)
{
	int r = archive_write_header(w->a, e);

	archive_entry_free(e);
	return r < ARCHIVE_WARN ? tar_fail(w, path) : 0;
}

static int copy_data(struct walk *w, int fd, const char *path, off_t size)
{
	off_t left = size;

	while (left > 0) {
		ssize_t n = read(fd, w->buf, left < COPY_BLOCK ? (size_t)left : COPY_BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bh_err_sys(w->err, errno, "tar: read %s", path);
		if (n == 0)
			return bh_err_set(w->err, EIO, "tar: %s shrank while being read", path);
		if (archive_write_data(w->a, w->buf, (size_t)n) < 0)
			return tar_fail(w, path);
		left -= n;
	}
	return 0;
}

/* A second name of an inode already written becomes a hardlink entry. */
static const char *link_target(struct walk *w, const struct stat *st, const char *path)
{
	if (st->st_nlink < 2)
		return NULL;
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
			return w->links[i].path;
	w->links = bh_realloc(w->links, (w->nlinks + 1) * sizeof(*w->links));
	w->links[w->nlinks++] = (struct link_seen){st->st_dev, st->st_ino, bh_strdup(path)};
	return NULL;
}

static int put_file(struct walk *w, int dfd, const char *name, const char *path,
                    const struct stat *st)
{
	const char *target = link_target(w, st, path);
	struct archive_entry *e = entry_new(path, st);
	cleanup_close int fd = -1;
	struct stat st2;

	if (target) {
		archive_entry_set_hardlink(e, target);
		archive_entry_set_size(e, 0);
		return write_header(w, e, path);
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st2) < 0 || st2.st_ino != st->st_ino || !S_ISREG(st2.st_mode)) {
		archive_entry_free(e);
		return bh_err_sys(w->err, fd < 0 ? errno : ESTALE, "tar: open %s", path);
	}
	archive_entry_set_size(e, st->st_size);
	if (write_header(w, e, path) < 0)
		return -1;
	return copy_data(w, fd, path, st->st_size);
}

static int put_symlink(struct walk *w, int dfd, const char *name, const char *path,
                       const struct stat *st)
{
	char target[MAX_LINKLEN + 1];
	ssize_t n = readlinkat(dfd, name, target, MAX_LINKLEN);
	struct archive_entry *e;

	if (n < 0)
		return bh_err_sys(w->err, errno, "tar: readlink %s", path);
	target[n] = '\0';
	e = entry_new(path, st);
	archive_entry_set_symlink(e, target);
	return write_header(w, e, path);
}

/* An overlay whiteout (char 0/0) -> an empty file ".wh.NAME" beside it. */
static int put_whiteout(struct walk *w, const char *prefix, const char *name, const struct stat *st)
{
	cleanup_free char *path = prefix ? bh_asprintf("%s/" WH_PREFIX "%s", prefix, name)
	                                 : bh_asprintf(WH_PREFIX "%s", name);
	struct stat wst = *st;

	wst.st_mode = S_IFREG | 0600;
	wst.st_uid = 0;
	wst.st_gid = 0;
	return write_header(w, entry_new(path, &wst), path);
}

static bool dir_is_opaque(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));

	if (n < 0)
		n = fgetxattr(fd, "user.overlay.opaque", v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth);

static int put_dir(struct walk *w, int dfd, const char *name, const char *path,
                   const struct stat *st, int depth)
{
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat op = *st;

	if (fd < 0)
		return bh_err_sys(w->err, errno, "tar: open %s", path);
	if (write_header(w, entry_new(path, st), path) < 0)
		return -1;
	if (w->mode == RT_TAR_OVERLAY && dir_is_opaque(fd)) {
		cleanup_free char *opq = bh_asprintf("%s/" WH_OPAQUE, path);
		op.st_mode = S_IFREG | 0600;
		op.st_uid = op.st_gid = 0;
		if (write_header(w, entry_new(opq, &op), opq) < 0)
			return -1;
	}
	return walk_dir(w, fd, path, depth + 1);
}

static int put_special(struct walk *w, const char *path, const struct stat *st)
{
	struct archive_entry *e;

	if (S_ISSOCK(st->st_mode))
		return 0; /* a socket cannot be archived (as tar and docker) */
	e = entry_new(path, st);
	archive_entry_set_rdevmajor(e, major(st->st_rdev));
	archive_entry_set_rdevminor(e, minor(st->st_rdev));
	return write_header(w, e, path);
}

static int put_one(struct walk *w, int dfd, const char *prefix, const char *name, int depth)
{
	cleanup_free char *path = prefix ? bh_asprintf("%s/%s", prefix, name) : bh_strdup(name);
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return bh_err_sys(w->err, errno, "tar: stat %s", path);
	if (w->mode == RT_TAR_OVERLAY && S_ISCHR(st.st_mode) && st.st_rdev == 0)
		return put_whiteout(w, prefix, name, &st);
	if (S_ISDIR(st.st_mode))
		return put_dir(w, dfd, name, path, &st, depth);
	if (S_ISREG(st.st_mode))
		return put_file(w, dfd, name, path, &st);
	if (S_ISLNK(st.st_mode))
		return put_symlink(w, dfd, name, path, &st);
	return put_special(w, path, &st);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of directory dfd, sorted bytewise. */
static int list_names(struct walk *w, int dfd, const char *prefix, char ***out, size_t *n)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **v = NULL;

	*n = 0;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return bh_err_sys(w->err, errno, "tar: open %s", prefix ? prefix : ".");
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL && *n < MAX_NAMES) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		v = bh_realloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = bh_strdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), cmp_names);
	*out = v;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	if (depth > MAX_DEPTH)
		return bh_err_set(w->err, ELOOP, "tar: %s nested deeper than %d", prefix,
		                  MAX_DEPTH);
	r = list_names(w, dfd, prefix, &names, &n);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = put_one(w, dfd, prefix, names[i], depth);
		free(names[i]);
	}
	free(names);
	return r;
}

int rt_tar_dir(int dirfd, struct archive *a, enum rt_tar_mode mode, struct bh_err *err)
{
	struct walk w = {.a = a, .mode = mode, .err = err};
	int r;

	w.buf = bh_malloc(COPY_BLOCK);
	r = walk_dir(&w, dirfd, NULL, 0);
	for (size_t i = 0; i < w.nlinks; i++)
		free(w.links[i].path);
	free(w.links);
	free(w.buf);
	return r;
}

struct file_sink {
	int fd;
	struct rt_sha256 *h;
	uint64_t size;
};

static int file_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct file_sink *f = arg;
	const char *p = data;
	size_t left = len;

	while (left > 0) {
		ssize_t n = write(f->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bh_err_sys(err, errno, "write layer tar");
		p += n;
		left -= (size_t)n;
	}
	rt_store_sha256_update(f->h, data, len);
	f->size += len;
	return 0;
}

int rt_tar_dir_to_file(const char *dir, enum rt_tar_mode mode, const char *path, char hex[65],
                       uint64_t *size, struct bh_err *err)
{
	cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct file_sink f = {.fd = -1};
	struct archive *a;
	int r = -1;

	if (dfd < 0)
		return bh_err_sys(err, errno, "open %s", dir);
	f.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f.fd < 0)
		return bh_err_sys(err, errno, "create %s", path);
	f.h = rt_store_sha256_new();
	a = rt_tar_writer_new(file_sink, &f, err);
	if (a != NULL) {
		r = rt_tar_dir(dfd, a, mode, err);
		if (archive_write_close(a) != ARCHIVE_OK && r == 0)
			r = bh_err_set(err, EIO, "tar %s: %s", dir, archive_error_string(a));
		archive_write_free(a);
	}
	rt_store_sha256_final(f.h, hex);
	if (r == 0 && fsync(f.fd) < 0)
		r = bh_err_sys(err, errno, "sync %s", path);
	close(f.fd);
	*size = f.size;
	return r;
}
