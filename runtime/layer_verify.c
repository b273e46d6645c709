/* A layer blob (any compression) unpacked and checked in one pass: the
 * decompressed stream is hashed on its way to the tar reader, so the diff id
 * covers exactly the bytes that were unpacked.  Shared by load and pull. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-image-internal.h"

#define READ_BLOCK 65536

struct hashed {
	struct archive *raw;
	struct rt_sha256 *h;
	uint64_t n, max;
	int keep_fd; /* the kept uncompressed layer tar, or -1 */
	char buf[READ_BLOCK];
};

static la_ssize_t hashed_read(struct archive *a, void *cd, const void **buf)
{
	struct hashed *x = cd;
	la_ssize_t r = archive_read_data(x->raw, x->buf, sizeof(x->buf));

	if (r < 0) {
		archive_set_error(a, EIO, "%s", archive_error_string(x->raw));
		return -1;
	}
	x->n += (uint64_t)r;
	if (x->n > x->max) {
		/* decompression bomb: the limit counts decompressed bytes */
		archive_set_error(a, EFBIG, "decompressed layer larger than %llu bytes",
		                  (unsigned long long)x->max);
		return -1;
	}
	rt_store_sha256_update(x->h, x->buf, (size_t)r);
	if (x->keep_fd >= 0 && r > 0 && bh_write_all(x->keep_fd, x->buf, (size_t)r) < 0) {
		archive_set_error(a, errno, "keep layer tar: %s", strerror(errno));
		return -1;
	}
	*buf = x->buf;
	return r;
}

static int unpack_stream(struct hashed *x, int rootfd, uint64_t *size, struct bh_err *err)
{
	struct archive *tar = archive_read_new();
	struct rt_layer_limits lim;
	const void *p;
	la_ssize_t n = 0;
	int r;

	rt_layer_limits_default(&lim);
	x->max = lim.max_bytes + (1ULL << 30); /* contents plus tar headers */
	archive_read_support_format_tar(tar);
	if (archive_read_open(tar, x, NULL, hashed_read, NULL) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "layer: %s", archive_error_string(tar));
	else
		r = rt_layer_unpack(rootfd, tar, &lim, size, err);
	archive_read_free(tar);
	/* Hash the tar's trailing padding too: the diff id covers every byte. */
	while (r == 0 && (n = hashed_read(x->raw, x, &p)) > 0)
		;
	if (r == 0 && n < 0)
		r = bh_err_set(err, EIO, "layer: %s", archive_error_string(x->raw));
	return r;
}

int rt_layer_unpack_verified(const char *file, int rootfd, const char *diff_hex,
                             const char *keep, uint64_t *size, struct bh_err *err)
{
	struct hashed *x = bh_calloc(1, sizeof(*x));
	struct archive_entry *e;
	char got[65];
	int r;

	x->keep_fd = -1;
	if (keep)
		x->keep_fd = open(keep, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	x->raw = archive_read_new();
	x->h = rt_store_sha256_new();
	archive_read_support_filter_all(x->raw);
	archive_read_support_format_raw(x->raw);
	if (archive_read_open_filename(x->raw, file, READ_BLOCK) != ARCHIVE_OK ||
	    archive_read_next_header(x->raw, &e) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "layer: %s", archive_error_string(x->raw));
	else
		r = unpack_stream(x, rootfd, size, err);
	rt_store_sha256_final(x->h, got);
	archive_read_free(x->raw);
	if (x->keep_fd >= 0)
		close(x->keep_fd);
	free(x);
	if (r == 0 && strcmp(got, diff_hex) != 0)
		r = bh_err_set(err, EINVAL, "content has diff id sha256:%s, config says sha256:%s",
		               got, diff_hex);
	return r;
}
