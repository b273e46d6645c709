/* libFuzzer target: the OCI runtime config.json parser (rt_spec_parse, after
 * the same JSON load as rt_spec_load) and the compilation of its
 * linux.seccomp profile to BPF (rt_seccomp_compile; nothing is loaded).
 * berthd writes config.json, but berth-runtime reads whatever bundle it is
 * given, and a confused spec must fail, not crash the runtime. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz-util.h"
#include "runtime/rt-container-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A bundle directory with an empty rootfs/ for root.path to resolve to. */
static const char *bundle(void)
{
	static char *dir;
	struct bh_err err;
	char *rootfs;

	if (dir != NULL)
		return dir;
	dir = fz_path("bundle");
	rootfs = bh_path_join(dir, "rootfs");
	if (bh_mkdir_p(rootfs, 0755, &err) < 0) {
		fprintf(stderr, "fuzz_oci_spec: %s\n", err.msg);
		abort();
	}
	free(rootfs);
	return dir;
}

static void check_spec(const struct rt_spec *s)
{
	if (s->args == NULL || s->args[0] == NULL || s->cwd == NULL || s->cwd[0] != '/')
		abort();
	for (size_t i = 0; i < s->n_mounts; i++)
		if (s->mounts[i].dest[0] != '/' || s->mounts[i].data == NULL)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rt_seccomp_prog prog;
	struct bh_err err = {0};
	json_error_t jerr;
	struct rt_spec s;
	json_t *json;

	if (size > RT_SPEC_MAX)
		return 0;
	json = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (json == NULL)
		return 0;
	if (json_is_object(json) && rt_spec_parse(json, bundle(), &s, &err) == 0) {
		check_spec(&s);
		if (rt_seccomp_compile(&s, &prog, &err) == 0)
			rt_seccomp_prog_free(&prog);
		rt_spec_free(&s);
	}
	json_decref(json);
	return 0;
}
