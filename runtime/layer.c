/* Layer unpacking: a tar stream into a directory fd.  Every parent directory
 * is opened with openat2(RESOLVE_IN_ROOT) relative to the layer's root and
 * every entry is created relative to that parent fd by its last component
 * alone, so names, symlinks and hardlinks in the layer cannot reach outside. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-image.h"

#define WH_PREFIX    ".wh."
#define WH_META      ".wh..wh."
#define WH_OPAQUE    ".wh..wh..opq"
#define MAX_ID_VALUE 0xfffffffeLL

struct dir_time {
	char *path;
	struct timespec mtime;
};

struct unpack {
	int rootfd;
	struct archive *a;
	const struct rt_layer_limits *lim;
	uint64_t entries, bytes;
	bool root; /* ownership and device nodes need root */
	struct dir_time *dirs;
	size_t ndirs, capdirs;
	const char *name; /* the entry being unpacked, for messages */
	struct bh_err *err;
};

void rt_layer_limits_default(struct rt_layer_limits *l)
{
	l->max_entries = 1000000;
	l->max_bytes = 64ULL << 30;
	l->max_name = 4096;
}

/* CWE-22 path traversal: symlinks met on the way, absolute ones included,
 * resolve as if rootfd were "/", and ".." cannot climb above it.  No
 * /proc magic links (CVE-2019-5736 class). */
static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

/* Normalises an entry name: no leading "/" or "./", no empty or "."
 * components.  A ".." component fails the layer (zip-slip, CWE-22): even
 * though RESOLVE_IN_ROOT would clamp it, only a hostile layer has one. */
static int clean_name(const char *in, char *out, size_t size)
{
	size_t n = 0;

	while (*in) {
		size_t len = strcspn(in, "/");
		if (len == 2 && in[0] == '.' && in[1] == '.')
			return -1;
		if (len > 0 && !(len == 1 && in[0] == '.')) {
			if (n + len + 2 > size)
				return -1;
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, in, len);
			n += len;
		}
		in += len;
		while (*in == '/')
			in++;
	}
	out[n] = '\0';
	return 0;
}

static int entry_err(struct unpack *u, int code, const char *what)
{
	return bh_err_sys(u->err, code, "layer entry %s: %s", u->name, what);
}

/* mkdir of one path below the root whose parent exists. */
static int mkdir_in_root(struct unpack *u, const char *path)
{
	const char *slash = strrchr(path, '/');
	cleanup_free char *parent = bh_strndup(path, slash ? (size_t)(slash - path) : 0);
	cleanup_close int pfd = open_in_root(u->rootfd, parent, O_RDONLY | O_DIRECTORY);

	if (pfd < 0)
		return entry_err(u, errno, "open parent directory");
	if (mkdirat(pfd, slash ? slash + 1 : path, 0755) < 0 && errno != EEXIST)
		return entry_err(u, errno, "create parent directory");
	return 0;
}

/* Opens the entry's parent directory inside the root, creating missing
 * directories the way tar does. */
static int open_parent(struct unpack *u, const char *parent)
{
	cleanup_free char *p = NULL;
	int fd = open_in_root(u->rootfd, parent, O_RDONLY | O_DIRECTORY);

	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : entry_err(u, errno, "open parent directory");
	p = bh_strdup(parent);
	for (char *s = p;; s++) {
		char c = *s;
		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir_in_root(u, p) < 0)
			return -1;
		*s = c;
		if (c == '\0')
			break;
	}
	fd = open_in_root(u->rootfd, parent, O_RDONLY | O_DIRECTORY);
	return fd >= 0 ? fd : entry_err(u, errno, "open parent directory");
}

static int rm_tree_at(int at, const char *name)
{
	cleanup_close int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return unlinkat(at, name, 0);
	d = fdopendir(fd);
	if (d == NULL)
		return -1;
	fd = -1; /* owned by d now */
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = rm_tree_at(dirfd(d), de->d_name);
	}
	closedir(d);
	return r < 0 ? r : unlinkat(at, name, AT_REMOVEDIR);
}

/* Makes room for entry base in dirfd.  Whatever is there is removed, never
 * written through: the new entry is then created with O_EXCL/O_NOFOLLOW, so
 * a symlink or hardlink planted by an earlier entry cannot redirect the
 * write (CVE-2018-15664-style symlink swap, hardlink escape).  Returns 1 if
 * an existing directory is kept for a directory entry. */
static int make_room(struct unpack *u, int dirfd, const char *base, bool want_dir)
{
	struct stat st;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : entry_err(u, errno, "stat");
	if (S_ISDIR(st.st_mode) && want_dir)
		return 1;
	if (S_ISDIR(st.st_mode) ? rm_tree_at(dirfd, base) : unlinkat(dirfd, base, 0))
		return entry_err(u, errno, "replace existing entry");
	return 0;
}

static int owner_of(struct unpack *u, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	int64_t ou = archive_entry_uid(e), og = archive_entry_gid(e);

	if (ou < 0 || og < 0 || ou > MAX_ID_VALUE || og > MAX_ID_VALUE)
		return bh_err_set(u->err, EINVAL, "layer entry %s: uid/gid out of range", u->name);
	*uid = (uid_t)ou;
	*gid = (gid_t)og;
	return 0;
}

static void mtime_of(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	ts[0] = ts[1];
}

/* Only user.* and security.capability are kept: trusted.* from a layer
 * (trusted.overlay.redirect, .origin, .metacopy) would steer overlayfs
 * lookups to other paths, and security.selinux would pick its own label. */
static bool xattr_allowed(const char *name)
{
	return bh_str_has_prefix(name, "user.") || strcmp(name, "security.capability") == 0;
}

static int set_xattrs(struct unpack *u, int fd, struct archive_entry *e)
{
	const char *name;
	const void *value;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!xattr_allowed(name))
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
			return entry_err(u, errno, "set xattr");
	}
	return 0;
}

/* Owner before mode: chown clears set-id bits. */
static int set_meta_fd(struct unpack *u, int fd, struct archive_entry *e, bool times)
{
	struct timespec ts[2];
	uid_t uid;
	gid_t gid;

	if (owner_of(u, e, &uid, &gid) < 0)
		return -1;
	if (u->root && fchown(fd, uid, gid) < 0)
		return entry_err(u, errno, "chown");
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return entry_err(u, errno, "chmod");
	if (set_xattrs(u, fd, e) < 0)
		return -1;
	mtime_of(e, ts);
	if (times && futimens(fd, ts) < 0)
		return entry_err(u, errno, "set times");
	return 0;
}

/* Metadata of an entry that cannot be opened (symlinks, device nodes). */
static int set_meta_at(struct unpack *u, int dirfd, const char *base, struct archive_entry *e,
                       bool chmod_too)
{
	struct timespec ts[2];
	uid_t uid;
	gid_t gid;

	if (owner_of(u, e, &uid, &gid) < 0)
		return -1;
	if (u->root && fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_err(u, errno, "chown");
	if (chmod_too && fchmodat(dirfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		return entry_err(u, errno, "chmod");
	mtime_of(e, ts);
	if (utimensat(dirfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_err(u, errno, "set times");
	return 0;
}

static int copy_data(struct unpack *u, int fd)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(u->a, &buf, &len, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (len > 0) {
			ssize_t n = pwrite(fd, p, len, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return entry_err(u, errno, "write");
			p += n;
			off += n;
			len -= (size_t)n;
		}
	}
	if (r != ARCHIVE_EOF)
		return bh_err_set(u->err, EIO, "layer entry %s: read: %s", u->name,
		                  archive_error_string(u->a));
	return 0;
}

static int make_file(struct unpack *u, int pfd, const char *base, struct archive_entry *e)
{
	int64_t size = archive_entry_size(e);
	cleanup_close int fd = -1;

	/* Decompression bombs: the declared size counts, sparse or not. */
	if (size < 0 || (uint64_t)size > u->lim->max_bytes - u->bytes)
		return bh_err_set(u->err, EFBIG, "layer entry %s: layer larger than %llu bytes",
		                  u->name, (unsigned long long)u->lim->max_bytes);
	u->bytes += (uint64_t)size;
	if (make_room(u, pfd, base, false) < 0)
		return -1;
	fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return entry_err(u, errno, "create");
	if (copy_data(u, fd) < 0)
		return -1;
	if (ftruncate(fd, size) < 0)
		return entry_err(u, errno, "truncate");
	return set_meta_fd(u, fd, e, true);
}

static void remember_dir_time(struct unpack *u, const char *path, struct archive_entry *e)
{
	struct timespec ts[2];

	if (u->ndirs == u->capdirs) {
		u->capdirs = u->capdirs ? u->capdirs * 2 : 64;
		u->dirs = bh_realloc(u->dirs, u->capdirs * sizeof(*u->dirs));
	}
	mtime_of(e, ts);
	u->dirs[u->ndirs].path = bh_strdup(path);
	u->dirs[u->ndirs].mtime = ts[1];
	u->ndirs++;
}

static int make_dir(struct unpack *u, int pfd, const char *base, const char *path,
                    struct archive_entry *e)
{
	cleanup_close int fd = -1;
	int r = make_room(u, pfd, base, true);

	if (r < 0)
		return -1;
	if (r == 0 && mkdirat(pfd, base, 0700) < 0)
		return entry_err(u, errno, "mkdir");
	fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_err(u, errno, "open directory");
	/* Times are set at the end: the entries below would change them. */
	remember_dir_time(u, path, e);
	return set_meta_fd(u, fd, e, false);
}

static int make_symlink(struct unpack *u, int pfd, const char *base, struct archive_entry *e)
{
	const char *target = archive_entry_symlink(e);

	/* The target is only data: whoever follows it later resolves in root. */
	if (target == NULL || strlen(target) > u->lim->max_name)
		return bh_err_set(u->err, EINVAL, "layer entry %s: bad symlink target", u->name);
	if (make_room(u, pfd, base, false) < 0)
		return -1;
	if (symlinkat(target, pfd, base) < 0)
		return entry_err(u, errno, "symlink");
	return set_meta_at(u, pfd, base, e, false);
}

/* Hardlink escape: the target is resolved inside the root, without
 * following a final symlink, and linked by fd, so a layer can only link to
 * files it made itself (never to /etc/shadow of the host). */
static int make_hardlink(struct unpack *u, int pfd, const char *base, const char *target)
{
	cleanup_free char *clean = bh_malloc(u->lim->max_name + 2);
	cleanup_close int tfd = -1;
	struct stat st;

	if (strlen(target) > u->lim->max_name || clean_name(target, clean, u->lim->max_name + 2))
		return bh_err_set(u->err, EINVAL, "layer entry %s: hardlink target %s escapes root",
		                  u->name, target);
	tfd = open_in_root(u->rootfd, clean, O_PATH | O_NOFOLLOW);
	if (tfd < 0)
		return entry_err(u, errno, "hardlink target not in layer");
	if (fstat(tfd, &st) < 0 || S_ISDIR(st.st_mode))
		return bh_err_set(u->err, EINVAL, "layer entry %s: hardlink to a directory",
		                  u->name);
	if (make_room(u, pfd, base, false) < 0)
		return -1;
	if (linkat(tfd, "", pfd, base, AT_EMPTY_PATH) < 0)
		return entry_err(u, errno, "hardlink");
	return 0;
}

static int make_node(struct unpack *u, int pfd, const char *base, struct archive_entry *e)
{
	mode_t type = archive_entry_filetype(e);

	if (type != AE_IFIFO && !u->root) {
		bh_debug("layer entry %s: device node skipped (not root)", u->name);
		return 0;
	}
	if (make_room(u, pfd, base, false) < 0)
		return -1;
	if (mknodat(pfd, base, type | 0600, type == AE_IFIFO ? 0 : archive_entry_rdev(e)) < 0)
		return entry_err(u, errno, "mknod");
	return set_meta_at(u, pfd, base, e, true);
}

/* OCI whiteouts become overlayfs's: a 0/0 char device hides a lower file,
 * trusted.overlay.opaque=y hides a lower directory's contents. */
static int make_whiteout(struct unpack *u, int pfd, const char *base)
{
	const char *victim = base + strlen(WH_PREFIX);

	if (!u->root)
		return bh_err_set(u->err, EPERM, "layer entry %s: whiteouts need root", u->name);
	if (strcmp(base, WH_OPAQUE) == 0) {
		if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return entry_err(u, errno, "mark directory opaque");
		return 0;
	}
	if (bh_str_has_prefix(base, WH_META))
		return 0; /* aufs bookkeeping (.wh..wh.plnk, ...) */
	if (*victim == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
		return bh_err_set(u->err, EINVAL, "layer entry %s: bad whiteout", u->name);
	if (make_room(u, pfd, victim, false) < 0)
		return -1;
	if (mknodat(pfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
		return entry_err(u, errno, "create whiteout");
	return 0;
}

static int dispatch(struct unpack *u, int pfd, const char *base, const char *path,
                    struct archive_entry *e)
{
	const char *hardlink = archive_entry_hardlink(e);

	if (bh_str_has_prefix(base, WH_PREFIX))
		return make_whiteout(u, pfd, base);
	if (hardlink != NULL)
		return make_hardlink(u, pfd, base, hardlink);
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return make_file(u, pfd, base, e);
	case AE_IFDIR:
		return make_dir(u, pfd, base, path, e);
	case AE_IFLNK:
		return make_symlink(u, pfd, base, e);
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		return make_node(u, pfd, base, e);
	default:
		bh_debug("layer entry %s: unsupported type skipped", u->name);
		return 0;
	}
}

static int unpack_entry(struct unpack *u, struct archive_entry *e)
{
	cleanup_free char *path = bh_malloc(u->lim->max_name + 2);
	cleanup_close int pfd = -1;
	char *slash;
	const char *base;

	u->name = archive_entry_pathname(e);
	if (u->name == NULL || strlen(u->name) > u->lim->max_name)
		return bh_err_set(u->err, ENAMETOOLONG,
		                  "layer entry %llu: name missing or too long",
		                  (unsigned long long)u->entries);
	if (clean_name(u->name, path, u->lim->max_name + 2) < 0)
		return bh_err_set(u->err, EINVAL, "layer entry %s: path escapes root", u->name);
	if (*path == '\0')
		return 0; /* the root itself: keep the layer dir's own metadata */
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (slash)
		*slash = '\0';
	pfd = open_parent(u, slash ? path : "");
	if (slash)
		*slash = '/';
	if (pfd < 0)
		return -1;
	return dispatch(u, pfd, base, path, e);
}

static void finish_dirs(struct unpack *u)
{
	for (size_t i = u->ndirs; i-- > 0;) {
		struct timespec ts[2] = {u->dirs[i].mtime, u->dirs[i].mtime};
		int fd =
		    open_in_root(u->rootfd, u->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd >= 0) {
			futimens(fd, ts);
			close(fd);
		}
	}
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
}

int rt_layer_unpack(int rootfd, struct archive *a, const struct rt_layer_limits *lim,
                    uint64_t *size, struct bh_err *err)
{
	struct unpack u = {.rootfd = rootfd, .a = a, .lim = lim, .err = err};
	struct archive_entry *e;
	int r = 0;

	u.root = geteuid() == 0;
	while (r == 0) {
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		/* Not only FAILED/FATAL: RETRY ("Damaged tar archive") too.  A
		 * layer other tools would read differently is refused. */
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = bh_err_set(err, EIO, "layer: bad tar after %llu entries: %s",
			               (unsigned long long)u.entries, archive_error_string(a));
			break;
		}
		if (++u.entries > lim->max_entries)
			r = bh_err_set(err, EFBIG, "layer: more than %llu entries",
			               (unsigned long long)lim->max_entries);
		else
			r = unpack_entry(&u, e);
	}
	finish_dirs(&u);
	if (r == 0 && size)
		*size = u.bytes;
	return r;
}
