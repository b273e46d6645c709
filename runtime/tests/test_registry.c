/* Unit tests for the pure parts of the registry client: references,
 * WWW-Authenticate, platforms, manifests and indexes, X-Registry-Auth. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/runtime.h"

static void test_ref_split(void **state)
{
	struct rt_reg_ref r;
	struct bh_err err;

	assert_int_equal(rt_reg_ref_parse("busybox", &r, &err), 0);
	assert_string_equal(r.domain, "docker.io");
	assert_string_equal(r.host, "registry-1.docker.io");
	assert_string_equal(r.repo, "library/busybox");
	assert_string_equal(r.name, "docker.io/library/busybox");
	assert_string_equal(r.tag, "latest");
	assert_null(r.digest);
	rt_reg_ref_free(&r);

	assert_int_equal(rt_reg_ref_parse("127.0.0.1:5000/a/b:v1", &r, &err), 0);
	assert_string_equal(r.host, "127.0.0.1:5000");
	assert_string_equal(r.repo, "a/b");
	assert_string_equal(r.tag, "v1");
	rt_reg_ref_free(&r);

	assert_int_equal(rt_reg_ref_parse("localhost:5000/x@sha256:"
	                                  "0123456789abcdef0123456789abcdef0123456789abcdef0123"
	                                  "456789abcdef",
	                                  &r, &err),
	                 0);
	assert_null(r.tag);
	assert_true(bh_str_has_prefix(r.digest, "sha256:0123"));
	assert_string_equal(r.repo, "x");
	rt_reg_ref_free(&r);
}

static void test_ref_bad(void **state)
{
	struct rt_reg_ref r;
	struct bh_err err;

	assert_true(rt_reg_ref_parse("x@sha256:abc", &r, &err) < 0);
	assert_true(rt_reg_ref_parse("UPPER/case", &r, &err) < 0);
	assert_true(rt_reg_ref_parse("", &r, &err) < 0);
	assert_true(rt_reg_ref_parse("a/:tag", &r, &err) < 0);
}

static void test_challenge(void **state)
{
	struct rt_reg_challenge c;

	assert_int_equal(rt_reg_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
	                                        "service=\"registry.docker.io\",scope=\"repository:"
	                                        "library/busybox:pull\"",
	                                        &c),
	                 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");

	assert_int_equal(rt_reg_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "Registry Realm");

	assert_true(rt_reg_challenge_parse("Bearer service=\"x\"", &c) < 0); /* no realm */
	assert_true(rt_reg_challenge_parse("Bearer realm=\"unterminated", &c) < 0);
	assert_true(rt_reg_challenge_parse("", &c) < 0);
}

static void test_challenge_too_long(void **state)
{
	struct rt_reg_challenge c;
	char hdr[3000];

	memset(hdr, 'a', sizeof(hdr));
	memcpy(hdr, "Bearer realm=\"", 14);
	hdr[sizeof(hdr) - 2] = '"';
	hdr[sizeof(hdr) - 1] = '\0';
	assert_true(rt_reg_challenge_parse(hdr, &c) < 0);
}

static void test_platform(void **state)
{
	struct rt_platform p;
	struct bh_err err;
	json_t *amd = json_pack("{ssss}", "os", "linux", "architecture", "amd64");
	json_t *arm = json_pack("{ssss}", "os", "linux", "architecture", "arm64");
	json_t *armv7 =
	    json_pack("{ssssss}", "os", "linux", "architecture", "arm", "variant", "v7");

	assert_int_equal(rt_platform_parse("linux/arm64/v8", &p, &err), 0);
	assert_string_equal(p.arch, "arm64");
	assert_string_equal(p.variant, "v8");
	assert_true(rt_platform_match(arm, &p));
	assert_false(rt_platform_match(amd, &p));
	assert_int_equal(rt_platform_parse("linux/arm/v6", &p, &err), 0);
	assert_false(rt_platform_match(armv7, &p));
	assert_int_equal(rt_platform_parse("linux/amd64", &p, &err), 0);
	assert_true(rt_platform_match(amd, &p));
	assert_int_equal(rt_platform_parse(NULL, &p, &err), 0);
	assert_string_equal(p.os, "linux");
	assert_true(rt_platform_parse("linux", &p, &err) < 0);
	assert_true(rt_platform_parse("linux/", &p, &err) < 0);
	assert_true(rt_platform_parse("a/b/c/d", &p, &err) < 0);
	json_decref(amd);
	json_decref(arm);
	json_decref(armv7);
}

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_index_pick(void **state)
{
	json_t *idx = json_pack("{sis[{sssssIs{ssss}}{sssssIs{ssss}}]}", "schemaVersion", 2,
	                        "manifests", "mediaType", RT_MT_OCI_MANIFEST, "digest", D1, "size",
	                        (json_int_t)10, "platform", "os", "linux", "architecture", "arm64",
	                        "mediaType", RT_MT_OCI_MANIFEST, "digest", D2, "size",
	                        (json_int_t)20, "platform", "os", "linux", "architecture", "amd64");
	struct rt_platform p;
	struct rt_reg_desc d;
	struct bh_err err;

	assert_true(rt_reg_is_index(RT_MT_OCI_INDEX, NULL));
	assert_true(rt_reg_is_index(NULL, idx));
	rt_platform_parse("linux/amd64", &p, &err);
	assert_int_equal(rt_reg_index_pick(idx, &p, &d, &err), 0);
	assert_string_equal(d.digest, D2);
	assert_int_equal(d.size, 20);
	rt_platform_parse("linux/s390x", &p, &err);
	assert_true(rt_reg_index_pick(idx, &p, &d, &err) < 0);
	assert_int_equal(err.code, ENOENT);
	json_decref(idx);
}

static void test_manifest_parse(void **state)
{
	json_t *m = json_pack("{sis{sssssI}s[{sssssI}]}", "schemaVersion", 2, "config", "mediaType",
	                      "application/vnd.oci.image.config.v1+json", "digest", D1, "size",
	                      (json_int_t)100, "layers", "mediaType",
	                      "application/vnd.oci.image.layer.v1.tar+gzip", "digest", D2, "size",
	                      (json_int_t)2000);
	json_t *bad =
	    json_pack("{sis{ss}s[]}", "schemaVersion", 2, "config", "digest", "md5:x", "layers");
	json_t *v1 = json_pack("{si}", "schemaVersion", 1);
	struct rt_reg_desc cfg, *layers = NULL;
	size_t n = 0;
	struct bh_err err;

	assert_int_equal(rt_reg_manifest_parse(m, &cfg, &layers, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(cfg.digest, D1);
	assert_string_equal(layers[0].hex, D2 + 7);
	assert_int_equal(layers[0].size, 2000);
	free(layers);
	assert_true(rt_reg_manifest_parse(bad, &cfg, &layers, &n, &err) < 0);
	assert_true(rt_reg_manifest_parse(v1, &cfg, &layers, &n, &err) < 0);
	assert_non_null(strstr(err.msg, "schemaVersion"));
	json_decref(m);
	json_decref(bad);
	json_decref(v1);
}

static void test_auth_decode(void **state)
{
	const char *json = "{\"username\":\"alice\",\"password\":\"s3cr?t>\","
	                   "\"serveraddress\":\"127.0.0.1:5000\"}";
	cleanup_free char *b64 = bh_base64_encode(json, strlen(json), true);
	struct rt_reg_auth a;
	struct bh_err err;

	assert_null(strchr(b64, '+'));
	assert_null(strchr(b64, '/'));
	assert_int_equal(rt_reg_auth_decode(b64, &a, &err), 0);
	assert_string_equal(a.username, "alice");
	assert_string_equal(a.password, "s3cr?t>");
	assert_string_equal(a.serveraddress, "127.0.0.1:5000");
	rt_reg_auth_clear(&a);
	assert_null(a.password);
	assert_int_equal(rt_reg_auth_decode("", &a, &err), 0);
	assert_null(a.username);
	assert_true(rt_reg_auth_decode("!!!", &a, &err) < 0);
	assert_true(rt_reg_auth_decode("W10", &a, &err) < 0); /* "[]": not an object */
}

static void test_base64(void **state)
{
	char *out = NULL;
	size_t n = 0;
	cleanup_free char *e = bh_base64_encode("\xfb\xff", 2, false);
	cleanup_free char *u = bh_base64_encode("\xfb\xff", 2, true);

	assert_string_equal(e, "+/8=");
	assert_string_equal(u, "-_8=");
	assert_int_equal(bh_base64_decode("-_8", 16, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	free(out);
	assert_true(bh_base64_decode("aGVsbG8=", 3, &out, &n) < 0); /* over max */
}

static void test_plain_http_allowed(void **state)
{
	const char *const list[] = {"reg.example:5000", "lab.local", NULL};

	assert_true(rt_reg_plain_http_allowed("127.0.0.1:5000", NULL));
	assert_true(rt_reg_plain_http_allowed("localhost:5000", NULL));
	assert_true(rt_reg_plain_http_allowed("[::1]:5000", NULL));
	assert_false(rt_reg_plain_http_allowed("localhost.evil.example:5000", NULL));
	assert_false(rt_reg_plain_http_allowed("reg.example:5000", NULL));
	assert_true(rt_reg_plain_http_allowed("reg.example:5000", list));
	assert_false(rt_reg_plain_http_allowed("reg.example:5001", list));
	assert_true(rt_reg_plain_http_allowed("lab.local:443", list));
	assert_false(rt_reg_plain_http_allowed("lab.localx:443", list));
	assert_false(rt_reg_plain_http_allowed("registry-1.docker.io", list));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ref_split),      cmocka_unit_test(test_ref_bad),
	    cmocka_unit_test(test_challenge),      cmocka_unit_test(test_challenge_too_long),
	    cmocka_unit_test(test_platform),       cmocka_unit_test(test_index_pick),
	    cmocka_unit_test(test_manifest_parse), cmocka_unit_test(test_auth_decode),
	    cmocka_unit_test(test_base64),         cmocka_unit_test(test_plain_http_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
