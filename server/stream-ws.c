/* The WebSocket transport of exec and attach streams (docs/streams.md):
 * GET /exec/{id}/ws and GET /containers/{id}/attach/ws.  Output from the
 * bridge is copied once, into frame buffers that already have lws's LWS_PRE
 * headroom and the 9-byte header, 256 KiB of payload each; at most
 * OUT_SLOTS frames wait, then the bridge stops reading the monitor.  Input
 * from the client is decoded by stream-frame.c and queued to the monitor;
 * while that queue is full the client is not read (lws_rx_flow_control).
 * The server sends `exit` last and waits (10 s at most) for the client to
 * close. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <libwebsockets.h>

#include "runtime/rt-monitor.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

#define OUT_SLOTS    4
#define SLOT_SIZE    (LWS_PRE + SRV_SF_HDR + SRV_SF_OUT_PAYLOAD)
#define EXIT_CLOSE_S 10 /* the client closes after exit, or we do */
#define CTL_MSG_MAX  1024
/* Client bytes that arrive before the monitor is connected are kept (not
 * dropped: a quick client sends stdin and eof at once) up to this bound;
 * more is a policy violation (1008). */
#define EARLY_MAX (SRV_SF_DATA_MAX + 64 * 1024)
#define EARLY_HDR 5 /* [binary | final << 1][u32 length] */

struct slot {
	uint8_t *buf; /* SLOT_SIZE; frame at buf + LWS_PRE */
	size_t len;   /* frame bytes (header included) */
	int ch;
};

struct sess {
	int refs;          /* the connection, a pending pool job */
	struct srv_ws *ws; /* NULL once the connection is gone */
	struct srv_server *srv;
	struct srv_bridge *br;
	bool is_exec;
	char exec_id[65], ctr_id[65];
	char dir[4096];
	bool tty, want_stdin, want_stdout, want_stderr;
	struct slot slots[OUT_SLOTS];
	int head, count;
	char exit_msg[CTL_MSG_MAX]; /* pending, sent once the slots are empty */
	bool exit_pending, exit_sent;
	char error_msg[CTL_MSG_MAX];
	int close_code; /* != 0: send error_msg, then close */
	bool rx_paused, failed;
	bool pre_connect;    /* the monitor connect has not finished yet */
	struct bh_buf early; /* what the client sent meanwhile (EARLY_HDR records) */
	struct srv_sf_rx rx;
	/* attach before start: waiting for the created container's start */
	bool waiting;
	bool holds;         /* counted in attach_holds: it takes output */
	unsigned start_gen; /* the container's when the wait began */
	struct sess *wait_next;
};

static void sess_unref(struct sess *s)
{
	if (--s->refs > 0)
		return;
	for (int i = 0; i < OUT_SLOTS; i++)
		free(s->slots[i].buf);
	bh_buf_free(&s->early);
	free(s);
}

static void want_write(struct sess *s)
{
	if (s->ws != NULL)
		lws_callback_on_writable(s->ws->wsi);
}

/* Bytes OpenSSL has decrypted already and lws has not read yet. */
static bool tls_pending(struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(lws_get_network_wsi(wsi));

	return ssl != NULL && SSL_pending(ssl) > 0;
}

/* DoS (a client whose stdin is always full made berthd spin for good):
 * lws 4.1.6 force-services a connection whose TLS layer holds decrypted
 * bytes, and with rx flow disabled nothing consumes them, so the service
 * thread loops in _lws_plat_service_forced_tsi and never polls again (no
 * other client, no SIGTERM).  So rx is disabled only while OpenSSL holds
 * nothing; until then the callers keep taking frames, which is bounded:
 * at most the rest of one TLS record (16 KiB) arrives per RECEIVE, and each
 * RECEIVE retries the pause; the queues behind have hard bounds (1008). */
static void rx_pause(struct sess *s, bool pause)
{
	if (s->ws == NULL || s->rx_paused == pause)
		return;
	if (pause && tls_pending(s->ws->wsi))
		return;
	s->rx_paused = pause;
	lws_rx_flow_control(s->ws->wsi, pause ? 0 : 1);
}

/* Ends the session with an error message and close code (1008, 1003, 1011). */
static void sess_fail(struct sess *s, int code, const char *msg)
{
	json_t *j;
	char *text;

	if (s->failed)
		return;
	s->failed = true;
	bh_warn("stream %s: %s", s->is_exec ? s->exec_id : s->ctr_id, msg);
	j = json_pack("{s:s, s:s}", "type", "error", "message", msg);
	text = json_dumps(j, JSON_COMPACT);
	bh_strlcpy(s->error_msg, text ? text : "{\"type\":\"error\"}", sizeof(s->error_msg));
	free(text);
	json_decref(j);
	s->close_code = code;
	/* No rx pause here: what still comes is ignored (s->failed), and the
	 * close follows in the next WRITEABLE. */
	want_write(s);
}

/* ---- output: slots ------------------------------------------------------------- */

static struct slot *slot_new(struct sess *s, int ch, uint64_t offset)
{
	struct slot *sl;

	if (s->count == OUT_SLOTS)
		return NULL;
	sl = &s->slots[(s->head + s->count++) % OUT_SLOTS];
	if (sl->buf == NULL)
		sl->buf = bh_malloc(SLOT_SIZE);
	sl->ch = ch;
	if (ch == SRV_SF_CONTROL) {
		sl->buf[LWS_PRE] = SRV_SF_CONTROL;
		sl->len = 1;
	} else {
		srv_sf_header(sl->buf + LWS_PRE, (enum srv_sf_channel)ch, offset);
		sl->len = SRV_SF_HDR;
	}
	return sl;
}

static void queue_control(struct sess *s, const char *json)
{
	size_t len = strlen(json);
	struct slot *sl = len <= SRV_SF_OUT_PAYLOAD ? slot_new(s, SRV_SF_CONTROL, 0) : NULL;

	if (sl == NULL)
		return; /* only hello goes this way, into empty slots */
	memcpy(sl->buf + LWS_PRE + 1, json, len);
	sl->len += len;
	want_write(s);
}

static size_t on_output(void *arg, int ch, uint64_t offset, const void *data, size_t len)
{
	struct sess *s = arg;
	size_t took = 0;

	if (s->ws == NULL || s->failed || (ch == 1 && !s->want_stdout) ||
	    (ch == 2 && !s->want_stderr))
		return len; /* nobody wants it: dropped, not held */
	while (took < len) {
		struct slot *sl = s->count ? &s->slots[(s->head + s->count - 1) % OUT_SLOTS] : NULL;
		size_t room, n;
		if (sl == NULL || sl->ch != ch || sl->len == SRV_SF_HDR + SRV_SF_OUT_PAYLOAD)
			sl = slot_new(s, ch, offset + took);
		if (sl == NULL)
			break;
		room = SRV_SF_HDR + SRV_SF_OUT_PAYLOAD - sl->len;
		n = len - took < room ? len - took : room;
		memcpy(sl->buf + LWS_PRE + sl->len, (const uint8_t *)data + took, n);
		sl->len += n;
		took += n;
	}
	if (took > 0)
		want_write(s);
	return took;
}

static void on_hello(void *arg, uint64_t offset, bool tty, bool stdin_open)
{
	struct sess *s = arg;
	char msg[160];

	snprintf(msg, sizeof(msg), "{\"type\":\"hello\",\"offset\":%llu,\"tty\":%s,\"stdin\":%s}",
	         (unsigned long long)offset, tty ? "true" : "false",
	         stdin_open && s->want_stdin ? "true" : "false");
	queue_control(s, msg);
}

static void queue_exit(struct sess *s, int code, int sig, bool oom)
{
	snprintf(s->exit_msg, sizeof(s->exit_msg),
	         "{\"type\":\"exit\",\"code\":%d,\"signal\":%d,\"oom\":%s}", code, sig,
	         oom ? "true" : "false");
	s->exit_pending = true;
	want_write(s);
}

static void on_exit_frame(void *arg, const struct rt_monitor_state *st)
{
	struct sess *s = arg;
	int code = st->status == RT_MONITOR_EXITED ? st->exit_code : CTR_LOST_EXIT;

	if (st->status == RT_MONITOR_RUNNING) {
		/* The monitor dropped this connection (a client that read
		 * nothing for RT_MONITOR_STUCK_MS): the process runs on. */
		sess_fail(s, 1011, "the monitor dropped this stream (no progress)");
		return;
	}

	if (s->is_exec)
		srv_exec_set_exited(s->exec_id, code);
	queue_exit(s, code, st->status == RT_MONITOR_EXITED ? st->signal : 0, st->oom_killed);
}

static void on_drain(void *arg)
{
	struct sess *s = arg;

	if (!s->failed)
		rx_pause(s, false);
}

static const struct srv_bridge_ops bridge_ops = {
    .on_hello = on_hello,
    .on_output = on_output,
    .on_exit = on_exit_frame,
    .on_drain = on_drain,
};

/* ---- writing ------------------------------------------------------------------------ */

static int write_frame(struct lws *wsi, uint8_t *frame, size_t len)
{
	return lws_write(wsi, frame, len, LWS_WRITE_BINARY) < (int)len ? -1 : 0;
}

static int write_small(struct lws *wsi, const char *json)
{
	uint8_t buf[LWS_PRE + 1 + CTL_MSG_MAX];
	size_t len = strlen(json);

	buf[LWS_PRE] = SRV_SF_CONTROL;
	memcpy(buf + LWS_PRE + 1, json, len);
	return write_frame(wsi, buf + LWS_PRE, len + 1);
}

static int write_final(struct sess *s, struct lws *wsi)
{
	if (s->close_code != 0) {
		write_small(wsi, s->error_msg);
		lws_close_reason(wsi, (enum lws_close_status)s->close_code,
		                 (unsigned char *)"protocol error", 14);
		return -1;
	}
	if (s->exit_pending && !s->exit_sent) {
		s->exit_sent = true;
		if (write_small(wsi, s->exit_msg) < 0)
			return -1;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, EXIT_CLOSE_S);
	}
	return 0;
}

/* OpenSSL writes each 16 KiB TLS record with its own write(): corked, the
 * records of one WRITEABLE leave in full-sized TCP segments instead of one
 * segment (and one loopback receive) per record.  Not TCP (the unix
 * socket): nothing to do. */
static void cork(struct lws *wsi, int on)
{
	int fd = (int)lws_get_socket_fd(lws_get_network_wsi(wsi));

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

int srv_stream_ws_writeable(struct srv_ws *ws)
{
	struct sess *s = ws->user;
	int sent = 0;

	if (s == NULL)
		return 0;
	if (s->count > 0)
		cork(ws->wsi, 1);
	while (s->count > 0 && (sent == 0 || !lws_send_pipe_choked(ws->wsi))) {
		struct slot *sl = &s->slots[s->head];
		if (write_frame(ws->wsi, sl->buf + LWS_PRE, sl->len) < 0)
			return -1;
		s->head = (s->head + 1) % OUT_SLOTS;
		s->count--;
		if (++sent == OUT_SLOTS)
			break;
	}
	if (sent > 0)
		cork(ws->wsi, 0);
	if (sent > 0)
		srv_bridge_resume(s->br);
	if (s->count > 0) {
		lws_callback_on_writable(ws->wsi);
		return 0;
	}
	return write_final(s, ws->wsi);
}

/* ---- input ----------------------------------------------------------------------------- */

static int on_stdin(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct sess *s = arg;

	if (s->br == NULL || !s->want_stdin)
		return 0; /* no stdin to write to: dropped */
	if (srv_bridge_send(s->br, RT_FRAME_STDIN, data, len, err) < 0)
		return -1;
	if (srv_bridge_full(s->br))
		rx_pause(s, true);
	return 0;
}

static int on_control(void *arg, const struct srv_sf_ctl *c, struct bh_err *err)
{
	struct sess *s = arg;
	uint8_t p[4];

	if (s->br == NULL)
		return 0;
	switch (c->type) {
	case SRV_SF_CTL_RESIZE:
		p[0] = (uint8_t)(c->rows >> 8);
		p[1] = (uint8_t)c->rows;
		p[2] = (uint8_t)(c->cols >> 8);
		p[3] = (uint8_t)c->cols;
		return srv_bridge_send(s->br, RT_FRAME_RESIZE, p, 4, err);
	case SRV_SF_CTL_SIGNAL:
		p[0] = (uint8_t)c->signal;
		return srv_bridge_send(s->br, RT_FRAME_SIGNAL, p, 1, err);
	case SRV_SF_CTL_EOF:
		return s->want_stdin ? srv_bridge_send(s->br, RT_FRAME_STDIN_EOF, NULL, 0, err) : 0;
	case SRV_SF_CTL_UNKNOWN:
		break;
	}
	return 0;
}

static const struct srv_sf_rx_ops rx_ops = {.on_stdin = on_stdin, .on_control = on_control};

/* Before the monitor is connected: keep the raw frames (bounded). */
static void early_keep(struct sess *s, const void *data, size_t len, bool binary, bool final)
{
	uint8_t hdr[EARLY_HDR];

	hdr[0] = (uint8_t)(binary | final << 1);
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
	if (len > EARLY_MAX || bh_buf_append(&s->early, hdr, sizeof(hdr)) < 0 ||
	    bh_buf_append(&s->early, data, len) < 0) {
		sess_fail(s, 1008, "too much input before the process was connected");
		return;
	}
	/* A session waiting for the start keeps reading (bounded above): with
	 * rx off, a client that leaves meanwhile would go unnoticed. */
	if (!s->waiting)
		rx_pause(s, true);
}

static int feed(struct sess *s, const void *data, size_t len, bool binary, bool final)
{
	struct bh_err err;

	bh_err_clear(&err);
	if (srv_sf_rx_feed(&s->rx, data, len, binary, final, &rx_ops, s, &err) < 0) {
		sess_fail(s, srv_sf_close_code(err.code), err.msg);
		return -1;
	}
	return 0;
}

/* The monitor is connected (or never will be): replay what came early. */
static void early_replay(struct sess *s)
{
	size_t off = 0;

	s->pre_connect = false;
	while (!s->failed && s->early.len - off >= EARLY_HDR) {
		const uint8_t *h = (const uint8_t *)s->early.data + off;
		size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
		if (feed(s, h + EARLY_HDR, len, h[0] & 1, h[0] & 2) < 0)
			break;
		off += EARLY_HDR + len;
	}
	bh_buf_free(&s->early);
	bh_buf_init(&s->early, EARLY_MAX);
}

int srv_stream_ws_rx(struct srv_ws *ws, const void *data, size_t len, bool binary, bool final)
{
	struct sess *s = ws->user;

	if (s == NULL || s->failed)
		return 0;
	if (s->pre_connect)
		early_keep(s, data, len, binary, final);
	else
		feed(s, data, len, binary, final);
	return 0;
}

/* ---- attach before start --------------------------------------------------------------- */

/* lws thread only: sessions attached to a created container, waiting for
 * its start (each counted in its struct ctr's attach_waiting). */
static struct sess *waiting_list;

static void wait_unlink(struct sess *s)
{
	for (struct sess **p = &waiting_list; *p; p = &(*p)->wait_next) {
		if (*p == s) {
			*p = s->wait_next;
			break;
		}
	}
	s->wait_next = NULL;
	s->waiting = false;
}

/* Under mu: c is s's container, if it still exists. */
static struct ctr *wait_ctr(struct ctr_mgr *m, const struct sess *s)
{
	struct ctr *c;
	struct bh_err ignore;

	if (ctr_lookup(m->list, s->ctr_id, &c, &ignore) < 0 || strcmp(c->id, s->ctr_id) != 0)
		return NULL;
	return c;
}

/* The session stops waiting (the client left, or the start is over). */
static void wait_end(struct sess *s)
{
	struct ctr_mgr *m = s->srv->ctrs;
	struct ctr *c;

	wait_unlink(s);
	pthread_mutex_lock(&m->mu);
	if ((c = wait_ctr(m, s)) != NULL) {
		c->attach_waiting--;
		if (s->holds)
			c->attach_holds--;
	}
	pthread_mutex_unlock(&m->mu);
	s->holds = false;
}

enum wait_state { WAIT_ON, WAIT_STARTED, WAIT_FAILED, WAIT_GONE };

/* Under mu: where the start of s's container stands; why, when it failed. */
static enum wait_state wait_state(struct ctr_mgr *m, const struct sess *s, char *why, size_t cap)
{
	struct ctr *c = wait_ctr(m, s);

	if (c == NULL || c->removed || c->status == CTR_REMOVING || c->status == CTR_DEAD)
		return WAIT_GONE;
	if (c->status != CTR_CREATED)
		return WAIT_STARTED;
	if (c->start_gen == s->start_gen)
		return WAIT_ON;
	bh_strlcpy(why, c->error[0] ? c->error : "unknown error", cap);
	return WAIT_FAILED;
}

static void attach_connect(struct sess *s);

static void wait_check(struct sess *s)
{
	struct ctr_mgr *m = s->srv->ctrs;
	char why[512], msg[600];
	enum wait_state st;

	pthread_mutex_lock(&m->mu);
	st = wait_state(m, s, why, sizeof(why));
	if (st == WAIT_STARTED && s->holds)
		wait_ctr(m, s)->hold_open = false; /* it connects: the monitor's to release */
	pthread_mutex_unlock(&m->mu);
	if (st == WAIT_ON)
		return;
	wait_end(s);
	if (st == WAIT_STARTED) {
		attach_connect(s);
		return;
	}
	if (st == WAIT_GONE)
		snprintf(msg, sizeof(msg), "container %.12s was removed before it started",
		         s->ctr_id);
	else
		snprintf(msg, sizeof(msg), "container %.12s did not start: %s", s->ctr_id, why);
	sess_fail(s, 1011, msg);
}

static void wake_done(void *arg, int rc, const struct bh_err *err)
{
	struct sess *s = waiting_list, *next;

	(void)arg;
	(void)rc;
	(void)err;
	for (; s != NULL; s = next) {
		next = s->wait_next;
		wait_check(s);
	}
}

void srv_stream_attach_wake(struct srv_server *srv)
{
	srv_pool_submit(srv->pool, NULL, wake_done, NULL);
}

struct release_job {
	char *dir;
	int fd;
};

/* The monitor counts an output client as soon as it accepts it, even one
 * that has left already (runtime/monitor-attach.c): connecting is enough. */
static int release_work(void *arg, struct bh_err *err)
{
	struct release_job *j = arg;

	if (j->fd < 0)
		j->fd = rt_monitor_attach_connect(j->dir, err);
	return j->fd < 0 ? -1 : 0;
}

static void release_done(void *arg, int rc, const struct bh_err *err)
{
	struct release_job *j = arg;

	if (rc < 0)
		bh_warn("attach %s: releasing the held output: %s", j->dir, err->msg);
	if (j->fd >= 0)
		close(j->fd);
	free(j->dir);
	free(j);
}

void srv_stream_release_hold(struct srv_server *srv, const char *dir, int fd)
{
	struct release_job *j = bh_calloc(1, sizeof(*j));

	j->dir = bh_strdup(dir);
	j->fd = fd;
	srv_pool_submit(srv->pool, release_work, release_done, j);
}

/* A waiting session whose client left: when it was the last one the
 * running monitor holds output for, nobody will take it. */
static void wait_leave(struct sess *s)
{
	struct ctr_mgr *m = s->srv->ctrs;
	struct ctr *c;
	char *dir = NULL;

	wait_end(s);
	pthread_mutex_lock(&m->mu);
	c = wait_ctr(m, s);
	if (c != NULL && c->hold_open && c->attach_holds == 0 && c->status == CTR_RUNNING) {
		c->hold_open = false;
		dir = ctr_exec_path(m, c);
	}
	pthread_mutex_unlock(&m->mu);
	if (dir != NULL)
		srv_stream_release_hold(s->srv, dir, -1);
	free(dir);
}

void srv_stream_ws_close(struct srv_ws *ws)
{
	struct sess *s = ws->user;

	if (s == NULL)
		return;
	ws->user = NULL;
	s->ws = NULL;
	if (s->waiting)
		wait_leave(s); /* nobody to hold the container's output for */
	/* Closing our end of attach.sock is the detach: a TTY session gets its
	 * SIGHUP from the monitor (interactive), a non-TTY one runs on. */
	srv_bridge_free(steal_pointer(&s->br));
	bh_debug("stream %s: client left", s->is_exec ? s->exec_id : s->ctr_id);
	sess_unref(s);
}

/* ---- opening -------------------------------------------------------------------------------- */

static const char *param_id(const struct srv_params *p)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->p[i].name, "id") == 0)
			return p->p[i].value;
	return "";
}

static struct ctr_mgr *mgr_of(struct srv_server *srv, struct bh_err *err)
{
	if (srv == NULL || srv->ctrs == NULL) {
		bh_err_set(err, ENOTSUP, "containers are not available in this daemon");
		return NULL;
	}
	return srv->ctrs;
}

/* Connected to the monitor: the first frames, then the client may talk. */
static void sess_connect(struct sess *s, int fd)
{
	struct bh_err err;
	struct lws_vhost *vh = lws_get_vhost(s->ws->wsi);

	s->br = srv_bridge_new(vh, fd, s->dir, &bridge_ops, s, &err);
	if (s->br == NULL) {
		sess_fail(s, 1011, err.msg);
		return;
	}
	/* A TTY exec is always someone's terminal; an attach only when it
	 * types into the container (a viewer leaving must not hang it up). */
	bool interactive = s->tty && (s->is_exec || s->want_stdin);

	if ((interactive && srv_bridge_send(s->br, RT_FRAME_INTERACTIVE, NULL, 0, &err) < 0) ||
	    (!s->want_stdout && !s->want_stderr &&
	     srv_bridge_send(s->br, RT_FRAME_NO_OUTPUT, NULL, 0, &err) < 0)) {
		sess_fail(s, 1011, err.msg);
		return;
	}
	rx_pause(s, false);
}

static struct sess *sess_new(struct srv_ws *ws)
{
	struct sess *s = bh_calloc(1, sizeof(*s));

	s->refs = 1;
	s->ws = ws;
	s->srv = ws->srv;
	srv_sf_rx_init(&s->rx);
	bh_buf_init(&s->early, EARLY_MAX);
	s->pre_connect = true;
	ws->user = s;
	/* Nothing from the client until the monitor is connected (what lws
	 * delivers meanwhile is kept in s->early). */
	rx_pause(s, true);
	return s;
}

/* -- exec (and the connect of an attach) -- */

struct exec_job {
	struct sess *s;
	struct ctr_mgr *m;
	bool spawn;
	int fd;
	int exit_code; /* the command could not run: 126, 127 */
	bool exited;   /* no monitor to connect to: st is its exit */
	struct rt_monitor_state st;
};

static bool exited_meanwhile(struct exec_job *j)
{
	struct rt_monitor_state st;
	struct bh_err ignore;

	if (rt_monitor_probe(j->s->dir, &st, &ignore) < 0 || st.status != RT_MONITOR_EXITED)
		return false;
	j->exited = true;
	j->st = st;
	return true;
}

static int exec_work(void *arg, struct bh_err *err)
{
	struct exec_job *j = arg;
	struct srv_exec_info info;

	j->fd = -1;
	j->exit_code = -1;
	if (j->spawn && srv_exec_spawn(j->m, j->s->exec_id, false, err) < 0) {
		if (srv_exec_lookup(j->m, j->s->exec_id, &info, NULL) == 0 &&
		    info.state == SRV_EXEC_EXITED)
			j->exit_code = info.exit_code;
		return -1;
	}
	j->fd = rt_monitor_attach_connect(j->s->dir, err);
	if (j->fd >= 0)
		return 0;
	/* A quick process without output: its monitor may be gone already,
	 * leaving exit.json behind. */
	return exited_meanwhile(j) ? 0 : -1;
}

static void exec_done(void *arg, int rc, const struct bh_err *err)
{
	struct exec_job *j = arg;
	struct sess *s = j->s;

	if (s->ws == NULL) {
		if (j->fd >= 0)
			close(j->fd);
	} else if (rc == 0 && j->exited) {
		on_hello(s, 0, s->tty, false);
		on_exit_frame(s, &j->st);
	} else if (rc == 0) {
		sess_connect(s, j->fd);
	} else if (j->exit_code >= 0) {
		/* The command could not run: its message on stderr, then exit. */
		char line[1100];
		snprintf(line, sizeof(line), "%s\n", err->msg);
		on_hello(s, 0, s->tty, false);
		on_output(s, 2, 0, line, strlen(line));
		queue_exit(s, j->exit_code, 0, false);
	} else {
		sess_fail(s, 1011, err->msg);
	}
	if (s->ws != NULL)
		early_replay(s);
	sess_unref(s);
	free(j);
}

int srv_stream_exec_check(struct srv_server *srv, const struct srv_params *params,
                          struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(srv, err);
	struct srv_exec_info info;
	char cid[65];

	if (m == NULL || srv_exec_lookup(m, param_id(params), &info, err) < 0)
		return -1;
	if (info.state == SRV_EXEC_CREATED)
		return srv_exec_ctr_running(m, info.ctr_id, cid, err);
	return 0;
}

int srv_stream_exec_open(struct srv_ws *ws, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(ws->srv, err);
	struct srv_exec_info info;
	struct sess *s;
	struct exec_job *j;

	if (m == NULL || srv_exec_lookup(m, param_id(&ws->params), &info, err) < 0)
		return -1;
	s = sess_new(ws);
	s->is_exec = true;
	bh_strlcpy(s->exec_id, info.id, sizeof(s->exec_id));
	bh_strlcpy(s->ctr_id, info.ctr_id, sizeof(s->ctr_id));
	bh_strlcpy(s->dir, info.dir, sizeof(s->dir));
	s->tty = info.tty;
	s->want_stdin = info.open_stdin;
	s->want_stdout = info.attach_stdout;
	s->want_stderr = info.attach_stderr;
	if (info.state == SRV_EXEC_EXITED) {
		s->pre_connect = false;
		on_hello(s, 0, s->tty, false);
		queue_exit(s, info.exit_code, 0, false);
		return 0;
	}
	j = bh_calloc(1, sizeof(*j));
	j->s = s;
	j->m = m;
	j->spawn = info.state == SRV_EXEC_CREATED;
	if (j->spawn)
		srv_exec_note_caller(info.id, &ws->id);
	s->refs++;
	srv_pool_submit(ws->srv->pool, exec_work, exec_done, j);
	return 0;
}

/* -- attach -- */

static bool query_flag(struct lws *wsi, const char *name, bool dflt)
{
	char buf[64];
	const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));

	if (v == NULL)
		return dflt;
	return !(v[0] == '\0' || strcmp(v, "0") == 0 || strcmp(v, "false") == 0);
}

/* Running, or created (attach before start: the session waits for the
 * start); a stopped container is a 409 (EBUSY). */
int srv_stream_attach_check(struct srv_server *srv, const struct srv_params *params,
                            struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(srv, err);
	struct ctr *c;
	int r = 0;

	if (m == NULL)
		return -1;
	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, param_id(params), &c, err) < 0)
		r = -1;
	else if (c->removed || (c->status != CTR_RUNNING && c->status != CTR_CREATED))
		r = bh_err_set(err, EBUSY, "Container %s is not running", c->id);
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* Under mu: a created container gets s as a waiting session; its spawn
 * then holds the output for s, unless s takes none (a no-output client
 * would never release it). */
static void wait_begin(struct ctr *c, struct sess *s)
{
	if (c->status != CTR_CREATED || c->removed)
		return;
	s->holds = s->want_stdout || s->want_stderr;
	c->attach_waiting++;
	if (s->holds)
		c->attach_holds++;
	s->start_gen = c->start_gen;
	s->waiting = true;
	s->wait_next = waiting_list;
	waiting_list = s;
}

static int attach_config(struct ctr_mgr *m, const char *ref, struct sess *s, bool *open_stdin,
                         struct bh_err *err)
{
	struct ctr *c;
	char *dir;

	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, ref, &c, err) < 0) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	bh_strlcpy(s->ctr_id, c->id, sizeof(s->ctr_id));
	s->tty = json_is_true(json_object_get(c->config, "Tty"));
	*open_stdin = json_is_true(json_object_get(c->config, "OpenStdin"));
	dir = ctr_exec_path(m, c);
	wait_begin(c, s);
	pthread_mutex_unlock(&m->mu);
	bh_strlcpy(s->dir, dir, sizeof(s->dir));
	free(dir);
	return 0;
}

/* The connect runs on the pool: a stopped monitor with a full listen
 * backlog would block it, and the lws thread must never block. */
static void attach_connect(struct sess *s)
{
	struct exec_job *j = bh_calloc(1, sizeof(*j));

	rx_pause(s, true); /* again until connected (a waiting session read) */
	j->s = s;
	j->m = s->srv->ctrs;
	s->refs++;
	srv_pool_submit(s->srv->pool, exec_work, exec_done, j);
}

int srv_stream_attach_open(struct srv_ws *ws, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(ws->srv, err);
	struct sess *s;
	bool open_stdin = false;

	if (m == NULL)
		return -1;
	s = sess_new(ws);
	s->want_stdout = query_flag(ws->wsi, "stdout=", true);
	s->want_stderr = query_flag(ws->wsi, "stderr=", true);
	if (attach_config(m, param_id(&ws->params), s, &open_stdin, err) < 0)
		return -1;
	s->want_stdin = open_stdin && query_flag(ws->wsi, "stdin=", false);
	if (s->waiting) {
		bh_debug("stream %s: waiting for the start", s->ctr_id);
		rx_pause(s, false); /* its frames are kept (bounded) until the start */
		return 0;
	}
	attach_connect(s);
	return 0;
}
