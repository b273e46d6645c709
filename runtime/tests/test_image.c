/* Image store, loader and layer unpacker.  Needs root (ownership, device
 * nodes, overlay whiteouts) and the test image built by make-test-image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/runtime.h"
#include "runtime/rt-image-internal.h"

#ifndef BERTH_TEST_IMAGE
#error "BERTH_TEST_IMAGE must name build/images/busybox.tar"
#endif

struct fixture {
	char dir[64]; /* temp dir: data/, outside/, layer/, files */
	char *data_root;
	struct rt_store *s;
};

/* ---- helpers ------------------------------------------------------------ */

enum kind { F, D, L, H, C };
struct ent {
	const char *name;
	enum kind kind;
	const char *data; /* file content, or link target */
	int mode;
};

static void add_entry(struct archive *w, const struct ent *e)
{
	struct archive_entry *ae = archive_entry_new();
	size_t len = e->kind == F && e->data ? strlen(e->data) : 0;

	archive_entry_set_pathname(ae, e->name);
	archive_entry_set_mtime(ae, 0, 0);
	archive_entry_set_perm(ae, e->mode ? e->mode : (e->kind == D ? 0755 : 0644));
	switch (e->kind) {
	case F:
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_size(ae, len);
		break;
	case D:
		archive_entry_set_filetype(ae, AE_IFDIR);
		break;
	case L:
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_symlink(ae, e->data);
		break;
	case H:
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_hardlink(ae, e->data);
		break;
	case C:
		archive_entry_set_filetype(ae, AE_IFCHR);
		archive_entry_set_rdev(ae, makedev(1, 3));
		break;
	}
	assert_true(archive_write_header(w, ae) >=
	            ARCHIVE_WARN); /* WARN: non-ASCII name in the C locale */
	if (len)
		assert_int_equal(archive_write_data(w, e->data, len), (la_ssize_t)len);
	archive_entry_free(ae);
}

/* A tar of ents in memory (gzip'd if asked); caller frees. */
/* filter: NULL, "gzip" or "zstd". */
static char *make_tar(const struct ent *ents, size_t n, const char *filter, size_t *len)
{
	size_t cap = 1 << 20;
	char *buf = bh_malloc(cap);
	struct archive *w = archive_write_new();

	archive_write_set_format_pax_restricted(w);
	if (filter)
		assert_int_equal(archive_write_add_filter_by_name(w, filter), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(w, buf, cap, len), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++)
		add_entry(w, &ents[i]);
	assert_int_equal(archive_write_close(w), ARCHIVE_OK);
	archive_write_free(w);
	return buf;
}

/* Named members with binary content, written to path. */
struct member {
	const char *name;
	const char *data;
	size_t len;
};

static void write_members(const char *path, const struct member *m, size_t n)
{
	struct archive *w = archive_write_new();

	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, m[i].name);
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, (la_int64_t)m[i].len);
		assert_int_equal(archive_write_header(w, ae), ARCHIVE_OK);
		assert_int_equal(archive_write_data(w, m[i].data, m[i].len), (la_ssize_t)m[i].len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(w), ARCHIVE_OK);
	archive_write_free(w);
}

/* A docker-archive at path holding one image whose config declares the
 * diff id of declared (or of layer when declared is NULL). */
static void make_image(const char *path, const char *tag, const char *layer, size_t len,
                       const char *declared, size_t dlen)
{
	char hex[65];
	cleanup_free char *config = NULL, *manifest = NULL;

	rt_store_sha256_hex(declared ? declared : layer, declared ? dlen : len, hex);
	config = bh_asprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":"
	                     "\"2024-01-02T03:04:05Z\",\"config\":{\"Cmd\":[\"%s\"]},"
	                     "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}",
	                     tag, hex);
	manifest = bh_asprintf("[{\"Config\":\"config.json\",\"RepoTags\":[\"%s\"],"
	                       "\"Layers\":[\"layer/layer.tar\"]}]",
	                       tag);
	struct member m[] = {
	    {"layer/layer.tar", layer, len},
	    {"config.json", config, strlen(config)},
	    {"manifest.json", manifest, strlen(manifest)},
	};
	write_members(path, m, 3);
}

static char *fpath(struct fixture *f, const char *name)
{
	return bh_path_join(f->dir, name);
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static size_t store_count(struct fixture *f, const char *sub)
{
	cleanup_free char *p = bh_path_join(rt_store_path(f->s), sub);

	return count_dir(p);
}

/* Nothing registered: no image, no layer dir, no tag, no temp leftovers. */
static void assert_store_empty(struct fixture *f)
{
	json_t *list = NULL;
	struct bh_err err;

	assert_int_equal(store_count(f, "layers/sha256"), 0);
	assert_int_equal(store_count(f, "imagedb/sha256"), 0);
	assert_int_equal(store_count(f, "tmp"), 0);
	assert_int_equal(rt_image_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

static void run_script(const char *out, const char *format)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl(BERTH_MAKE_TEST_IMAGE, BERTH_MAKE_TEST_IMAGE, out, format ? "--format" : NULL,
		      format, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void file_sha256(const char *path, char hex[65])
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	struct bh_err err;

	assert_int_equal(bh_read_file(path, 64 << 20, &data, &len, &err), 0);
	rt_store_sha256_hex(data, len, hex);
}

/* One member of a tar file, NUL-terminated; caller frees. */
static char *tar_member(const char *path, const char *name, size_t *len)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char *out = NULL;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (out == NULL && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		size_t n = (size_t)archive_entry_size(e);
		if (strcmp(archive_entry_pathname(e), name) != 0)
			continue;
		out = bh_malloc(n + 1);
		assert_int_equal(archive_read_data(a, out, n), (la_ssize_t)n);
		out[n] = '\0';
		*len = n;
	}
	archive_read_free(a);
	assert_non_null(out);
	return out;
}

/* The id busybox.tar should load as, found without the loader: the sha256
 * of the config that its manifest.json names. */
static void expected_id(char id[RT_IMAGE_ID_LEN])
{
	size_t len;
	cleanup_free char *manifest = tar_member(BERTH_TEST_IMAGE, "manifest.json", &len);
	json_t *j = json_loads(manifest, 0, NULL);
	const char *cfg = json_string_value(json_object_get(json_array_get(j, 0), "Config"));
	cleanup_free char *config = tar_member(BERTH_TEST_IMAGE, cfg, &len);
	char hex[65];

	rt_store_sha256_hex(config, len, hex);
	snprintf(id, RT_IMAGE_ID_LEN, "sha256:%s", hex);
	json_decref(j);
}

/* Sum of regular-file sizes below dir (what Size should report). */
static uint64_t tree_size(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;
	uint64_t n = 0;
	struct stat st;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		assert_int_equal(fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		if (S_ISREG(st.st_mode))
			n += (uint64_t)st.st_size;
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			n += tree_size(fd);
			close(fd);
		}
	}
	closedir(d);
	return n;
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
	struct fixture *f = bh_calloc(1, sizeof(*f));
	struct bh_err err;
	cleanup_free char *outside = NULL, *sentinel = NULL, *layer = NULL;

	bh_strlcpy(f->dir, "/tmp/berth-test-image-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	f->data_root = fpath(f, "data");
	outside = fpath(f, "outside");
	sentinel = fpath(f, "outside/sentinel");
	layer = fpath(f, "layer");
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(mkdir(layer, 0755), 0);
	assert_int_equal(bh_write_file_atomic(sentinel, "host", 4, 0644, &err), 0);
	assert_int_equal(rt_store_open(f->data_root, &f->s, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct bh_err err;

	rt_store_close(f->s);
	assert_int_equal(bh_rm_rf(f->dir, &err), 0);
	free(f->data_root);
	free(f);
	return 0;
}

/* The host side must be untouched: the sentinel and nothing new beside it. */
static void assert_outside_untouched(struct fixture *f)
{
	cleanup_free char *sentinel = fpath(f, "outside/sentinel");
	cleanup_free char *outside = fpath(f, "outside");
	cleanup_free char *data = NULL;
	struct bh_err err;
	struct stat st;

	assert_int_equal(bh_read_file(sentinel, 64, &data, NULL, &err), 0);
	assert_string_equal(data, "host");
	assert_int_equal(lstat(sentinel, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(count_dir(outside), 1);
	assert_false(bh_path_exists("/evil"));
}

/* Unpacks ents into f->dir/layer with rt_layer_unpack; returns its result. */
static int unpack(struct fixture *f, const struct ent *ents, size_t n,
                  const struct rt_layer_limits *lim, struct bh_err *err)
{
	size_t len = 0;
	cleanup_free char *tar = make_tar(ents, n, NULL, &len);
	cleanup_free char *layer = fpath(f, "layer");
	cleanup_close int rootfd = open(layer, O_RDONLY | O_DIRECTORY);
	struct rt_layer_limits def;
	struct archive *a = archive_read_new();
	int r;

	rt_layer_limits_default(&def);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar, len), ARCHIVE_OK);
	r = rt_layer_unpack(rootfd, a, lim ? lim : &def, NULL, err);
	archive_read_free(a);
	return r;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* Succeeds, or fails the test with the error's message. */
#define assert_ok(expr)                                                                            \
	do {                                                                                       \
		if ((expr) != 0)                                                                   \
			fail_msg("%s: %s", #expr, err.msg);                                        \
	} while (0)

/* ---- the test image ----------------------------------------------------- */

static void test_busybox_load_list_resolve(void **state)
{
	struct fixture *f = *state;
	struct bh_err err;
	char **loaded = NULL, want[RT_IMAGE_ID_LEN], id[RT_IMAGE_ID_LEN], **dirs = NULL;
	json_t *list = NULL, *img;
	cleanup_close int lfd = -1;
	static const char *const refs[] = {"busybox", "busybox:latest",
	                                   "docker.io/library/busybox:latest", "library/busybox"};

	expected_id(want);
	assert_int_equal(rt_image_load_path(f->s, BERTH_TEST_IMAGE, &loaded, &err), 0);
	assert_string_equal(loaded[0], "busybox:latest");
	assert_null(loaded[1]);
	rt_image_strv_free(loaded);

	assert_int_equal(rt_image_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	img = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(img, "Id")), want);
	assert_string_equal(json_string_value(json_array_get(json_object_get(img, "RepoTags"), 0)),
	                    "busybox:latest");
	/* make-test-image stamps SOURCE_DATE_EPOCH, 0 by default */
	assert_int_equal(json_integer_value(json_object_get(img, "Created")),
	                 getenv("SOURCE_DATE_EPOCH") ? atoll(getenv("SOURCE_DATE_EPOCH")) : 0);

	for (size_t i = 0; i < N(refs); i++) {
		assert_int_equal(rt_image_resolve(f->s, refs[i], id, &err), 0);
		assert_string_equal(id, want);
	}
	char shortid[13];
	bh_strlcpy(shortid, want + 7, sizeof(shortid));
	assert_int_equal(rt_image_resolve(f->s, shortid, id, &err), 0);
	assert_string_equal(id, want);
	assert_int_equal(rt_image_resolve(f->s, want + 7, id, &err), 0);
	assert_int_equal(rt_image_resolve(f->s, want, id, &err), 0);
	assert_int_equal(rt_image_resolve(f->s, "alpine", id, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(rt_image_resolve(f->s, "Bad//Ref", id, &err), -1);
	assert_int_equal(err.code, EINVAL);

	assert_int_equal(rt_image_layer_dirs(f->s, want, &dirs, &err), 0);
	assert_non_null(dirs[0]);
	assert_null(dirs[1]);
	lfd = open(dirs[0], O_RDONLY | O_DIRECTORY);
	assert_true(lfd >= 0);
	assert_int_equal(json_integer_value(json_object_get(img, "Size")),
	                 (json_int_t)tree_size(lfd));
	rt_image_strv_free(dirs);
	json_decref(list);
}

static void test_busybox_layer_contents(void **state)
{
	struct fixture *f = *state;
	struct bh_err err;
	char id[RT_IMAGE_ID_LEN], link[64] = "", **dirs = NULL;
	json_t *config = NULL, *cmd;
	struct stat st;
	cleanup_close int lfd = -1;

	assert_int_equal(rt_image_load_path(f->s, BERTH_TEST_IMAGE, NULL, &err), 0);
	assert_int_equal(rt_image_resolve(f->s, "busybox", id, &err), 0);
	assert_int_equal(rt_image_layer_dirs(f->s, id, &dirs, &err), 0);
	lfd = open(dirs[0], O_RDONLY | O_DIRECTORY);
	assert_int_equal(fstatat(lfd, "bin/busybox", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0111) == 0111);
	assert_int_equal(readlinkat(lfd, "bin/sh", link, sizeof(link) - 1), 7);
	assert_string_equal(link, "busybox");
	assert_int_equal(fstatat(lfd, "tmp", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 01777);
	assert_int_equal(fstatat(lfd, "etc/passwd", &st, 0), 0);
	assert_int_equal(st.st_mtime, 0);

	assert_int_equal(rt_image_config(f->s, id, &config, &err), 0);
	cmd = json_object_get(json_object_get(config, "config"), "Cmd");
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "sh");
	json_decref(config);
	rt_image_strv_free(dirs);
}

static void test_load_twice_is_idempotent(void **state)
{
	struct fixture *f = *state;
	struct bh_err err;
	json_t *list = NULL;

	assert_int_equal(rt_image_load_path(f->s, BERTH_TEST_IMAGE, NULL, &err), 0);
	assert_int_equal(rt_image_load_path(f->s, BERTH_TEST_IMAGE, NULL, &err), 0);
	assert_int_equal(rt_image_list(f->s, &list, &err), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(store_count(f, "layers/sha256"), 1);
	assert_int_equal(store_count(f, "tmp"), 0);
	json_decref(list);
	/* a reopened store keeps everything */
	rt_store_close(f->s);
	assert_int_equal(rt_store_open(f->data_root, &f->s, &err), 0);
	assert_int_equal(store_count(f, "layers/sha256"), 1);
	assert_int_equal(store_count(f, "imagedb/sha256"), 1);
}

static void test_oci_and_docker_variants_load_alike(void **state)
{
	struct fixture *f = *state;
	static const char *const formats[] = {"oci", "docker"};
	char want[RT_IMAGE_ID_LEN], id[RT_IMAGE_ID_LEN];
	struct bh_err err;
	char **loaded = NULL;

	expected_id(want);
	for (size_t i = 0; i < N(formats); i++) {
		cleanup_free char *out = fpath(f, formats[i]);
		run_script(out, formats[i]);
		assert_int_equal(rt_image_load_path(f->s, out, &loaded, &err), 0);
		assert_string_equal(loaded[0], "busybox:latest");
		rt_image_strv_free(loaded);
		assert_int_equal(rt_image_resolve(f->s, "busybox:latest", id, &err), 0);
		assert_string_equal(id, want);
	}
}

static void test_test_image_is_deterministic(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *a = fpath(f, "a.tar"), *b = fpath(f, "b.tar");
	char ha[65], hb[65], hbuilt[65];

	run_script(a, NULL);
	run_script(b, NULL);
	file_sha256(a, ha);
	file_sha256(b, hb);
	file_sha256(BERTH_TEST_IMAGE, hbuilt);
	assert_string_equal(ha, hb);
	assert_string_equal(ha, hbuilt);
}

/* ---- failures leave nothing behind -------------------------------------- */

static void test_truncated_archive_registers_nothing(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *data = NULL, *cut = fpath(f, "cut.tar");
	size_t len = 0;
	struct bh_err err;

	assert_int_equal(bh_read_file(BERTH_TEST_IMAGE, 64 << 20, &data, &len, &err), 0);
	assert_int_equal(bh_write_file_atomic(cut, data, len / 2, 0644, &err), 0);
	assert_int_equal(rt_image_load_path(f->s, cut, NULL, &err), -1);
	assert_true(bh_str_has_prefix(err.msg, "load: cut.tar: truncated archive at entry "));
	assert_store_empty(f);
}

static void test_corrupt_layer_registers_nothing(void **state)
{
	struct fixture *f = *state;
	const struct ent good[] = {{"hello", F, "good", 0}};
	const struct ent bad[] = {{"hello", F, "evil", 0}};
	size_t glen = 0, blen = 0, plen = 0;
	cleanup_free char *gtar = make_tar(good, 1, NULL, &glen);
	cleanup_free char *btar = make_tar(bad, 1, "gzip", &blen);
	cleanup_free char *plain = make_tar(bad, 1, NULL, &plen);
	size_t zlen = 0;
	cleanup_free char *ztar = make_tar(bad, 1, "zstd", &zlen);
	cleanup_free char *path = fpath(f, "corrupt.tar");
	struct bh_err err;

	make_image(path, "corrupt:latest", btar, blen, gtar, glen);
	assert_int_equal(rt_image_load_path(f->s, path, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "diff id"));
	assert_store_empty(f);
	/* the same layer with its true diff id loads, gzip'd or zstd'd */
	make_image(path, "fine:1", btar, blen, plain, plen);
	assert_ok(rt_image_load_path(f->s, path, NULL, &err));
	make_image(path, "fine:2", ztar, zlen, plain, plen);
	assert_ok(rt_image_load_path(f->s, path, NULL, &err));
}

static void test_not_an_archive_registers_nothing(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *path = fpath(f, "junk.tar");
	struct bh_err err;

	assert_int_equal(bh_write_file_atomic(path, "junk", 4, 0644, &err), 0);
	assert_int_equal(rt_image_load_path(f->s, path, NULL, &err), -1);
	assert_store_empty(f);
}

/* ---- crafted malicious layers ------------------------------------------- */

/* CWE-22 zip-slip: "../" names must not write outside. */
static void test_attack_dotdot_entries(void **state)
{
	struct fixture *f = *state;
	const struct ent e1[] = {{"../outside/evil", F, "x", 0}};
	const struct ent e2[] = {{"a/../../outside/evil", F, "x", 0}};
	const struct ent e3[] = {{"/evil", F, "x", 0}};
	cleanup_free char *inside = fpath(f, "layer/evil");
	struct bh_err err;

	assert_int_equal(unpack(f, e1, 1, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "escapes root"));
	assert_int_equal(unpack(f, e2, 1, NULL, &err), -1);
	/* absolute names are taken relative to the layer root, like tar */
	assert_int_equal(unpack(f, e3, 1, NULL, &err), 0);
	assert_true(bh_path_exists(inside));
	assert_outside_untouched(f);
}

/* CVE-2018-15664 class: an absolute (or ../) symlink, then writes through it.
 * Symlinks resolve as in a chroot: to the layer's own /etc, never the host's. */
static void test_attack_symlink_then_write_through(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *outside = fpath(f, "outside");
	cleanup_free char *sentinel = fpath(f, "outside/sentinel");
	const struct ent e1[] = {{"abs", L, outside, 0}, {"abs/evil", F, "x", 0}};
	const struct ent e2[] = {{"rel", L, "../../../../../../outside", 0},
	                         {"rel/evil2", F, "x", 0}};
	const struct ent e3[] = {{"file", L, sentinel, 0}, {"file", F, "overwritten", 0}};
	const struct ent e4[] = {
	    {"etc", D, NULL, 0}, {"link", L, "/etc", 0}, {"link/passwd", F, "mine", 0}};
	cleanup_free char *file = fpath(f, "layer/file");
	cleanup_free char *passwd = fpath(f, "layer/etc/passwd");
	struct bh_err err;
	struct stat st;

	assert_int_equal(unpack(f, e1, N(e1), NULL, &err), -1);
	assert_int_equal(unpack(f, e2, N(e2), NULL, &err), -1);
	assert_ok(unpack(f, e3, N(e3), NULL, &err));
	assert_int_equal(lstat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_ok(unpack(f, e4, N(e4), NULL, &err));
	assert_true(bh_path_exists(passwd));
	assert_outside_untouched(f);
}

/* Hardlink escape: links to host files, by absolute path, ../ or a symlink. */
static void test_attack_hardlink_to_host_file(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *sentinel = fpath(f, "outside/sentinel");
	cleanup_free char *outside = fpath(f, "outside");
	const struct ent e1[] = {{"h", H, sentinel, 0}, {"h", F, "overwritten", 0}};
	const struct ent e2[] = {{"h", H, "../outside/sentinel", 0}};
	const struct ent e3[] = {{"dir", L, outside, 0}, {"h", H, "dir/sentinel", 0}};
	struct bh_err err;

	assert_int_equal(unpack(f, e1, N(e1), NULL, &err), -1);
	assert_non_null(strstr(err.msg, "hardlink target not in layer"));
	assert_int_equal(unpack(f, e2, N(e2), NULL, &err), -1);
	assert_int_equal(unpack(f, e3, N(e3), NULL, &err), -1);
	assert_outside_untouched(f);
}

/* A directory swapped for a symlink under later entries. */
static void test_attack_symlinked_dir_swap(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *outside = fpath(f, "outside");
	const struct ent ents[] = {
	    {"d", D, NULL, 0},   {"d/f1", F, "1", 0}, {"d", L, outside, 0},
	    {"d/f2", F, "2", 0}, {"e", D, NULL, 0},   {"e", L, "../../outside", 0},
	    {"e/f3", F, "3", 0},
	};
	struct bh_err err;
	int r = unpack(f, ents, N(ents), NULL, &err);

	assert_true(r == 0 || r == -1);
	assert_outside_untouched(f);
}

/* The same attack through the full loader: rejected, nothing registered. */
static void test_attack_via_load_registers_nothing(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {{"ok", F, "fine", 0}, {"../../../outside/evil", F, "x", 0}};
	size_t len = 0;
	cleanup_free char *tar = make_tar(ents, N(ents), NULL, &len);
	cleanup_free char *path = fpath(f, "evil.tar");
	struct bh_err err;

	make_image(path, "evil:latest", tar, len, NULL, 0);
	assert_int_equal(rt_image_load_path(f->s, path, NULL, &err), -1);
	assert_store_empty(f);
	assert_outside_untouched(f);
}

/* ---- sparse bomb --------------------------------------------------------- */

#define BOMB_SIZE (10ULL << 30) /* what each sparse entry declares */

/* A numeric tar field: octal, or GNU base-256 (high bit set, big-endian)
 * when the value needs more digits than the field has (>= 8 GiB in 12). */
static void tar_octal(char *field, size_t width, uint64_t v)
{
	char tmp[32];

	if (v >> (3 * (width - 1)) != 0) {
		memset(field, 0, width);
		for (size_t i = width - 1; i > 0 && v; i--, v >>= 8)
			field[i] = (char)(v & 0xff);
		field[0] = (char)0x80;
		return;
	}
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)width - 1, (unsigned long long)v);
	memcpy(field, tmp, width - 1);
}

/* One GNU old-style sparse header ('S'): realsize BOMB_SIZE, two 512-byte
 * data blocks (at 0 and at the very end); 1024 stored bytes follow. */
static void sparse_header(unsigned char h[512], const char *name)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	tar_octal((char *)h + 100, 8, 0644);
	tar_octal((char *)h + 108, 8, 0);
	tar_octal((char *)h + 116, 8, 0);
	tar_octal((char *)h + 124, 12, 1024); /* stored bytes */
	tar_octal((char *)h + 136, 12, 0);
	h[156] = 'S';
	memcpy(h + 257, "ustar  ", 8); /* GNU magic + version */
	tar_octal((char *)h + 386, 12, 0);
	tar_octal((char *)h + 398, 12, 512);
	tar_octal((char *)h + 410, 12, BOMB_SIZE - 512);
	tar_octal((char *)h + 422, 12, 512);
	tar_octal((char *)h + 483, 12, BOMB_SIZE); /* realsize */
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* A tar of n sparse entries "bombN", each declaring BOMB_SIZE bytes while
 * storing 1 KiB: n * 10 GiB once unpacked.  Caller frees. */
static char *sparse_bomb_tar(size_t n, size_t *len)
{
	size_t per = 512 + 1024;
	char *buf = bh_calloc(1, n * per + 1024); /* end: two zero blocks */

	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "bomb%zu", i);
		sparse_header((unsigned char *)buf + i * per, name);
		memset(buf + i * per + 512, 'B', 1024);
	}
	*len = n * per + 1024;
	return buf;
}

static int unpack_bytes(struct fixture *f, const char *tar, size_t len,
                        const struct rt_layer_limits *lim, struct bh_err *err)
{
	cleanup_free char *layer = fpath(f, "layer");
	cleanup_close int rootfd = open(layer, O_RDONLY | O_DIRECTORY);
	struct archive *a = archive_read_new();
	int r;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar, len), ARCHIVE_OK);
	r = rt_layer_unpack(rootfd, a, lim, NULL, err);
	archive_read_free(a);
	return r;
}

static double now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A damaged header in the middle of a layer (libarchive: ARCHIVE_RETRY,
 * "Damaged tar archive") fails the unpack: tools that resync differently
 * must not see different layer contents. */
static void test_damaged_header_fails(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {{"a", F, "hello", 0}, {"b", F, "world", 0}};
	struct rt_layer_limits lim;
	struct bh_err err;
	size_t len = 0;
	cleanup_free char *tar = make_tar(ents, N(ents), NULL, &len);

	assert_true(len >= 3 * 512);
	tar[1024 + 148] ^= 0x01; /* second header's checksum field */
	rt_layer_limits_default(&lim);
	assert_int_equal(unpack_bytes(f, tar, len, &lim, &err), -1);
	assert_int_equal(err.code, EIO);
	assert_non_null(strstr(err.msg, "bad tar"));
}

/* Decompression bomb, sparse kind: the DECLARED size of a sparse entry
 * counts against the limit (not the 1 KiB it stores), so a 10 GiB sparse
 * file is refused by a 1 GiB limit, and seven of them (70 GiB) by the
 * default 64 GiB one, in bounded time, with nothing outside touched. */
static void test_attack_sparse_bomb(void **state)
{
	struct fixture *f = *state;
	size_t len = 0;
	cleanup_free char *one = sparse_bomb_tar(1, &len);
	cleanup_free char *seven = NULL;
	struct rt_layer_limits lim;
	struct bh_err err;
	double t0 = now_secs();

	rt_layer_limits_default(&lim);
	lim.max_bytes = 1ULL << 30;
	assert_int_equal(unpack_bytes(f, one, len, &lim, &err), -1);
	assert_int_equal(err.code, EFBIG);
	assert_non_null(strstr(err.msg, "bomb0"));
	rt_layer_limits_default(&lim);
	assert_true(lim.max_bytes < 7 * BOMB_SIZE);
	seven = sparse_bomb_tar(7, &len);
	assert_int_equal(unpack_bytes(f, seven, len, &lim, &err), -1);
	assert_int_equal(err.code, EFBIG);
	assert_true(now_secs() - t0 < 5.0);
	assert_outside_untouched(f);
}

/* The same bomb through the full loader: refused quickly, nothing
 * registered, no partial layer dir, no temp leftovers. */
static void test_attack_sparse_bomb_via_load(void **state)
{
	struct fixture *f = *state;
	size_t len = 0;
	cleanup_free char *tar = sparse_bomb_tar(7, &len);
	cleanup_free char *path = fpath(f, "bomb.tar");
	struct bh_err err;
	double t0 = now_secs();

	make_image(path, "bomb:latest", tar, len, NULL, 0);
	assert_int_equal(rt_image_load_path(f->s, path, NULL, &err), -1);
	assert_int_equal(err.code, EFBIG);
	assert_true(now_secs() - t0 < 5.0);
	assert_store_empty(f);
	assert_outside_untouched(f);
}

/* Legitimate content still works: hardlinks inside the layer, UTF-8 names,
 * a file replacing a directory, a directory entry over an existing one. */
static void test_legit_links_and_names(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {
	    {"a", F, "data", 0}, {"sub/b", H, "a", 0}, {"h\xc3\xa9llo", F, "x", 0},
	    {"d", D, NULL, 0},   {"d/x", F, "x", 0},   {"d", F, "now a file", 0},
	    {"e", D, NULL, 0},   {"e/y", F, "y", 0},   {"e", D, NULL, 0700},
	};
	cleanup_free char *layer = fpath(f, "layer");
	cleanup_close int lfd = open(layer, O_RDONLY | O_DIRECTORY);
	struct bh_err err;
	struct stat st;

	assert_ok(unpack(f, ents, N(ents), NULL, &err));
	assert_int_equal(fstatat(lfd, "sub/b", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(fstatat(lfd, "h\xc3\xa9llo", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(lfd, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(fstatat(lfd, "e/y", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(fstatat(lfd, "e", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

/* Decompression bombs: entry count and content size limits. */
static void test_limits(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {{"a", F, "0123456789", 0}, {"b", F, "0123456789", 0}};
	struct rt_layer_limits lim;
	struct bh_err err;

	rt_layer_limits_default(&lim);
	lim.max_bytes = 15;
	assert_int_equal(unpack(f, ents, N(ents), &lim, &err), -1);
	assert_int_equal(err.code, EFBIG);
	rt_layer_limits_default(&lim);
	lim.max_entries = 1;
	assert_int_equal(unpack(f, ents, N(ents), &lim, &err), -1);
	assert_int_equal(err.code, EFBIG);
}

/* OCI whiteouts become overlayfs whiteouts; metadata is kept. */
static void test_whiteouts_and_metadata(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {
	    {"dir", D, NULL, 0750},  {"dir/.wh..wh..opq", F, "", 0}, {".wh.gone", F, "", 0},
	    {"suid", F, "x", 04755}, {"null", C, NULL, 0666},
	};
	cleanup_free char *layer = fpath(f, "layer");
	cleanup_close int lfd = open(layer, O_RDONLY | O_DIRECTORY);
	cleanup_free char *dir = fpath(f, "layer/dir");
	char v[4] = "";
	struct stat st;
	struct bh_err err;

	assert_int_equal(unpack(f, ents, N(ents), NULL, &err), 0);
	assert_int_equal(lgetxattr(dir, "trusted.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	assert_int_equal(fstatat(lfd, "dir", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(fstatat(lfd, "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	assert_int_equal(fstatat(lfd, ".wh.gone", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(fstatat(lfd, "suid", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(fstatat(lfd, "null", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
}

/* A crash mid-load leaves temp dirs and a layer dir without its marker:
 * the next open removes both, and the image loads again. */
static void test_open_sweeps_interrupted_work(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *half =
	    bh_asprintf("%s/layers/sha256/%064d/root/bin", rt_store_path(f->s), 0);
	cleanup_free char *tmp = bh_asprintf("%s/tmp/load-x/0", rt_store_path(f->s));
	cleanup_free char *blob = bh_asprintf("%s/blobs/sha256/x.tmp-abc", rt_store_path(f->s));
	struct bh_err err;

	assert_ok(bh_mkdir_p(half, 0700, &err));
	assert_ok(bh_mkdir_p(tmp, 0700, &err));
	assert_ok(bh_write_file_atomic(blob, "", 0, 0600, &err));
	rt_store_close(f->s);
	assert_ok(rt_store_open(f->data_root, &f->s, &err));
	assert_false(bh_path_exists(blob));
	assert_store_empty(f);
	assert_ok(rt_image_load_path(f->s, BERTH_TEST_IMAGE, NULL, &err));
}

struct loader {
	struct rt_store *s;
	int r;
	struct bh_err err;
};

static void *load_thread(void *arg)
{
	struct loader *l = arg;

	l->r = rt_image_load_path(l->s, BERTH_TEST_IMAGE, NULL, &l->err);
	return NULL;
}

/* berthd loads on worker threads: concurrent loads of one image agree. */
static void test_concurrent_loads(void **state)
{
	struct fixture *f = *state;
	struct loader l[3];
	pthread_t t[3];
	json_t *list = NULL;
	struct bh_err err;

	for (size_t i = 0; i < N(t); i++) {
		l[i] = (struct loader){.s = f->s};
		assert_int_equal(pthread_create(&t[i], NULL, load_thread, &l[i]), 0);
	}
	for (size_t i = 0; i < N(t); i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (l[i].r != 0)
			fail_msg("loader %zu: %s", i, l[i].err.msg);
	}
	assert_ok(rt_image_list(f->s, &list, &err));
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(store_count(f, "layers/sha256"), 1);
	assert_int_equal(store_count(f, "tmp"), 0);
	json_decref(list);
}

/* The body of POST /images/load may arrive through a pipe. */
static void test_load_from_pipe(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *data = NULL;
	size_t len = 0;
	int p[2], status;
	pid_t pid;
	struct bh_err err;
	char **loaded = NULL;

	assert_ok(bh_read_file(BERTH_TEST_IMAGE, 64 << 20, &data, &len, &err));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		for (size_t off = 0; off < len;) {
			ssize_t n = write(p[1], data + off, len - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(p[1]);
	assert_ok(rt_image_load(f->s, p[0], "request body", &loaded, &err));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_string_equal(loaded[0], "busybox:latest");
	rt_image_strv_free(loaded);
}

/* The converted whiteouts and opaque dirs work as overlayfs lowerdirs. */
static void test_whiteouts_in_overlayfs(void **state)
{
	struct fixture *f = *state;
	const struct ent lower[] = {
	    {"gone", F, "x", 0}, {"dir/old", F, "x", 0}, {"kept", F, "x", 0}};
	const struct ent upper[] = {
	    {".wh.gone", F, "", 0}, {"dir/.wh..wh..opq", F, "", 0}, {"dir/new", F, "y", 0}};
	size_t llen = 0, ulen = 0;
	cleanup_free char *ltar = make_tar(lower, N(lower), NULL, &llen);
	cleanup_free char *ulayer = NULL, *config = NULL, *manifest = NULL;
	cleanup_free char *path = fpath(f, "two.tar"), *mnt = fpath(f, "mnt");
	cleanup_free char *opts = NULL, *p_gone = NULL, *p_old = NULL, *p_new = NULL,
	                  *p_kept = NULL;
	char lhex[65], uhex[65], id[RT_IMAGE_ID_LEN], **dirs = NULL;
	struct bh_err err;
	int r;

	/* a two-layer image: the upper one (gzip'd) hides parts of the lower */
	ulayer = make_tar(upper, N(upper), NULL, &ulen);
	rt_store_sha256_hex(ltar, llen, lhex);
	rt_store_sha256_hex(ulayer, ulen, uhex);
	free(ulayer);
	ulayer = make_tar(upper, N(upper), "gzip", &ulen);
	config = bh_asprintf("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\","
	                     "\"sha256:%s\"]}}",
	                     lhex, uhex);
	manifest = bh_strdup("[{\"Config\":\"c.json\",\"RepoTags\":[\"two:1\"],"
	                     "\"Layers\":[\"l.tar\",\"u.tar.gz\"]}]");
	struct member m[] = {{"l.tar", ltar, llen},
	                     {"u.tar.gz", ulayer, ulen},
	                     {"c.json", config, strlen(config)},
	                     {"manifest.json", manifest, strlen(manifest)}};
	write_members(path, m, N(m));
	assert_ok(rt_image_load_path(f->s, path, NULL, &err));
	assert_ok(rt_image_resolve(f->s, "two:1", id, &err));
	assert_ok(rt_image_layer_dirs(f->s, id, &dirs, &err));
	assert_non_null(dirs[1]);
	assert_int_equal(mkdir(mnt, 0755), 0);
	opts = bh_asprintf("lowerdir=%s:%s", dirs[1], dirs[0]); /* uppermost first */
	r = mount("overlay", mnt, "overlay", 0, opts);
	rt_image_strv_free(dirs);
	if (r < 0) {
		fprintf(stderr, "SKIP: overlay mount failed: %s\n", strerror(errno));
		skip();
	}
	p_gone = fpath(f, "mnt/gone");
	p_old = fpath(f, "mnt/dir/old");
	p_new = fpath(f, "mnt/dir/new");
	p_kept = fpath(f, "mnt/kept");
	bool gone = bh_path_exists(p_gone), old = bh_path_exists(p_old);
	bool new = bh_path_exists(p_new), kept = bh_path_exists(p_kept);
	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	assert_false(gone);
	assert_false(old);
	assert_true(new);
	assert_true(kept);
}

static void test_inspect(void **state)
{
	struct fixture *f = *state;
	struct bh_err err;
	char id[RT_IMAGE_ID_LEN];
	json_t *doc = NULL;

	assert_ok(rt_image_load_path(f->s, BERTH_TEST_IMAGE, NULL, &err));
	assert_ok(rt_image_resolve(f->s, "busybox", id, &err));
	assert_ok(rt_image_inspect(f->s, id, &doc, &err));
	assert_string_equal(json_string_value(json_object_get(doc, "Id")), id);
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "RepoTags"), 0)),
	                    "busybox:latest");
	assert_string_equal(json_string_value(json_object_get(doc, "Architecture")), "amd64");
	assert_true(bh_str_has_prefix(json_string_value(json_object_get(doc, "Created")), "19") ||
	            bh_str_has_prefix(json_string_value(json_object_get(doc, "Created")), "20"));
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_object_get(doc, "Config"), "Cmd"), 0)),
	                    "sh");
	assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "RootFS"), "Layers")),
	                 1);
	assert_true(json_integer_value(json_object_get(doc, "Size")) > 0);
	json_decref(doc);
}

/* rmi: by tag untags (and deletes with the last tag); by id needs force
 * when several tags point at it; shared layers stay while used. */
static void test_remove(void **state)
{
	struct fixture *f = *state;
	const struct ent ents[] = {{"hello", F, "hi", 0}};
	size_t len = 0;
	cleanup_free char *tar = make_tar(ents, 1, NULL, &len);
	cleanup_free char *a = fpath(f, "a.tar"), *b = fpath(f, "b.tar");
	char ida[RT_IMAGE_ID_LEN], idb[RT_IMAGE_ID_LEN];
	json_t *report = NULL;
	struct bh_err err;

	make_image(a, "a:1", tar, len, NULL, 0);
	make_image(b, "b:1", tar, len, NULL, 0);
	assert_ok(rt_image_load_path(f->s, a, NULL, &err));
	assert_ok(rt_image_load_path(f->s, b, NULL, &err));
	assert_ok(rt_image_resolve(f->s, "a:1", ida, &err));
	assert_ok(rt_image_resolve(f->s, "b:1", idb, &err));
	assert_string_not_equal(ida, idb);
	assert_ok(rt_image_tag(f->s, ida, "a:2", &err));

	assert_ok(rt_image_remove(f->s, "a:2", false, &report, &err));
	assert_int_equal(json_array_size(report), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(report, 0), "Untagged")), "a:2");
	json_decref(report);
	assert_ok(rt_image_tag(f->s, ida, "a:2", &err));
	assert_int_equal(rt_image_remove(f->s, ida, false, NULL, &err), -1);
	assert_int_equal(err.code, EBUSY);
	assert_ok(rt_image_remove(f->s, ida, true, &report, &err));
	/* two Untagged, the image; the layer is still b's */
	assert_int_equal(json_array_size(report), 3);
	json_decref(report);
	assert_int_equal(rt_image_resolve(f->s, "a:1", ida, &err), -1);
	assert_int_equal(store_count(f, "layers/sha256"), 1);

	assert_ok(rt_image_remove(f->s, "b:1", false, &report, &err));
	assert_int_equal(json_array_size(report), 3); /* Untagged, image, layer */
	json_decref(report);
	assert_store_empty(f);
	assert_int_equal(rt_image_remove(f->s, "b:1", false, NULL, &err), -1);
	assert_int_equal(err.code, ENOENT);
}

static void test_reference_normalisation(void **state)
{
	static const char *const cases[][2] = {
	    {"busybox", "docker.io/library/busybox:latest"},
	    {"busybox:1.36", "docker.io/library/busybox:1.36"},
	    {"user/app", "docker.io/user/app:latest"},
	    {"localhost:5000/app:v1", "localhost:5000/app:v1"},
	    {"ghcr.io/o/r/app:x", "ghcr.io/o/r/app:x"},
	    {"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
	};
	struct bh_err err;

	for (size_t i = 0; i < N(cases); i++) {
		cleanup_free char *n = rt_image_ref_normalize(cases[i][0], &err);
		cleanup_free char *fam = NULL;
		assert_non_null(n);
		assert_string_equal(n, cases[i][1]);
		fam = rt_image_ref_familiar(n);
		assert_true(strstr(fam, "docker.io") == NULL);
	}
	assert_null(rt_image_ref_normalize("UPPER", &err));
	assert_null(rt_image_ref_normalize("a:b:c", &err));
	assert_null(rt_image_ref_normalize("busybox@sha256:00", &err));
	assert_null(rt_image_ref_normalize("", &err));
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_busybox_load_list_resolve),
	    T(test_busybox_layer_contents),
	    T(test_load_twice_is_idempotent),
	    T(test_oci_and_docker_variants_load_alike),
	    T(test_test_image_is_deterministic),
	    T(test_truncated_archive_registers_nothing),
	    T(test_corrupt_layer_registers_nothing),
	    T(test_not_an_archive_registers_nothing),
	    T(test_attack_dotdot_entries),
	    T(test_attack_symlink_then_write_through),
	    T(test_attack_hardlink_to_host_file),
	    T(test_attack_symlinked_dir_swap),
	    T(test_attack_via_load_registers_nothing),
	    T(test_attack_sparse_bomb),
	    T(test_damaged_header_fails),
	    T(test_attack_sparse_bomb_via_load),
	    T(test_legit_links_and_names),
	    T(test_limits),
	    T(test_whiteouts_and_metadata),
	    T(test_open_sweeps_interrupted_work),
	    T(test_concurrent_loads),
	    T(test_load_from_pipe),
	    T(test_whiteouts_in_overlayfs),
	    T(test_inspect),
	    T(test_remove),
	    T(test_reference_normalisation),
	};

	if (geteuid() != 0) {
		fprintf(stderr,
		        "test_image: SKIP: needs root (ownership, device nodes, whiteouts)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
