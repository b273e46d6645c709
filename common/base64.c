/* Base64 (RFC 4648 §4) and base64url (§5), for tokens and headers such as
 * X-Registry-Auth.  Pure; the decoder takes either alphabet, with or
 * without padding, and refuses anything else. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *bh_base64_encode(const void *data, size_t len, bool url)
{
	const unsigned char *p = data;
	const char *a = url ? url_alpha : std_alpha;
	char *out = bh_malloc(4 * ((len + 2) / 3) + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;
		if (n > 1)
			v |= (unsigned)p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = n > 1 ? a[(v >> 6) & 63] : '=';
		out[o++] = n > 2 ? a[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int bh_base64_decode(const char *in, size_t max, char **out, size_t *out_len)
{
	size_t n = strlen(in), o = 0;
	unsigned acc = 0;
	int bits = 0;
	char *buf;

	while (n > 0 && in[n - 1] == '=')
		n--;
	if (n % 4 == 1 || n / 4 * 3 + 3 > max + 3)
		return -1;
	buf = bh_malloc(n / 4 * 3 + 4);
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (o > max) {
		free(buf);
		return -1;
	}
	buf[o] = '\0';
	*out = buf;
	if (out_len)
		*out_len = o;
	return 0;
}
