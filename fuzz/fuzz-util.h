/* Helpers shared by the fuzz targets: one private temp directory per
 * process (removed at exit), whole-file writes. */
#ifndef BERTH_FUZZ_UTIL_H
#define BERTH_FUZZ_UTIL_H

#include <stddef.h>

/* $TMPDIR/berth-fuzz-XXXXXX, made on the first call; removed by atexit. */
const char *fz_tmpdir(void);
/* A new path under fz_tmpdir(); caller frees. */
char *fz_path(const char *name);
/* Creates or truncates path and writes data; aborts on failure (a harness
 * that cannot write its input would test nothing). */
void fz_write_file(const char *path, const void *data, size_t len, int mode);

#endif
