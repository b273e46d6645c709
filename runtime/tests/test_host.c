#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/utsname.h>
#include <cmocka.h>

#include "runtime/runtime.h"

static void test_host_info_matches_uname(void **state)
{
	struct rt_host_info info;
	struct bh_err err;
	struct utsname u;

	assert_int_equal(rt_host_info_get(&info, &err), 0);
	assert_int_equal(uname(&u), 0);
	assert_string_equal(info.kernel_version, u.release);
	assert_string_equal(info.os_type, "linux");
	assert_true(info.ncpu >= 1);
	assert_true(info.mem_total > 0);
	assert_true(strcmp(info.cgroup_version, "1") == 0 || strcmp(info.cgroup_version, "2") == 0);
}

static void test_arch_names(void **state)
{
	assert_string_equal(rt_arch_from_machine("x86_64"), "amd64");
	assert_string_equal(rt_arch_from_machine("aarch64"), "arm64");
	assert_string_equal(rt_arch_from_machine("mips"), "mips");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_info_matches_uname),
		cmocka_unit_test(test_arch_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
