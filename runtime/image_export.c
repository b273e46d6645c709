/* berth export: a container's merged filesystem as a tar.  The layers and
 * the upper dir are mounted as a read-only overlay (the upper dir as the
 * topmost lower, so its whiteouts hide what it deleted) in a private temp
 * dir under the store, tarred with dir fds, then unmounted.  This works
 * the same for a running and a stopped container. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <archive.h>

#include "runtime/rt-image-archive.h"
#include "runtime/rt-image-internal.h"

#define MAX_OPTS 4000 /* mount data is one page */

static char *overlay_opts(char *const *layers, const char *upper, struct bh_err *err)
{
	struct bh_buf b;
	size_t n = 0;
	char *out;

	while (layers && layers[n])
		n++;
	bh_buf_init(&b, MAX_OPTS);
	/* A container never started has no upper dir yet: its image alone. */
	bool has_upper = bh_path_exists(upper);
	int bad = bh_buf_printf(&b, "lowerdir=%s", has_upper ? upper : "");

	for (size_t i = n; i-- > 0;)
		bad |= bh_buf_printf(&b, "%s%s", has_upper || i + 1 < n ? ":" : "", layers[i]);
	if (bad < 0 || b.data == NULL || strchr(b.data, ',') != NULL) {
		bh_buf_free(&b);
		bh_err_set(err, E2BIG, "export: too many layers for one overlay mount");
		return NULL;
	}
	out = bh_strndup(b.data, b.len);
	bh_buf_free(&b);
	return out;
}

static int tar_mounted(const char *dir, rt_sink_fn sink, void *arg, struct bh_err *err)
{
	struct rt_sink_gate gate = {.fn = sink, .arg = arg};
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct archive *a;
	int r;

	if (fd < 0)
		return bh_err_sys(err, errno, "open %s", dir);
	a = rt_tar_writer_new(rt_sink_gate, &gate, err);
	if (a == NULL)
		return -1;
	r = rt_tar_dir(fd, a, RT_TAR_PLAIN, err);
	gate.shut = r < 0;
	if (archive_write_close(a) != ARCHIVE_OK && r == 0)
		r = bh_err_set(err, EIO, "export: %s", archive_error_string(a));
	archive_write_free(a);
	return r;
}

int rt_rootfs_export(struct rt_store *s, char *const *layers, const char *upper, rt_sink_fn sink,
                     void *arg, struct bh_err *err)
{
	cleanup_free char *opts = overlay_opts(layers, upper, err);
	cleanup_free char *dir = NULL;
	int r;

	if (opts == NULL)
		return -1;
	/* overlayfs wants two lower dirs without an upper one: a one-layer
	 * image of a container never started is that layer as it is. */
	if (!bh_path_exists(upper) && layers && layers[0] && !layers[1])
		return tar_mounted(layers[0], sink, arg, err) < 0 ? bh_err_wrap(err, "export") : 0;
	dir = rt_store_mkdtemp(s, "export", err);
	if (dir == NULL)
		return bh_err_wrap(err, "export");
	if (mount("overlay", dir, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0) {
		r = bh_err_sys(err, errno, "export: mount overlay at %s", dir);
		rmdir(dir);
		return r;
	}
	r = tar_mounted(dir, sink, arg, err);
	if (umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
		bh_warn("export: unmount %s: %s", dir, strerror(errno));
	rmdir(dir);
	return r < 0 ? bh_err_wrap(err, "export") : 0;
}
