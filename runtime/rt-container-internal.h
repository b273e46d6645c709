/* Private to the container runtime (spec.c, ns.c, rootfs.c, cgroup.c,
 * seccomp.c, caps.c, container.c, selfexe.c).  What runs in the container's
 * init after clone() uses syscalls and what the parent prepared (no
 * libseccomp, no jansson; a few small mallocs), so a caller with threads
 * must not hold the malloc lock across rt_container_start (fork rules). */
#ifndef BERTH_RT_CONTAINER_INTERNAL_H
#define BERTH_RT_CONTAINER_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "runtime/rt-container.h"

#define RT_SPEC_MAX    (4 * 1024 * 1024)
#define RT_STATE_MAX   (64 * 1024)
#define RT_MAX_CGROUPS 16

struct rt_mount {
	char *dest, *type, *source;
	unsigned long flags;       /* MS_* applied at mount time */
	unsigned long propagation; /* MS_PRIVATE, MS_SLAVE... (0: none) */
	bool bind, readonly;
	char *data; /* the options that are not flags, comma-joined */
};

struct rt_rlimit {
	int resource;
	uint64_t soft, hard;
};

/* One linux.resources.devices rule; applied in order, the last match wins. */
struct rt_dev_rule {
	bool allow;
	char type;            /* 'a', 'c' or 'b' */
	int64_t major, minor; /* -1: any */
	unsigned access;      /* BPF_DEVCG_ACC_MKNOD | _READ | _WRITE */
};

enum rt_capset {
	RT_CAP_BOUNDING,
	RT_CAP_EFFECTIVE,
	RT_CAP_INHERITABLE,
	RT_CAP_PERMITTED,
	RT_CAP_AMBIENT,
	RT_CAP_NSETS
};

struct rt_spec {
	json_t *json; /* owns every string below */
	char *root;   /* absolute */
	bool root_readonly;
	const char **args, **env; /* NULL-terminated */
	const char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *gids;
	size_t n_gids;
	bool terminal, no_new_privs, has_caps;
	bool has_oom_score_adj;
	int oom_score_adj;
	uint64_t caps[RT_CAP_NSETS];
	struct rt_rlimit *rlimits;
	size_t n_rlimits;
	const char *hostname;
	struct rt_mount *mounts;
	size_t n_mounts;
	int clone_flags;        /* CLONE_NEW* to create */
	const char *ns_path[8]; /* namespaces to join, by index of rt_ns_types */
	int64_t mem_limit, mem_swap, cpu_shares, cpu_quota, cpu_period, pids_limit; /* -1: unset */
	struct rt_dev_rule *dev_rules;
	size_t n_dev_rules;
	json_t *seccomp;                         /* borrowed from json; NULL: none */
	const char **masked, **readonly;         /* NULL-terminated */
	const char **sysctl_keys, **sysctl_vals; /* NULL-terminated */
	const char *cgroups_path;
};

int rt_spec_load(const char *bundle, struct rt_spec *s, struct bh_err *err);
int rt_spec_parse(json_t *json, const char *bundle, struct rt_spec *s, struct bh_err *err);
void rt_spec_free(struct rt_spec *s);

/* ---- namespaces (ns.c) ---- */
struct rt_ns_type {
	const char *name;
	int flag;
};
extern const struct rt_ns_type rt_ns_types[8];
/* In the init: joins the namespaces with a path (except pid: EINVAL). */
int rt_ns_join(const struct rt_spec *s, struct bh_err *err);
int rt_ns_set_hostname(const struct rt_spec *s, struct bh_err *err);
/* In the init: brings up lo in a new network namespace. */
int rt_ns_loopback_up(const struct rt_spec *s, struct bh_err *err);

/* ---- capabilities (caps.c) ---- */
int rt_cap_from_name(const char *name);
/* In the init: drops the bounding set (before setuid). */
int rt_caps_drop_bounding(const struct rt_spec *s, struct bh_err *err);
/* In the init: switches to uid/gid keeping capabilities, then sets them. */
int rt_caps_apply_identity(const struct rt_spec *s, struct bh_err *err);

/* ---- seccomp (seccomp.c) ---- */
struct rt_seccomp_prog {
	void *filter; /* struct sock_filter[] */
	unsigned short len;
};
/* In the parent: compiles spec.linux.seccomp to BPF (len 0 if none). */
int rt_seccomp_compile(const struct rt_spec *s, struct rt_seccomp_prog *p, struct bh_err *err);
void rt_seccomp_prog_free(struct rt_seccomp_prog *p);
/* In the init: installs the compiled filter. */
int rt_seccomp_load(const struct rt_seccomp_prog *p, struct bh_err *err);

/* ---- cgroups (cgroup.c) ---- */
struct rt_cgroup {
	int version; /* 1 or 2 */
	size_t n;
	char *dirs[RT_MAX_CGROUPS]; /* absolute cgroup directories (v2: one) */
	char *ctrl[RT_MAX_CGROUPS]; /* v1: the hierarchy's controllers ("memory") */
};
/* Detects v1/v2 and makes the directories for s->cgroups_path (default
 * berth/<id>) with the limits from the spec. */
int rt_cgroup_create(const struct rt_spec *s, const char *id, struct rt_cgroup *cg,
                     struct bh_err *err);
int rt_cgroup_enter(const struct rt_cgroup *cg, pid_t pid, struct bh_err *err);
/* Kills what is left in the cgroups, then removes them. */
int rt_cgroup_destroy(const struct rt_cgroup *cg, struct bh_err *err);
int rt_cgroup_oom_count(const struct rt_cgroup *cg, long *count, struct bh_err *err);
void rt_cgroup_free(struct rt_cgroup *cg);
/* 2 if the cgroup root (/sys/fs/cgroup) is a cgroup2 mount, else 1. */
int rt_cgroup_version(struct bh_err *err);
/* Tests only: another cgroup root (NULL: back to /sys/fs/cgroup). */
void rt_cgroup_use_root(const char *root);
/* Calls fn for each v1 cgroup mount with its mount point and super options. */
int rt_cgroup_v1_mounts(void (*fn)(const char *mnt, const char *opts, void *arg), void *arg,
                        struct bh_err *err);
json_t *rt_cgroup_to_json(const struct rt_cgroup *cg);
int rt_cgroup_from_json(json_t *j, struct rt_cgroup *cg, struct bh_err *err);

/* ---- device access (cgroup-devices.c) ---- */
/* v1: writes the rules to dir's devices.deny / devices.allow. */
int rt_devices_v1_apply(const struct rt_spec *s, const char *dir, struct bh_err *err);
/* v2: loads the rules as a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches
 * it to the cgroup directory cgroup_fd. */
int rt_devices_bpf_attach(const struct rt_dev_rule *rules, size_t n, int cgroup_fd,
                          struct bh_err *err);

/* ---- root filesystem (rootfs.c) ---- */
struct rt_cgroup_mnt {
	char name[64];  /* directory name under /sys/fs/cgroup: "memory", "cpu,cpuacct" */
	char opts[128]; /* mount data: "memory", "name=systemd" */
};
struct rt_rootfs_ctx {
	int cgroup_version;
	struct rt_cgroup_mnt cg_mnts[RT_MAX_CGROUPS];
	size_t n_cg_mnts;
};
/* In the parent: collects what the init needs to mount a cgroup filesystem. */
int rt_rootfs_prepare(struct rt_rootfs_ctx *ctx, struct bh_err *err);
/* In the init: everything from "make / private" to pivot_root and the
 * read-only remount of the root. */
int rt_rootfs_setup(const struct rt_spec *s, const struct rt_rootfs_ctx *ctx, struct bh_err *err);
/* Opens path below rootfd with RESOLVE_IN_ROOT. */
int rt_open_in_root(int rootfd, const char *path, int flags, struct bh_err *err);

/* ---- a process entering its container (container.c, exec.c) ---- */
/* Makes stdio[i] (-1: /dev/null) the fds 0, 1, 2. */
int rt_proc_stdio(const int stdio[3], struct bh_err *err);
int rt_proc_rlimits(const struct rt_spec *s, struct bh_err *err);
/* process.oomScoreAdj, if set. */
int rt_proc_oom_score(const struct rt_spec *s, struct bh_err *err);
/* Default dispositions, empty mask: nothing of the runtime's survives execve. */
void rt_proc_reset_signals(void);
/* execvp of s->args with the container's PATH; returns the errno to report. */
int rt_proc_exec(const struct rt_spec *s);
/* The last steps before execve, in the order that matters: bounding set,
 * seccomp (early, while still privileged, unless no_new_privs allows it
 * later), uid/gid and capabilities, cwd, no_new_privs, seccomp, umask.
 * Shared by the container's init and exec'd processes. */
int rt_proc_lockdown(const struct rt_spec *s, const struct rt_seccomp_prog *prog,
                     struct bh_err *err);
/* Inside the container (its mount namespace, before the capabilities are
 * dropped): opens the container's /dev/pts/ptmx, sets c->rows x c->cols,
 * makes the slave fds 0-2 (bind-mounted on /dev/console if console), and
 * sends the master over c->socket (SCM_RIGHTS). */
int rt_console_setup(const struct rt_console_opts *c, bool console, struct bh_err *err);

#endif
