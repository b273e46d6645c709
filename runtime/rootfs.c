/* The container's root filesystem, built in the init's new mount namespace:
 * spec mounts, a minimal /dev, sysctls, masked and read-only paths,
 * pivot_root.  Every target inside the root is resolved with openat2
 * RESOLVE_IN_ROOT and mounted through /proc/self/fd/N, so a symlink in the
 * image cannot redirect a mount onto the host. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "runtime/rt-container-internal.h"

#define FD_PATH_LEN 32

static void fd_path(char out[FD_PATH_LEN], int fd)
{
	snprintf(out, FD_PATH_LEN, "/proc/self/fd/%d", fd);
}

int rt_open_in_root(int rootfd, const char *path, int flags, struct bh_err *err)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	if (fd < 0)
		return bh_err_sys(err, errno, "open %s in the container root", path);
	return fd;
}

/* Creates path (and its parents) inside the root if missing: a directory,
 * or for the last component a regular file when as_file. */
static int mkdir_in_root(int rootfd, const char *path, bool as_file, struct bh_err *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return bh_err_set(err, ENAMETOOLONG, "path %s", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; p <= buf + len; p++) {
		bool last = *p == '\0';
		char *name;
		int fd;

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		fd = rt_open_in_root(rootfd, buf, O_PATH, err);
		if (fd >= 0) {
			close(fd);
		} else {
			cleanup_close int parent = -1;
			name = strrchr(buf, '/');
			*name = '\0';
			parent =
			    rt_open_in_root(rootfd, buf[0] ? buf : "/", O_PATH | O_DIRECTORY, err);
			*name++ = '/';
			if (parent < 0)
				return -1;
			if (last && as_file)
				fd = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
				            0644);
			else
				fd = mkdirat(parent, name, 0755);
			if (fd < 0 && errno != EEXIST)
				return bh_err_sys(err, errno, "create %s in the container root",
				                  buf);
			if (fd > 0 && last && as_file)
				close(fd);
		}
		if (!last)
			*p = '/';
	}
	return 0;
}

/* ---- spec mounts ------------------------------------------------------- */
static int remount_bind(int rootfd, const char *dest, unsigned long flags, struct bh_err *err)
{
	cleanup_close int fd = rt_open_in_root(rootfd, dest, O_PATH, err);
	char p[FD_PATH_LEN];
	struct statvfs sv;

	if (fd < 0)
		return -1;
	fd_path(p, fd);
	/* Keep the flags the kernel locked on the source mount. */
	if (fstatvfs(fd, &sv) == 0)
		flags |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
		         (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
		         (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
	if (mount(NULL, p, NULL, (flags & ~MS_REC) | MS_BIND | MS_REMOUNT, NULL) < 0)
		return bh_err_sys(err, errno, "remount %s", dest);
	return 0;
}

static int set_propagation(int rootfd, const struct rt_mount *m, struct bh_err *err)
{
	cleanup_close int fd = -1;
	char p[FD_PATH_LEN];

	if (m->propagation == 0)
		return 0;
	fd = rt_open_in_root(rootfd, m->dest, O_PATH, err);
	if (fd < 0)
		return -1;
	fd_path(p, fd);
	if (mount(NULL, p, NULL, m->propagation, NULL) < 0)
		return bh_err_sys(err, errno, "set propagation of %s", m->dest);
	return 0;
}

static int mount_bind(int rootfd, const struct rt_mount *m, struct bh_err *err)
{
	cleanup_close int fd = -1;
	char p[FD_PATH_LEN];
	struct stat st;

	if (stat(m->source, &st) < 0)
		return bh_err_sys(err, errno, "bind source %s", m->source);
	if (mkdir_in_root(rootfd, m->dest, !S_ISDIR(st.st_mode), err) < 0)
		return -1;
	fd = rt_open_in_root(rootfd, m->dest, O_PATH, err);
	if (fd < 0)
		return -1;
	fd_path(p, fd);
	if (mount(m->source, p, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
		return bh_err_sys(err, errno, "bind %s", m->source);
	if ((m->flags & ~(MS_BIND | MS_REC)) != 0 &&
	    remount_bind(rootfd, m->dest, m->flags & ~MS_BIND, err) < 0)
		return -1;
	return 0;
}

static int mount_fs(int rootfd, const char *dest, const char *src, const char *type,
                    unsigned long flags, const char *data, struct bh_err *err)
{
	cleanup_close int fd = -1;
	char p[FD_PATH_LEN];

	if (mkdir_in_root(rootfd, dest, false, err) < 0)
		return -1;
	fd = rt_open_in_root(rootfd, dest, O_PATH | O_DIRECTORY, err);
	if (fd < 0)
		return -1;
	fd_path(p, fd);
	if (mount(src, p, type, flags, data && data[0] ? data : NULL) < 0)
		return bh_err_sys(err, errno, "mount %s on %s", type, dest);
	return 0;
}

/* A "cgroup" mount: cgroup2, or on v1 a tmpfs holding each hierarchy.  In a
 * cgroup namespace both show the container's own cgroup as the root. */
static int mount_cgroup(int rootfd, const struct rt_mount *m, const struct rt_rootfs_ctx *ctx,
                        struct bh_err *err)
{
	unsigned long flags = m->flags & ~MS_RDONLY;

	if (ctx->cgroup_version == 2)
		return mount_fs(rootfd, m->dest, "cgroup2", "cgroup2", m->flags, NULL, err);
	if (mount_fs(rootfd, m->dest, "tmpfs", "tmpfs", flags, "mode=755", err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_cg_mnts; i++) {
		cleanup_free char *sub = bh_path_join(m->dest, ctx->cg_mnts[i].name);
		if (mount_fs(rootfd, sub, "cgroup", "cgroup", m->flags, ctx->cg_mnts[i].opts, err) <
		    0)
			return -1;
	}
	return m->readonly ? remount_bind(rootfd, m->dest, flags | MS_RDONLY, err) : 0;
}

static int mount_one(int rootfd, const struct rt_mount *m, const struct rt_rootfs_ctx *ctx,
                     struct bh_err *err)
{
	int rc;

	if (m->bind)
		rc = mount_bind(rootfd, m, err);
	else if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0)
		rc = mount_cgroup(rootfd, m, ctx, err);
	else
		rc = mount_fs(rootfd, m->dest, m->source, m->type, m->flags, m->data, err);
	if (rc == 0)
		rc = set_propagation(rootfd, m, err);
	return rc < 0 ? bh_err_wrap(err, "mount %s", m->dest) : 0;
}

/* ---- /dev ---------------------------------------------------------------- */
static int make_devices(int rootfd, struct bh_err *err)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} devs[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
	            {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	static const struct {
		const char *name, *target;
	} links[] = {{"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},
	             {"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
	             {"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"}};
	cleanup_close int dev = rt_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, err);

	if (dev < 0)
		return errno == ENOENT ? 0 : -1;
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		if (mknodat(dev, devs[i].name, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)) <
		        0 &&
		    errno != EEXIST)
			return bh_err_sys(err, errno, "mknod /dev/%s", devs[i].name);
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlinkat(links[i].target, dev, links[i].name) < 0 && errno != EEXIST)
			return bh_err_sys(err, errno, "symlink /dev/%s", links[i].name);
	return 0;
}

/* ---- sysctl, masked and read-only paths ---------------------------------- */
static int write_sysctls(int rootfd, const struct rt_spec *s, struct bh_err *err)
{
	for (size_t i = 0; s->sysctl_keys && s->sysctl_keys[i]; i++) {
		cleanup_free char *path = bh_asprintf("/proc/sys/%s", s->sysctl_keys[i]);
		cleanup_close int fd = -1;
		size_t len = strlen(s->sysctl_vals[i]);

		for (char *p = path + 10; *p; p++)
			*p = *p == '.' ? '/' : *p;
		fd = rt_open_in_root(rootfd, path, O_WRONLY, err);
		if (fd < 0)
			return bh_err_wrap(err, "sysctl %s", s->sysctl_keys[i]);
		if (write(fd, s->sysctl_vals[i], len) != (ssize_t)len)
			return bh_err_sys(err, errno, "sysctl %s", s->sysctl_keys[i]);
	}
	return 0;
}

static int mask_paths(int rootfd, const struct rt_spec *s, int nullfd, struct bh_err *err)
{
	char p[FD_PATH_LEN], src[FD_PATH_LEN];
	struct stat st;

	fd_path(src, nullfd);
	for (size_t i = 0; s->masked[i]; i++) {
		cleanup_close int fd =
		    rt_open_in_root(rootfd, s->masked[i], O_PATH | O_NOFOLLOW, err);
		int rc;

		if (fd < 0 && (err->code == ENOENT || err->code == ENOTDIR))
			continue;
		if (fd < 0 || fstat(fd, &st) < 0)
			return bh_err_wrap(err, "mask %s", s->masked[i]);
		fd_path(p, fd);
		if (S_ISDIR(st.st_mode))
			rc = mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0");
		else
			rc = mount(src, p, NULL, MS_BIND, NULL);
		if (rc < 0)
			return bh_err_sys(err, errno, "mask %s", s->masked[i]);
	}
	return 0;
}

static int readonly_paths(int rootfd, const struct rt_spec *s, struct bh_err *err)
{
	char p[FD_PATH_LEN];

	for (size_t i = 0; s->readonly[i]; i++) {
		cleanup_close int fd = rt_open_in_root(rootfd, s->readonly[i], O_PATH, err);

		if (fd < 0 && err->code == ENOENT)
			continue;
		if (fd < 0)
			return bh_err_wrap(err, "read-only path");
		fd_path(p, fd);
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			return bh_err_sys(err, errno, "bind %s", s->readonly[i]);
		if (remount_bind(rootfd, s->readonly[i],
		                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- the whole sequence ---------------------------------------------------- */
static int enter_root(int rootfd, bool readonly, struct bh_err *err)
{
	struct statvfs sv;
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;

	/* pivot_root(".", ".") stacks the old root on top of the new one; the
	 * lazy unmount then drops every host mount from this namespace. */
	if (fchdir(rootfd) < 0)
		return bh_err_sys(err, errno, "chdir to the root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return bh_err_sys(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return bh_err_sys(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return bh_err_sys(err, errno, "chdir /");
	if (!readonly)
		return 0;
	if (statvfs("/", &sv) == 0)
		flags |=
		    (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0);
	if (mount(NULL, "/", NULL, flags, NULL) < 0)
		return bh_err_sys(err, errno, "remount the root read-only");
	return 0;
}

int rt_rootfs_setup(const struct rt_spec *s, const struct rt_rootfs_ctx *ctx, struct bh_err *err)
{
	cleanup_close int rootfd = -1, nullfd = -1;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return bh_err_sys(err, errno, "make / private");
	if (mount(s->root, s->root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return bh_err_sys(err, errno, "bind the root %s", s->root);
	rootfd = open(s->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	nullfd = open("/dev/null", O_PATH | O_CLOEXEC);
	if (rootfd < 0 || nullfd < 0)
		return bh_err_sys(err, errno, "open the root %s", s->root);
	for (size_t i = 0; i < s->n_mounts; i++)
		if (mount_one(rootfd, &s->mounts[i], ctx, err) < 0)
			return -1;
	if (make_devices(rootfd, err) < 0 || write_sysctls(rootfd, s, err) < 0 ||
	    mask_paths(rootfd, s, nullfd, err) < 0 || readonly_paths(rootfd, s, err) < 0)
		return -1;
	return enter_root(rootfd, s->root_readonly, err);
}

static void collect_cgroup_mnt(const char *mnt, const char *opts, void *arg)
{
	struct rt_rootfs_ctx *ctx = arg;
	struct rt_cgroup_mnt *m;
	const char *name = strrchr(mnt, '/');
	size_t used = 0;

	if (ctx->n_cg_mnts == RT_MAX_CGROUPS || name == NULL)
		return;
	m = &ctx->cg_mnts[ctx->n_cg_mnts];
	if (bh_strlcpy(m->name, name + 1, sizeof(m->name)) < 0)
		return;
	for (const char *o = opts; *o;) {
		size_t n = strcspn(o, ",");
		if (!(n == 2 && (strncmp(o, "rw", 2) == 0 || strncmp(o, "ro", 2) == 0)) &&
		    used < sizeof(m->opts))
			used += (size_t)snprintf(m->opts + used, sizeof(m->opts) - used, "%s%.*s",
			                         used ? "," : "", (int)n, o);
		o += n + (o[n] ? 1 : 0);
	}
	if (used > 0 && used < sizeof(m->opts))
		ctx->n_cg_mnts++;
}

int rt_rootfs_prepare(struct rt_rootfs_ctx *ctx, struct bh_err *err)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cgroup_version = rt_cgroup_version(err);
	if (ctx->cgroup_version < 0)
		return -1;
	if (ctx->cgroup_version == 2)
		return 0;
	return rt_cgroup_v1_mounts(collect_cgroup_mnt, ctx, err);
}

/* ---- overlay for berthd ---------------------------------------------------- */
static bool overlay_path_ok(const char *p)
{
	return p && p[0] == '/' && strpbrk(p, ",:\\") == NULL;
}

int rt_overlay_mount(const char *const *lowerdirs, size_t n_lower, const char *upper,
                     const char *work, const char *target, struct bh_err *err)
{
	return rt_overlay_mount_volatile(lowerdirs, n_lower, upper, work, target, false, err);
}

int rt_overlay_mount_volatile(const char *const *lowerdirs, size_t n_lower, const char *upper,
                              const char *work, const char *target, bool volatile_upper,
                              struct bh_err *err)
{
	struct bh_buf data;
	int rc = 0;

	/* ',' and ':' would inject options or layers into the mount data. */
	if (n_lower == 0 || !overlay_path_ok(upper) || !overlay_path_ok(work))
		return bh_err_set(err, EINVAL, "overlay %s: bad layer list", target);
	for (size_t i = 0; i < n_lower; i++)
		if (!overlay_path_ok(lowerdirs[i]))
			return bh_err_set(err, EINVAL, "overlay %s: bad lower dir", target);
	bh_buf_init(&data, 4095); /* mount(2) takes one page of options */
	rc |= bh_buf_printf(&data, "lowerdir=");
	for (size_t i = 0; i < n_lower; i++)
		rc |= bh_buf_printf(&data, "%s%s", i ? ":" : "", lowerdirs[i]);
	rc |= bh_buf_printf(&data, ",upperdir=%s,workdir=%s", upper, work);
	if (rc < 0) {
		bh_buf_free(&data);
		return bh_err_set(err, E2BIG, "overlay %s: too many layers", target);
	}
	if (volatile_upper) {
		size_t len = data.len;

		/* Linux >= 5.10; older kernels refuse the option: mount without. */
		if (bh_buf_printf(&data, ",volatile") == 0 &&
		    mount("overlay", target, "overlay", 0, data.data) == 0) {
			bh_buf_free(&data);
			return 0;
		}
		data.len = len;
		data.data[len] = '\0';
	}
	rc = mount("overlay", target, "overlay", 0, data.data);
	bh_buf_free(&data);
	if (rc < 0)
		return bh_err_sys(err, errno, "mount overlay on %s", target);
	return 0;
}
