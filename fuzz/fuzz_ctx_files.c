/* libFuzzer target: the readers of the client's context store files, which
 * may be edited by hand or planted: contexts/NAME/meta.json (ctx_load,
 * ctx_list) and config.json's currentContext (ctx_current, ctx_resolve).
 * Input: META [NUL CONFIG]; without a NUL there is no config.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contexts/contexts-internal.h"
#include "fuzz/fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct paths {
	char *config_dir, *meta, *config;
};

static const struct paths *paths(void)
{
	static struct paths p;
	struct bh_err err;

	if (p.config_dir != NULL)
		return &p;
	p.config_dir = fz_path("berth");
	char *dir = ctx_dir(p.config_dir, "fz");
	if (bh_mkdir_p(dir, 0700, &err) < 0)
		abort();
	p.meta = bh_path_join(dir, "meta.json");
	p.config = bh_path_join(p.config_dir, "config.json");
	free(dir);
	return &p;
}

static void fuzz_load(const char *config_dir)
{
	struct ctx_meta m, *list = NULL;
	struct bh_err err = {0};
	char *current = NULL;
	size_t n = 0;

	if (ctx_load(config_dir, "fz", &m, &err) == 0) {
		if (ctx_host_check(m.host, &err) < 0 || strlen(m.description) > CTX_DESCRIPTION_MAX)
			abort(); /* only checked values come out */
		ctx_meta_free(&m);
	}
	if (ctx_list(config_dir, &list, &n, &err) == 0)
		ctx_list_free(list, n);
	if (ctx_current(config_dir, &current, &err) == 0) {
		if (!ctx_name_is_valid(current))
			abort();
		free(current);
	}
}

static void fuzz_resolve(const char *config_dir)
{
	struct ctx_flags flags = {0};
	struct ctx_env env = {0};
	struct ctx_target t;
	struct bh_err err = {0};

	if (ctx_resolve(config_dir, &flags, &env, &t, &err) == 0) {
		if (t.host == NULL || ctx_host_check(t.host, &err) < 0)
			abort();
		ctx_target_free(&t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct paths *p = paths();
	const uint8_t *nul = memchr(data, '\0', size);
	size_t meta_len = nul ? (size_t)(nul - data) : size;

	fz_write_file(p->meta, data, meta_len, 0644);
	if (nul)
		fz_write_file(p->config, nul + 1, size - meta_len - 1, 0644);
	else
		unlink(p->config);
	fuzz_load(p->config_dir);
	fuzz_resolve(p->config_dir);
	return 0;
}
