/* common: the stand-alone helpers every berth module shares: the error type,
 * cleanup attributes, bounded buffers, logging and careful file I/O.
 * Depends on nothing of ours and only on libc (POSIX); trusts nothing it reads. */
#ifndef BERTH_COMMON_H
#define BERTH_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BERTH_VERSION     "0.1.0"
#define BERTH_API_VERSION "1.43"
#define BERTH_MIN_API_VERSION "1.24"

/* ---- errors -------------------------------------------------------------
 * A fallible function returns < 0 and fills *err; callers add context on the
 * way up with bh_err_wrap().  code is errno-style (ENOENT, EINVAL, ...). */
struct bh_err {
	int code;
	char msg[1024];
};

int bh_err_set(struct bh_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like bh_err_set, appending ": strerror(code)". */
int bh_err_sys(struct bh_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepends "context: " to the message already in err; keeps its code. */
int bh_err_wrap(struct bh_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bh_err_clear(struct bh_err *err);

/* ---- ownership ---------------------------------------------------------- */
void bh_freep(void *p);
void bh_closep(int *fd);
void bh_fclosep(FILE **f);
#define cleanup_free   __attribute__((cleanup(bh_freep)))
#define cleanup_close  __attribute__((cleanup(bh_closep)))
#define cleanup_fclose __attribute__((cleanup(bh_fclosep)))

static inline void *bh_steal(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) bh_steal(pp)

/* Allocation failure aborts (the house rule): these never return NULL. */
void *bh_malloc(size_t n);
void *bh_calloc(size_t n, size_t size);
void *bh_realloc(void *p, size_t n);
char *bh_strdup(const char *s);
char *bh_strndup(const char *s, size_t n);
char *bh_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overwrites len bytes so the compiler cannot drop it (keys, tokens). */
void bh_wipe(void *p, size_t len);

/* Bounded copy; returns -1 if src did not fit (dst is still terminated). */
int bh_strlcpy(char *dst, const char *src, size_t size);

/* ---- bounded buffers ----------------------------------------------------
 * Every buffer filled from the network or a file has a maximum size that is
 * checked before it grows. */
struct bh_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;
};
void bh_buf_init(struct bh_buf *b, size_t max);
/* Returns -1 (and leaves b unchanged) if the result would exceed b->max. */
int bh_buf_append(struct bh_buf *b, const void *data, size_t len);
int bh_buf_printf(struct bh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bh_buf_reset(struct bh_buf *b);
void bh_buf_free(struct bh_buf *b);

/* ---- logging ------------------------------------------------------------ */
enum bh_log_level { BH_LOG_ERROR, BH_LOG_WARN, BH_LOG_INFO, BH_LOG_DEBUG };
void bh_log_set_level(enum bh_log_level level);
enum bh_log_level bh_log_get_level(void);
/* Parses "error|warn|info|debug"; -1 if unknown. */
int bh_log_parse_level(const char *s);
void bh_log(enum bh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define bh_error(...) bh_log(BH_LOG_ERROR, __VA_ARGS__)
#define bh_warn(...)  bh_log(BH_LOG_WARN, __VA_ARGS__)
#define bh_info(...)  bh_log(BH_LOG_INFO, __VA_ARGS__)
#define bh_debug(...) bh_log(BH_LOG_DEBUG, __VA_ARGS__)

/* ---- files (POSIX; see platform notes in common/file.c) ----------------- */
/* Reads a whole file of at most max bytes into a NUL-terminated buffer. */
int bh_read_file(const char *path, size_t max, char **out, size_t *out_len, struct bh_err *err);
/* Writes atomically: temp file in the same directory, fsync, rename, fsync dir.
 * Readers see either the old or the new content, never a mix. */
int bh_write_file_atomic(const char *path, const void *data, size_t len, int mode,
			 struct bh_err *err);
/* The same without the two fsyncs: atomic against a crash of the process
 * (readers still see old or new), not against a power loss.  Only for state
 * that does not outlive a reboot (the exec root, /run) or is rewritten before
 * each use; an fsync on ext4 costs milliseconds on the container start path. */
int bh_write_file_volatile(const char *path, const void *data, size_t len, int mode,
			   struct bh_err *err);
/* write(2) until every byte is out (retries EINTR and short writes); -1 with
 * errno set on failure. */
int bh_write_all(int fd, const void *data, size_t len);
/* mkdir -p; every directory it creates gets mode.  Existing ones are kept. */
int bh_mkdir_p(const char *path, int mode, struct bh_err *err);
/* rm -rf of a directory tree (does not follow symlinks). */
int bh_rm_rf(const char *path, struct bh_err *err);
bool bh_path_exists(const char *path);
/* Joins a and b with exactly one '/'; caller frees. */
char *bh_path_join(const char *a, const char *b);

/* ---- time --------------------------------------------------------------- */
/* Monotonic milliseconds and wall-clock RFC 3339 with nanoseconds (UTC). */
uint64_t bh_now_ms(void);
void bh_rfc3339(char out[40], int64_t sec, long nsec);
void bh_rfc3339_now(char out[40]);

/* ---- strings ------------------------------------------------------------ */
bool bh_str_has_prefix(const char *s, const char *prefix);
/* Parses a base-10 integer in [min,max]; -1 on junk or range. */
int bh_parse_long(const char *s, long min, long max, long *out);
/* Parses "64m", "1g", "512k", "100" (bytes) into bytes; -1 on junk/overflow. */
int bh_parse_size(const char *s, int64_t *out);
void bh_hex(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

/* ---- base64 (base64.c) --------------------------------------------------- */
/* Encodes len bytes (url: the RFC 4648 §5 alphabet), padded; caller frees. */
char *bh_base64_encode(const void *data, size_t len, bool url);
/* Decodes either alphabet, padding optional, into at most max bytes
 * (NUL-terminated); -1 on a bad character or an over-long input. */
int bh_base64_decode(const char *in, size_t max, char **out, size_t *out_len);

#endif
