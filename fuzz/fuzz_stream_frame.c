/* libFuzzer target: the WebSocket stream framing of docs/streams.md on both
 * ends.  The first byte picks the side:
 *   even: berthd reading a client (server/stream-frame.c): the rest is a
 *     list of messages [u16 BE length][flags][bytes]; flags bit 0 makes it a
 *     text message, bits 2..7 append that many 8 KiB of zeros (absurd
 *     sizes), and the seed byte that follows picks where lws splits each
 *     message into pieces for srv_sf_rx_feed;
 *   odd: the CLI reading berthd (client/ws_frame.c, ws_stream.c): the rest
 *     is the raw byte stream, committed in reads of the sizes byte 0 picks;
 *     each message goes through cli_stream_parse and control ones through
 *     cli_stream_control_parse.
 * Invariants (server): splitting a message never changes what is
 * delivered: the stdin bytes and controls equal those of the same messages
 * fed whole, and equal a model of the offsets rule; every piece of stdin is
 * at most SRV_SF_DATA_MAX; resize sizes are 1..SRV_SF_TTY_MAX, signals
 * 1..64; frames over the limits are refused with EMSGSIZE; every refusal
 * carries a message.  (CLI) a message is at most its max_msg, a parsed data
 * message lies inside it, control text has no control characters and is terminated. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"
#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64u << 10)
#define PAD_UNIT  (8u << 10)

/* ---- berthd's side ---------------------------------------------------- */

struct sink {
	struct bh_buf in; /* stdin bytes delivered */
	char ctl[64 * 1024];
	size_t ctl_len; /* a trace of the controls delivered */
};

static int on_stdin(void *arg, const void *d, size_t n, struct bh_err *err)
{
	struct sink *s = arg;

	(void)err;
	if (n == 0 || n > SRV_SF_DATA_MAX)
		abort(); /* an empty or oversized delivery */
	bh_buf_append(&s->in, d, n);
	return 0;
}

static int on_control(void *arg, const struct srv_sf_ctl *c, struct bh_err *err)
{
	struct sink *s = arg;
	int n;

	(void)err;
	if (c->type == SRV_SF_CTL_RESIZE &&
	    (c->rows < 1 || c->cols < 1 || c->rows > SRV_SF_TTY_MAX || c->cols > SRV_SF_TTY_MAX))
		abort();
	if (c->type == SRV_SF_CTL_SIGNAL && (c->signal < 1 || c->signal > 64))
		abort();
	if (c->type == SRV_SF_CTL_UNKNOWN)
		abort(); /* unknown types are dropped, not delivered */
	n = snprintf(s->ctl + s->ctl_len, sizeof(s->ctl) - s->ctl_len, "%d/%u/%u/%d;", c->type,
	             c->rows, c->cols, c->signal);
	if (n > 0 && (size_t)n < sizeof(s->ctl) - s->ctl_len)
		s->ctl_len += (size_t)n;
	return 0;
}

static const struct srv_sf_rx_ops sink_ops = {on_stdin, on_control};

struct msg {
	uint8_t *p;
	size_t len;
	bool text;
	uint8_t split;
};

/* The next message of the input, padded; false at the end. */
static bool next_msg(const uint8_t **d, size_t *left, struct msg *m)
{
	size_t n, pad;

	if (*left < 4)
		return false;
	n = (size_t)(*d)[0] << 8 | (*d)[1];
	m->text = (*d)[2] & 1;
	pad = (size_t)((*d)[2] >> 2) * PAD_UNIT;
	m->split = (*d)[3];
	*d += 4;
	*left -= 4;
	if (n > *left)
		n = *left;
	m->len = n + pad;
	m->p = bh_calloc(m->len + 1, 1);
	memcpy(m->p, *d, n);
	*d += n;
	*left -= n;
	return true;
}

/* Feeds m in pieces whose sizes come from m->split (0: whole). */
static int feed(struct srv_sf_rx *rx, const struct msg *m, struct sink *s, struct bh_err *err)
{
	size_t off = 0, step = m->split ? (size_t)m->split * 7 % 257 + 1 : m->len;
	int r;

	do {
		size_t n = m->len - off < step ? m->len - off : step;
		r = srv_sf_rx_feed(rx, m->p + off, n, !m->text, off + n == m->len, &sink_ops, s,
		                   err);
		off += n;
		if (m->split)
			step = step * 3 % 1031 + 1;
	} while (r == 0 && off < m->len);
	return r;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The rule of docs/streams.md for one whole stdin message: the part below
 * the offset already delivered is dropped; an empty frame moves nothing. */
static void model_stdin(const struct msg *m, uint64_t *next, struct bh_buf *out)
{
	uint64_t off = be64(m->p + 1), n = m->len - SRV_SF_HDR;
	uint64_t skip = *next > off ? *next - off : 0;

	if (skip < n)
		bh_buf_append(out, m->p + SRV_SF_HDR + skip, (size_t)(n - skip));
	if (n > 0 && off + n > *next)
		*next = off + n;
}

/* What must happen to a whole message: 0 accepted, else the errno. */
static int model_verdict(const struct msg *m)
{
	if (m->text)
		return ENOTSUP;
	if (m->len == 0 || m->p[0] == 1 || m->p[0] == 2 || m->p[0] > 3)
		return EPROTO;
	if (m->p[0] == SRV_SF_CONTROL)
		return m->len - 1 > SRV_SF_CTL_MAX ? EMSGSIZE : -1; /* -1: JSON decides */
	if (m->len < SRV_SF_HDR)
		return EPROTO;
	if (m->len - SRV_SF_HDR > SRV_SF_DATA_MAX)
		return EMSGSIZE;
	/* the end of the bytes must be an offset */
	return m->len - SRV_SF_HDR > UINT64_MAX - be64(m->p + 1) ? EPROTO : 0;
}

static void fuzz_server(const uint8_t *d, size_t left)
{
	struct srv_sf_rx *split = bh_malloc(sizeof(*split)), *whole = bh_malloc(sizeof(*whole));
	struct sink *ss = bh_calloc(1, sizeof(*ss)), *sw = bh_calloc(1, sizeof(*sw));
	struct bh_buf model;
	uint64_t next = 0;
	struct msg m;
	int rs = 0, rw = 0, v;

	bh_buf_init(&model, SIZE_MAX);
	bh_buf_init(&ss->in, SIZE_MAX);
	bh_buf_init(&sw->in, SIZE_MAX);
	srv_sf_rx_init(split);
	srv_sf_rx_init(whole);
	while (rs == 0 && next_msg(&d, &left, &m)) {
		struct bh_err es = {0}, ew = {0};
		struct msg w = m;
		size_t before = ss->in.len;

		w.split = 0;
		v = model_verdict(&m);
		rs = feed(split, &m, ss, &es);
		rw = feed(whole, &w, sw, &ew);
		/* A piece may cross the offset limit before the size limit: the
		 * split run must fail too, its code may differ. */
		if ((rs < 0) != (rw < 0) || (rs < 0 && (!es.msg[0] || !ew.msg[0])))
			abort(); /* splitting changed the verdict */
		if (v >= 0 && (v == 0 ? rw != 0 : (rw == 0 || ew.code != v)))
			abort(); /* the verdict is not the rule's */
		if (rs == 0 && m.p[0] == SRV_SF_STDIN)
			model_stdin(&m, &next, &model);
		if (rs < 0)
			ss->in.len = before; /* a refused message may have delivered a part */
		free(m.p);
	}
	if (ss->in.len != sw->in.len || ss->in.len != model.len)
		abort(); /* stdin delivered is not the data channel's */
	if (model.len > 0 && (memcmp(ss->in.data, sw->in.data, model.len) != 0 ||
	                      memcmp(ss->in.data, model.data, model.len) != 0))
		abort(); /* stdin delivered is not the data channel's */
	if (ss->ctl_len != sw->ctl_len || memcmp(ss->ctl, sw->ctl, ss->ctl_len) != 0)
		abort();
	bh_buf_free(&ss->in);
	bh_buf_free(&sw->in);
	bh_buf_free(&model);
	free(ss);
	free(sw);
	free(split);
	free(whole);
}

/* ---- the CLI's side ------------------------------------------------------ */

static int on_message(void *arg, int op, uint8_t *data, size_t len, struct bh_err *err)
{
	struct cli_stream_msg m;
	struct cli_stream_control c;

	if (len > CLI_STREAM_MSG_MAX)
		abort();
	if (op == CLI_WS_OP_CLOSE)
		((struct cli_ws_rx *)arg)->stopped = true; /* as ws_conn.c does */
	if (op != CLI_WS_OP_BINARY)
		return 0;
	if (cli_stream_parse(data, len, &m, err) < 0)
		return -1;
	if (m.data < data || m.data + m.len > data + len || m.channel > CLI_CHAN_CONTROL)
		abort();
	if (m.channel != CLI_CHAN_CONTROL)
		return 0;
	if (cli_stream_control_parse(m.data, m.len, &c, err) < 0)
		return -1;
	if (memchr(c.message, '\0', sizeof(c.message)) == NULL)
		abort();
	for (const char *p = c.message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort(); /* a terminal escape from the daemon reaches the user */
	return 0;
}

static void fuzz_cli(uint8_t reads, const uint8_t *d, size_t left)
{
	struct cli_ws_rx rx;
	struct bh_err err = {0};
	size_t step = (size_t)(reads >> 1) * 13 % 509 + 1;

	cli_ws_rx_init(&rx, CLI_STREAM_MSG_MAX, on_message, &rx);
	while (left > 0) {
		uint8_t *at;
		size_t space = cli_ws_rx_space(&rx, &at), n = left < step ? left : step;

		if (space == 0)
			abort(); /* a bounded message can no longer be read whole */
		if (n > space)
			n = space;
		memcpy(at, d, n);
		d += n;
		left -= n;
		if (cli_ws_rx_commit(&rx, n, &err) < 0) {
			if (!err.msg[0])
				abort();
			break;
		}
		step = step * 5 % 1021 + 1;
	}
	cli_ws_rx_free(&rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > MAX_INPUT)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_server(data + 1, size - 1);
	else
		fuzz_cli(data[0], data + 1, size - 1);
	return 0;
}
