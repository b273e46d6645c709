/* The config.json berthd starts from: Docker's defaults (moby's
 * oci/defaults.go), written from its documented behaviour. */
#include <string.h>

#include "runtime/rt-container-internal.h"

const char *const rt_caps_docker_default[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    NULL,
};

static json_t *str_list(const char *const *v)
{
	json_t *a = json_array();

	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *mount_entry(const char *dest, const char *type, const char *src,
                           const char *const *opts)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", src,
	                 "options", str_list(opts));
}

static json_t *default_mounts(void)
{
	static const char *const proc[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
	static const char *const pts[] = {"nosuid",    "noexec", "newinstance", "ptmxmode=0666",
	                                  "mode=0620", "gid=5",  NULL};
	static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro", NULL};
	static const char *const mq[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const shm[] = {"nosuid",    "noexec",        "nodev",
	                                  "mode=1777", "size=67108864", NULL};
	json_t *m = json_array();

	json_array_append_new(m, mount_entry("/proc", "proc", "proc", proc));
	json_array_append_new(m, mount_entry("/dev", "tmpfs", "tmpfs", dev));
	json_array_append_new(m, mount_entry("/dev/pts", "devpts", "devpts", pts));
	json_array_append_new(m, mount_entry("/sys", "sysfs", "sysfs", sys));
	json_array_append_new(m, mount_entry("/sys/fs/cgroup", "cgroup", "cgroup", sys));
	json_array_append_new(m, mount_entry("/dev/mqueue", "mqueue", "mqueue", mq));
	json_array_append_new(m, mount_entry("/dev/shm", "tmpfs", "shm", shm));
	return m;
}

static json_t *dev_rule(bool allow, const char *type, int major, int minor, const char *access)
{
	json_t *r = json_pack("{s:b, s:s, s:s}", "allow", allow, "type", type, "access", access);

	if (major >= 0)
		json_object_set_new(r, "major", json_integer(major));
	if (minor >= 0)
		json_object_set_new(r, "minor", json_integer(minor));
	return r;
}

/* Docker's device cgroup: nothing but mknod anywhere and the devices of a
 * minimal /dev (without this, CAP_MKNOD opens the host's disks). */
static json_t *default_devices(void)
{
	static const struct {
		int major, minor;
	} allowed[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}};
	json_t *d = json_array();

	json_array_append_new(d, dev_rule(false, "a", -1, -1, "rwm"));
	json_array_append_new(d, dev_rule(true, "c", -1, -1, "m"));
	json_array_append_new(d, dev_rule(true, "b", -1, -1, "m"));
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		json_array_append_new(
		    d, dev_rule(true, "c", allowed[i].major, allowed[i].minor, "rwm"));
	return d;
}

static json_t *default_linux(void)
{
	static const char *const masked[] = {
	    "/proc/asound",
	    "/proc/acpi",
	    "/proc/interrupts",
	    "/proc/kcore",
	    "/proc/keys",
	    "/proc/latency_stats",
	    "/proc/timer_list",
	    "/proc/timer_stats",
	    "/proc/sched_debug",
	    "/proc/scsi",
	    "/sys/firmware",
	    "/sys/devices/virtual/powercap",
	    NULL,
	};
	static const char *const ro[] = {
	    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};
	static const char *const ns[] = {"pid", "ipc", "uts", "mount", "network", "cgroup", NULL};
	json_t *nss = json_array();

	for (const char *const *n = ns; *n; n++)
		json_array_append_new(nss, json_pack("{s:s}", "type", *n));
	return json_pack("{s:o, s:o, s:o, s:o, s:{s:o}}", "namespaces", nss, "maskedPaths",
	                 str_list(masked), "readonlyPaths", str_list(ro), "seccomp",
	                 rt_seccomp_default_json(), "resources", "devices", default_devices());
}

json_t *rt_spec_default(const char *const *args)
{
	static const char *const sh[] = {"sh", NULL};
	static const char *const env[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	json_t *caps = json_pack("{s:o, s:o, s:o}", "bounding", str_list(rt_caps_docker_default),
	                         "effective", str_list(rt_caps_docker_default), "permitted",
	                         str_list(rt_caps_docker_default));
	json_t *process =
	    json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:b}", "terminal", 0, "user", "uid",
	              0, "gid", 0, "args", str_list(args ? args : sh), "env", str_list(env), "cwd",
	              "/", "capabilities", caps, "noNewPrivileges", 1);

	return json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2",
	                 "process", process, "root", "path", "rootfs", "readonly", 0, "hostname",
	                 "berth", "mounts", default_mounts(), "linux", default_linux());
}

/* Docker's HostConfig → linux.resources: NanoCpus becomes a CFS quota over a
 * 100 ms period (cpu.max on v2), as dockerd does. */
void rt_spec_set_resources(json_t *spec, int64_t memory, int64_t memory_swap, int64_t nano_cpus,
                           int64_t cpu_shares, int64_t pids_limit)
{
	json_t *linux_ = json_object_get(spec, "linux"),
	       *res = json_object_get(linux_, "resources");
	json_t *mem = json_object(), *cpu = json_object();

	if (!json_is_object(res)) {
		res = json_object();
		json_object_set_new(linux_, "resources", res);
	}
	if (memory > 0)
		json_object_set_new(mem, "limit", json_integer(memory));
	if (memory_swap != 0)
		json_object_set_new(mem, "swap", json_integer(memory_swap));
	if (nano_cpus > 0) {
		int64_t quota = nano_cpus * 100000 / 1000000000;
		json_object_set_new(cpu, "period", json_integer(100000));
		json_object_set_new(cpu, "quota", json_integer(quota < 1000 ? 1000 : quota));
	}
	if (cpu_shares > 0)
		json_object_set_new(cpu, "shares", json_integer(cpu_shares));
	json_object_set_new(res, "memory", mem);
	json_object_set_new(res, "cpu", cpu);
	if (pids_limit != 0)
		json_object_set_new(res, "pids",
		                    json_pack("{s:I}", "limit", (json_int_t)pids_limit));
}
