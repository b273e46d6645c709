/* Bounded, growable byte buffers. */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

void bh_buf_init(struct bh_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

static int buf_reserve(struct bh_buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > b->max || b->len > b->max - extra)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = bh_realloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int bh_buf_append(struct bh_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int bh_buf_printf(struct bh_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	r = bh_buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

void bh_buf_reset(struct bh_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void bh_buf_free(struct bh_buf *b)
{
	free(b->data);
	bh_buf_init(b, b->max);
}
