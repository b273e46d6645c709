/* The WebSocket framing of exec/attach streams (docs/streams.md): one binary
 * message = one frame, [channel][u64 BE offset][payload] for data and
 * [3][JSON] for control.  Everything here comes from the client and is
 * hostile: short frames, unknown channels, oversized or non-JSON control
 * messages and absurd sizes are errors that end the session, never crashes.
 * Pure code (no lws), so the unit tests and fuzzers drive it directly. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/server-internal.h"

void srv_sf_header(uint8_t out[SRV_SF_HDR], enum srv_sf_channel ch, uint64_t offset)
{
	out[0] = (uint8_t)ch;
	for (int i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(offset >> (56 - 8 * i));
}

int srv_sf_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int num;
	} names[] = {
	    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	    {"TERM", SIGTERM}, {"USR1", SIGUSR1},   {"USR2", SIGUSR2}, {"STOP", SIGSTOP},
	    {"CONT", SIGCONT}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
	    {"ABRT", SIGABRT}, {"TSTP", SIGTSTP},
	};
	long n;

	if (s == NULL || s[0] == '\0')
		return -1;
	if (bh_parse_long(s, 1, 64, &n) == 0)
		return (int)n;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].num;
	return -1;
}

static int ctl_size(json_t *o, const char *key, unsigned *out, struct bh_err *err)
{
	json_t *v = json_object_get(o, key);
	json_int_t n;

	if (!json_is_integer(v))
		return bh_err_set(err, EPROTO, "resize: %s must be an integer", key);
	n = json_integer_value(v);
	if (n < 1 || n > SRV_SF_TTY_MAX)
		return bh_err_set(err, EPROTO, "resize: %s %lld out of range 1..%d", key,
		                  (long long)n, SRV_SF_TTY_MAX);
	*out = (unsigned)n;
	return 0;
}

static int ctl_signal(json_t *o, struct srv_sf_ctl *out, struct bh_err *err)
{
	json_t *v = json_object_get(o, "signal");

	if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 64)
		out->signal = (int)json_integer_value(v);
	else if (json_is_string(v))
		out->signal = srv_sf_signal_parse(json_string_value(v));
	else
		out->signal = -1;
	if (out->signal < 0)
		return bh_err_set(err, EPROTO, "signal: unknown or missing signal");
	return 0;
}

int srv_sf_control_parse(const void *data, size_t len, struct srv_sf_ctl *out, struct bh_err *err)
{
	json_error_t jerr;
	json_t *o;
	const char *type;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (len > SRV_SF_CTL_MAX)
		return bh_err_set(err, EMSGSIZE, "control message of %zu bytes (limit %d)", len,
		                  SRV_SF_CTL_MAX);
	o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return bh_err_set(err, EPROTO, "control message is not a JSON object");
	}
	type = json_string_value(json_object_get(o, "type"));
	if (type == NULL)
		r = bh_err_set(err, EPROTO, "control message without a type");
	else if (strcmp(type, "resize") == 0) {
		out->type = SRV_SF_CTL_RESIZE;
		if (ctl_size(o, "rows", &out->rows, err) < 0 ||
		    ctl_size(o, "cols", &out->cols, err) < 0)
			r = -1;
	} else if (strcmp(type, "signal") == 0) {
		out->type = SRV_SF_CTL_SIGNAL;
		r = ctl_signal(o, out, err);
	} else if (strcmp(type, "eof") == 0) {
		out->type = SRV_SF_CTL_EOF;
	} else {
		out->type = SRV_SF_CTL_UNKNOWN; /* forward compatibility: ignored */
	}
	json_decref(o);
	return r;
}

int srv_sf_close_code(int code)
{
	return code == ENOTSUP ? 1003 : 1008;
}

void srv_sf_rx_init(struct srv_sf_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
}

/* Stdin payload at rx->offset: the part already delivered is dropped. */
static int deliver_stdin(struct srv_sf_rx *rx, const uint8_t *p, size_t n,
                         const struct srv_sf_rx_ops *ops, void *arg, struct bh_err *err)
{
	uint64_t off = rx->offset;

	rx->offset += n;
	if (off < rx->stdin_next) {
		uint64_t skip = rx->stdin_next - off;
		if (skip >= n)
			return 0;
		p += skip;
		n -= (size_t)skip;
	}
	rx->stdin_next = rx->offset;
	return n > 0 ? ops->on_stdin(arg, p, n, err) : 0;
}

static int check_channel(uint8_t ch, struct bh_err *err)
{
	if (ch == SRV_SF_STDIN || ch == SRV_SF_CONTROL)
		return 0;
	if (ch == SRV_SF_STDOUT || ch == SRV_SF_STDERR)
		return bh_err_set(err, EPROTO, "channel %d is server-to-client only", ch);
	return bh_err_set(err, EPROTO, "unknown channel %d", ch);
}

/* The header is complete. */
static void header_done(struct srv_sf_rx *rx)
{
	rx->offset = 0;
	if (rx->hdr[0] == SRV_SF_STDIN)
		for (int i = 1; i < SRV_SF_HDR; i++)
			rx->offset = rx->offset << 8 | rx->hdr[i];
}

static int take_header(struct srv_sf_rx *rx, const uint8_t **p, size_t *len, struct bh_err *err)
{
	while (rx->hdr_got<rx->hdr_need && * len> 0) {
		rx->hdr[rx->hdr_got++] = **p;
		(*p)++;
		(*len)--;
		if (rx->hdr_got == 1) {
			if (check_channel(rx->hdr[0], err) < 0)
				return -1;
			rx->hdr_need = rx->hdr[0] == SRV_SF_CONTROL ? 1 : SRV_SF_HDR;
		}
		if (rx->hdr_got == rx->hdr_need)
			header_done(rx);
	}
	return 0;
}

static int take_payload(struct srv_sf_rx *rx, const uint8_t *p, size_t len,
                        const struct srv_sf_rx_ops *ops, void *arg, struct bh_err *err)
{
	if (rx->hdr[0] == SRV_SF_CONTROL) {
		if (rx->payload + len > SRV_SF_CTL_MAX)
			return bh_err_set(err, EMSGSIZE, "control message over %d bytes",
			                  SRV_SF_CTL_MAX);
		memcpy(rx->ctl + rx->ctl_len, p, len);
		rx->ctl_len += len;
		rx->payload += len;
		return 0;
	}
	if (rx->payload + len > SRV_SF_DATA_MAX)
		return bh_err_set(err, EMSGSIZE, "data frame over %d bytes", SRV_SF_DATA_MAX);
	/* An offset near 2^64 would wrap the delivered mark back and let old
	 * bytes through twice (found by fuzz_stream_frame). */
	if (len > UINT64_MAX - rx->offset)
		return bh_err_set(err, EPROTO, "stdin offset %llu + %zu out of range",
		                  (unsigned long long)rx->offset, len);
	rx->payload += len;
	return deliver_stdin(rx, p, len, ops, arg, err);
}

static int message_end(struct srv_sf_rx *rx, const struct srv_sf_rx_ops *ops, void *arg,
                       struct bh_err *err)
{
	struct srv_sf_ctl ctl;

	rx->in_msg = false;
	if (rx->hdr_got < rx->hdr_need || rx->hdr_got == 0)
		return bh_err_set(err, EPROTO, "short frame (%zu header bytes)", rx->hdr_got);
	if (rx->hdr[0] != SRV_SF_CONTROL)
		return 0;
	if (srv_sf_control_parse(rx->ctl, rx->ctl_len, &ctl, err) < 0)
		return -1;
	return ctl.type == SRV_SF_CTL_UNKNOWN ? 0 : ops->on_control(arg, &ctl, err);
}

int srv_sf_rx_feed(struct srv_sf_rx *rx, const void *data, size_t len, bool binary, bool final,
                   const struct srv_sf_rx_ops *ops, void *arg, struct bh_err *err)
{
	const uint8_t *p = data;

	if (!rx->in_msg) {
		if (!binary)
			return bh_err_set(err, ENOTSUP,
			                  "text messages are not part of the protocol");
		rx->in_msg = true;
		rx->hdr_got = rx->payload = rx->ctl_len = 0;
		rx->hdr_need = 1;
	}
	if (take_header(rx, &p, &len, err) < 0)
		return -1;
	if (len > 0 && take_payload(rx, p, len, ops, arg, err) < 0)
		return -1;
	return final ? message_end(rx, ops, arg, err) : 0;
}
