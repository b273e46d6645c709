/* libFuzzer target: the parser of imported context archives (hostile input
 * by design: tar headers, member names and types, sizes, meta.json). */
#include <stddef.h>
#include <stdint.h>

#include "contexts/contexts-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx_meta meta;
	struct ctx_material m;
	struct bh_err err;

	if (size > CTX_ARCHIVE_MAX)
		return 0;
	if (ctx_archive_parse((const char *)data, size, &meta, &m, &err) == 0) {
		ctx_meta_free(&meta);
		ctx_material_free(&m);
	}
	return 0;
}
