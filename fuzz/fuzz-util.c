/* See fuzz-util.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "fuzz/fuzz-util.h"

static char *tmpdir;

static void remove_tmpdir(void)
{
	struct bh_err err;

	if (tmpdir != NULL && bh_rm_rf(tmpdir, &err) < 0)
		fprintf(stderr, "fuzz: %s\n", err.msg);
	free(tmpdir);
	tmpdir = NULL;
}

const char *fz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (tmpdir != NULL)
		return tmpdir;
	tmpdir = bh_asprintf("%s/berth-fuzz-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(remove_tmpdir);
	return tmpdir;
}

char *fz_path(const char *name)
{
	return bh_path_join(fz_tmpdir(), name);
}

void fz_write_file(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = data;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}
