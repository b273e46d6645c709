/* Careful file I/O.  POSIX only: this is the piece a Windows port replaces
 * (MoveFileEx for the atomic rename, _wmkdir, no modes). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

int bh_read_file(const char *path, size_t max, char **out, size_t *out_len, struct bh_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct bh_buf b;
	char chunk[16384];

	if (fd < 0)
		return bh_err_sys(err, errno, "open %s", path);
	bh_buf_init(&b, max);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			bh_buf_free(&b);
			return bh_err_sys(err, e, "read %s", path);
		}
		if (n == 0)
			break;
		if (bh_buf_append(&b, chunk, (size_t)n) < 0) {
			bh_buf_free(&b);
			return bh_err_set(err, EFBIG, "read %s: larger than %zu bytes", path, max);
		}
	}
	if (b.data == NULL)
		bh_buf_append(&b, "", 0);
	*out = b.data;
	if (out_len)
		*out_len = b.len;
	return 0;
}

int bh_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	cleanup_free char *dir = NULL;
	int fd;

	if (slash == NULL)
		dir = bh_strdup(".");
	else
		dir = bh_strndup(path, slash == path ? 1 : (size_t)(slash - path));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int write_replace(const char *path, const void *data, size_t len, int mode, bool sync,
			 struct bh_err *err)
{
	cleanup_free char *tmp = bh_asprintf("%s.tmp-XXXXXX", path);
	int fd, e;

	fd = mkstemp(tmp);
	if (fd < 0)
		return bh_err_sys(err, errno, "create temporary file for %s", path);
	if (fchmod(fd, (mode_t)mode) < 0 || bh_write_all(fd, data, len) < 0 ||
	    (sync && fsync(fd) < 0)) {
		e = errno;
		close(fd);
		unlink(tmp);
		return bh_err_sys(err, e, "write %s", path);
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		return bh_err_sys(err, e, "write %s", path);
	}
	if (sync)
		fsync_parent(path);
	return 0;
}

int bh_write_file_atomic(const char *path, const void *data, size_t len, int mode,
			 struct bh_err *err)
{
	return write_replace(path, data, len, mode, true, err);
}

int bh_write_file_volatile(const char *path, const void *data, size_t len, int mode,
			   struct bh_err *err)
{
	return write_replace(path, data, len, mode, false, err);
}

int bh_mkdir_p(const char *path, int mode, struct bh_err *err)
{
	cleanup_free char *p = bh_strdup(path);
	struct stat st;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
			return bh_err_sys(err, errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
		return bh_err_sys(err, errno, "mkdir %s", p);
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
		return bh_err_set(err, ENOTDIR, "mkdir %s: exists and is not a directory", p);
	return 0;
}

static int rm_rf_at(int dirfd, const char *name, struct bh_err *err)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : bh_err_sys(err, errno, "stat %s", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return bh_err_sys(err, errno, "unlink %s", name);
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return bh_err_sys(err, errno, "open %s", name);
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return bh_err_sys(err, errno, "opendir %s", name);
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = rm_rf_at(fd, de->d_name, err);
	}
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "rmdir %s", name);
	return r;
}

int bh_rm_rf(const char *path, struct bh_err *err)
{
	if (rm_rf_at(AT_FDCWD, path, err) < 0)
		return bh_err_wrap(err, "remove %s", path);
	return 0;
}

bool bh_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

char *bh_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	return bh_asprintf("%.*s/%s", (int)la, a, b);
}
