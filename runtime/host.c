/* Host facts: uname, os-release, sysinfo and the cgroup layout. */
#include <errno.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/magic.h>

#include "runtime/runtime.h"

const char *rt_arch_from_machine(const char *machine)
{
	static const struct {
		const char *uname, *oci;
	} map[] = {
		{"x86_64", "amd64"}, {"aarch64", "arm64"}, {"armv7l", "arm"},
		{"i686", "386"},     {"ppc64le", "ppc64le"}, {"s390x", "s390x"},
		{"riscv64", "riscv64"},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(machine, map[i].uname) == 0)
			return map[i].oci;
	return machine;
}

static void read_os_name(char *out, size_t size)
{
	cleanup_fclose FILE *f = fopen("/etc/os-release", "re");
	char line[512];

	bh_strlcpy(out, "Linux", size);
	if (f == NULL)
		f = fopen("/usr/lib/os-release", "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v, *end;
		if (!bh_str_has_prefix(line, "PRETTY_NAME="))
			continue;
		v = line + strlen("PRETTY_NAME=");
		if (*v == '"')
			v++;
		end = v + strcspn(v, "\"\n");
		*end = '\0';
		bh_strlcpy(out, v, size);
		return;
	}
}

int rt_host_info_get(struct rt_host_info *info, struct bh_err *err)
{
	struct utsname u;
	struct sysinfo si;
	struct statfs sfs;

	memset(info, 0, sizeof(*info));
	if (uname(&u) < 0)
		return bh_err_sys(err, errno, "uname");
	bh_strlcpy(info->hostname, u.nodename, sizeof(info->hostname));
	bh_strlcpy(info->kernel_version, u.release, sizeof(info->kernel_version));
	bh_strlcpy(info->arch, rt_arch_from_machine(u.machine), sizeof(info->arch));
	bh_strlcpy(info->os_type, "linux", sizeof(info->os_type));
	read_os_name(info->os_name, sizeof(info->os_name));
	info->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (sysinfo(&si) == 0)
		info->mem_total = (int64_t)si.totalram * si.mem_unit;
	bh_strlcpy(info->cgroup_version,
		   statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC ? "2"
											: "1",
		   sizeof(info->cgroup_version));
	bh_strlcpy(info->cgroup_driver, "cgroupfs", sizeof(info->cgroup_driver));
	return 0;
}
