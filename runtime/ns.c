/* Namespaces: the table of OCI names, joining existing ones by path and the
 * UTS hostname.  The new ones are created by clone() in container.c. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "runtime/rt-container-internal.h"

const struct rt_ns_type rt_ns_types[8] = {
    {"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET},
    {"mount", CLONE_NEWNS},      {"ipc", CLONE_NEWIPC},
    {"uts", CLONE_NEWUTS},       {"user", CLONE_NEWUSER},
    {"cgroup", CLONE_NEWCGROUP}, {"time", 0},
};

int rt_ns_join(const struct rt_spec *s, struct bh_err *err)
{
	for (int k = 0; k < 8; k++) {
		int fd;

		if (s->ns_path[k] == NULL)
			continue;
		fd = open(s->ns_path[k], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return bh_err_sys(err, errno, "open %s namespace %s", rt_ns_types[k].name,
			                  s->ns_path[k]);
		if (setns(fd, rt_ns_types[k].flag) < 0) {
			int e = errno;
			close(fd);
			return bh_err_sys(err, e, "join %s namespace %s", rt_ns_types[k].name,
			                  s->ns_path[k]);
		}
		close(fd);
	}
	return 0;
}

int rt_ns_set_hostname(const struct rt_spec *s, struct bh_err *err)
{
	if (s->hostname == NULL || s->hostname[0] == '\0')
		return 0;
	if (!(s->clone_flags & CLONE_NEWUTS) && s->ns_path[4] == NULL)
		return bh_err_set(err, EINVAL, "hostname set without a uts namespace");
	if (sethostname(s->hostname, strlen(s->hostname)) < 0)
		return bh_err_sys(err, errno, "sethostname %s", s->hostname);
	return 0;
}

/* A new network namespace starts with lo down; Docker's containers (even
 * with --network none) have it up.  Other interfaces are berthd's step. */
int rt_ns_loopback_up(const struct rt_spec *s, struct bh_err *err)
{
	struct ifreq ifr;
	int fd;

	if (!(s->clone_flags & CLONE_NEWNET))
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bh_err_sys(err, errno, "loopback: socket");
	memset(&ifr, 0, sizeof(ifr));
	bh_strlcpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name));
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(fd);
	return 0;
fail:
	bh_err_sys(err, errno, "bring up lo");
	close(fd);
	return -1;
}
