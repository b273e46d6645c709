/* Containers from an OCI runtime bundle (config.json + rootfs): namespaces,
 * cgroups (v1, hybrid or v2), pivot_root, /dev, masked paths, capabilities,
 * no_new_privs, seccomp.  Trusts config.json (berthd writes it) but not the
 * root filesystem: paths inside the root are resolved with openat2
 * RESOLVE_IN_ROOT, never re-resolved as strings.
 *
 * The process that calls rt_container_start() becomes the parent of the
 * container's init and must reap it (the per-container monitor does).
 *
 * CVE-2019-5736: a program that starts containers must call
 * rt_selfexe_ensure_sealed() first thing in main(); rt_container_start()
 * and rt_container_create() refuse to run otherwise. */
#ifndef BERTH_RT_CONTAINER_H
#define BERTH_RT_CONTAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/common.h"

struct rt_container_opts {
	const char *id;         /* [a-zA-Z0-9_.-]{1,128}; berthd uses 64 hex */
	const char *bundle;     /* directory holding config.json; root.path is relative to it */
	const char *state_root; /* runtime state, like runc --root (e.g. EXEC_ROOT/runtime) */
	int stdio[3];           /* fds that become the container's 0,1,2 (pipe ends or a pty
	                         * slave); -1 means /dev/null.  Not closed by the runtime. */
};

/* Sets up namespaces, cgroups, the root filesystem, capabilities, seccomp and
 * starts process.args from config.json.  On success *pid is the container
 * init in the host's pid namespace, a child of the caller.  If the exec of
 * process.args[0] fails, err->code is its errno (ENOENT, EACCES, ...): map
 * it with rt_exec_errno_status().  On failure nothing is left behind. */
int rt_container_start(const struct rt_container_opts *o, pid_t *pid, struct bh_err *err);

/* OCI "create": like rt_container_start, but the init stops just before its
 * execve, waiting on a fifo in the state directory, until
 * rt_container_start_created().  The init is a child of the caller. */
int rt_container_create(const struct rt_container_opts *o, pid_t *pid, struct bh_err *err);
/* OCI "start" for a created container: lets the init exec process.args and
 * reports an exec failure like rt_container_start.  Any process may call it. */
int rt_container_start_created(const char *state_root, const char *id, struct bh_err *err);

/* Sends sig to the container's init (pidfd-based, no pid reuse race). */
int rt_container_kill(const char *state_root, const char *id, int sig, struct bh_err *err);

/* Removes what rt_container_start made outside the container: cgroups and
 * state (the container's mounts live in its own mount namespace and go with
 * it).  The container must have exited, or force kills it (and every process
 * in its cgroup) and waits for it first. */
int rt_container_delete(const char *state_root, const char *id, bool force, struct bh_err *err);

/* Reads the cgroup's OOM-kill count after the init exited (false if none).
 * Call it before rt_container_delete, which removes the cgroup. */
int rt_container_oom_killed(const char *state_root, const char *id, bool *oom, struct bh_err *err);

enum rt_container_status {
	RT_STATUS_CREATED, /* init waits before its execve */
	RT_STATUS_RUNNING,
	RT_STATUS_STOPPED, /* init exited (or its pid was reused) */
};

struct rt_container_state {
	char id[129];
	enum rt_container_status status;
	pid_t pid; /* the init in the host's pid namespace */
	char bundle[4096];
	char created[40]; /* RFC 3339 */
};

/* Reads the state of a container; ENOENT if there is no such container. */
int rt_container_state(const char *state_root, const char *id, struct rt_container_state *st,
                       struct bh_err *err);
/* "created", "running", "stopped". */
const char *rt_container_status_name(enum rt_container_status s);
/* OCI state JSON {ociVersion,id,status,pid,bundle,created}; caller decrefs. */
json_t *rt_container_state_json(const struct rt_container_state *st);

/* Docker's exit status for a failed exec: ENOENT → 127, EACCES → 126, else 125. */
int rt_exec_errno_status(int code);

/* ---- CVE-2019-5736: run from a sealed copy of ourselves ------------------
 * If /proc/self/exe is not already a sealed memfd, copies it into one
 * (memfd_create MFD_ALLOW_SEALING, F_SEAL_SHRINK|GROW|WRITE|SEAL) and
 * re-executes it with the same argv and environment; returns only on error
 * or when already running sealed.  A container that makes its init exec
 * /proc/self/exe then gets this copy, which it cannot write, never the
 * runtime binary on the host. */
int rt_selfexe_ensure_sealed(char **argv, struct bh_err *err);
/* True if /proc/self/exe is a memfd with the seals above. */
bool rt_selfexe_is_sealed(void);
/* A sealed memfd copy of the program at path (close-on-exec).  A spawner
 * that starts many runtime processes (berthd → berth-monitor) can make one
 * copy and fexecve() it each time: the children then start sealed and
 * share its pages instead of each making a copy of its own. */
int rt_sealed_copy(const char *path, int *fd, struct bh_err *err);

/* ---- spec helpers for berthd ------------------------------------------------ */
/* A config.json like Docker's default: Docker's 14 capabilities,
 * noNewPrivileges, namespaces pid/mount/uts/ipc/net/cgroup, /proc, /dev,
 * /dev/pts, /dev/shm, /dev/mqueue, read-only /sys and /sys/fs/cgroup,
 * Docker's masked and read-only paths and the default seccomp profile.
 * args may be NULL (["sh"]).  Caller decrefs. */
json_t *rt_spec_default(const char *const *args);
/* Sets linux.resources from Docker's HostConfig fields (0: unset; NanoCpus
 * 1e9 = one CPU → quota 100000 per period 100000; pids_limit < 0: unlimited). */
void rt_spec_set_resources(json_t *spec, int64_t memory, int64_t memory_swap, int64_t nano_cpus,
                           int64_t cpu_shares, int64_t pids_limit);
/* Berth's default seccomp profile as an OCI linux.seccomp object. */
json_t *rt_seccomp_default_json(void);
/* The 14 capabilities Docker grants by default, NULL-terminated. */
extern const char *const rt_caps_docker_default[];

/* ---- helpers ------------------------------------------------------------- */
/* Mounts an overlayfs at target: lowerdirs[0] is the topmost lower layer;
 * n_lower >= 1.  upper and work must be on the same filesystem. */
int rt_overlay_mount(const char *const *lowerdirs, size_t n_lower, const char *upper,
                     const char *work, const char *target, struct bh_err *err);
/* The same; volatile_upper adds overlayfs' "volatile" (no sync of the upper
 * filesystem, not even at unmount) where the kernel has it.  Only for an upper
 * that is thrown away with the container: after a host crash it is suspect. */
int rt_overlay_mount_volatile(const char *const *lowerdirs, size_t n_lower, const char *upper,
                              const char *work, const char *target, bool volatile_upper,
                              struct bh_err *err);

/* berthd's container root: mounts an overlay of layers (NULL-terminated,
 * lowest first, as rt_image_layer_dirs gives them) with dir/upper and
 * dir/work at target (all created if missing); a stale mount at target is
 * removed first.  disposable: the upper dies with the container (AutoRemove),
 * so it is mounted volatile (see rt_overlay_mount_volatile). */
int rt_container_rootfs_prepare(char *const *layers, const char *dir, const char *target,
                                bool disposable, struct bh_err *err);
/* Unmounts target (every stacked mount; none is fine), then removes the
 * empty directory if remove_dir. */
int rt_container_rootfs_teardown(const char *target, bool remove_dir, struct bh_err *err);

/* Resolves "user[:group]" (names or numbers) with the root's /etc/passwd
 * and /etc/group, opened with openat2 RESOLVE_IN_ROOT below rootfd.
 * *gids (caller frees) gets the user's supplementary groups from /etc/group. */
int rt_user_resolve(int rootfd, const char *spec, uid_t *uid, gid_t *gid, gid_t **gids,
                    size_t *n_gids, struct bh_err *err);

/* ---- exec: a new process in a running container (like runc exec) ----------
 * Joins every namespace of the container's init (setns on a pidfd, then a
 * fork for the pid namespace), its cgroups (before anything runs, so the
 * limits apply), and applies config.json's security settings: capabilities,
 * no_new_privs, seccomp, rlimits, user.  The caller must run sealed
 * (CVE-2019-5736: rt_selfexe_ensure_sealed()), as for rt_container_start. */
struct rt_exec_opts {
	const char *id;          /* the container */
	const char *state_root;  /* as for rt_container_start */
	const char *const *args; /* NULL-terminated, args[0] searched in the container's PATH */
	const char *const *env;  /* "K=V" added to / replacing the container's env; NULL: none */
	const char *cwd;         /* absolute; NULL: the container's process.cwd */
	const char *user;        /* "user[:group]", names resolved in the container; NULL: its */
	int stdio[3];            /* as rt_container_opts (-1: /dev/null); unused with tty */
	bool tty;                /* allocate a pty in the container's devpts (console socket) */
	int console_socket;      /* with tty: a unix socket; the pty master is sent over it
	                          * (receive it with rt_console_recv) */
	unsigned short tty_rows, tty_cols; /* with tty: set before the process starts (0: none) */
};

/* Starts o->args in the running container o->id.  On success *pid is the new
 * process in the host's pid namespace, a child of the caller (who must reap
 * it).  Errors: ESRCH if the container is not running (created or stopped:
 * berthd answers 409), ENOENT if there is no such container; if the execve
 * itself fails, err->code is its errno (rt_exec_errno_status: 127, 126). */
int rt_container_exec(const struct rt_exec_opts *o, pid_t *pid, struct bh_err *err);

/* The console socket (as runc's --console-socket): the init allocates its pty
 * inside the container after /dev/pts is mounted, bind-mounts the slave on
 * /dev/console, and sends the master over socket.  rows x cols apply before
 * process.args starts.  stdio in o is then unused. */
struct rt_console_opts {
	int socket;
	unsigned short rows, cols; /* 0: the pty's default */
};
int rt_container_start_console(const struct rt_container_opts *o, const struct rt_console_opts *c,
                               pid_t *pid, struct bh_err *err);
/* Receives the pty master (close-on-exec) sent by a console setup; waits up
 * to timeout_ms (< 0: forever).  The peer must be trusted to send one fd. */
int rt_console_recv(int sock, int timeout_ms, int *master, struct bh_err *err);
/* Sends fd (the pty master) over sock (console-fd.c). */
int rt_console_send(int sock, int fd, struct bh_err *err);

/* The exec spec file that berthd writes for `berth-monitor --exec`:
 * {"args":[...], "env":["K=V",...], "cwd":"/dir", "user":"u[:g]"}. */
struct rt_exec_spec {
	json_t *json;             /* owns the strings */
	const char **args, **env; /* NULL-terminated (env may be empty) */
	const char *cwd, *user;   /* NULL when absent */
};
int rt_exec_spec_load(const char *path, struct rt_exec_spec *s, struct bh_err *err);
void rt_exec_spec_free(struct rt_exec_spec *s);
/* Writes the file (0600) atomically; env, cwd and user may be NULL. */
int rt_exec_spec_write(const char *path, const char *const *args, const char *const *env,
                       const char *cwd, const char *user, struct bh_err *err);

#endif
