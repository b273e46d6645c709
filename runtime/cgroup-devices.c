/* Device access for containers (linux.resources.devices).  Without it a
 * container holding CAP_MKNOD (one of Docker's 14) could mknod and open the
 * host's disks.  v1: the devices controller's allow/deny files.  v2: a
 * BPF_PROG_TYPE_CGROUP_DEVICE program generated from the rules. */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "runtime/rt-container-internal.h"

#define RT_DEV_RULES_MAX 256

static int write_rule(const char *dir, const struct rt_dev_rule *r, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(dir, r->allow ? "devices.allow" : "devices.deny");
	char maj[24] = "*", min[24] = "*", acc[4] = "", line[80];
	size_t n = 0;
	FILE *f;
	int rc;

	if (r->major >= 0)
		snprintf(maj, sizeof(maj), "%lld", (long long)r->major);
	if (r->minor >= 0)
		snprintf(min, sizeof(min), "%lld", (long long)r->minor);
	if (r->access & BPF_DEVCG_ACC_READ)
		acc[n++] = 'r';
	if (r->access & BPF_DEVCG_ACC_WRITE)
		acc[n++] = 'w';
	if (r->access & BPF_DEVCG_ACC_MKNOD)
		acc[n++] = 'm';
	snprintf(line, sizeof(line), "%c %s:%s %s", r->type, maj, min, acc);
	f = fopen(path, "we");
	if (f == NULL)
		return bh_err_sys(err, errno, "cgroup: open %s", path);
	rc = fputs(line, f);
	if (fclose(f) != 0 || rc < 0)
		return bh_err_sys(err, errno, "cgroup: write \"%s\" to %s", line, path);
	return 0;
}

int rt_devices_v1_apply(const struct rt_spec *s, const char *dir, struct bh_err *err)
{
	for (size_t i = 0; i < s->n_dev_rules; i++)
		if (write_rule(dir, &s->dev_rules[i], err) < 0)
			return -1;
	return 0;
}

/* ---- v2: the BPF program ----------------------------------------------------
 * r1 = struct bpf_cgroup_dev_ctx *.  Loads type, access, major, minor into
 * r3..r6, then tests the rules from the last to the first: the first that
 * matches decides.  No match: deny. */
#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(d, s, o)   INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_REG(d, s)    INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i)    INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i)    INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH_IMM(d, i)    INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT()           INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static size_t rule_len(const struct rt_dev_rule *r)
{
	return 2 + (r->type != 'a') + (r->access != 7 ? 3 : 0) + (r->major >= 0) + (r->minor >= 0);
}

static size_t emit_rule(struct bpf_insn *p, const struct rt_dev_rule *r)
{
	size_t n = 0, len = rule_len(r);

	/* each jump skips to the end of this rule: off = len - (index + 1) */
	if (r->type != 'a') {
		p[n] = JNE_IMM(3, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
		p[n].off = (short)(len - n - 1);
		n++;
	}
	if (r->access != 7) { /* the request must ask for nothing outside the rule */
		p[n++] = MOV_REG(7, 4);
		p[n++] = AND_IMM(7, (int)(~r->access & 7));
		p[n] = JNE_IMM(7, 0, 0);
		p[n].off = (short)(len - n - 1);
		n++;
	}
	if (r->major >= 0) {
		p[n] = JNE_IMM(5, (int)r->major, 0);
		p[n].off = (short)(len - n - 1);
		n++;
	}
	if (r->minor >= 0) {
		p[n] = JNE_IMM(6, (int)r->minor, 0);
		p[n].off = (short)(len - n - 1);
		n++;
	}
	p[n++] = MOV_IMM(0, r->allow ? 1 : 0);
	p[n++] = EXIT();
	return n;
}

static size_t build_prog(const struct rt_dev_rule *rules, size_t n, struct bpf_insn *p)
{
	size_t k = 0;

	p[k++] = LDX_W(2, 1, 0); /* access_type */
	p[k++] = MOV_REG(3, 2);
	p[k++] = AND_IMM(3, 0xffff); /* type */
	p[k++] = MOV_REG(4, 2);
	p[k++] = RSH_IMM(4, 16); /* access */
	p[k++] = LDX_W(5, 1, 4); /* major */
	p[k++] = LDX_W(6, 1, 8); /* minor */
	for (size_t i = n; i-- > 0;) {
		k += emit_rule(p + k, &rules[i]);
		if (rule_len(&rules[i]) == 2)
			return k; /* matches everything: the rest is unreachable */
	}
	p[k++] = MOV_IMM(0, 0);
	p[k++] = EXIT();
	return k;
}

/* Loads without a verifier log first: a log that does not fit its buffer
 * fails the load with ENOSPC.  Only a failed load is retried with a log. */
static int load_prog(const struct bpf_insn *prog, size_t n, struct bh_err *err)
{
	char log[4096] = "";
	union bpf_attr attr;
	int fd, e;

	for (int with_log = 0; with_log < 2; with_log++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
		attr.insn_cnt = (uint32_t)n;
		attr.insns = (uint64_t)(uintptr_t)prog;
		attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
		if (with_log) {
			attr.log_buf = (uint64_t)(uintptr_t)log;
			attr.log_size = sizeof(log);
			attr.log_level = 1;
		}
		fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
		if (fd >= 0)
			return fd;
		e = errno;
		if (e != EINVAL && e != EACCES)
			break; /* not the verifier's verdict: a log would not help */
	}
	return bh_err_sys(err, e, "devices: load BPF program%s%.200s", log[0] ? ": " : "", log);
}

int rt_devices_bpf_attach(const struct rt_dev_rule *rules, size_t n, int cgroup_fd,
                          struct bh_err *err)
{
	struct bpf_insn prog[9 + RT_DEV_RULES_MAX * 9];
	union bpf_attr attr;
	int fd;

	if (n == 0)
		return 0;
	if (n > RT_DEV_RULES_MAX)
		return bh_err_set(err, E2BIG, "devices: more than %d rules", RT_DEV_RULES_MAX);
	fd = load_prog(prog, build_prog(rules, n, prog), err);
	if (fd < 0)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(fd);
		return bh_err_sys(err, e, "devices: attach BPF program");
	}
	close(fd); /* the attachment keeps the program */
	return 0;
}
