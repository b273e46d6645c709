/* libFuzzer target: -c selections (contexts/select.c) against a store whose
 * one context's meta.json (with its "Labels") comes from the input too, and
 * the glob matcher on its own.  Input: SELECTION NUL META.  The selection is
 * the user's own text, the labels come from a file that may be planted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"
#include "fuzz/fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *config_dir(char **meta)
{
	static char *dir, *meta_path;
	struct bh_err err;

	if (dir == NULL) {
		char *d;
		dir = fz_path("berth");
		d = ctx_dir(dir, "fz-1");
		if (bh_mkdir_p(d, 0700, &err) < 0)
			abort();
		meta_path = bh_path_join(d, "meta.json");
		free(d);
	}
	*meta = meta_path;
	return dir;
}

/* Every selected context loaded, and its labels pass the same checks. */
static void check(const struct ctx_selection *sel)
{
	struct bh_err err;

	for (size_t i = 0; i < sel->n; i++)
		for (size_t k = 0; k < sel->items[i].nlabels; k++)
			if (ctx_label_check(sel->items[i].labels[k].key,
			                    sel->items[i].labels[k].value, &err) < 0)
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	char *spec, *meta;
	const char *cfg = config_dir(&meta);
	struct ctx_selection sel;
	struct bh_err err = {0};

	if (nul == NULL || (size_t)(nul - data) > 4096)
		return 0;
	spec = bh_strndup((const char *)data, (size_t)(nul - data));
	fz_write_file(meta, nul + 1, size - (size_t)(nul - data) - 1, 0644);
	(void)ctx_glob_match(spec, "fz-1");
	(void)ctx_glob_match("fz-*", spec);
	if (ctx_select(cfg, spec, &sel, &err) == 0) {
		if (sel.n == 0)
			abort(); /* success means something matched */
		check(&sel);
		ctx_selection_free(&sel);
	}
	free(spec);
	return 0;
}
