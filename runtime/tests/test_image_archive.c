/* Image archives: an overlay upper dir -> layer tar (whiteouts, opaque
 * dirs, symlinks never followed, hardlinks), deterministic bytes, --change
 * parsing, and import/commit/history/inspect/save/prune/check on a
 * throw-away store. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "runtime/rt-image-archive.h"
#include "runtime/registry-internal.h"
#include "runtime/rt-image-internal.h"

struct fixture {
	char dir[64];
};

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test-image-archive-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct bh_err e;

	bh_rm_rf(f->dir, &e);
	free(f);
	return 0;
}

static char *path_in(struct fixture *f, const char *name)
{
	return bh_path_join(f->dir, name);
}

/* An overlay upper dir as a container leaves it. */
static char *make_upper(struct fixture *f)
{
	char *up = path_in(f, "upper");
	cleanup_free char *a = bh_path_join(up, "a"), *a2 = bh_path_join(up, "a2");
	cleanup_free char *d = bh_path_join(up, "d"), *df = bh_path_join(up, "d/f");
	cleanup_free char *gone = bh_path_join(up, "gone");
	cleanup_free char *evil = bh_path_join(up, "evil"), *ld = bh_path_join(up, "ld");

	assert_int_equal(mkdir(up, 0755), 0);
	write_text(a, "hello\n");
	assert_int_equal(link(a, a2), 0);
	assert_int_equal(mkdir(d, 0755), 0);
	write_text(df, "x");
	assert_int_equal(setxattr(d, "trusted.overlay.opaque", "y", 1, 0), 0);
	assert_int_equal(mknod(gone, S_IFCHR | 0, makedev(0, 0)), 0);
	/* Planted by a container: must be archived as links, never followed. */
	assert_int_equal(symlink("/etc/passwd", evil), 0);
	assert_int_equal(symlink("/etc", ld), 0);
	return up;
}

struct seen {
	char names[32][64];
	char link[32][64];
	int type[32];
	int64_t size[32];
	int n;
};

static void read_tar(const char *path, struct seen *s)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
	memset(s, 0, sizeof(*s));
	while (archive_read_next_header(a, &e) == ARCHIVE_OK && s->n < 32) {
		const char *l = archive_entry_hardlink(e) ? archive_entry_hardlink(e)
		                                          : archive_entry_symlink(e);
		bh_strlcpy(s->names[s->n], archive_entry_pathname(e), 64);
		bh_strlcpy(s->link[s->n], l ? l : "", 64);
		s->type[s->n] = (int)archive_entry_filetype(e);
		s->size[s->n] = archive_entry_size(e);
		s->n++;
	}
	archive_read_free(a);
}

static void test_upper_dir_to_layer(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *up = NULL, *tar = path_in(f, "layer.tar");
	struct bh_err err;
	struct seen s;
	uint64_t size = 0;
	char hex[65];

	if (geteuid() != 0)
		skip(); /* mknod and trusted.* xattrs */
	up = make_upper(f);
	assert_int_equal(rt_tar_dir_to_file(up, RT_TAR_OVERLAY, tar, hex, &size, &err), 0);
	read_tar(tar, &s);
	/* Sorted bytewise; the whiteout replaces "gone" in place. */
	const char *want[] = {"a", "a2", "d/", "d/.wh..wh..opq", "d/f", "evil", ".wh.gone", "ld"};
	assert_int_equal(s.n, 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(s.names[i], want[i]);
	assert_int_equal(s.size[0], 6);
	assert_string_equal(s.link[1], "a"); /* a hardlink, not a copy */
	assert_int_equal(s.type[5], AE_IFLNK);
	assert_string_equal(s.link[5], "/etc/passwd");
	assert_int_equal(s.type[6], AE_IFREG);
	assert_int_equal(s.size[6], 0);
	assert_int_equal(s.type[7], AE_IFLNK); /* not descended into the host's /etc */
	assert_int_equal(size % 512, 0);
}

static void test_plain_mode_keeps_devices(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *up = NULL, *tar = path_in(f, "plain.tar");
	struct bh_err err;
	struct seen s;
	uint64_t size = 0;
	char hex[65];

	if (geteuid() != 0)
		skip();
	up = make_upper(f);
	assert_int_equal(rt_tar_dir_to_file(up, RT_TAR_PLAIN, tar, hex, &size, &err), 0);
	read_tar(tar, &s);
	assert_int_equal(s.n, 7); /* no opaque marker */
	assert_string_equal(s.names[5], "gone");
	assert_int_equal(s.type[5], AE_IFCHR);
}

static void test_deterministic_bytes(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *dir = path_in(f, "tree"), *file = bh_path_join(dir, "z");
	cleanup_free char *sub = bh_path_join(dir, "b"), *t1 = path_in(f, "1.tar");
	cleanup_free char *t2 = path_in(f, "2.tar");
	struct timespec ts[2] = {{1000, 0}, {1000, 0}};
	struct bh_err err;
	uint64_t s1, s2;
	char h1[65], h2[65];

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_text(file, "zzz");
	assert_int_equal(rt_tar_dir_to_file(dir, RT_TAR_OVERLAY, t1, h1, &s1, &err), 0);
	assert_int_equal(rt_tar_dir_to_file(dir, RT_TAR_OVERLAY, t2, h2, &s2, &err), 0);
	assert_string_equal(h1, h2);
	assert_int_equal(s1, s2);
	/* The bytes depend on the tree: a changed mtime gives another digest. */
	assert_int_equal(utimensat(AT_FDCWD, file, ts, 0), 0);
	assert_int_equal(rt_tar_dir_to_file(dir, RT_TAR_OVERLAY, t2, h2, &s2, &err), 0);
	assert_string_not_equal(h1, h2);
}

static void test_apply_change(void **state)
{
	json_t *c = json_object();
	struct bh_err err;

	(void)state;
	assert_int_equal(rt_image_apply_change(c, "CMD [\"sh\", \"-c\", \"x\"]", &err), 0);
	assert_int_equal(json_array_size(json_object_get(c, "Cmd")), 3);
	assert_int_equal(rt_image_apply_change(c, "cmd echo hi", &err), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "Cmd"), 2)),
	                    "echo hi");
	assert_int_equal(rt_image_apply_change(c, "ENV A=1", &err), 0);
	assert_int_equal(rt_image_apply_change(c, "ENV A=2", &err), 0);
	assert_int_equal(json_array_size(json_object_get(c, "Env")), 1);
	assert_int_equal(rt_image_apply_change(c, "EXPOSE 80", &err), 0);
	assert_non_null(json_object_get(json_object_get(c, "ExposedPorts"), "80/tcp"));
	assert_int_equal(rt_image_apply_change(c, "WORKDIR /w", &err), 0);
	assert_int_equal(rt_image_apply_change(c, "RUN rm -rf /", &err), -1);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(rt_image_apply_change(c, "CMD [1]", &err), -1);
	json_decref(c);
}

struct mem_sink {
	char *data;
	size_t len;
};

static int mem_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct mem_sink *m = arg;

	(void)err;
	m->data = bh_realloc(m->data, m->len + len);
	memcpy(m->data + m->len, data, len);
	m->len += len;
	return 0;
}

static bool mem_tar_has(struct mem_sink *m, const char *name)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	bool found = false;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, m->data, m->len), ARCHIVE_OK);
	while (!found && archive_read_next_header(a, &e) == ARCHIVE_OK)
		found = strcmp(archive_entry_pathname(e), name) == 0;
	archive_read_free(a);
	return found;
}

static void import_base(struct fixture *f, struct rt_store *s, char id[RT_IMAGE_ID_LEN])
{
	cleanup_free char *root = path_in(f, "rootfs"), *bin = bh_path_join(root, "bin");
	cleanup_free char *sh = bh_path_join(root, "bin/sh"), *tar = path_in(f, "rootfs.tar");
	json_t *changes = json_pack("{s[s]}", "Cmd", "sh");
	struct bh_err err;
	uint64_t size;
	char hex[65];
	int fd;

	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(mkdir(bin, 0755), 0);
	write_text(sh, "#!shell\n");
	assert_int_equal(rt_tar_dir_to_file(root, RT_TAR_PLAIN, tar, hex, &size, &err), 0);
	fd = open(tar, O_RDONLY | O_CLOEXEC);
	assert_int_equal(rt_image_import(s, fd, changes, "base:1", NULL, id, &err), 0);
	close(fd);
	json_decref(changes);
}

static void check_history_shape(struct rt_store *s, const char *id, size_t rows)
{
	json_t *h = NULL, *r;
	struct bh_err err;
	size_t i;

	assert_int_equal(rt_image_history(s, id, &h, &err), 0);
	assert_int_equal(json_array_size(h), rows);
	json_array_foreach(h, i, r)
	{
		assert_true(json_is_string(json_object_get(r, "Id")));
		assert_true(json_is_integer(json_object_get(r, "Created")));
		assert_true(json_is_string(json_object_get(r, "CreatedBy")));
		assert_true(json_is_integer(json_object_get(r, "Size")));
		assert_true(json_is_string(json_object_get(r, "Comment")));
		assert_true(i == 0 ? json_is_array(json_object_get(r, "Tags"))
		                   : json_is_null(json_object_get(r, "Tags")));
		if (i > 0)
			assert_string_equal(json_string_value(json_object_get(r, "Id")),
			                    "<missing>");
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "Id")), id);
	json_decref(h);
}

static void assert_store_ok(struct rt_store *s)
{
	json_t *p = NULL;
	struct bh_err err;

	assert_int_equal(rt_store_check(s, &p, &err), 0);
	if (json_array_size(p) > 0)
		fail_msg("store check: %s", json_string_value(json_array_get(p, 0)));
	json_decref(p);
}

static void commit_child(struct fixture *f, struct rt_store *s, const char *base,
                         char id[RT_IMAGE_ID_LEN])
{
	cleanup_free char *up = path_in(f, "up2"), *gone = bh_path_join(up, "bin");
	cleanup_free char *wh = bh_path_join(up, "bin/sh"), *added = bh_path_join(up, "added");
	json_t *cfg = json_pack("{s[ss]}", "Cmd", "cat", "/added");
	struct rt_commit_opts o = {.parent_id = base,
	                           .upper_dir = up,
	                           .config = cfg,
	                           .comment = "c",
	                           .created_by = "test",
	                           .ref = "child:1"};
	struct bh_err err;

	assert_int_equal(mkdir(up, 0755), 0);
	assert_int_equal(mkdir(gone, 0755), 0);
	assert_int_equal(mknod(wh, S_IFCHR | 0, makedev(0, 0)), 0);
	write_text(added, "new\n");
	assert_int_equal(rt_image_commit(s, &o, id, &err), 0);
	json_decref(cfg);
}

static void test_store_import_commit_save_prune(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *data = path_in(f, "data");
	char base[RT_IMAGE_ID_LEN], child[RT_IMAGE_ID_LEN];
	struct mem_sink m = {0};
	struct rt_store *s = NULL;
	struct bh_err err;
	json_t *insp = NULL, *pr = NULL;
	char *refs[] = {"child:1", NULL};

	if (geteuid() != 0)
		skip();
	assert_int_equal(rt_store_open(data, &s, &err), 0);
	import_base(f, s, base);
	check_history_shape(s, base, 1);
	commit_child(f, s, base, child);
	check_history_shape(s, child, 2);
	assert_int_equal(rt_image_inspect(s, child, &insp, &err), 0);
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_object_get(insp, "Config"), "Cmd"), 0)),
	                    "cat");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(insp, "RootFS"), "Layers")), 2);
	json_decref(insp);
	assert_store_ok(s);
	assert_int_equal(rt_image_save(s, refs, RT_SAVE_DOCKER, mem_sink, &m, &err), 0);
	assert_true(mem_tar_has(&m, "manifest.json"));
	assert_true(mem_tar_has(&m, "repositories"));
	free(m.data);
	/* Nothing dangling yet; -a (nothing kept) removes both and their layers. */
	assert_int_equal(rt_image_prune(s, false, NULL, &pr, &err), 0);
	assert_int_equal(json_array_size(json_object_get(pr, "ImagesDeleted")), 0);
	json_decref(pr);
	assert_int_equal(rt_image_prune(s, true, NULL, &pr, &err), 0);
	assert_int_equal(json_array_size(json_object_get(pr, "ImagesDeleted")), 2 + 2 + 2);
	assert_true(json_integer_value(json_object_get(pr, "SpaceReclaimed")) > 0);
	json_decref(pr);
	assert_int_equal(rt_image_resolve(s, "child:1", child, &err), -1);
	assert_store_ok(s);
	rt_store_close(s);
}

/* A pull's hold keeps layers no image references yet; the next prune after
 * the release removes them. */
static void test_prune_respects_pull_hold(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *data = path_in(f, "data");
	char base[RT_IMAGE_ID_LEN];
	struct rt_store *s = NULL;
	struct bh_err err;
	json_t *pr = NULL;

	assert_int_equal(rt_store_open(data, &s, &err), 0);
	import_base(f, s, base);
	rt_store_hold(s);
	assert_int_equal(rt_image_prune(s, true, NULL, &pr, &err), 0);
	assert_int_equal(json_array_size(json_object_get(pr, "ImagesDeleted")), 2); /* no layer */
	json_decref(pr);
	rt_store_release(s);
	assert_int_equal(rt_image_prune(s, false, NULL, &pr, &err), 0);
	assert_int_equal(json_array_size(json_object_get(pr, "ImagesDeleted")), 1); /* the layer */
	json_decref(pr);
	assert_store_ok(s);
	rt_store_close(s);
}

static bool blob_present(struct rt_store *s, const char *hex)
{
	cleanup_free char *path = reg_blob_path(s, hex);

	return bh_path_exists(path);
}

/* The hexes of the manifest recorded for id and of its layer blobs. */
static void manifest_blobs(struct rt_store *s, const char *id, char mhex[65], char lhex[][65],
                           size_t n)
{
	cleanup_free char *data = NULL;
	struct rt_reg_desc cfg, *layers = NULL;
	json_t *rec = NULL, *man;
	struct bh_err err;
	size_t len = 0, got = 0;

	assert_int_equal(reg_record_read(s, id + 7, &rec, &err), 0);
	assert_int_equal(
	    rt_store_digest_hex(json_string_value(json_object_get(rec, "manifest")), mhex), 0);
	assert_int_equal(rt_store_get_blob(s, mhex, 1 << 20, &data, &len, &err), 0);
	man = json_loadb(data, len, 0, NULL);
	assert_int_equal(rt_reg_manifest_parse(man, &cfg, &layers, &got, &err), 0);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++)
		memcpy(lhex[i], layers[i].hex, 65);
	free(layers);
	json_decref(man);
	json_decref(rec);
}

/* Blobs and records no image references go with rmi and prune (never
 * while the store is held); a shared layer blob stays; the check reports
 * orphans. */
static void test_blob_garbage(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *data = path_in(f, "data");
	char base[RT_IMAGE_ID_LEN], child[RT_IMAGE_ID_LEN], bm[65], cm[65], bl[1][65], cl[2][65];
	char stray[65];
	struct rt_store *s = NULL;
	struct bh_err err;
	json_t *pr = NULL, *p = NULL;

	if (geteuid() != 0)
		skip();
	assert_int_equal(rt_store_open(data, &s, &err), 0);
	import_base(f, s, base);
	commit_child(f, s, base, child);
	assert_int_equal(reg_manifest_build(s, base, &err), 0);
	assert_int_equal(reg_manifest_build(s, child, &err), 0);
	manifest_blobs(s, base, bm, bl, 1);
	manifest_blobs(s, child, cm, cl, 2);
	assert_string_equal(bl[0], cl[0]); /* the shared base layer */
	assert_store_ok(s);
	assert_int_equal(rt_image_remove(s, "child:1", false, NULL, &err), 0);
	assert_false(blob_present(s, cm) || blob_present(s, cl[1]) || blob_present(s, child + 7));
	assert_true(blob_present(s, bm) && blob_present(s, bl[0]));
	assert_store_ok(s);
	/* an unreferenced blob is an orphan for the check and garbage for prune */
	rt_store_sha256_hex("stray", 5, stray);
	assert_int_equal(rt_store_put_blob(s, "stray", 5, stray, &err), 0);
	assert_int_equal(rt_store_check(s, &p, &err), 0);
	assert_int_equal(json_array_size(p), 1);
	assert_non_null(strstr(json_string_value(json_array_get(p, 0)), "orphan"));
	json_decref(p);
	/* held (a pull runs): rmi and prune keep every blob */
	rt_store_hold(s);
	assert_int_equal(rt_image_remove(s, "base:1", false, NULL, &err), 0);
	assert_int_equal(rt_image_prune(s, true, NULL, &pr, &err), 0);
	json_decref(pr);
	assert_true(blob_present(s, bm) && blob_present(s, bl[0]) && blob_present(s, stray));
	rt_store_release(s);
	assert_int_equal(rt_image_prune(s, false, NULL, &pr, &err), 0);
	json_decref(pr);
	assert_false(blob_present(s, bm) || blob_present(s, bl[0]) || blob_present(s, stray));
	assert_store_ok(s);
	rt_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_upper_dir_to_layer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_mode_keeps_devices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deterministic_bytes, setup, teardown),
	    cmocka_unit_test(test_apply_change),
	    cmocka_unit_test_setup_teardown(test_store_import_commit_save_prune, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prune_respects_pull_hold, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blob_garbage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
