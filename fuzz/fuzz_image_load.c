/* libFuzzer target: whole image tars through the loader (rt_image_load into
 * a fresh store per run): the docker-archive manifest.json, OCI index.json,
 * nested indexes, manifests, image configs and their layers, then listing
 * and inspecting what loaded.  On failure nothing may be registered.
 *
 * Input: [mode byte] then sections separated by "\n--\n".
 *   mode % 3 == 0: section 0 is manifest.json (docker-archive)
 *   mode % 3 == 1: section 0 is index.json (OCI layout, with oci-layout)
 *   mode % 3 == 2: the rest of the input is the outer tar itself
 * Sections 1..9 are blobs stored as blobs/sha256/<their sha256>.  "@N" in a
 * section is replaced by the hex digest of section N (N > the section's own
 * number, digests are computed from the last section back), so inputs can
 * name each other's digests; a layer tar's diff id is its own digest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fuzz/fuzz-util.h"
#include "runtime/rt-image-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SECTIONS 10
#define SEP          "\n--\n"
#define TAR_MAX      (4u << 20)

struct section {
	char *data;
	size_t len;
	char hex[65];
};

static void die(const char *what, const struct bh_err *err)
{
	fprintf(stderr, "fuzz_image_load: %s: %s\n", what, err ? err->msg : "");
	abort();
}

/* Splits data into at most MAX_SECTIONS sections (copies). */
static size_t split(const uint8_t *data, size_t size, struct section *sec)
{
	size_t n = 0;

	while (n < MAX_SECTIONS) {
		const uint8_t *sep = n + 1 < MAX_SECTIONS ? memmem(data, size, SEP, 4) : NULL;
		size_t len = sep ? (size_t)(sep - data) : size;
		sec[n].data = bh_malloc(len + 1);
		memcpy(sec[n].data, data, len);
		sec[n].len = len;
		n++;
		if (sep == NULL)
			break;
		data += len + 4;
		size -= len + 4;
	}
	return n;
}

/* Replaces "@N" (N > self) by section N's digest. */
static void substitute(struct section *sec, size_t n, size_t self)
{
	struct bh_buf out;
	struct section *s = &sec[self];

	bh_buf_init(&out, s->len * 32 + 1);
	for (size_t i = 0; i < s->len; i++) {
		size_t k = i + 1 < s->len ? (size_t)(s->data[i + 1] - '0') : 0;
		if (s->data[i] == '@' && k > self && k < n) {
			bh_buf_append(&out, sec[k].hex, 64);
			i++;
		} else {
			bh_buf_append(&out, &s->data[i], 1);
		}
	}
	free(s->data);
	s->data = out.data ? out.data : bh_strdup("");
	s->len = out.len;
}

static void add_member(struct archive *a, const char *name, const void *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, data, len) != (la_ssize_t)len)
		die("write tar", NULL);
	archive_entry_free(e);
}

/* The outer tar of sections, in a new buffer of *len bytes. */
static char *build_tar(struct section *sec, size_t n, bool oci, size_t *len)
{
	struct archive *a = archive_write_new();
	char *buf = bh_malloc(TAR_MAX);
	char name[96];

	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_memory(a, buf, TAR_MAX, len) != ARCHIVE_OK)
		die("open tar", NULL);
	for (size_t i = 1; i < n; i++) {
		snprintf(name, sizeof(name), "blobs/sha256/%s", sec[i].hex);
		add_member(a, name, sec[i].data, sec[i].len);
	}
	if (oci)
		add_member(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	add_member(a, oci ? "index.json" : "manifest.json", sec[0].data, sec[0].len);
	archive_write_close(a);
	archive_write_free(a);
	return buf;
}

static int memfd_of(const void *data, size_t len)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	const char *p = data;

	if (fd < 0)
		die("memfd_create", NULL);
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			die("write memfd", NULL);
		p += w;
		len -= (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* What loaded can be resolved, inspected and listed. */
static void check_loaded(struct rt_store *s, char **loaded)
{
	struct bh_err err = {0};
	char id[RT_IMAGE_ID_LEN];
	json_t *j = NULL;

	for (char **p = loaded; *p; p++) {
		if (rt_image_resolve(s, *p, id, &err) < 0)
			die("loaded image does not resolve", &err);
		if (rt_image_inspect(s, id, &j, &err) < 0)
			die("loaded image does not inspect", &err);
		json_decref(j);
	}
	/* An empty manifest.json ("[]") loads nothing and succeeds, as in Docker. */
	if (rt_image_list(s, &j, &err) < 0 || (loaded[0] != NULL && json_array_size(j) == 0))
		die("loaded image not listed", &err);
	json_decref(j);
}

static void check_nothing(struct rt_store *s)
{
	struct bh_err err = {0};
	json_t *j = NULL;

	if (rt_image_list(s, &j, &err) < 0 || json_array_size(j) != 0)
		die("a failed load registered an image", &err);
	json_decref(j);
}

static void load(const char *tar, size_t len)
{
	static char *root;
	struct rt_store *s = NULL;
	struct bh_err err = {0};
	char **loaded = NULL;
	int fd = memfd_of(tar, len);

	if (root == NULL)
		root = fz_path("data");
	if (rt_store_open(root, &s, &err) < 0)
		die("store", &err);
	if (rt_image_load(s, fd, "fuzz.tar", &loaded, &err) == 0)
		check_loaded(s, loaded);
	else
		check_nothing(s);
	if (getenv("BERTH_FUZZ_VERBOSE")) /* to see how far a seed gets */
		fprintf(stderr, "load: %s\n", loaded ? loaded[0] : err.msg);
	rt_image_strv_free(loaded);
	rt_store_close(s);
	close(fd);
	if (bh_rm_rf(root, &err) < 0)
		die("cleanup", &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct section sec[MAX_SECTIONS];
	size_t n, len = 0;
	char *tar;

	if (size < 1 || size > TAR_MAX / 2)
		return 0;
	if (data[0] % 3 == 2) {
		load((const char *)data + 1, size - 1);
		return 0;
	}
	n = split(data + 1, size - 1, sec);
	for (size_t i = n; i-- > 0;) {
		substitute(sec, n, i);
		rt_store_sha256_hex(sec[i].data, sec[i].len, sec[i].hex);
	}
	tar = build_tar(sec, n, data[0] % 3 == 1, &len);
	load(tar, len);
	free(tar);
	for (size_t i = 0; i < n; i++)
		free(sec[i].data);
	return 0;
}
