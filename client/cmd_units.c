/* Pure parsing and formatting shared by the container and image commands:
 * --cpus, --restart, --since, and docker's human durations, sizes and the
 * quoted COMMAND column.  Inputs are the user's flags or the daemon's text;
 * nothing here trusts either to be well formed. */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

int cli_parse_cpus(const char *s, int64_t *nanos)
{
	int64_t whole = 0, frac = 0, scale = 1000000000;
	const char *p = s;
	bool digits = false;

	for (; isdigit((unsigned char)*p); p++, digits = true) {
		if (whole > 1000000)
			return -1;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, digits = true) {
			if (scale == 1)
				return -1; /* finer than a nanosecond of CPU */
			scale /= 10;
			frac += (*p - '0') * scale;
		}
	}
	if (!digits || *p != '\0')
		return -1;
	*nanos = whole * 1000000000 + frac;
	return 0;
}

int cli_parse_restart(const char *s, const char **name, long *max_retry)
{
	static const char *const names[] = {"no", "always", "unless-stopped", "on-failure"};
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	*max_retry = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) != len || strncmp(s, names[i], len) != 0)
			continue;
		*name = names[i];
		if (colon == NULL)
			return 0;
		/* Only on-failure takes a count, as docker. */
		if (strcmp(names[i], "on-failure") != 0)
			return -1;
		return bh_parse_long(colon + 1, 0, 1000000, max_retry);
	}
	return -1;
}

void cli_human_duration(int64_t s, char *out, size_t n)
{
	int64_t minutes = s / 60, hours = (s + 1800) / 3600;

	if (s < 1)
		snprintf(out, n, "Less than a second");
	else if (s == 1)
		snprintf(out, n, "1 second");
	else if (s < 60)
		snprintf(out, n, "%" PRId64 " seconds", s);
	else if (minutes == 1)
		snprintf(out, n, "About a minute");
	else if (minutes < 60)
		snprintf(out, n, "%" PRId64 " minutes", minutes);
	else if (hours == 1)
		snprintf(out, n, "About an hour");
	else if (hours < 48)
		snprintf(out, n, "%" PRId64 " hours", hours);
	else if (hours < 24 * 7 * 2)
		snprintf(out, n, "%" PRId64 " days", hours / 24);
	else if (hours < 24 * 30 * 2)
		snprintf(out, n, "%" PRId64 " weeks", hours / 24 / 7);
	else if (hours < 24 * 365 * 2)
		snprintf(out, n, "%" PRId64 " months", hours / 24 / 30);
	else
		snprintf(out, n, "%" PRId64 " years", s / 3600 / 24 / 365);
}

void cli_human_size(double bytes, char *out, size_t n)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	size_t i = 0;

	if (bytes < 0)
		bytes = 0;
	while (bytes >= 1000 && i < sizeof(units) / sizeof(units[0]) - 1) {
		bytes /= 1000;
		i++;
	}
	snprintf(out, n, "%.3g%s", bytes, units[i]);
}

/* ---- ps's COMMAND column ------------------------------------------------- */

/* The byte length of the first n UTF-8 characters of s (all if fewer);
 * *count gets the number of characters seen. */
static size_t utf8_prefix(const char *s, size_t n, size_t *count)
{
	size_t i = 0, c = 0;

	while (s[i] != '\0' && c < n) {
		i++;
		while (((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		c++;
	}
	*count = c;
	return i;
}

static void quote_byte(struct bh_buf *b, unsigned char c)
{
	switch (c) {
	case '"':
		bh_buf_append(b, "\\\"", 2);
		break;
	case '\\':
		bh_buf_append(b, "\\\\", 2);
		break;
	case '\n':
		bh_buf_append(b, "\\n", 2);
		break;
	case '\t':
		bh_buf_append(b, "\\t", 2);
		break;
	case '\r':
		bh_buf_append(b, "\\r", 2);
		break;
	default:
		if (c < 0x20 || c == 0x7f)
			bh_buf_printf(b, "\\x%02x", c);
		else
			bh_buf_append(b, &c, 1);
	}
}

void cli_quote_command(const char *cmd, bool full, char *out, size_t n)
{
	struct bh_buf b;
	size_t len = strlen(cmd), count = 0;
	bool cut = false;

	if (!full) {
		size_t twenty = utf8_prefix(cmd, 20, &count);
		if (cmd[twenty] != '\0') {
			len = utf8_prefix(cmd, 19, &count);
			cut = true;
		}
	}
	bh_buf_init(&b, 64 * 1024);
	bh_buf_append(&b, "\"", 1);
	for (size_t i = 0; i < len; i++)
		quote_byte(&b, (unsigned char)cmd[i]);
	if (cut)
		bh_buf_append(&b, "\xe2\x80\xa6", 3); /* U+2026 */
	bh_buf_append(&b, "\"", 1);
	bh_strlcpy(out, b.data, n);
	bh_buf_free(&b);
}

/* ---- logs --since ---------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (portable timegm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "2h30m", "10m", "45s": *secs, or -1. */
static int parse_duration(const char *s, int64_t *secs)
{
	int64_t total = 0, v;

	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		if (!isdigit((unsigned char)*s))
			return -1;
		for (v = 0; isdigit((unsigned char)*s); s++)
			if ((v = v * 10 + (*s - '0')) > 100000000)
				return -1;
		if (*s == 'h')
			v *= 3600;
		else if (*s == 'm')
			v *= 60;
		else if (*s != 's')
			return -1;
		s++;
		total += v;
	}
	*secs = total;
	return 0;
}

static int two(const char *s, int *v)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

/* RFC 3339 ("2026-11-22T10:00:00Z", fractions and offsets allowed) or a
 * bare date: *secs since the epoch, or -1. */
static int parse_rfc3339(const char *s, int64_t *secs)
{
	int yh, yl, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	const char *p = s + 10;

	if (strlen(s) < 10 || two(s, &yh) || two(s + 2, &yl) || s[4] != '-' || two(s + 5, &mo) ||
	    s[7] != '-' || two(s + 8, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	if (*p == 'T' || *p == 't') {
		if (two(p + 1, &h) || p[3] != ':' || two(p + 4, &mi) || p[6] != ':' ||
		    two(p + 7, &se) || h > 23 || mi > 59 || se > 60)
			return -1;
		for (p += 9; *p == '.' || isdigit((unsigned char)*p);)
			p++; /* fractions of a second: the API takes whole seconds */
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '+' ? 1 : -1;
			if (two(p + 1, &oh) || p[3] != ':' || two(p + 4, &om))
				return -1;
			p += 6;
		} else {
			return -1;
		}
	}
	if (*p != '\0')
		return -1;
	*secs = days_from_civil(yh * 100 + yl, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	        sign * (oh * 3600 + om * 60);
	return 0;
}

int cli_parse_since(const char *s, int64_t now, char *out, size_t n)
{
	int64_t secs;
	const char *p = s;

	if (parse_duration(s, &secs) == 0) {
		snprintf(out, n, "%" PRId64, now - secs);
		return 0;
	}
	if (parse_rfc3339(s, &secs) == 0) {
		snprintf(out, n, "%" PRId64, secs);
		return 0;
	}
	/* Unix seconds, maybe with a fraction: the API's own form. */
	while (isdigit((unsigned char)*p))
		p++;
	if (p == s || (*p != '\0' && (*p != '.' || p[1] == '\0')))
		return -1;
	for (p += *p == '.'; isdigit((unsigned char)*p);)
		p++;
	if (*p != '\0')
		return -1;
	return bh_strlcpy(out, s, n);
}

char *cli_image_ref_tagged(const char *ref)
{
	const char *slash = strrchr(ref, '/');
	const char *last = slash ? slash + 1 : ref;

	if (strchr(ref, '@') != NULL || strchr(last, ':') != NULL)
		return bh_strdup(ref);
	return bh_asprintf("%s:latest", ref);
}

/* ---- docker's tables: columns padded to their widest cell + 3, at least 10 */

void cli_table_init(struct cli_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

void cli_table_add(struct cli_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = bh_realloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
	}
	for (size_t c = 0; c < t->ncols; c++) {
		char *s = bh_strdup(row[c] ? row[c] : "");
		cli_sanitize(s, s, strlen(s) + 1); /* daemon text must not drive the terminal */
		t->cells[t->nrows * t->ncols + c] = s;
	}
	t->nrows++;
}

static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
	cleanup_free size_t *width = bh_calloc(t->ncols, sizeof(*width));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = text_width(t->cells[r * t->ncols + c]) + 3;
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			fputs(s, out);
			if (c + 1 == t->ncols)
				break;
			for (size_t w = text_width(s); w < width[c] || w < 10; w++)
				fputc(' ', out);
		}
		fputc('\n', out);
	}
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

int cli_start_error_code(const char *msg, long recorded)
{
	if (recorded == 126 || recorded == 127)
		return (int)recorded;
	/* The words of the kernel's and Go's errors, as docker's CLI reads them. */
	if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory"))
		return 127;
	if (strstr(msg, "permission denied") || strstr(msg, "is a directory"))
		return 126;
	return 125;
}
