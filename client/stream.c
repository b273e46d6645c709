/* Docker's multiplexed stream: frames of [stream u8][0 0 0][length u32 BE]
 * followed by length bytes, as logs, attach and exec send them when the
 * container has no TTY.  The demuxer takes the body in pieces of any size
 * and passes payload through without buffering it, so a frame's length
 * (chosen by the daemon) never decides how much memory we use. */
#include <errno.h>
#include <string.h>

#include "client/client-internal.h"

void cli_demux_init(struct cli_demux *d, cli_demux_fn fn, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->fn = fn;
	d->arg = arg;
}

static int take_header(struct cli_demux *d, struct bh_err *err)
{
	const uint8_t *h = d->hdr;

	if (h[0] > CLI_STREAM_SYSTEMERR || h[1] != 0 || h[2] != 0 || h[3] != 0)
		return bh_err_set(
		    err, EPROTO,
		    "bad stream frame header %02x %02x %02x %02x (is the stream a TTY "
		    "stream?)",
		    h[0], h[1], h[2], h[3]);
	d->stream = h[0];
	d->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	d->hdr_len = 0;
	d->in_frame = d->left > 0;
	return 0;
}

int cli_demux_feed(struct cli_demux *d, const void *data, size_t len, struct bh_err *err)
{
	const uint8_t *p = data;

	while (len > 0) {
		if (!d->in_frame) {
			size_t n = sizeof(d->hdr) - d->hdr_len;
			if (n > len)
				n = len;
			memcpy(d->hdr + d->hdr_len, p, n);
			d->hdr_len += n;
			p += n;
			len -= n;
			if (d->hdr_len == sizeof(d->hdr) && take_header(d, err) < 0)
				return -1;
			continue;
		}
		size_t n = len < d->left ? len : d->left;
		if (d->fn(d->arg, d->stream, p, n, err) < 0)
			return -1;
		d->left -= (uint32_t)n;
		d->in_frame = d->left > 0;
		p += n;
		len -= n;
	}
	return 0;
}

int cli_demux_finish(struct cli_demux *d, struct bh_err *err)
{
	if (d->in_frame || d->hdr_len != 0)
		return bh_err_set(err, EPROTO, "the stream ended in the middle of a frame");
	return 0;
}

/* ---- writing a stream to our stdout and stderr --------------------------- */

static int write_all(FILE *f, const char *what, const void *data, size_t len, struct bh_err *err)
{
	if (len > 0 && fwrite(data, 1, len, f) != len)
		return bh_err_sys(err, errno, "write to %s", what);
	/* Flush each piece: stdout and stderr interleave as the container
	 * wrote them, and a follower sees output as it comes. */
	if (fflush(f) != 0)
		return bh_err_sys(err, errno, "write to %s", what);
	return 0;
}

int cli_stream_write_std(void *arg, int stream, const void *data, size_t len, struct bh_err *err)
{
	char text[256];
	size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;

	switch (stream) {
	case CLI_STREAM_STDOUT:
		return write_all(stdout, "stdout", data, len, err);
	case CLI_STREAM_STDIN: /* docker writes stdin-echo frames to stdout too */
		return write_all(stdout, "stdout", data, len, err);
	case CLI_STREAM_STDERR:
		return write_all(stderr, "stderr", data, len, err);
	default:
		/* Stream 3 is the daemon's own error, ending the stream. */
		memcpy(text, data, n);
		text[n] = '\0';
		cli_sanitize(text, text, sizeof(text));
		return bh_err_set(err, EIO, "error from daemon in stream: %s", text);
	}
}

void cli_stdio_sink_init(struct cli_stdio_sink *s, struct cli_http *h, bool raw)
{
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->raw = raw;
	cli_demux_init(&s->demux, cli_stream_write_std, NULL);
	bh_buf_init(&s->error_body, 64 * 1024);
}

void cli_stdio_sink_free(struct cli_stdio_sink *s)
{
	bh_buf_free(&s->error_body);
}

int cli_stdio_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct cli_stdio_sink *s = arg;

	if (s->status == 0)
		s->status = cli_http_status(s->h);
	if (s->status >= 300) {
		/* An error reply is a small JSON document, not the stream. */
		if (bh_buf_append(&s->error_body, data, len) < 0)
			return bh_err_set(err, EFBIG, "error reply larger than %zu bytes",
			                  s->error_body.max);
		return 0;
	}
	if (s->raw)
		return write_all(stdout, "stdout", data, len, err);
	return cli_demux_feed(&s->demux, data, len, err);
}

int cli_stdio_sink_end(struct cli_stdio_sink *s, struct bh_err *err)
{
	if (s->raw || s->status >= 300)
		return 0;
	return cli_demux_finish(&s->demux, err);
}
