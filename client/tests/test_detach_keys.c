/* Detach keys: docker's syntax, and matching that holds a partial sequence
 * back across reads and gives it back when the sequence breaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

static void test_parse(void **state)
{
	struct cli_detach d;
	struct bh_err err = {0};

	assert_int_equal(cli_detach_parse("ctrl-p,ctrl-q", &d, &err), 0);
	assert_int_equal(d.len, 2);
	assert_memory_equal(d.seq, "\x10\x11", 2);
	assert_int_equal(cli_detach_parse("ctrl-a,d", &d, &err), 0);
	assert_memory_equal(d.seq,
	                    "\x01"
	                    "d",
	                    2);
	assert_int_equal(cli_detach_parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", &d, &err),
	                 0);
	assert_memory_equal(d.seq, "\x00\x1b\x1c\x1d\x1e\x1f", 6);
	assert_int_equal(cli_detach_parse("", &d, &err), 0);
	assert_int_equal(d.len, 0);
	static const char *bad[] = {
	    "ctrl-", "ctrl-1", "ctrl-pp", "ab",
	    ",",     "a,",     "ctrl-P",  "a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cli_detach_parse(bad[i], &d, &err), -1);
		assert_non_null(strstr(err.msg, "invalid detach keys"));
	}
}

/* Feeds s one call per piece; returns what was forwarded and the result. */
static int run(const char *keys, const char *const *pieces, char *fwd, size_t *fwd_len)
{
	struct cli_detach d;
	struct bh_err err = {0};
	uint8_t out[64 + CLI_DETACH_MAX];
	size_t n;
	int r = 0;

	assert_int_equal(cli_detach_parse(keys, &d, &err), 0);
	*fwd_len = 0;
	for (size_t i = 0; pieces[i] != NULL && r == 0; i++) {
		r = cli_detach_feed(&d, (const uint8_t *)pieces[i], strlen(pieces[i]), out, &n);
		memcpy(fwd + *fwd_len, out, n);
		*fwd_len += n;
	}
	fwd[*fwd_len] = '\0';
	return r;
}

static void test_match_across_reads(void **state)
{
	char fwd[256];
	size_t n;

	assert_int_equal(
	    run("ctrl-p,ctrl-q", (const char *[]){"ls\x10", "\x11rest", NULL}, fwd, &n), 1);
	assert_string_equal(fwd, "ls"); /* the held ctrl-p is not sent; the rest is dropped */
	assert_int_equal(run("ctrl-p,ctrl-q", (const char *[]){"a\x10", "b", NULL}, fwd, &n), 0);
	assert_string_equal(fwd, "a\x10"
	                         "b"); /* broken: ctrl-p goes out after all */
	assert_int_equal(run("ctrl-p,ctrl-q", (const char *[]){"\x10\x10", "\x11", NULL}, fwd, &n),
	                 1);
	assert_string_equal(fwd, "\x10"); /* the first ctrl-p was a key of its own */
	assert_int_equal(run("a,a,b", (const char *[]){"a", "a", "a", "b", NULL}, fwd, &n), 1);
	assert_string_equal(fwd, "a");
	assert_int_equal(run("a,b,a,c", (const char *[]){"abab", "ac", NULL}, fwd, &n), 1);
	assert_string_equal(fwd, "ab");
	assert_int_equal(run("ctrl-a,d", (const char *[]){"x\x01", "\x01", "d", NULL}, fwd, &n), 1);
	assert_string_equal(fwd, "x\x01");
}

static void test_disabled_and_binary(void **state)
{
	char fwd[256];
	size_t n;
	struct cli_detach d;
	struct bh_err err = {0};
	uint8_t in[] = {0x10, 0x11, 0, 0xff}, out[sizeof(in) + CLI_DETACH_MAX];

	assert_int_equal(run("", (const char *[]){"\x10\x11", NULL}, fwd, &n), 0);
	assert_string_equal(fwd, "\x10\x11");
	assert_int_equal(cli_detach_parse("ctrl-z", &d, &err), 0);
	assert_int_equal(cli_detach_feed(&d, in, sizeof(in), out, &n), 0);
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(out, in, sizeof(in)); /* NUL and 0xff pass */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_match_across_reads),
	    cmocka_unit_test(test_disabled_and_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
