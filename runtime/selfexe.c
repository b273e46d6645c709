/* CVE-2019-5736: a container whose init execs "#!/proc/self/exe" runs the
 * runtime's own binary inside the container and can then reopen it for
 * writing through /proc/<pid>/exe, replacing the host's runtime.  Defence:
 * the runtime re-executes itself from a sealed memfd copy before it starts
 * any container, so /proc/self/exe is never the file on the host. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt-container-internal.h"

#define RT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

static int steal_fd(int *fd)
{
	int v = *fd;

	*fd = -1;
	return v;
}

bool rt_selfexe_is_sealed(void)
{
	cleanup_close int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int seals;

	if (fd < 0)
		return false;
	seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & RT_SEALS) == RT_SEALS;
}

static int copy_file(const char *path, int dst, struct bh_err *err)
{
	cleanup_close int src = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	off_t off = 0;

	if (src < 0 || fstat(src, &st) < 0)
		return bh_err_sys(err, errno, "open %s", path);
	while (off < st.st_size) {
		ssize_t n = sendfile(dst, src, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return bh_err_sys(err, n < 0 ? errno : EIO, "copy %s", path);
	}
	return 0;
}

int rt_sealed_copy(const char *path, int *out, struct bh_err *err)
{
	cleanup_close int fd = memfd_create("berth-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return bh_err_sys(err, errno, "memfd_create");
	if (copy_file(path, fd, err) < 0)
		return -1;
	if (fcntl(fd, F_ADD_SEALS, RT_SEALS) < 0)
		return bh_err_sys(err, errno, "seal the copy of %s", path);
	*out = steal_fd(&fd);
	return 0;
}

int rt_selfexe_ensure_sealed(char **argv, struct bh_err *err)
{
	cleanup_close int fd = -1;

	if (rt_selfexe_is_sealed())
		return 0;
	if (rt_sealed_copy("/proc/self/exe", &fd, err) < 0)
		return -1;
	fexecve(fd, argv, environ);
	return bh_err_sys(err, errno, "re-exec from the sealed copy");
}
