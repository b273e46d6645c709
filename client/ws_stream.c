/* client: the docs/streams.md message layer on top of the WebSocket codec:
 * channel byte, u64 offset for data channels, JSON control messages.  Pure;
 * the server's messages are untrusted and checked before use. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void cli_stream_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

int cli_stream_parse(const uint8_t *data, size_t len, struct cli_stream_msg *m, struct bh_err *err)
{
	memset(m, 0, sizeof(*m));
	if (len < 1)
		return bh_err_set(err, EPROTO, "stream: empty message");
	m->channel = data[0];
	switch (m->channel) {
	case CLI_CHAN_STDOUT:
	case CLI_CHAN_STDERR:
		if (len < 9)
			return bh_err_set(err, EPROTO, "stream: short data frame (%zu bytes)", len);
		m->offset = get_be64(data + 1);
		m->data = data + 9;
		m->len = len - 9;
		return 0;
	case CLI_CHAN_CONTROL:
		if (len - 1 > CLI_STREAM_CONTROL_MAX)
			return bh_err_set(err, EMSGSIZE, "stream: control message over %d bytes",
			                  CLI_STREAM_CONTROL_MAX);
		m->data = data + 1;
		m->len = len - 1;
		return 0;
	default:
		return bh_err_set(err, EPROTO, "stream: unknown channel %u", m->channel);
	}
}

static int control_fail(json_t *doc, struct bh_err *err, const char *what)
{
	json_decref(doc);
	return bh_err_set(err, EPROTO, "stream: bad control message: %s", what);
}

static void control_fields(json_t *doc, struct cli_stream_control *c)
{
	json_t *v;

	if ((v = json_object_get(doc, "offset")) && json_is_integer(v) &&
	    json_integer_value(v) >= 0)
		c->offset = (uint64_t)json_integer_value(v);
	c->tty = json_is_true(json_object_get(doc, "tty"));
	c->stdin_open = json_is_true(json_object_get(doc, "stdin"));
	c->code = (int)json_integer_value(json_object_get(doc, "code"));
	c->oom = json_is_true(json_object_get(doc, "oom"));
	if ((v = json_object_get(doc, "signal")) && json_is_integer(v))
		c->signal = (int)json_integer_value(v);
	if ((v = json_object_get(doc, "message")) && json_is_string(v))
		cli_sanitize(json_string_value(v), c->message, sizeof(c->message));
}

int cli_stream_control_parse(const uint8_t *data, size_t len, struct cli_stream_control *c,
                             struct bh_err *err)
{
	json_t *doc = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(doc, "type"));

	memset(c, 0, sizeof(*c));
	if (!json_is_object(doc))
		return control_fail(doc, err, "not a JSON object");
	if (type == NULL)
		return control_fail(doc, err, "no type");
	if (strcmp(type, "hello") == 0)
		c->type = CLI_CTL_HELLO;
	else if (strcmp(type, "exit") == 0)
		c->type = CLI_CTL_EXIT;
	else if (strcmp(type, "error") == 0)
		c->type = CLI_CTL_ERROR;
	else
		c->type = CLI_CTL_UNKNOWN; /* forward compatibility: ignored */
	control_fields(doc, c);
	json_decref(doc);
	return 0;
}

size_t cli_stream_control_resize(uint8_t *out, size_t outlen, int rows, int cols)
{
	int n = snprintf((char *)out, outlen, "%c{\"type\":\"resize\",\"rows\":%d,\"cols\":%d}",
	                 CLI_CHAN_CONTROL, rows, cols);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

size_t cli_stream_control_signal(uint8_t *out, size_t outlen, const char *name)
{
	int n = snprintf((char *)out, outlen, "%c{\"type\":\"signal\",\"signal\":\"%s\"}",
	                 CLI_CHAN_CONTROL, name);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

size_t cli_stream_control_eof(uint8_t *out, size_t outlen)
{
	int n = snprintf((char *)out, outlen, "%c{\"type\":\"eof\"}", CLI_CHAN_CONTROL);
	return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

void cli_stream_stdin_header(uint8_t out[9], uint64_t offset)
{
	out[0] = CLI_CHAN_STDIN;
	cli_stream_put_be64(out + 1, offset);
}
