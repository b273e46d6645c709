/* A container's root filesystem for berthd: an overlay of the image layers
 * with a per-container upper and work dir, and its teardown.  The mount
 * syscalls live here so that server/ never calls mount() itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "runtime/rt-container.h"

#define MAX_LAYERS 128

int rt_container_rootfs_prepare(char *const *layers, const char *dir, const char *target,
                                bool disposable, struct bh_err *err)
{
	const char *lower[MAX_LAYERS];
	cleanup_free char *upper = bh_path_join(dir, "upper");
	cleanup_free char *work = bh_path_join(dir, "work");
	size_t n = 0;

	while (layers != NULL && layers[n] != NULL)
		n++;
	if (n == 0 || n > MAX_LAYERS)
		return bh_err_set(err, EINVAL, "rootfs %s: %zu layers (1 to %d supported)", target,
		                  n, MAX_LAYERS);
	/* The store lists layers lowest first; overlayfs wants the top first. */
	for (size_t i = 0; i < n; i++)
		lower[i] = layers[n - 1 - i];
	if (bh_mkdir_p(upper, 0755, err) < 0 || bh_mkdir_p(work, 0700, err) < 0 ||
	    bh_mkdir_p(target, 0755, err) < 0)
		return bh_err_wrap(err, "rootfs");
	/* A mount left by a crash would otherwise be stacked under the new one. */
	if (rt_container_rootfs_teardown(target, false, err) < 0)
		return -1;
	/* An unmount syncs the whole upper filesystem unless the overlay is
	 * volatile: measured 2 to 200 ms (a busy disk) on the way out of every
	 * container.  Worth it only where the upper is thrown away anyway. */
	return rt_overlay_mount_volatile(lower, n, upper, work, target, disposable, err);
}

int rt_container_rootfs_teardown(const char *target, bool remove_dir, struct bh_err *err)
{
	for (int i = 0; i < 16; i++) {
		if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			break; /* not (or no longer) a mount point */
		return bh_err_sys(err, errno, "unmount %s", target);
	}
	if (remove_dir && rmdir(target) < 0 && errno != ENOENT)
		return bh_err_sys(err, errno, "remove %s", target);
	return 0;
}
