/* The monitor's json-file log writer: Docker's format, one object per line,
 * size-capped rotation.  Escaping is done by hand (no JSON library) to keep
 * the monitor small; the container's bytes are untrusted and may be any
 * binary, so invalid UTF-8 becomes U+FFFD and the output is always valid JSON. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/monitor-internal.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid/truncated. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0; /* overlong or out of range */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0; /* surrogates are not characters */
	return n;
}

static bool is_line_sep(const unsigned char *s, size_t n)
{
	return n == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9);
}

/* Escapes one character at s; returns bytes consumed, *olen = bytes produced
 * into out (which has room for 6). */
static size_t escape_one(const unsigned char *s, size_t len, char *out, size_t *olen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned c = s[0];
	size_t n = utf8_seq(s, len);

	if (n == 0) {
		memcpy(out, "\\ufffd", 6);
		*olen = 6;
		return 1;
	}
	if (n > 1) {
		if (is_line_sep(s, n)) {
			memcpy(out, s[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
			*olen = 6;
		} else {
			memcpy(out, s, n);
			*olen = n;
		}
		return n;
	}
	*olen = 2;
	out[0] = '\\';
	switch (c) {
	case '"':
		out[1] = '"';
		return 1;
	case '\\':
		out[1] = '\\';
		return 1;
	case '\n':
		out[1] = 'n';
		return 1;
	case '\r':
		out[1] = 'r';
		return 1;
	case '\t':
		out[1] = 't';
		return 1;
	default:
		break;
	}
	if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f) {
		memcpy(out, "\\u00", 4);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 15];
		*olen = 6;
		return 1;
	}
	out[0] = (char)c;
	*olen = 1;
	return 1;
}

size_t mon_json_escaped_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t total = 0, i = 0, olen;
	char tmp[6];

	while (i < len) {
		i += escape_one(p + i, len - i, tmp, &olen);
		total += olen;
	}
	return total;
}

static void write_all(struct mon_logw *w, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!w->failed)
				bh_error("log %s: write: %s", w->path, strerror(errno));
			w->failed = true;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

void mon_logw_flush(struct mon_logw *w)
{
	if (w->out_len > 0 && w->fd >= 0)
		write_all(w, w->out, w->out_len);
	w->out_len = 0;
}

static void out_put(struct mon_logw *w, const char *p, size_t len)
{
	if (w->out_len + len > sizeof(w->out))
		mon_logw_flush(w);
	memcpy(w->out + w->out_len, p, len);
	w->out_len += len;
}

static int open_log(struct mon_logw *w, int extra_flags, struct bh_err *err)
{
	struct stat st;

	w->fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | extra_flags, 0640);
	if (w->fd < 0)
		return bh_err_sys(err, errno, "open log %s", w->path);
	if (fstat(w->fd, &st) < 0)
		return bh_err_sys(err, errno, "stat log %s", w->path);
	w->size = st.st_size;
	return 0;
}

int mon_logw_open(struct mon_logw *w, const char *path, int64_t max_size, int max_files,
                  struct bh_err *err)
{
	w->path = path;
	w->max_size = max_size;
	w->max_files = max_files < 1 ? 1 : max_files;
	w->last_ns = 0;
	w->failed = false;
	w->out_len = 0;
	return open_log(w, 0, err);
}

static void rotated_name(char *out, size_t cap, const char *path, int i)
{
	snprintf(out, cap, "%s.%d", path, i);
}

/* path → path.1 → ... → path.(K-1); the oldest falls off. */
static void rotate(struct mon_logw *w)
{
	char from[4096], to[4096];
	struct bh_err err;

	mon_logw_flush(w);
	close(w->fd);
	w->fd = -1;
	if (w->max_files > 1) {
		rotated_name(to, sizeof(to), w->path, w->max_files - 1);
		unlink(to);
		for (int i = w->max_files - 2; i >= 1; i--) {
			rotated_name(from, sizeof(from), w->path, i);
			rotated_name(to, sizeof(to), w->path, i + 1);
			if (rename(from, to) < 0 && errno != ENOENT)
				bh_error("log rotate %s: %s", from, strerror(errno));
		}
		rotated_name(to, sizeof(to), w->path, 1);
		if (rename(w->path, to) < 0)
			bh_error("log rotate %s: %s", w->path, strerror(errno));
	}
	if (open_log(w, O_TRUNC, &err) < 0)
		bh_error("%s", err.msg);
}

/* Strictly increasing timestamps, even if the wall clock steps back. */
static void entry_time(struct mon_logw *w, char ts[40])
{
	struct timespec t;
	int64_t ns;

	clock_gettime(CLOCK_REALTIME, &t);
	ns = (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
	if (ns <= w->last_ns)
		ns = w->last_ns + 1;
	w->last_ns = ns;
	bh_rfc3339(ts, ns / 1000000000, (long)(ns % 1000000000));
}

static void put_escaped(struct mon_logw *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, olen;
	char tmp[6];

	while (i < len) {
		i += escape_one(p + i, len - i, tmp, &olen);
		out_put(w, tmp, olen);
	}
}

void mon_logw_entry(struct mon_logw *w, int stream, const char *data, size_t len)
{
	const char *sname = stream == 2 ? "stderr" : "stdout";
	char ts[40], tail[96];
	int tlen;
	int64_t need;

	entry_time(w, ts);
	tlen = snprintf(tail, sizeof(tail), "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", sname, ts);
	need = (int64_t)(sizeof("{\"log\":\"") - 1 + mon_json_escaped_len(data, len)) + tlen;
	if (w->max_size > 0 && w->size > 0 && w->size + need > w->max_size)
		rotate(w);
	if (w->fd < 0)
		return;
	out_put(w, "{\"log\":\"", sizeof("{\"log\":\"") - 1);
	put_escaped(w, data, len);
	out_put(w, tail, (size_t)tlen);
	w->size += need;
}

void mon_logw_close(struct mon_logw *w)
{
	mon_logw_flush(w);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* Where to cut a full buffer that has no newline: not inside a UTF-8
 * sequence (back off over at most 3 continuation bytes). */
static size_t cut_point(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;

	for (size_t back = 1; back <= 4 && back <= len; back++) {
		unsigned c = p[len - back];
		if ((c & 0xc0) == 0x80)
			continue;
		if (c >= 0xc0 && utf8_seq(p + len - back, back) == 0)
			return len - back; /* a lead byte whose sequence is cut */
		break;
	}
	return len;
}

void mon_lines_feed(struct mon_lines *l, struct mon_logw *w, int stream)
{
	size_t start = 0;

	for (;;) {
		const char *nl = memchr(l->buf + start, '\n', l->len - start);
		if (nl == NULL)
			break;
		size_t end = (size_t)(nl - l->buf) + 1;
		mon_logw_entry(w, stream, l->buf + start, end - start);
		start = end;
	}
	if (start == 0 && l->len == sizeof(l->buf)) {
		size_t cut = cut_point(l->buf, l->len);
		if (cut == 0)
			cut = l->len;
		mon_logw_entry(w, stream, l->buf, cut);
		start = cut;
	}
	if (start > 0) {
		memmove(l->buf, l->buf + start, l->len - start);
		l->len -= start;
	}
}

void mon_lines_flush(struct mon_lines *l, struct mon_logw *w, int stream)
{
	if (l->len > 0)
		mon_logw_entry(w, stream, l->buf, l->len);
	l->len = 0;
}
