/* The bridge between a monitor's attach socket and one client connection,
 * independent of the transport (WebSocket today; Docker's hijacked raw
 * stream later, ROADMAP 1).  The socket is adopted into the lws loop only for
 * readiness; berthd reads and writes its own dup of it, so the tail of the
 * output can still be read after lws saw the hang-up.
 *
 * Bounds: input from the monitor is read into a fixed buffer and handed to
 * the transport, which takes what fits; the rest waits here and the socket
 * is not read meanwhile (the monitor then stops reading the container).
 * Frames to the monitor wait in a bounded queue; above its soft bound the
 * transport stops reading its client.  The monitor's frames are checked
 * (RT_MONITOR_FRAME_MAX) like anything read from a socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "runtime/rt-monitor.h"
#include "server/server-internal.h"

#define IN_BUF   (256 * 1024)
#define OUT_SOFT (256 * 1024)  /* queue to the monitor: pause the transport above */
#define OUT_HARD (1536 * 1024) /* never more (a transport must pause in time) */

struct srv_bridge {
	struct lws *wsi; /* the adopted socket; NULL once lws closed it */
	int fd;          /* our dup: reads and writes */
	char *dir;
	const struct srv_bridge_ops *ops;
	void *arg;
	/* from the monitor */
	uint8_t *in;
	size_t in_off, in_len;
	uint8_t type;    /* of the frame being delivered */
	uint32_t left;   /* its payload bytes not yet delivered */
	bool in_frame;   /* header parsed, payload pending */
	uint64_t offset; /* of the next output byte */
	bool paused;     /* the transport is full */
	bool eof, exited, dead;
	/* to the monitor */
	struct bh_buf out;
	size_t out_off;
	bool was_full;
	int busy; /* inside a callback to the transport */
	bool free_later;
	/* lws 4.1.6 drops a POLLOUT request made inside RAW_WRITEABLE_FILE
	 * (measured: the queue to the monitor stalled for good); such a
	 * request is re-made from a timer callback instead. */
	bool in_writeable;
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul;
};

/* ---- the exit ---------------------------------------------------------------- */

static void deliver_exit(struct srv_bridge *b, const char *json, size_t len)
{
	struct rt_monitor_state st;
	struct bh_err err;

	if (b->exited)
		return;
	b->exited = true;
	memset(&st, 0, sizeof(st));
	st.status = RT_MONITOR_LOST;
	if (json != NULL && rt_monitor_parse_exit(json, len, &st, &err) < 0) {
		bh_warn("attach %s: bad exit frame: %s", b->dir, err.msg);
		st.status = RT_MONITOR_LOST;
	}
	/* No exit frame (the monitor was killed): its exit.json may exist. */
	if (json == NULL && rt_monitor_probe(b->dir, &st, &err) < 0)
		st.status = RT_MONITOR_LOST;
	b->ops->on_exit(b->arg, &st);
}

/* ---- frames from the monitor ---------------------------------------------------- */

static int hello_frame(struct srv_bridge *b, const uint8_t *p, uint32_t len)
{
	if (len != 9)
		return -1;
	b->offset = 0;
	for (int i = 0; i < 8; i++)
		b->offset = b->offset << 8 | p[i];
	b->ops->on_hello(b->arg, b->offset, p[8] & 1, p[8] & 2);
	return 0;
}

/* A small frame (hello, exit) must be whole in the buffer. */
static int small_frame(struct srv_bridge *b)
{
	const uint8_t *p = b->in + b->in_off;

	if (b->in_len - b->in_off < b->left)
		return 1; /* wait for more */
	b->in_off += b->left;
	b->in_frame = false;
	if (b->type == RT_FRAME_HELLO)
		return hello_frame(b, p, b->left);
	if (b->type == RT_FRAME_EXIT)
		deliver_exit(b, (const char *)p, b->left);
	return 0; /* anything else from the monitor is ignored */
}

static int data_frame(struct srv_bridge *b)
{
	size_t avail = b->in_len - b->in_off, n = avail < b->left ? avail : b->left, took;

	if (n == 0)
		return 1;
	took = b->ops->on_output(b->arg, b->type, b->offset, b->in + b->in_off, n);
	b->in_off += took;
	b->left -= (uint32_t)took;
	b->offset += took;
	if (b->left == 0)
		b->in_frame = false;
	if (took < n) {
		b->paused = true;
		return 1;
	}
	return 0;
}

/* Delivers what is buffered; 1 when it needs more bytes or the transport is
 * full, -1 on a protocol error. */
static int parse_step(struct srv_bridge *b)
{
	if (!b->in_frame) {
		if (b->in_len - b->in_off < RT_MONITOR_FRAME_HDR)
			return 1;
		if (rt_frame_parse(b->in + b->in_off, &b->type, &b->left) < 0)
			return -1;
		b->in_off += RT_MONITOR_FRAME_HDR;
		b->in_frame = true;
		if ((b->type == RT_FRAME_STDOUT || b->type == RT_FRAME_STDERR) && b->left == 0)
			b->in_frame = false;
		return 0;
	}
	if (b->type == RT_FRAME_STDOUT || b->type == RT_FRAME_STDERR)
		return data_frame(b);
	return small_frame(b);
}

static int parse_all(struct srv_bridge *b)
{
	int r;

	while (!b->paused && !b->exited && (r = parse_step(b)) <= 0)
		if (r < 0)
			return -1;
	if (b->in_off == b->in_len)
		b->in_off = b->in_len = 0;
	return 0;
}

/* Reads what the socket has (bounded by the buffer); 0 at EOF. */
static ssize_t read_some(struct srv_bridge *b)
{
	ssize_t n;

	if (b->in_off > 0 && b->in_off < b->in_len) {
		memmove(b->in, b->in + b->in_off, b->in_len - b->in_off);
		b->in_len -= b->in_off;
		b->in_off = 0;
	}
	if (b->in_len == IN_BUF)
		return -2; /* frames are <= 64 KiB: only a paused transport fills it */
	do
		n = recv(b->fd, b->in + b->in_len, IN_BUF - b->in_len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		b->in_len += (size_t)n;
	return n;
}

static void flow(struct srv_bridge *b)
{
	if (b->wsi != NULL)
		lws_rx_flow_control(b->wsi, b->paused || b->exited ? 0 : 1);
}

/* Reads and delivers until the socket is empty or the transport full. */
static void pump(struct srv_bridge *b)
{
	for (int rounds = 0; !b->paused && !b->exited && !b->dead && rounds < 64; rounds++) {
		ssize_t n = read_some(b);
		if (n == -2)
			break; /* buffer full: only while the transport is */
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			b->eof = true;
			break;
		}
		if (parse_all(b) < 0) {
			bh_warn("attach %s: bad frame from the monitor", b->dir);
			b->dead = true;
		}
		if (n < 0)
			break; /* EAGAIN: lws tells us when there is more */
	}
	if ((b->eof || b->dead) && !b->paused)
		deliver_exit(b, NULL, 0);
	flow(b);
}

/* ---- frames to the monitor -------------------------------------------------------- */

static void writable_later(lws_sorted_usec_list_t *sul)
{
	struct srv_bridge *b = lws_container_of(sul, struct srv_bridge, sul);

	if (b->wsi != NULL)
		lws_callback_on_writable(b->wsi);
}

static void want_writable(struct srv_bridge *b)
{
	if (b->wsi == NULL)
		return;
	if (b->in_writeable)
		lws_sul_schedule(b->ctx, 0, &b->sul, writable_later, 1);
	else
		lws_callback_on_writable(b->wsi);
}

static void write_out(struct srv_bridge *b)
{
	while (b->out_off < b->out.len) {
		ssize_t n = send(b->fd, b->out.data + b->out_off, b->out.len - b->out_off,
		                 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			want_writable(b);
			return;
		}
		if (n <= 0) {
			b->out.len = b->out_off = 0; /* the monitor is gone: its exit follows */
			return;
		}
		b->out_off += (size_t)n;
	}
	b->out.len = b->out_off = 0;
	if (b->was_full) {
		b->was_full = false;
		b->ops->on_drain(b->arg);
	}
}

int srv_bridge_send(struct srv_bridge *b, int type, const void *data, size_t len,
                    struct bh_err *err)
{
	const uint8_t *p = data;

	do {
		size_t n = len > RT_MONITOR_FRAME_MAX ? RT_MONITOR_FRAME_MAX : len;
		uint8_t hdr[RT_MONITOR_FRAME_HDR];
		rt_frame_header(hdr, (enum rt_frame_type)type, (uint32_t)n);
		if (bh_buf_append(&b->out, hdr, sizeof(hdr)) < 0 ||
		    bh_buf_append(&b->out, p, n) < 0)
			return bh_err_set(err, EMSGSIZE,
			                  "input to the monitor over %d bytes queued", OUT_HARD);
		p += n;
		len -= n;
	} while (len > 0);
	if (b->out.len - b->out_off >= OUT_SOFT)
		b->was_full = true;
	write_out(b);
	return 0;
}

bool srv_bridge_full(const struct srv_bridge *b)
{
	return b->out.len - b->out_off >= OUT_SOFT;
}

/* ---- life cycle --------------------------------------------------------------------- */

static int adopt(struct srv_bridge *b, struct lws_vhost *vh, int fd, struct bh_err *err)
{
	lws_sock_file_fd_type d;

	d.filefd = fd;
	b->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, d, "berth-stream", NULL);
	if (b->wsi == NULL)
		return bh_err_set(err, EIO, "cannot watch the attach socket in the event loop");
	lws_set_opaque_user_data(b->wsi, b);
	b->ctx = lws_get_context(b->wsi);
	return 0;
}

struct srv_bridge *srv_bridge_new(struct lws_vhost *vh, int fd, const char *dir,
                                  const struct srv_bridge_ops *ops, void *arg, struct bh_err *err)
{
	struct srv_bridge *b = bh_calloc(1, sizeof(*b));

	b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (b->fd < 0) {
		bh_err_sys(err, errno, "attach socket: dup");
		close(fd);
		free(b);
		return NULL;
	}
	b->dir = bh_strdup(dir);
	b->ops = ops;
	b->arg = arg;
	b->in = bh_malloc(IN_BUF);
	bh_buf_init(&b->out, OUT_HARD);
	if (adopt(b, vh, fd, err) < 0) {
		close(fd);
		srv_bridge_free(b);
		return NULL;
	}
	return b;
}

static void bridge_destroy(struct srv_bridge *b)
{
	if (b->ctx != NULL)
		lws_sul_cancel(&b->sul);
	close(b->fd);
	free(b->dir);
	free(b->in);
	bh_buf_free(&b->out);
	free(b);
}

void srv_bridge_free(struct srv_bridge *b)
{
	if (b == NULL)
		return;
	b->ops = NULL;
	if (b->wsi != NULL) {
		/* lws closes its fd; our dup goes now, so the monitor sees the
		 * hang-up at once (and a TTY session gets its SIGHUP). */
		lws_set_opaque_user_data(b->wsi, NULL);
		lws_set_timeout(b->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		b->wsi = NULL;
	}
	shutdown(b->fd, SHUT_RDWR);
	if (b->busy > 0) {
		b->free_later = true;
		return;
	}
	bridge_destroy(b);
}

void srv_bridge_resume(struct srv_bridge *b)
{
	if (b == NULL || !b->paused || b->busy > 0)
		return;
	b->paused = false;
	b->busy++;
	if (parse_all(b) < 0)
		b->dead = true;
	if (!b->paused)
		pump(b);
	b->busy--;
	if (b->free_later)
		bridge_destroy(b);
}

/* ---- the lws protocol "berth-stream" ----------------------------------------------- */

static void on_event(struct srv_bridge *b, int reason)
{
	b->busy++;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		pump(b);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		b->in_writeable = true;
		write_out(b);
		b->in_writeable = false;
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		/* The monitor hung up: what it sent last is still in our dup. */
		b->wsi = NULL;
		pump(b);
		break;
	default:
		break;
	}
	b->busy--;
	if (b->free_later)
		bridge_destroy(b);
}

int srv_bridge_lws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct srv_bridge *b;

	(void)user;
	(void)in;
	(void)len;
	if (reason != LWS_CALLBACK_RAW_RX_FILE && reason != LWS_CALLBACK_RAW_WRITEABLE_FILE &&
	    reason != LWS_CALLBACK_RAW_CLOSE_FILE)
		return 0;
	b = lws_get_opaque_user_data(wsi);
	if (b == NULL || b->ops == NULL)
		return 0;
	on_event(b, reason);
	return 0;
}
