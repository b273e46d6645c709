/* seccomp: compiles the OCI linux.seccomp object to BPF with libseccomp in
 * the parent; the init only installs the prepared program.
 *
 * Berth's default profile (rt_seccomp_default_json) is a DENY-LIST, default
 * action ALLOW: equivalent in effect to Docker's allow-list for every call
 * it names (keyctl, add_key, request_key, bpf, mount, umount2, unshare,
 * setns, kexec_*, (f)init_module, delete_module, the new mount API,
 * io_uring_*, namespace flags on clone, clone3 → ENOSYS so libcs fall back
 * to clone, AF_ALG and AF_VSOCK sockets, ptrace before 4.8, ...) but it
 * allows calls that Docker's allow-list does not know about. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <seccomp.h>

#include "runtime/rt-container-internal.h"

#define RT_BPF_MAX (4096 * sizeof(struct sock_filter))

/* ---- the default profile ------------------------------------------------- */
static const char *const denied_calls[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "syslog",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "vhangup",
    NULL,
};

static bool kernel_older_than(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma < major || (ma == major && mi < minor);
}

static json_t *deny_rule(const char *name, int errno_ret, int arg, uint64_t value, uint64_t value2,
                         const char *op)
{
	json_t *r = json_pack("{s:[s], s:s, s:i}", "names", name, "action", "SCMP_ACT_ERRNO",
	                      "errnoRet", errno_ret);

	if (op != NULL)
		json_object_set_new(r, "args",
		                    json_pack("[{s:i, s:I, s:I, s:s}]", "index", arg, "value",
		                              (json_int_t)value, "valueTwo", (json_int_t)value2,
		                              "op", op));
	return r;
}

static void add_arg_denials(json_t *calls)
{
	static const int clone_ns[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
	                               CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

	/* clone: arg 0 holds the flags on every arch berth runs on (s390 aside). */
	for (size_t i = 0; i < sizeof(clone_ns) / sizeof(clone_ns[0]); i++)
		json_array_append_new(calls,
		                      deny_rule("clone", EPERM, 0, (uint64_t)clone_ns[i],
		                                (uint64_t)clone_ns[i], "SCMP_CMP_MASKED_EQ"));
	json_array_append_new(calls, deny_rule("socket", EPERM, 0, AF_ALG, 0, "SCMP_CMP_EQ"));
	json_array_append_new(calls, deny_rule("socket", EPERM, 0, AF_VSOCK, 0, "SCMP_CMP_EQ"));
	/* clone3's flags are behind a pointer: refuse it with ENOSYS (Docker's
	 * choice), which makes glibc fall back to clone. */
	json_array_append_new(calls, deny_rule("clone3", ENOSYS, 0, 0, 0, NULL));
}

json_t *rt_seccomp_default_json(void)
{
	json_t *names = json_array(), *calls = json_array(), *arches;

	for (const char *const *n = denied_calls; *n; n++)
		json_array_append_new(names, json_string(*n));
	/* ptrace could escape seccomp before 4.8; process_vm_* and kcmp need it. */
	if (kernel_older_than(4, 8)) {
		json_array_append_new(names, json_string("ptrace"));
		json_array_append_new(names, json_string("process_vm_readv"));
		json_array_append_new(names, json_string("process_vm_writev"));
		json_array_append_new(names, json_string("kcmp"));
	}
	json_array_append_new(calls, json_pack("{s:o, s:s, s:i}", "names", names, "action",
	                                       "SCMP_ACT_ERRNO", "errnoRet", EPERM));
	add_arg_denials(calls);
#if defined(__x86_64__)
	arches = json_pack("[s,s,s]", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
#elif defined(__aarch64__)
	arches = json_pack("[s,s]", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM");
#else
	arches = json_array();
#endif
	return json_pack("{s:s, s:i, s:o, s:o}", "defaultAction", "SCMP_ACT_ALLOW",
	                 "defaultErrnoRet", EPERM, "architectures", arches, "syscalls", calls);
}

/* ---- compiling OCI seccomp ---------------------------------------------- */
static int parse_action(const char *name, json_t *rule, int dflt_errno, uint32_t *act)
{
	json_t *e = json_object_get(rule, "errnoRet");
	int eno = json_is_integer(e) ? (int)json_integer_value(e) : dflt_errno;

	if (name == NULL)
		return -1;
	if (strcmp(name, "SCMP_ACT_ALLOW") == 0)
		*act = SCMP_ACT_ALLOW;
	else if (strcmp(name, "SCMP_ACT_ERRNO") == 0)
		*act = SCMP_ACT_ERRNO(eno);
	else if (strcmp(name, "SCMP_ACT_KILL") == 0 || strcmp(name, "SCMP_ACT_KILL_THREAD") == 0)
		*act = SCMP_ACT_KILL;
	else if (strcmp(name, "SCMP_ACT_KILL_PROCESS") == 0)
		*act = SCMP_ACT_KILL_PROCESS;
	else if (strcmp(name, "SCMP_ACT_TRAP") == 0)
		*act = SCMP_ACT_TRAP;
	else if (strcmp(name, "SCMP_ACT_LOG") == 0)
		*act = SCMP_ACT_LOG;
	else if (strcmp(name, "SCMP_ACT_TRACE") == 0)
		*act = SCMP_ACT_TRACE(eno);
	else
		return -1;
	return 0;
}

static int parse_op(const char *op, enum scmp_compare *out)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
	    {"SCMP_CMP_NE", SCMP_CMP_NE},
	    {"SCMP_CMP_LT", SCMP_CMP_LT},
	    {"SCMP_CMP_LE", SCMP_CMP_LE},
	    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
	    {"SCMP_CMP_GE", SCMP_CMP_GE},
	    {"SCMP_CMP_GT", SCMP_CMP_GT},
	    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
	};

	for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0) {
			*out = ops[i].op;
			return 0;
		}
	return -1;
}

static int parse_args(json_t *args, struct scmp_arg_cmp *cmp, unsigned *n, struct bh_err *err)
{
	size_t i;
	json_t *a;

	*n = 0;
	if (json_array_size(args) > 6)
		return bh_err_set(err, EINVAL, "seccomp: more than 6 args in a rule");
	json_array_foreach(args, i, a)
	{
		enum scmp_compare op;
		if (parse_op(json_string_value(json_object_get(a, "op")), &op) < 0)
			return bh_err_set(err, EINVAL, "seccomp: bad op in args[%zu]", i);
		cmp[i].arg = (unsigned)json_integer_value(json_object_get(a, "index"));
		cmp[i].op = op;
		cmp[i].datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value"));
		cmp[i].datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo"));
		(*n)++;
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, json_t *rule, uint32_t dflt, int dflt_errno,
                    struct bh_err *err)
{
	struct scmp_arg_cmp cmp[6];
	json_t *names = json_object_get(rule, "names"), *n;
	uint32_t act;
	unsigned nargs;
	size_t i;

	if (parse_action(json_string_value(json_object_get(rule, "action")), rule, dflt_errno,
	                 &act) < 0)
		return bh_err_set(err, EINVAL, "seccomp: unknown action");
	if (parse_args(json_object_get(rule, "args"), cmp, &nargs, err) < 0)
		return -1;
	if (act == dflt)
		return 0;
	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(n);
		int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
		int rc;

		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown here (Docker's profiles list other arches' calls) */
		rc = seccomp_rule_add_array(ctx, act, nr, nargs, cmp);
		if (rc < 0)
			return bh_err_sys(err, -rc, "seccomp: rule for %s", name);
	}
	return 0;
}

static int add_arches(scmp_filter_ctx ctx, json_t *arches, struct bh_err *err)
{
	size_t i;
	json_t *a;

	json_array_foreach(arches, i, a)
	{
		const char *name = json_string_value(a);
		char lower[32];
		uint32_t arch;
		int rc;

		if (name == NULL || !bh_str_has_prefix(name, "SCMP_ARCH_") ||
		    bh_strlcpy(lower, name + 10, sizeof(lower)) < 0)
			return bh_err_set(err, EINVAL, "seccomp: bad architecture");
		for (char *p = lower; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		arch = seccomp_arch_resolve_name(lower);
		if (arch == 0)
			return bh_err_set(err, EINVAL, "seccomp: unknown architecture %s", name);
		rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)
			return bh_err_sys(err, -rc, "seccomp: add architecture %s", name);
	}
	return 0;
}

static int export_bpf(scmp_filter_ctx ctx, struct rt_seccomp_prog *p, struct bh_err *err)
{
	cleanup_close int fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
	off_t size;
	int rc;

	if (fd < 0)
		return bh_err_sys(err, errno, "seccomp: memfd_create");
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return bh_err_sys(err, -rc, "seccomp: export");
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || (size_t)size > RT_BPF_MAX || size % sizeof(struct sock_filter))
		return bh_err_set(err, E2BIG, "seccomp: program of %lld bytes", (long long)size);
	p->filter = bh_malloc((size_t)size);
	if (pread(fd, p->filter, (size_t)size, 0) != size)
		return bh_err_sys(err, EIO, "seccomp: read program");
	p->len = (unsigned short)(size / sizeof(struct sock_filter));
	return 0;
}

int rt_seccomp_compile(const struct rt_spec *s, struct rt_seccomp_prog *p, struct bh_err *err)
{
	json_t *dflt_errno_j, *rule;
	uint32_t dflt;
	int dflt_errno, rc = -1;
	scmp_filter_ctx ctx;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (s->seccomp == NULL)
		return 0;
	dflt_errno_j = json_object_get(s->seccomp, "defaultErrnoRet");
	dflt_errno = json_is_integer(dflt_errno_j) ? (int)json_integer_value(dflt_errno_j) : EPERM;
	if (parse_action(json_string_value(json_object_get(s->seccomp, "defaultAction")),
	                 s->seccomp, dflt_errno, &dflt) < 0)
		return bh_err_set(err, EINVAL, "seccomp: bad defaultAction");
	ctx = seccomp_init(dflt);
	if (ctx == NULL)
		return bh_err_set(err, ENOMEM, "seccomp: init");
	if (add_arches(ctx, json_object_get(s->seccomp, "architectures"), err) < 0)
		goto out;
	json_array_foreach(json_object_get(s->seccomp, "syscalls"), i,
	                   rule) if (add_rule(ctx, rule, dflt, dflt_errno, err) < 0) goto out;
	rc = export_bpf(ctx, p, err);
out:
	seccomp_release(ctx);
	return rc;
}

void rt_seccomp_prog_free(struct rt_seccomp_prog *p)
{
	free(p->filter);
	memset(p, 0, sizeof(*p));
}

int rt_seccomp_load(const struct rt_seccomp_prog *p, struct bh_err *err)
{
	struct sock_fprog prog = {.len = p->len, .filter = p->filter};

	if (p->len == 0)
		return 0;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return bh_err_sys(err, errno, "seccomp: load filter");
	return 0;
}
