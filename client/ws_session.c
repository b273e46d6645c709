/* client: one exec/attach session (docs/streams.md "Client behaviour"):
 * the daemon's stdout/stderr frames to our fds, our stdin (detach keys
 * filtered) as stdin frames, SIGWINCH as resize, proxied signals as signal,
 * stdin EOF as the control eof, and the exit message as our status.  One
 * poll() loop; the daemon's frames are untrusted (checked in ws_stream.c). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "client/client-internal.h"

#define STDIN_HIGH_WATER (256 * 1024) /* queued bytes above which stdin waits */

struct session {
	struct cli_ws *ws;
	const struct cli_session_opts *o;
	struct cli_session_result *res;
	struct cli_detach keys;
	bool stdin_open, closed;
	uint8_t *in;  /* a stdin read */
	uint8_t *fwd; /* what of it goes out after detach filtering */
};

static int write_all(int fd, const uint8_t *p, size_t n, struct bh_err *err)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return bh_err_sys(err, errno, "write to %s", fd == 2 ? "stderr" : "stdout");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Output numbered by the server: a resend below what we have is dropped. */
static int on_data(struct session *s, const struct cli_stream_msg *m, struct bh_err *err)
{
	uint64_t have = s->res->out_offset;
	const uint8_t *p = m->data;
	size_t n = m->len;

	if (m->offset < have) {
		uint64_t skip = have - m->offset;
		if (skip >= n)
			return 0;
		p += skip;
		n -= (size_t)skip;
	}
	s->res->out_offset = (m->offset > have ? m->offset : have) + n;
	return write_all(m->channel == CLI_CHAN_STDERR ? s->o->err_fd : s->o->out_fd, p, n, err);
}

static int on_control(struct session *s, const struct cli_stream_msg *m, struct bh_err *err)
{
	struct cli_stream_control c;

	if (cli_stream_control_parse(m->data, m->len, &c, err) < 0)
		return -1;
	switch (c.type) {
	case CLI_CTL_HELLO:
		s->res->out_offset = c.offset;
		return 0;
	case CLI_CTL_EXIT:
		s->res->exited = true;
		s->res->code = c.code;
		s->closed = true;
		return 0;
	case CLI_CTL_ERROR:
		bh_strlcpy(s->res->error, c.message, sizeof(s->res->error));
		return 0;
	case CLI_CTL_UNKNOWN:
		return 0;
	}
	return 0;
}

static int on_message(void *arg, int opcode, uint8_t *data, size_t len, struct bh_err *err)
{
	struct session *s = arg;
	struct cli_stream_msg m;

	if (opcode == CLI_WS_OP_CLOSE) {
		s->closed = true;
		return 0;
	}
	if (s->closed) /* nothing counts after exit */
		return 0;
	if (cli_stream_parse(data, len, &m, err) < 0)
		return -1;
	if (m.channel == CLI_CHAN_CONTROL)
		return on_control(s, &m, err);
	return on_data(s, &m, err);
}

static int send_control(struct session *s, const uint8_t *msg, size_t len, struct bh_err *err)
{
	if (len == 0)
		return bh_err_set(err, EINVAL, "control message too long");
	return cli_ws_send(s->ws, NULL, 0, msg, len, err);
}

static int send_resize(struct session *s, struct bh_err *err)
{
	uint8_t msg[128];
	int rows, cols;

	if (!s->o->tty || cli_term_size(s->o->in_fd, &rows, &cols) < 0)
		return 0;
	return send_control(s, msg, cli_stream_control_resize(msg, sizeof(msg), rows, cols), err);
}

static int on_signals(struct session *s, struct bh_err *err)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = {{CLI_SIG_INT, "SIGINT"},
	             {CLI_SIG_TERM, "SIGTERM"},
	             {CLI_SIG_HUP, "SIGHUP"},
	             {CLI_SIG_QUIT, "SIGQUIT"}};
	unsigned got = cli_term_signals_take();
	uint8_t msg[128];

	if ((got & CLI_SIG_WINCH) && send_resize(s, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(got & names[i].flag))
			continue;
		if (send_control(s, msg, cli_stream_control_signal(msg, sizeof(msg), names[i].name),
		                 err) < 0)
			return -1;
	}
	return 0;
}

static int stdin_eof(struct session *s, struct bh_err *err)
{
	uint8_t msg[64];

	s->stdin_open = false;
	return send_control(s, msg, cli_stream_control_eof(msg, sizeof(msg)), err);
}

/* Reads what stdin has now, up to one frame: a pipe fed in small writes
 * still makes few large frames (fewer per-frame costs on both sides). */
static ssize_t read_stdin(struct session *s, size_t want)
{
	struct pollfd p = {.fd = s->o->in_fd, .events = POLLIN};
	size_t got = 0;
	ssize_t n;

	for (int i = 0; i < 64 && got < want; i++) {
		if (i > 0 && (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)))
			break;
		n = read(s->o->in_fd, s->in + got, want - got);
		if (n <= 0)
			return got > 0 ? (ssize_t)got : n; /* EOF or error: next time */
		got += (size_t)n;
		if (s->o->tty)
			break; /* keystrokes go at once */
	}
	return (ssize_t)got;
}

/* One read of stdin: filtered for the detach keys, then one stdin frame. */
static int on_stdin(struct session *s, struct bh_err *err)
{
	uint8_t hdr[9];
	ssize_t n = read_stdin(s, CLI_STREAM_DATA_MAX - CLI_DETACH_MAX);
	size_t out = (size_t)n;
	const uint8_t *p = s->in;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0 && errno != EIO) /* EIO: our terminal hung up, an EOF */
		return bh_err_sys(err, errno, "read from stdin");
	if (n <= 0)
		return stdin_eof(s, err);
	/* A resize (or proxied signal) that came before these bytes goes first:
	 * poll() can report stdin alone while the SIGWINCH is still pending,
	 * and a keystroke sent ahead of its resize reaches a program that still
	 * sees the old size.  The handler has run by now (our read returned). */
	if (cli_term_signals_pending() && on_signals(s, err) < 0)
		return -1;
	if (s->keys.len > 0) {
		if (cli_detach_feed(&s->keys, s->in, (size_t)n, s->fwd, &out) == 1)
			s->res->detached = true;
		p = s->fwd;
	}
	if (out == 0)
		return 0;
	cli_stream_stdin_header(hdr, s->res->in_offset);
	s->res->in_offset += out;
	return cli_ws_send(s->ws, hdr, sizeof(hdr), p, out, err);
}

/* poll() slots: the connection, the signal pipe, stdin. */
static int wait_events(struct session *s, int sig_fd, struct pollfd *p)
{
	bool ready;
	int r;

	p[0] = (struct pollfd){.fd = cli_ws_fd(s->ws), .events = POLLIN};
	if (cli_ws_wants_write(s->ws))
		p[0].events |= POLLOUT;
	p[1] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
	p[2] = (struct pollfd){.fd = -1};
	if (s->stdin_open && !s->res->detached && cli_ws_pending(s->ws) < STDIN_HIGH_WATER)
		p[2] = (struct pollfd){.fd = s->o->in_fd, .events = POLLIN};
	ready = cli_ws_buffered(s->ws);
	r = poll(p, 3, ready ? 0 : -1);
	if (r < 0 && errno == EINTR) { /* the handler wrote to the pipe too */
		for (int i = 0; i < 3; i++)
			p[i].revents = 0;
		return 0;
	}
	if (ready)
		p[0].revents |= POLLIN;
	return r;
}

static int step(struct session *s, int sig_fd, struct bh_err *err)
{
	struct pollfd p[3];
	int r;

	if (wait_events(s, sig_fd, p) < 0)
		return bh_err_sys(err, errno, "poll");
	if ((p[1].revents & POLLIN) && on_signals(s, err) < 0)
		return -1;
	if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
		if (on_stdin(s, err) < 0)
			return -1;
	}
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		r = cli_ws_read(s->ws, err);
		if (r < 0)
			return -1;
		if (r == 1)
			s->closed = true;
	}
	return cli_ws_flush(s->ws, err);
}

static int loop(struct session *s, struct bh_err *err)
{
	int sig_fd = cli_term_signals_start(s->o->sig_proxy && !s->o->tty, err);

	if (sig_fd < 0)
		return -1;
	if (send_resize(s, err) < 0 || cli_ws_dispatch_buffered(s->ws, err) < 0)
		return -1;
	while (!s->closed && !s->res->detached)
		if (step(s, sig_fd, err) < 0)
			return -1;
	return 0;
}

/* The daemon's refusal of the upgrade, or a transport failure. */
static int connect_failed(struct cli *cli, const struct ctx_target *t, int status,
                          struct bh_buf *body, struct bh_err *err)
{
	char label[400];
	int rc;

	cli_target_label(t, label, sizeof(label));
	if (status < 0)
		return cli_fail(cli, CLI_EXIT_DAEMON, "%s: %s", label, err->msg);
	rc = cli_api_error(cli, CLI_EXIT_CMD, status, body);
	bh_buf_free(body);
	return rc;
}

static int session_end(struct cli *cli, const struct cli_session_result *res, int rc,
                       struct bh_err *err)
{
	if (rc < 0)
		return cli_fail(cli, CLI_EXIT_DAEMON, "stream: %s", err->msg);
	if (res->detached)
		return 0;
	if (res->exited)
		return res->code & 0xff;
	if (res->error[0] != '\0')
		return cli_fail(cli, CLI_EXIT_DAEMON, "Error response from daemon: %s", res->error);
	return cli_fail(cli, CLI_EXIT_DAEMON,
	                "stream: the daemon closed it without an exit status");
}

int cli_stream_session(struct cli *cli, const char *path, const struct cli_session_opts *o,
                       bool *detached)
{
	struct cli_session_result res;
	struct session s = {.o = o, .res = &res, .stdin_open = o->stdin_on};
	const struct ctx_target *t;
	struct bh_err err = {0};
	struct bh_buf body;
	int status, rc;

	memset(&res, 0, sizeof(res));
	if (cli_target(cli, &t) < 0)
		return -1;
	status = cli_ws_connect_after(t, o->prelude, path, on_message, &s, &s.ws, &body, &err);
	if (status != 101)
		return connect_failed(cli, t, status, &body, &err);
	bh_buf_free(&body);
	if (o->upgraded != NULL && o->upgraded(o->upgraded_arg) < 0) {
		cli_ws_free(s.ws);
		return -1;
	}
	if (o->keys != NULL && o->tty)
		s.keys = *o->keys;
	cli_out_pipe_grow(1);
	cli_out_pipe_grow(2);
	s.in = bh_malloc(CLI_STREAM_DATA_MAX);
	s.fwd = bh_malloc(CLI_STREAM_DATA_MAX + CLI_DETACH_MAX);
	rc = o->tty ? cli_term_raw(o->in_fd, &err) : 0;
	if (rc == 0)
		rc = loop(&s, &err);
	cli_term_signals_stop();
	cli_term_restore();
	if (rc == 0 && (res.exited || res.detached))
		cli_ws_close(s.ws, 1000);
	cli_ws_free(s.ws);
	free(s.in);
	free(s.fwd);
	if (detached != NULL)
		*detached = res.detached;
	bh_debug("stream %s: out offset %llu, in offset %llu", path,
	         (unsigned long long)res.out_offset, (unsigned long long)res.in_offset);
	return session_end(cli, &res, rc, &err);
}
