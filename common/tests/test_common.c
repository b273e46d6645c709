#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/common.h"

static void test_err_wrap_keeps_code(void **state)
{
	struct bh_err err;

	assert_int_equal(bh_err_set(&err, 2, "open %s", "x"), -1);
	bh_err_wrap(&err, "load %s", "cfg");
	assert_int_equal(err.code, 2);
	assert_string_equal(err.msg, "load cfg: open x");
}

static void test_buf_limit(void **state)
{
	struct bh_buf b;

	bh_buf_init(&b, 8);
	assert_int_equal(bh_buf_append(&b, "12345", 5), 0);
	assert_int_equal(bh_buf_append(&b, "6789", 4), -1);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(bh_buf_append(&b, "678", 3), 0);
	assert_string_equal(b.data, "12345678");
	bh_buf_free(&b);
}

static void test_parse_size(void **state)
{
	int64_t v;

	assert_int_equal(bh_parse_size("64m", &v), 0);
	assert_int_equal(v, 64 << 20);
	assert_int_equal(bh_parse_size("1G", &v), 0);
	assert_int_equal(v, 1LL << 30);
	assert_int_equal(bh_parse_size("100", &v), 0);
	assert_int_equal(v, 100);
	assert_int_equal(bh_parse_size("12kb", &v), 0);
	assert_int_equal(v, 12 << 10);
	assert_int_equal(bh_parse_size("-1", &v), -1);
	assert_int_equal(bh_parse_size("1x", &v), -1);
	assert_int_equal(bh_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(bh_parse_size("9999999999t", &v), -1);
}

static void test_parse_long(void **state)
{
	long v;

	assert_int_equal(bh_parse_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(bh_parse_long("101", 0, 100, &v), -1);
	assert_int_equal(bh_parse_long("4x", 0, 100, &v), -1);
	assert_int_equal(bh_parse_long("", 0, 100, &v), -1);
}

static void test_atomic_write(void **state)
{
	char dir[] = "/tmp/bh-test-XXXXXX";
	struct bh_err err;
	char *data;
	size_t len;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	char *path = bh_path_join(dir, "f");
	assert_int_equal(bh_write_file_atomic(path, "hello", 5, 0600, &err), 0);
	assert_int_equal(bh_write_file_atomic(path, "world!", 6, 0600, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(bh_read_file(path, 100, &data, &len, &err), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "world!");
	free(data);
	assert_int_equal(bh_read_file(path, 3, &data, &len, &err), -1);
	assert_non_null(strstr(err.msg, "larger than"));
	assert_int_equal(bh_rm_rf(dir, &err), 0);
	assert_false(bh_path_exists(dir));
	free(path);
}

/* The fsync-less variant: same replace semantics and mode; an error names the file. */
static void test_volatile_write(void **state)
{
	char dir[] = "/tmp/bh-test-XXXXXX";
	struct bh_err err;
	char *data;
	size_t len;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	char *path = bh_path_join(dir, "f");
	assert_int_equal(bh_write_file_volatile(path, "hello", 5, 0644, &err), 0);
	assert_int_equal(bh_write_file_volatile(path, "bye", 3, 0600, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(bh_read_file(path, 100, &data, &len, &err), 0);
	assert_int_equal(len, 3);
	assert_string_equal(data, "bye");
	free(data);
	char *bad = bh_path_join(dir, "no/such/dir");
	assert_int_equal(bh_write_file_volatile(bad, "x", 1, 0600, &err), -1);
	assert_non_null(strstr(err.msg, "no/such/dir"));
	free(bad);
	assert_int_equal(bh_rm_rf(dir, &err), 0);
	free(path);
}

static void test_path_join(void **state)
{
	char *p = bh_path_join("/a/", "/b");
	assert_string_equal(p, "/a/b");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_wrap_keeps_code), cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_parse_size),	   cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_atomic_write),	   cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_volatile_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
