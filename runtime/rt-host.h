/* Facts about the host for GET /info and GET /version. */
#ifndef BERTH_RT_HOST_H
#define BERTH_RT_HOST_H

#include <stdint.h>

#include "common/common.h"

struct rt_host_info {
	char hostname[256];
	char kernel_version[128]; /* uname -r */
	char os_name[128]; /* PRETTY_NAME from os-release */
	char os_type[16]; /* "linux" */
	char arch[32]; /* Go/OCI naming: amd64, arm64, ... */
	int ncpu;
	int64_t mem_total; /* bytes */
	char cgroup_version[4]; /* "1" or "2" */
	char cgroup_driver[16]; /* "cgroupfs" */
};

int rt_host_info_get(struct rt_host_info *info, struct bh_err *err);
/* Maps uname's machine ("x86_64") to the OCI architecture name ("amd64"). */
const char *rt_arch_from_machine(const char *machine);

#endif
