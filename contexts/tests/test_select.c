/* contexts: -c selections (lists, globs, labels) and context labels, against
 * a temp config dir of unix-socket contexts (no TLS material needed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "contexts/contexts.h"

struct fx {
	char dir[64];
	char *cfg;
};

static void make(const char *cfg, const char *name, const char *const *labels, size_t n)
{
	struct ctx_create_opts o = {.name = name, .host = "unix:///run/x.sock"};
	struct bh_err err = {0};

	o.labels = labels;
	o.nlabels = n;
	if (ctx_create(cfg, &o, &err) < 0)
		fail_msg("create %s: %s", name, err.msg);
}

static int setup(void **state)
{
	static const char *const prod_db[] = {"env=prod", "role=db"};
	static const char *const prod[] = {"env=prod"};
	static const char *const dev[] = {"env=dev", "zone=eu-1"};
	struct fx *f = bh_calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-sel-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = bh_path_join(f->dir, "cfg");
	make(f->cfg, "prod-1", prod_db, 2);
	make(f->cfg, "prod-2", prod, 1);
	make(f->cfg, "dev-1", dev, 2);
	make(f->cfg, "other", NULL, 0);
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

static void test_glob(void **state)
{
	(void)state;
	assert_true(ctx_glob_match("*", ""));
	assert_true(ctx_glob_match("*", "abc"));
	assert_true(ctx_glob_match("prod-*", "prod-1"));
	assert_false(ctx_glob_match("prod-*", "xprod-1"));
	assert_true(ctx_glob_match("*-1", "dev-1"));
	assert_true(ctx_glob_match("p?od-?", "prod-2"));
	assert_false(ctx_glob_match("p?od-?", "prod-22"));
	assert_true(ctx_glob_match("a*b*c", "aXXbYYbc"));
	assert_false(ctx_glob_match("a*b*c", "aXXbYYbd"));
	assert_true(ctx_glob_match("[a-c]x", "bx"));
	assert_false(ctx_glob_match("[a-c]x", "dx"));
	assert_true(ctx_glob_match("[!a-c]x", "dx"));
	assert_true(ctx_glob_match("[^a]x", "bx"));
	assert_true(ctx_glob_match("[]]", "]"));
	assert_true(ctx_glob_match("[a-]", "-"));
	assert_true(ctx_glob_match("x[", "x[")); /* unterminated: a plain '[' */
	assert_false(ctx_glob_match("x[", "xa"));
	assert_true(ctx_glob_match("**a**", "a"));
	assert_false(ctx_glob_match("", "a"));
	assert_true(ctx_glob_match("", ""));
}

/* A hostile pattern must stay linear-ish: this would take ages with naive
 * recursion (2^30 paths). */
static void test_glob_no_blowup(void **state)
{
	char s[200], p[200];

	(void)state;
	memset(s, 'a', 100);
	s[100] = '\0';
	snprintf(p, sizeof(p), "%s",
	         "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b");
	assert_false(ctx_glob_match(p, s));
}

static void test_is_pattern(void **state)
{
	(void)state;
	assert_false(ctx_selection_is_pattern("prod-1"));
	assert_false(ctx_selection_is_pattern(NULL));
	assert_true(ctx_selection_is_pattern("a,b"));
	assert_true(ctx_selection_is_pattern("p*"));
	assert_true(ctx_selection_is_pattern("p?"));
	assert_true(ctx_selection_is_pattern("[ab]"));
	assert_true(ctx_selection_is_pattern("@env=prod"));
}

static char *names(const struct ctx_selection *s)
{
	struct bh_buf b;

	bh_buf_init(&b, 4096);
	for (size_t i = 0; i < s->n; i++)
		bh_buf_printf(&b, "%s%s%s", i ? "," : "", s->items[i].name, s->named[i] ? "!" : "");
	return b.data ? b.data : bh_strdup("");
}

static void expect(const char *cfg, const char *spec, const char *want)
{
	struct ctx_selection s;
	struct bh_err err = {0};
	char *got;

	if (ctx_select(cfg, spec, &s, &err) < 0)
		fail_msg("select %s: %s", spec, err.msg);
	got = names(&s);
	if (strcmp(got, want) != 0)
		fail_msg("select %s: got %s, want %s", spec, got, want);
	free(got);
	ctx_selection_free(&s);
}

static void test_select(void **state)
{
	struct fx *f = *state;

	expect(f->cfg, "prod-*", "prod-1,prod-2");
	expect(f->cfg, "*", "dev-1,other,prod-1,prod-2"); /* never "default" */
	expect(f->cfg, "prod-2,dev-1", "prod-2!,dev-1!");
	expect(f->cfg, "prod-*,prod-1", "prod-1!,prod-2"); /* named once matched too */
	expect(f->cfg, "@env=prod", "prod-1,prod-2");
	expect(f->cfg, "@env=p*", "prod-1,prod-2");
	expect(f->cfg, "@zone", "dev-1");
	expect(f->cfg, "@role=db,@env=dev", "prod-1,dev-1");
	expect(f->cfg, "default,other", "default!,other!");
	expect(f->cfg, "?ther", "other");
}

static void expect_fail(const char *cfg, const char *spec, int code, const char *in_msg)
{
	struct ctx_selection s;
	struct bh_err err = {0};

	assert_int_equal(ctx_select(cfg, spec, &s, &err), -1);
	assert_int_equal(err.code, code);
	if (strstr(err.msg, in_msg) == NULL)
		fail_msg("select %s: \"%s\" lacks \"%s\"", spec, err.msg, in_msg);
	assert_int_equal(s.n, 0);
}

static void test_select_errors(void **state)
{
	struct fx *f = *state;

	expect_fail(f->cfg, "qa-*", ENOENT, "\"qa-*\" matches no context");
	expect_fail(f->cfg, "prod-1,nope", ENOENT, "\"nope\" not found");
	expect_fail(f->cfg, "prod-*,@env=qa", ENOENT, "\"@env=qa\"");
	expect_fail(f->cfg, "@", EINVAL, "label selector");
	expect_fail(f->cfg, "@=x", EINVAL, "label selector");
	expect_fail(f->cfg, "@env=", EINVAL, "label selector");
	expect_fail(f->cfg, "prod-1,,prod-2", EINVAL, "empty name");
	expect_fail(f->cfg, "prod-1,", EINVAL, "empty name");
	expect_fail(f->cfg, "../x", ENOENT, "not found");
}

static void test_labels_update(void **state)
{
	struct fx *f = *state;
	static const char *const set[] = {"env=staging", "tier=web", "role="};
	static const char *const bad[][1] = {{"env"}, {"=x"},   {"a=b,c"},
	                                     {"a=*"}, {"-a=b"}, {"a=b\x1b"}};
	struct ctx_update_opts u = {.labels = set, .nlabels = 3};
	struct ctx_meta m;
	struct bh_err err = {0};

	assert_int_equal(ctx_update(f->cfg, "prod-1", &u, &err), 0);
	assert_int_equal(ctx_load(f->cfg, "prod-1", &m, &err), 0);
	assert_int_equal(m.nlabels, 2);
	assert_string_equal(ctx_label_get(&m, "env"), "staging");
	assert_string_equal(ctx_label_get(&m, "tier"), "web");
	assert_null(ctx_label_get(&m, "role"));
	ctx_meta_free(&m);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = (struct ctx_update_opts){.labels = bad[i], .nlabels = 1};
		assert_int_equal(ctx_update(f->cfg, "prod-1", &u, &err), -1);
		assert_non_null(strstr(err.msg, "label"));
	}
	expect(f->cfg, "@env=prod", "prod-2");
}

static void test_labels_limit(void **state)
{
	struct fx *f = *state;
	char kv[CTX_LABELS_MAX + 1][16];
	const char *p[CTX_LABELS_MAX + 1];
	struct ctx_update_opts u = {.labels = p, .nlabels = CTX_LABELS_MAX + 1};
	struct bh_err err = {0};

	for (int i = 0; i <= CTX_LABELS_MAX; i++) {
		snprintf(kv[i], sizeof(kv[i]), "k%d=v", i);
		p[i] = kv[i];
	}
	assert_int_equal(ctx_update(f->cfg, "other", &u, &err), -1);
	assert_non_null(strstr(err.msg, "labels"));
}

static void write_meta(const char *cfg, const char *name, const char *json)
{
	cleanup_free char *d = bh_path_join(cfg, "contexts");
	cleanup_free char *dir = bh_path_join(d, name);
	cleanup_free char *path = bh_path_join(dir, "meta.json");
	struct bh_err err = {0};

	assert_int_equal(bh_write_file_atomic(path, json, strlen(json), 0644, &err), 0);
}

static void test_hostile_meta_labels(void **state)
{
	struct fx *f = *state;
	static const char *const docs[] = {
	    "{\"Host\":\"unix:///x\",\"Labels\":[]}",
	    "{\"Host\":\"unix:///x\",\"Labels\":{\"env\":1}}",
	    "{\"Host\":\"unix:///x\",\"Labels\":{\"env\":\"a,b\"}}",
	    "{\"Host\":\"unix:///x\",\"Labels\":{\"e v\":\"a\"}}",
	};
	struct ctx_meta m;
	struct bh_err err = {0};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		write_meta(f->cfg, "other", docs[i]);
		assert_int_equal(ctx_load(f->cfg, "other", &m, &err), -1);
		if (strstr(err.msg, "meta.json") == NULL || strstr(err.msg, "abel") == NULL)
			fail_msg("doc %zu: %s", i, err.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glob),
	    cmocka_unit_test(test_glob_no_blowup),
	    cmocka_unit_test(test_is_pattern),
	    cmocka_unit_test_setup_teardown(test_select, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_select_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_labels_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_labels_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_meta_labels, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
