/* client: detach keys in docker's syntax ("ctrl-p,ctrl-q", "ctrl-a,d", ""
 * for none) and their matching in the user's input stream.  Pure and
 * portable.  The input is the user's own; the matcher holds back at most a
 * sequence's worth of bytes. */
#include <errno.h>
#include <string.h>

#include "client/client-internal.h"

/* One key: a single character, or ctrl-X for X in a-z @ [ \ ] ^ _. */
static int parse_key(const char *k, size_t len, uint8_t *out)
{
	char c;

	if (len == 1) {
		*out = (uint8_t)k[0];
		return 0;
	}
	if (len != 6 || strncmp(k, "ctrl-", 5) != 0)
		return -1;
	c = k[5];
	if (c >= 'a' && c <= 'z')
		*out = (uint8_t)(c - 'a' + 1);
	else if (c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' || c == '_')
		*out = (uint8_t)(c - '@');
	else
		return -1;
	return 0;
}

int cli_detach_parse(const char *s, struct cli_detach *d, struct bh_err *err)
{
	const char *p = s, *comma;
	size_t len;

	memset(d, 0, sizeof(*d));
	if (s[0] == '\0')
		return 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (d->len == CLI_DETACH_MAX || parse_key(p, len, &d->seq[d->len]) < 0)
			return bh_err_set(err, EINVAL,
			                  "invalid detach keys \"%.64s\": want keys such as "
			                  "\"ctrl-p,ctrl-q\" (a letter or ctrl-<a-z@[\\]^_>)",
			                  s);
		d->len++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

/* After a mismatch: releases bytes from the front of held until what is
 * left is again a prefix of the sequence. */
static void release(struct cli_detach *d, uint8_t *held, size_t n, uint8_t *out, size_t *o)
{
	size_t start = 0;

	while (start < n && memcmp(held + start, d->seq, n - start) != 0)
		out[(*o)++] = held[start++];
	d->matched = n - start;
}

int cli_detach_feed(struct cli_detach *d, const uint8_t *in, size_t n, uint8_t *out, size_t *out_n)
{
	uint8_t held[CLI_DETACH_MAX + 1];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (d->len == 0) {
			memcpy(out, in, n);
			*out_n = n;
			return 0;
		}
		if (in[i] == d->seq[d->matched]) {
			if (++d->matched == d->len) {
				d->matched = 0;
				*out_n = o;
				return 1;
			}
			continue;
		}
		memcpy(held, d->seq, d->matched);
		held[d->matched] = in[i];
		release(d, held, d->matched + 1, out, &o);
	}
	*out_n = o;
	return 0;
}
