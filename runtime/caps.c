/* Capabilities and identity in the container's init: bounding set, then
 * uid/gid (keeping capabilities across setuid), then the effective,
 * permitted, inheritable and ambient sets, with raw syscalls. */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "runtime/rt-container-internal.h"

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

int rt_cap_from_name(const char *name)
{
	if (name == NULL || !bh_str_has_prefix(name, "CAP_"))
		return -1;
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (strcmp(name + 4, cap_names[i]) == 0)
			return (int)i;
	return -1;
}

int rt_caps_drop_bounding(const struct rt_spec *s, struct bh_err *err)
{
	if (!s->has_caps)
		return 0;
	for (int c = 0; c < 64; c++) {
		if (s->caps[RT_CAP_BOUNDING] & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
			break; /* beyond the kernel's last capability */
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return bh_err_sys(err, errno, "drop capability %d from the bounding set",
			                  c);
	}
	return 0;
}

static int set_ids(const struct rt_spec *s, struct bh_err *err)
{
	if (setgroups(s->n_gids, s->gids) < 0)
		return bh_err_sys(err, errno, "setgroups");
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		return bh_err_sys(err, errno, "setgid %u", (unsigned)s->gid);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "prctl PR_SET_KEEPCAPS");
	if (setresuid(s->uid, s->uid, s->uid) < 0)
		return bh_err_sys(err, errno, "setuid %u", (unsigned)s->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "prctl PR_SET_KEEPCAPS");
	return 0;
}

static int set_caps(const struct rt_spec *s, struct bh_err *err)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(s->caps[RT_CAP_EFFECTIVE] >> (32 * i));
		data[i].permitted = (uint32_t)(s->caps[RT_CAP_PERMITTED] >> (32 * i));
		data[i].inheritable = (uint32_t)(s->caps[RT_CAP_INHERITABLE] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return bh_err_sys(err, errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return bh_err_sys(err, errno, "clear ambient capabilities");
	for (int c = 0; c < 64; c++)
		if ((s->caps[RT_CAP_AMBIENT] & (1ULL << c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			return bh_err_sys(err, errno, "raise ambient capability %d", c);
	return 0;
}

int rt_caps_apply_identity(const struct rt_spec *s, struct bh_err *err)
{
	if (set_ids(s, err) < 0)
		return -1;
	return s->has_caps ? set_caps(s, err) : 0;
}
