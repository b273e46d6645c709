/* client: a lean RFC 6455 frame codec for the stream client (pure: no I/O).
 *
 * Why not libwebsockets' client: its frame parser goes byte by byte and
 * measured 110-180 MB/s here (../shared/STACK.md), far below the stream goal
 * (>= 930 MB/s).  This codec parses whole headers and hands payloads out
 * where they lie in the read buffer, so a 64 KiB frame costs one header parse
 * and no copy.  Server frames are untrusted: lengths are checked against a
 * bound before anything is buffered. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

size_t cli_ws_header(uint8_t out[CLI_WS_HDR_MAX], int opcode, bool fin, uint64_t len,
                     const uint8_t *mask)
{
	size_t n = 2;

	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask != NULL) {
		out[1] |= 0x80;
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/* XOR with the key, starting at key position pos; word-wise in the middle
 * (memcpy keeps it free of alignment and aliasing trouble). */
void cli_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], size_t pos)
{
	uint8_t k[8];
	uint64_t kw, w;
	size_t i = 0;

	for (int j = 0; j < 8; j++)
		k[j] = mask[(pos + (size_t)j) & 3];
	memcpy(&kw, k, 8);
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, data + i, 8);
		w ^= kw;
		memcpy(data + i, &w, 8);
	}
	for (; i < len; i++)
		data[i] ^= k[i & 7];
}

/* Returns the header length, 0 if more bytes are needed, < 0 on a header
 * no server may send. */
int cli_ws_parse_header(const uint8_t *p, size_t avail, struct cli_ws_hdr *h, struct bh_err *err)
{
	size_t need = 2;

	if (avail < 2)
		return 0;
	h->fin = (p[0] & 0x80) != 0;
	h->opcode = p[0] & 0x0f;
	h->masked = (p[1] & 0x80) != 0;
	h->len = p[1] & 0x7f;
	if ((p[0] & 0x70) != 0)
		return bh_err_set(err, EPROTO, "websocket frame with reserved bits set");
	if (h->len == 126)
		need = 4;
	else if (h->len == 127)
		need = 10;
	if (h->masked)
		need += 4;
	if (avail < need)
		return 0;
	if (h->len == 126) {
		h->len = ((uint64_t)p[2] << 8) | p[3];
	} else if (h->len == 127) {
		h->len = 0;
		for (int i = 0; i < 8; i++)
			h->len = (h->len << 8) | p[2 + i];
		if (h->len >> 63)
			return bh_err_set(err, EPROTO, "websocket frame length out of range");
	}
	if (h->masked)
		memcpy(h->mask, p + need - 4, 4);
	return (int)need;
}

static bool is_control(int op)
{
	return op >= 8;
}

static bool is_known(int op)
{
	return op == CLI_WS_OP_CONT || op == CLI_WS_OP_TEXT || op == CLI_WS_OP_BINARY ||
	       op == CLI_WS_OP_CLOSE || op == CLI_WS_OP_PING || op == CLI_WS_OP_PONG;
}

void cli_ws_rx_init(struct cli_ws_rx *rx, size_t max_msg, cli_ws_msg_fn fn, void *arg)
{
	memset(rx, 0, sizeof(*rx));
	rx->buf = bh_malloc(CLI_WS_RX_BUF);
	rx->max_msg = max_msg;
	rx->fn = fn;
	rx->arg = arg;
	rx->frag_op = -1;
}

void cli_ws_rx_free(struct cli_ws_rx *rx)
{
	free(rx->buf);
	free(rx->frag);
	rx->buf = NULL;
	rx->frag = NULL;
}

size_t cli_ws_rx_space(struct cli_ws_rx *rx, uint8_t **at)
{
	*at = rx->buf + rx->len;
	return CLI_WS_RX_BUF - rx->len;
}

/* Checks one frame header against the rules for a server's frames. */
static int check_frame(struct cli_ws_rx *rx, const struct cli_ws_hdr *h, struct bh_err *err)
{
	if (h->masked)
		return bh_err_set(err, EPROTO, "websocket: the server masked a frame");
	if (!is_known(h->opcode))
		return bh_err_set(err, EPROTO, "websocket: unknown opcode %d", h->opcode);
	if (is_control(h->opcode) && (!h->fin || h->len > 125))
		return bh_err_set(err, EPROTO, "websocket: bad control frame");
	if (h->opcode == CLI_WS_OP_CONT && rx->frag_op < 0)
		return bh_err_set(err, EPROTO, "websocket: continuation without a first frame");
	if (!is_control(h->opcode) && h->opcode != CLI_WS_OP_CONT && rx->frag_op >= 0)
		return bh_err_set(err, EPROTO, "websocket: new message inside a fragmented one");
	if (h->len > rx->max_msg ||
	    (h->opcode == CLI_WS_OP_CONT && rx->frag_len + h->len > rx->max_msg))
		return bh_err_set(err, EMSGSIZE, "websocket: message over %zu bytes", rx->max_msg);
	return 0;
}

/* A data frame that is part of a fragmented message: kept until the last. */
static int add_fragment(struct cli_ws_rx *rx, const struct cli_ws_hdr *h, uint8_t *data,
                        struct bh_err *err)
{
	if (h->opcode != CLI_WS_OP_CONT) {
		rx->frag_op = h->opcode;
		rx->frag_len = 0;
		if (rx->frag == NULL)
			rx->frag = bh_malloc(rx->max_msg ? rx->max_msg : 1);
	}
	memcpy(rx->frag + rx->frag_len, data, h->len);
	rx->frag_len += h->len;
	if (!h->fin)
		return 0;
	int op = rx->frag_op;
	rx->frag_op = -1;
	return rx->fn(rx->arg, op, rx->frag, rx->frag_len, err);
}

static int dispatch(struct cli_ws_rx *rx, const struct cli_ws_hdr *h, uint8_t *data,
                    struct bh_err *err)
{
	if (is_control(h->opcode) || (h->fin && h->opcode != CLI_WS_OP_CONT))
		return rx->fn(rx->arg, h->opcode, data, (size_t)h->len, err);
	return add_fragment(rx, h, data, err);
}

int cli_ws_rx_commit(struct cli_ws_rx *rx, size_t n, struct bh_err *err)
{
	size_t off = 0;
	struct cli_ws_hdr h;
	int hl, rc = 0;

	rx->len += n;
	while (rc == 0 && !rx->stopped) {
		hl = cli_ws_parse_header(rx->buf + off, rx->len - off, &h, err);
		if (hl < 0 || (hl > 0 && check_frame(rx, &h, err) < 0)) {
			rc = -1;
			break;
		}
		if (hl == 0 || rx->len - off - (size_t)hl < h.len)
			break;
		rc = dispatch(rx, &h, rx->buf + off + hl, err);
		off += (size_t)hl + (size_t)h.len;
	}
	if (rc < 0)
		return -1;
	/* A partial frame moves to the front: it is at most one header plus
	 * max_msg, which the buffer is sized to hold. */
	memmove(rx->buf, rx->buf + off, rx->len - off);
	rx->len -= off;
	return 0;
}
