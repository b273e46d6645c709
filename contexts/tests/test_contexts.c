/* contexts: the store, name rules, resolution order and the archive format,
 * all against temp config dirs (no real environment is read). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "certs/certs.h"
#include "contexts/contexts.h"

static char pki_a[64], pki_b[64]; /* two unrelated CAs with client certs */

struct fx {
	char dir[64];
	char *cfg;
};

static void make_pki(char *dir)
{
	struct pki_init_opts o = {0};
	struct bh_err err = {0};

	snprintf(dir, 64, "/tmp/berth-ctx-pki-XXXXXX");
	assert_non_null(mkdtemp(dir));
	o.dir = dir;
	o.force = true;
	if (pki_init(&o, &err) < 0)
		fail_msg("pki_init: %s", err.msg);
}

static int group_setup(void **state)
{
	umask(022);
	make_pki(pki_a);
	make_pki(pki_b);
	return 0;
}

static int group_teardown(void **state)
{
	struct bh_err err;

	bh_rm_rf(pki_a, &err);
	bh_rm_rf(pki_b, &err);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = bh_calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-ctx-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = bh_path_join(f->dir, "cfg"); /* does not exist yet: created on demand */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct bh_err err;

	assert_int_equal(bh_rm_rf(f->dir, &err), 0);
	free(f->cfg);
	free(f);
	return 0;
}

static int create(const char *cfg, const char *name, const char *host, const char *tls_dir,
                  struct bh_err *err)
{
	struct ctx_create_opts o = {.name = name, .host = host, .description = "test"};

	o.tls.dir = tls_dir;
	return ctx_create(cfg, &o, err);
}

static void must_create(const char *cfg, const char *name, const char *host)
{
	struct bh_err err = {0};

	/* TLS material only for tcp: a unix context needs none. */
	if (create(cfg, name, host, bh_str_has_prefix(host, "tcp://") ? pki_a : NULL, &err) < 0)
		fail_msg("create %s: %s", name, err.msg);
}

static int mode_of(const char *dir, const char *rel)
{
	cleanup_free char *p = rel[0] ? bh_path_join(dir, rel) : bh_strdup(dir);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	return (int)(st.st_mode & 07777);
}

/* Entries in cfg/contexts other than the expected names (temp dirs, leftovers). */
static int count_entries(const char *cfg)
{
	cleanup_free char *d = bh_path_join(cfg, "contexts");
	DIR *dir = opendir(d);
	struct dirent *de;
	int n = 0;

	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(dir);
	return n;
}

static void test_create_ls_use_rm(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	struct ctx_meta *list;
	size_t n;
	char *cur;

	must_create(f->cfg, "prod", "tcp://127.0.0.1:7443");
	must_create(f->cfg, "a.b+c_d-1", "unix:///run/other.sock");
	assert_int_equal(create(f->cfg, "prod", "tcp://h:1", pki_a, &err), -1);
	assert_int_equal(err.code, EEXIST);

	assert_int_equal(ctx_list(f->cfg, &list, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].name, "default");
	assert_string_equal(list[0].host, CTX_DEFAULT_HOST);
	assert_string_equal(list[1].name, "a.b+c_d-1");
	assert_null(list[1].tls.ca);
	assert_string_equal(list[2].name, "prod");
	assert_string_equal(list[2].host, "tcp://127.0.0.1:7443");
	assert_string_equal(list[2].description, "test");
	assert_non_null(strstr(list[2].tls.key, "/contexts/prod/tls/key.pem"));
	ctx_list_free(list, n);

	assert_int_equal(ctx_current(f->cfg, &cur, &err), 0);
	assert_string_equal(cur, "default");
	free(cur);
	assert_int_equal(ctx_use(f->cfg, "nope", &err), -1);
	assert_non_null(strstr(err.msg, "context \"nope\" not found"));
	assert_int_equal(ctx_use(f->cfg, "prod", &err), 0);
	assert_int_equal(ctx_current(f->cfg, &cur, &err), 0);
	assert_string_equal(cur, "prod");
	free(cur);

	assert_int_equal(ctx_remove(f->cfg, "prod", false, &err), -1);
	assert_int_equal(err.code, EBUSY);
	assert_int_equal(ctx_remove(f->cfg, "default", true, &err), -1);
	assert_int_equal(ctx_remove(f->cfg, "ghost", true, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(ctx_remove(f->cfg, "prod", true, &err), 0);
	assert_int_equal(ctx_current(f->cfg, &cur, &err), 0);
	assert_string_equal(cur, "default");
	free(cur);
	assert_int_equal(ctx_remove(f->cfg, "a.b+c_d-1", false, &err), 0);
	assert_int_equal(count_entries(f->cfg), 0);
}

static void test_modes(void **state)
{
	struct fx *f = *state;
	cleanup_free char *cfg = bh_strdup(f->cfg);

	must_create(f->cfg, "m", "tcp://localhost:1");
	assert_int_equal(mode_of(cfg, ""), 0700);
	assert_int_equal(mode_of(cfg, "contexts"), 0700);
	assert_int_equal(mode_of(cfg, "contexts/m"), 0700);
	assert_int_equal(mode_of(cfg, "contexts/m/tls"), 0700);
	assert_int_equal(mode_of(cfg, "contexts/m/tls/key.pem"), 0600);
	assert_int_equal(mode_of(cfg, "contexts/m/tls/cert.pem"), 0644);
}

static void test_names(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	char long_name[80];
	const char *bad[] = {"../x", "a/b", ".hidden", "", "-x", "a b", "x\n", "default", NULL};

	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	for (int i = 0; bad[i] != NULL; i++) {
		if (ctx_name_check_new(bad[i], &err) == 0)
			fail_msg("name \"%s\" accepted", bad[i]);
		assert_int_equal(create(f->cfg, bad[i], "tcp://h:1", pki_a, &err), -1);
	}
	assert_int_equal(ctx_name_check_new(long_name, &err), -1);
	long_name[64] = '\0';
	assert_int_equal(ctx_name_check_new(long_name, &err), 0);
	assert_true(ctx_name_is_valid("default"));
	assert_int_equal(count_entries(f->cfg), 0);
}

static void test_hosts(void **state)
{
	struct bh_err err = {0};
	const char *good[] = {"tcp://127.0.0.1:7443", "tcp://[::1]:1", "tcp://a-b.example:65535",
	                      "unix:///run/berth/berthd.sock", NULL};
	const char *bad[] = {"tcp://h",    "tcp://h:0",  "tcp://h:70000", "tcp://:1", "tcp://h:1/x",
	                     "http://h:1", "unix://rel", "tcp://[::1:1",  "",         NULL};

	for (int i = 0; good[i]; i++)
		if (ctx_host_check(good[i], &err) < 0)
			fail_msg("%s refused: %s", good[i], err.msg);
	for (int i = 0; bad[i]; i++)
		if (ctx_host_check(bad[i], &err) == 0)
			fail_msg("%s accepted", bad[i]);
}

static void test_create_validation(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	struct ctx_create_opts o = {.name = "x", .host = "tcp://h:1"};
	cleanup_free char *ca = bh_path_join(pki_a, "ca.pem");
	cleanup_free char *cert = bh_path_join(pki_a, "cert.pem");
	cleanup_free char *key_b = bh_path_join(pki_b, "key.pem");

	assert_int_equal(ctx_create(f->cfg, &o, &err), -1);
	assert_non_null(strstr(err.msg, "needs TLS material"));
	o.tls.ca = ca;
	o.tls.cert = cert;
	o.tls.key = key_b; /* a key from another PKI: not the cert's */
	assert_int_equal(ctx_create(f->cfg, &o, &err), -1);
	assert_true(strstr(err.msg, cert) != NULL || strstr(err.msg, key_b) != NULL);
	o.tls.key = "/nonexistent/key.pem";
	assert_int_equal(ctx_create(f->cfg, &o, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));
	o.tls.key = NULL;
	assert_int_equal(ctx_create(f->cfg, &o, &err), -1);
	assert_non_null(strstr(err.msg, "go together"));
	assert_int_equal(count_entries(f->cfg), 0);
}

static void test_update(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	struct ctx_update_opts u = {.description = "new", .host = "tcp://10.0.0.1:2376"};
	struct ctx_meta m;
	cleanup_free char *a_cert = NULL, *b_cert = NULL, *b_cert_path = NULL;
	size_t la, lb;

	must_create(f->cfg, "u", "unix:///run/x.sock");
	must_create(f->cfg, "t", "tcp://h:1");
	assert_int_equal(ctx_update(f->cfg, "t", &u, &err), 0);
	assert_int_equal(ctx_load(f->cfg, "t", &m, &err), 0);
	assert_string_equal(m.description, "new");
	assert_string_equal(m.host, "tcp://10.0.0.1:2376");
	assert_int_equal(bh_read_file(m.tls.cert, 1 << 20, &a_cert, &la, &err), 0);
	ctx_meta_free(&m);

	memset(&u, 0, sizeof(u));
	u.tls.dir = pki_b;
	assert_int_equal(ctx_update(f->cfg, "t", &u, &err), 0);
	assert_int_equal(ctx_load(f->cfg, "t", &m, &err), 0);
	assert_string_equal(m.description, "new");
	assert_int_equal(bh_read_file(m.tls.cert, 1 << 20, &b_cert, &lb, &err), 0);
	b_cert_path = bh_path_join(pki_b, "cert.pem");
	free(a_cert);
	assert_int_equal(bh_read_file(b_cert_path, 1 << 20, &a_cert, &la, &err), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(a_cert, b_cert, la);
	ctx_meta_free(&m);

	/* A unix context turned tcp without TLS material is refused. */
	memset(&u, 0, sizeof(u));
	u.host = "tcp://h:2";
	assert_int_equal(ctx_update(f->cfg, "u", &u, &err), -1);
	assert_non_null(strstr(err.msg, "needs TLS material"));
	assert_int_equal(ctx_update(f->cfg, "ghost", &u, &err), -1);
	assert_int_equal(err.code, ENOENT);
}

/* ---- resolution -------------------------------------------------------- */

enum { R_FLAG_HOST = 1, R_FLAG_CTX = 2, R_ENV_HOST = 4, R_ENV_CTX = 8, R_CONFIG = 16 };

static void resolve_combo(const char *cfg, int bits)
{
	struct ctx_flags fl = {0};
	struct ctx_env env = {0};
	struct ctx_target t;
	struct bh_err err = {0};
	int r;

	if (bits & R_FLAG_HOST) {
		fl.host = "tcp://flag-host:1";
		fl.tls_dir = pki_a;
	}
	if (bits & R_FLAG_CTX)
		fl.context = "cflag";
	if (bits & R_ENV_HOST) {
		env.berth_host = "tcp://env-host:2";
		env.berth_cert_path = pki_b;
	}
	if (bits & R_ENV_CTX)
		env.berth_context = "cenv";
	assert_int_equal(ctx_use(cfg, (bits & R_CONFIG) ? "cconf" : "default", &err), 0);

	r = ctx_resolve(cfg, &fl, &env, &t, &err);
	if (r < 0)
		fail_msg("combo %d: %s", bits, err.msg);
	if (bits & R_FLAG_HOST) {
		assert_int_equal(t.source, CTX_SRC_FLAG_HOST);
		assert_string_equal(t.host, "tcp://flag-host:1");
		assert_non_null(strstr(t.tls.ca, pki_a));
	} else if (bits & R_FLAG_CTX) {
		assert_int_equal(t.source, CTX_SRC_FLAG_CONTEXT);
		assert_string_equal(t.name, "cflag");
	} else if (bits & R_ENV_HOST) {
		assert_int_equal(t.source, CTX_SRC_ENV_HOST);
		assert_string_equal(t.host, "tcp://env-host:2");
		assert_string_equal(t.reason, "from BERTH_HOST");
		assert_non_null(strstr(t.tls.key, pki_b));
	} else if (bits & R_ENV_CTX) {
		assert_int_equal(t.source, CTX_SRC_ENV_CONTEXT);
		assert_string_equal(t.name, "cenv");
		assert_string_equal(t.reason, "from BERTH_CONTEXT");
	} else if (bits & R_CONFIG) {
		assert_int_equal(t.source, CTX_SRC_CONFIG);
		assert_string_equal(t.name, "cconf");
		assert_non_null(strstr(t.reason, "config.json"));
		assert_non_null(strstr(t.tls.cert, "/contexts/cconf/tls/cert.pem"));
	} else {
		assert_int_equal(t.source, CTX_SRC_DEFAULT);
		assert_string_equal(t.name, "default");
		assert_string_equal(t.host, CTX_DEFAULT_HOST);
		assert_null(t.tls.ca);
	}
	ctx_target_free(&t);
}

static void test_resolve_order(void **state)
{
	struct fx *f = *state;

	must_create(f->cfg, "cflag", "tcp://cflag:1");
	must_create(f->cfg, "cenv", "tcp://cenv:1");
	must_create(f->cfg, "cconf", "tcp://cconf:1");
	for (int bits = 0; bits < 32; bits++)
		resolve_combo(f->cfg, bits);
}

static void test_resolve_errors(void **state)
{
	struct fx *f = *state;
	struct ctx_flags fl = {0};
	struct ctx_env env = {0};
	struct ctx_target t;
	struct bh_err err = {0};

	fl.host = "tcp://127.0.0.1:7443";
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	assert_string_equal(
	    err.msg, "tcp://127.0.0.1:7443 needs TLS material: --tls-dir or BERTH_CERT_PATH");
	fl.host = "unix:///tmp/x.sock"; /* unix needs no TLS */
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), 0);
	assert_null(t.tls.ca);
	ctx_target_free(&t);
	fl.host = NULL;
	fl.tls_dir = pki_a;
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	fl.tls_dir = NULL;
	fl.context = "missing";
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	assert_string_equal(err.msg, "context \"missing\" not found (berth context ls lists them)");
	fl.context = NULL;
	env.berth_host = "tcp://h:1";
	env.berth_cert_path = f->dir; /* no ca.pem there */
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	assert_non_null(strstr(err.msg, f->dir));
}

static void test_malformed_config(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	cleanup_free char *path = bh_path_join(f->cfg, "config.json");
	cleanup_free char *meta = NULL;
	struct ctx_env env = {0};
	struct ctx_flags fl = {0};
	struct ctx_target t;
	char *cur = NULL;

	must_create(f->cfg, "ok", "tcp://h:1");
	assert_int_equal(bh_write_file_atomic(path, "{\n \"currentContext\": \n", 23, 0644, &err),
	                 0);
	assert_int_equal(ctx_current(f->cfg, &cur, &err), -1);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "line"));
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	assert_non_null(strstr(err.msg, path));

	meta = bh_path_join(f->cfg, "contexts/ok/meta.json");
	assert_int_equal(bh_write_file_atomic(meta, "[1,", 3, 0644, &err), 0);
	fl.context = "ok";
	assert_int_equal(ctx_resolve(f->cfg, &fl, &env, &t, &err), -1);
	assert_non_null(strstr(err.msg, meta));
}

/* ---- export / import --------------------------------------------------- */

static void same_file(const char *a, const char *b)
{
	cleanup_free char *x = NULL, *y = NULL;
	size_t lx, ly;
	struct bh_err err;
	struct stat sa, sb;

	assert_int_equal(bh_read_file(a, 1 << 20, &x, &lx, &err), 0);
	assert_int_equal(bh_read_file(b, 1 << 20, &y, &ly, &err), 0);
	assert_int_equal(lx, ly);
	assert_memory_equal(x, y, lx);
	assert_int_equal(stat(a, &sa), 0);
	assert_int_equal(stat(b, &sb), 0);
	assert_int_equal(sa.st_mode & 07777, sb.st_mode & 07777);
}

static void check_tar_key_mode(const char *file)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int seen = 0;

	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, file, 10240), ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), "tls/key.pem") == 0) {
			assert_int_equal(archive_entry_perm(e), 0600);
			seen = 1;
		}
	}
	archive_read_free(a);
	assert_true(seen);
}

static void test_export_import(void **state)
{
	struct fx *f = *state;
	struct bh_err err = {0};
	cleanup_free char *file = bh_path_join(f->dir, "prod.berthcontext");
	cleanup_free char *cfg2 = bh_path_join(f->dir, "cfg2");
	struct ctx_meta a, b;

	must_create(f->cfg, "prod", "tcp://[::1]:7443");
	assert_int_equal(ctx_export(f->cfg, "prod", file, &err), 0);
	assert_int_equal(mode_of(file, ""), 0600);
	check_tar_key_mode(file);
	assert_int_equal(ctx_import(cfg2, "copy", file, &err), 0);
	assert_int_equal(ctx_load(f->cfg, "prod", &a, &err), 0);
	assert_int_equal(ctx_load(cfg2, "copy", &b, &err), 0);
	assert_string_equal(a.host, b.host);
	assert_string_equal(a.description, b.description);
	assert_string_equal(a.created, b.created);
	same_file(a.tls.ca, b.tls.ca);
	same_file(a.tls.cert, b.tls.cert);
	same_file(a.tls.key, b.tls.key);
	assert_int_equal(mode_of(cfg2, "contexts/copy/tls/key.pem"), 0600);
	ctx_meta_free(&a);
	ctx_meta_free(&b);

	assert_int_equal(ctx_import(cfg2, "copy", file, &err), -1);
	assert_int_equal(err.code, EEXIST);
	assert_int_equal(ctx_import(cfg2, "default", file, &err), -1);
	assert_int_equal(count_entries(cfg2), 1);
}

/* A crafted archive: a valid context plus one hostile member. */
struct member {
	const char *name;
	mode_t type;
	size_t size;
	const char *link;
	bool hardlink;
};

static void add_entry(struct archive *w, const char *name, mode_t type, const char *data,
                      size_t size, const char *link, bool hard)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, 0644);
	if (link && hard)
		archive_entry_set_hardlink(e, link);
	else if (link)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, type == AE_IFREG && !hard ? (la_int64_t)size : 0);
	assert_true(archive_write_header(w, e) >= ARCHIVE_WARN);
	if (type == AE_IFREG && size && !hard)
		assert_int_equal(archive_write_data(w, data, size), (la_ssize_t)size);
	archive_entry_free(e);
}

static void put_file(struct archive *w, const char *name, const char *path)
{
	cleanup_free char *data = NULL;
	size_t len;
	struct bh_err err;

	assert_int_equal(bh_read_file(path, 1 << 20, &data, &len, &err), 0);
	add_entry(w, name, AE_IFREG, data, len, NULL, false);
}

static void craft(const char *file, const struct member *evil)
{
	static const char meta[] = "{\"Name\":\"x\",\"Host\":\"tcp://h:1\"}";
	struct archive *w = archive_write_new();
	cleanup_free char *ca = bh_path_join(pki_a, "ca.pem");
	cleanup_free char *cert = bh_path_join(pki_a, "cert.pem");
	cleanup_free char *key = bh_path_join(pki_a, "key.pem");
	char *big = bh_calloc(1, evil->size + 1);

	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, file), ARCHIVE_OK);
	add_entry(w, "meta.json", AE_IFREG, meta, strlen(meta), NULL, false);
	put_file(w, "tls/ca.pem", ca);
	put_file(w, "tls/cert.pem", cert);
	add_entry(w, evil->name, evil->type, big, evil->size, evil->link, evil->hardlink);
	put_file(w, "tls/key.pem", key);
	assert_int_equal(archive_write_close(w), ARCHIVE_OK);
	archive_write_free(w);
	free(big);
}

static void test_import_hostile(void **state)
{
	struct fx *f = *state;
	cleanup_free char *file = bh_path_join(f->dir, "evil.tar");
	const struct member cases[] = {
	    {"../evil", AE_IFREG, 10, NULL, false},
	    {"/abs", AE_IFREG, 10, NULL, false},
	    {"tls/../../x", AE_IFREG, 10, NULL, false},
	    {"extra.txt", AE_IFREG, 10, NULL, false},
	    {"tls/ca.pem", AE_IFLNK, 0, "/etc/passwd", false},
	    {"tls/key.pem", AE_IFREG, 0, "tls/ca.pem", true},
	    {"tls/ca.pem", AE_IFCHR, 0, NULL, false},
	    {"meta.json", AE_IFREG, 5, NULL, false}, /* a second meta.json */
	    {"tls/ca.pem", AE_IFREG, CTX_FILE_MAX + 1, NULL, false},
	    {"tls/\x1b[31mred", AE_IFREG, 1, NULL, false},
	};
	struct bh_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char shown[64];
		craft(file, &cases[i]);
		bh_err_clear(&err);
		assert_int_equal(ctx_import(f->cfg, "new", file, &err), -1);
		snprintf(shown, sizeof(shown), "member \"%.20s", cases[i].name);
		if (i + 1 < sizeof(cases) / sizeof(cases[0]) && strstr(err.msg, shown) == NULL)
			fail_msg("case %zu: %s", i, err.msg);
		assert_non_null(strstr(err.msg, file));
		assert_null(strchr(err.msg, '\x1b'));
		assert_int_equal(count_entries(f->cfg), 0);
	}
}

static void test_import_bad_material(void **state)
{
	struct fx *f = *state;
	cleanup_free char *file = bh_path_join(f->dir, "x.tar");
	cleanup_free char *key_b = bh_path_join(pki_b, "key.pem");
	struct archive *w = archive_write_new();
	static const char meta[] = "{\"Host\":\"tcp://h:1\"}";
	cleanup_free char *ca = bh_path_join(pki_a, "ca.pem");
	cleanup_free char *cert = bh_path_join(pki_a, "cert.pem");
	struct bh_err err;

	archive_write_set_format_pax_restricted(w);
	assert_int_equal(archive_write_open_filename(w, file), ARCHIVE_OK);
	add_entry(w, "meta.json", AE_IFREG, meta, strlen(meta), NULL, false);
	put_file(w, "tls/ca.pem", ca);
	put_file(w, "tls/cert.pem", cert);
	put_file(w, "tls/key.pem", key_b); /* does not match cert.pem */
	assert_int_equal(archive_write_close(w), ARCHIVE_OK);
	archive_write_free(w);
	assert_int_equal(ctx_import(f->cfg, "new", file, &err), -1);
	assert_non_null(strstr(err.msg, file));
	assert_int_equal(count_entries(f->cfg), 0);

	assert_int_equal(bh_write_file_atomic(file, "not a tar", 9, 0600, &err), 0);
	assert_int_equal(ctx_import(f->cfg, "new", file, &err), -1);
	assert_int_equal(count_entries(f->cfg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_create_ls_use_rm, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_names, setup, teardown),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_export_import, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_bad_material, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
