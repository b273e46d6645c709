/* Containers from an OCI runtime bundle (config.json + rootfs).
 * The process that calls rt_container_start() becomes the parent of the
 * container's init and must reap it (the per-container monitor does). */
#ifndef BERTH_RT_CONTAINER_H
#define BERTH_RT_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/common.h"

struct rt_container_opts {
	const char *id; /* [a-zA-Z0-9_.-]{1,128}; berthd uses 64 hex */
	const char *bundle; /* directory holding config.json; root.path is relative to it */
	const char *state_root; /* runtime state, like runc --root (e.g. EXEC_ROOT/runtime) */
	int stdio[3]; /* fds that become the container's 0,1,2 (pipe ends or a pty
		       * slave); -1 means /dev/null.  Not closed by the runtime. */
};

/* Sets up namespaces, cgroups, the root filesystem, capabilities, seccomp and
 * starts process.args from config.json.  On success *pid is the container
 * init in the host's pid namespace, a child of the caller. */
int rt_container_start(const struct rt_container_opts *o, pid_t *pid, struct bh_err *err);

/* Sends sig to the container's init (pidfd-based, no pid reuse race). */
int rt_container_kill(const char *state_root, const char *id, int sig, struct bh_err *err);

/* Removes what rt_container_start made outside the container: cgroups,
 * state, mounts.  The container must have exited (or force kills it first). */
int rt_container_delete(const char *state_root, const char *id, bool force, struct bh_err *err);

/* Reads the cgroup's OOM-kill count after the init exited (0 if none). */
int rt_container_oom_killed(const char *state_root, const char *id, bool *oom, struct bh_err *err);

#endif
