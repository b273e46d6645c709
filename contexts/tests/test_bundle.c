/* contexts: BERTH_CONTEXT_BUNDLE (an exported context in base64, used from
 * memory), where it sits in the resolution order, the protected flag kept
 * through export, and every resolved target carrying its PEMs in memory. */
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

static char pki[64], dir[64], *cfg, *bundle, *bundle_plain;

static char *file_text(const char *path, size_t *len)
{
	struct bh_err err = {0};
	char *data = NULL;

	if (bh_read_file(path, 1 << 24, &data, len, &err) < 0)
		fail_msg("%s", err.msg);
	return data;
}

/* The base64 of `context export NAME`, wrapped every 76 characters as base64(1)
 * does when wrap is set. */
static char *export_b64(const char *name, bool wrap)
{
	cleanup_free char *file = bh_path_join(dir, "x.tar");
	struct bh_err err = {0};
	cleanup_free char *tar = NULL;
	cleanup_free char *b64 = NULL;
	size_t len, n, j = 0;
	char *out;

	if (ctx_export(cfg, name, file, &err) < 0)
		fail_msg("export: %s", err.msg);
	tar = file_text(file, &len);
	unlink(file);
	b64 = bh_base64_encode(tar, len, false);
	n = strlen(b64);
	out = bh_malloc(n + n / 76 + 2);
	for (size_t i = 0; i < n; i++) {
		out[j++] = b64[i];
		if (wrap && i % 76 == 75)
			out[j++] = '\n';
	}
	out[j] = '\0';
	return out;
}

static int group_setup(void **state)
{
	struct pki_init_opts o = {0};
	struct ctx_create_opts c = {0};
	struct bh_err err = {0};

	umask(022);
	snprintf(pki, sizeof(pki), "/tmp/berth-bundle-pki-XXXXXX");
	snprintf(dir, sizeof(dir), "/tmp/berth-bundle-XXXXXX");
	assert_non_null(mkdtemp(pki));
	assert_non_null(mkdtemp(dir));
	o.dir = pki;
	o.force = true;
	assert_int_equal(pki_init(&o, &err), 0);
	cfg = bh_path_join(dir, "cfg");
	c.name = "ci";
	c.host = "tcp://127.0.0.1:7443";
	c.tls.dir = pki;
	c.is_protected = true;
	if (ctx_create(cfg, &c, &err) < 0)
		fail_msg("create: %s", err.msg);
	bundle = export_b64("ci", true);
	c.name = "plain";
	c.is_protected = false;
	assert_int_equal(ctx_create(cfg, &c, &err), 0);
	bundle_plain = export_b64("plain", false);
	return 0;
}

static int group_teardown(void **state)
{
	struct bh_err err;

	bh_rm_rf(pki, &err);
	bh_rm_rf(dir, &err);
	free(cfg);
	free(bundle);
	free(bundle_plain);
	return 0;
}

static void assert_pem_is_file(const char *pem, size_t len, const char *path)
{
	size_t flen;
	cleanup_free char *data = file_text(path, &flen);

	assert_non_null(pem);
	assert_int_equal(len, flen);
	assert_memory_equal(pem, data, len);
}

static void test_bundle_load(void **state)
{
	cleanup_free char *key = bh_path_join(pki, "key.pem");
	cleanup_free char *cert = bh_path_join(pki, "cert.pem");
	struct ctx_target t;
	struct bh_err err = {0};

	if (ctx_bundle_load(bundle, &t, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(t.name, "ci");
	assert_string_equal(t.host, "tcp://127.0.0.1:7443");
	assert_int_equal(t.source, CTX_SRC_ENV_BUNDLE);
	assert_true(t.is_protected);
	assert_null(t.tls.ca); /* no files at all */
	assert_pem_is_file(t.pem.key, t.pem.key_len, key);
	assert_pem_is_file(t.pem.cert, t.pem.cert_len, cert);
	ctx_target_free(&t);

	assert_int_equal(ctx_bundle_load(bundle_plain, &t, &err), 0);
	assert_false(t.is_protected);
	ctx_target_free(&t);
}

static void test_bundle_bad(void **state)
{
	cleanup_free char *junk = bh_base64_encode("not a tar at all", 16, false);
	cleanup_free char *cut = bh_strndup(bundle, strlen(bundle) / 2);
	struct ctx_target t;
	struct bh_err err = {0};

	assert_int_equal(ctx_bundle_load("%%% not base64 %%%", &t, &err), -1);
	assert_non_null(strstr(err.msg, "BERTH_CONTEXT_BUNDLE: not base64"));
	assert_int_equal(ctx_bundle_load(junk, &t, &err), -1);
	assert_non_null(strstr(err.msg, "BERTH_CONTEXT_BUNDLE: "));
	assert_int_equal(ctx_bundle_load(cut, &t, &err), -1);
	assert_null(t.name);
}

static int resolve(const struct ctx_flags *fl, const struct ctx_env *env, struct ctx_target *t)
{
	struct bh_err err = {0};

	if (ctx_resolve(cfg, fl, env, t, &err) < 0)
		fail_msg("resolve: %s", err.msg);
	return 0;
}

static void test_bundle_order(void **state)
{
	struct ctx_env env = {.berth_context_bundle = bundle,
	                      .berth_host = "tcp://env-host:2",
	                      .berth_cert_path = pki,
	                      .berth_context = "plain"};
	struct ctx_flags fl = {0};
	struct ctx_target t;

	resolve(&fl, &env, &t); /* over BERTH_HOST and BERTH_CONTEXT */
	assert_int_equal(t.source, CTX_SRC_ENV_BUNDLE);
	assert_string_equal(t.reason, "from BERTH_CONTEXT_BUNDLE");
	ctx_target_free(&t);

	fl.context = "plain"; /* -c beats it */
	resolve(&fl, &env, &t);
	assert_int_equal(t.source, CTX_SRC_FLAG_CONTEXT);
	assert_string_equal(t.name, "plain");
	assert_non_null(t.pem.key); /* stored contexts carry their PEMs too */
	ctx_target_free(&t);

	fl.context = "ci"; /* ... unless -c names the bundle */
	resolve(&fl, &env, &t);
	assert_int_equal(t.source, CTX_SRC_ENV_BUNDLE);
	assert_null(t.tls.ca);
	assert_true(t.is_protected);
	ctx_target_free(&t);

	fl.context = NULL;
	fl.host = "tcp://flag:1"; /* -H beats everything */
	fl.tls_dir = pki;
	resolve(&fl, &env, &t);
	assert_int_equal(t.source, CTX_SRC_FLAG_HOST);
	ctx_target_free(&t);
}

static void test_protected_survives_export_and_update(void **state)
{
	struct ctx_update_opts u = {0};
	struct ctx_meta m;
	struct bh_err err = {0};

	assert_int_equal(ctx_load(cfg, "ci", &m, &err), 0);
	assert_true(m.is_protected);
	ctx_meta_free(&m);
	u.description = "kept"; /* an unrelated update keeps the flag */
	assert_int_equal(ctx_update(cfg, "ci", &u, &err), 0);
	assert_int_equal(ctx_load(cfg, "ci", &m, &err), 0);
	assert_true(m.is_protected);
	ctx_meta_free(&m);
	u.description = NULL;
	u.protect = CTX_PROTECT_OFF;
	assert_int_equal(ctx_update(cfg, "ci", &u, &err), 0);
	assert_int_equal(ctx_load(cfg, "ci", &m, &err), 0);
	assert_false(m.is_protected);
	ctx_meta_free(&m);
	u.protect = CTX_PROTECT_ON;
	assert_int_equal(ctx_update(cfg, "ci", &u, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bundle_load),
	    cmocka_unit_test(test_bundle_bad),
	    cmocka_unit_test(test_bundle_order),
	    cmocka_unit_test(test_protected_survives_export_and_update),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
