/* Attach clients of the monitor: fan-out of output frames through a bounded
 * ring per client, input frames (stdin, resize, signal) back.  A client is an
 * untrusted peer as far as sizes go: frames over RT_MONITOR_FRAME_MAX drop it,
 * and a client that stops reading is dropped after RT_MONITOR_STUCK_MS rather
 * than freezing the container forever. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/monitor-internal.h"

#define CLIENT_IN_BUF     16384
#define MON_CLIENT_SNDBUF (1024 * 1024)

struct mon_client {
	struct mon_client *next;
	int fd;
	bool interactive;
	bool no_output; /* control frames only; never holds output back */
	/* A send failed: the peer reads nothing more (its output is dropped),
	 * but what it sent before it went is still read to its end, so its
	 * last control frames count (an interactive one's SIGHUP). */
	bool hung_up;
	bool dead;
	uint64_t stuck_since; /* 0: not stuck */
	/* output ring */
	uint8_t *ring;
	size_t head, len;
	/* a frame whose payload moves from the output pipe straight to the
	 * socket (mon_attach_splice): its header and everything before it are
	 * the ring's first splice_at bytes, the payload comes next */
	int splice_fd;
	uint32_t splice_left;
	size_t splice_at;
	/* input parsing */
	uint8_t hdr[RT_MONITOR_FRAME_HDR];
	size_t hdr_got;
	uint8_t type;
	uint32_t remaining;
	uint8_t small[4];
	size_t small_got;
	size_t in_off, in_len;
	uint8_t in[CLIENT_IN_BUF];
};

static size_t ring_free(const struct mon_client *c)
{
	return RT_MONITOR_CLIENT_BUF - c->len;
}

static bool has_output_queued(const struct mon_client *c)
{
	return c->len > 0 || c->splice_left > 0;
}

/* Frames still go to c (a no-output client gets hello and exit only). */
static bool can_send(const struct mon_client *c)
{
	return !c->dead && !c->hung_up;
}

/* c takes the container's output (and so may hold it back). */
static bool gets_output(const struct mon_client *c)
{
	return can_send(c) && !c->no_output;
}

static void ring_push(struct mon_client *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		size_t tail = (c->head + c->len) % RT_MONITOR_CLIENT_BUF;
		size_t chunk = RT_MONITOR_CLIENT_BUF - tail;
		if (chunk > len)
			chunk = len;
		memcpy(c->ring + tail, p, chunk);
		c->len += chunk;
		p += chunk;
		len -= chunk;
	}
}

static void push_frame(struct mon_client *c, int type, const void *data, size_t len)
{
	uint8_t hdr[RT_MONITOR_FRAME_HDR];

	if (c->no_output && (type == RT_FRAME_STDOUT || type == RT_FRAME_STDERR))
		return;
	if (!can_send(c) || ring_free(c) < len + sizeof(hdr))
		return; /* only the final exit frame can meet a full ring */
	rt_frame_header(hdr, type, (uint32_t)len);
	ring_push(c, hdr, sizeof(hdr));
	ring_push(c, data, len);
}

static bool may_read(const struct mon *m, const struct mon_client *c);
static void read_client(struct mon *m, struct mon_client *c);

static void hello(struct mon *m, struct mon_client *c)
{
	uint8_t p[9];

	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(m->offset >> (56 - 8 * i));
	p[8] = (uint8_t)((m->o->tty ? 1 : 0) | (m->stdin_fd >= 0 ? 2 : 0));
	push_frame(c, RT_FRAME_HELLO, p, sizeof(p));
}

void mon_attach_accept(struct mon *m)
{
	int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct mon_client *c;

	if (fd < 0)
		return;
	/* Room in the kernel for a few frames ahead of berthd's reads (the
	 * default ~200 KiB holds three): fewer wake-ups on both sides; still
	 * bounded, and a full socket still stops our reads of the container. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){MON_CLIENT_SNDBUF}, sizeof(int));
	c = bh_calloc(1, sizeof(*c));
	c->fd = fd;
	c->ring = bh_malloc(RT_MONITOR_CLIENT_BUF);
	c->next = m->clients;
	m->clients = c;
	hello(m, c);
	/* A control connection sends no-output right after connect(): take it
	 * now, before the next read of output counts it as a receiver (an
	 * exec's held output would otherwise go to it). */
	if (may_read(m, c))
		read_client(m, c);
	/* Held output is released by the first output client, even one that
	 * is gone already: a client that leaves at once is how berthd lets go
	 * of a hold nobody will come for (the next held_ms() would no longer
	 * count a dead client). */
	if (!c->no_output)
		m->output_taken = true;
}

void mon_attach_broadcast(struct mon *m, int type, const void *data, size_t len)
{
	for (struct mon_client *c = m->clients; c; c = c->next)
		push_frame(c, type, data, len);
}

bool mon_attach_room(struct mon *m, size_t len)
{
	for (struct mon_client *c = m->clients; c; c = c->next) {
		if (!gets_output(c))
			continue;
		/* nobody reads the pipe whose bytes are still on their way */
		if (c->splice_left > 0 || ring_free(c) < len + RT_MONITOR_FRAME_HDR)
			return false;
	}
	return true;
}

int mon_attach_output_clients(struct mon *m)
{
	int n = 0;

	for (struct mon_client *c = m->clients; c; c = c->next)
		n += gets_output(c);
	return n;
}

int mon_attach_count(struct mon *m)
{
	int n = 0;

	for (struct mon_client *c = m->clients; c; c = c->next)
		n++;
	return n;
}

bool mon_attach_pending(struct mon *m)
{
	for (struct mon_client *c = m->clients; c; c = c->next)
		if (has_output_queued(c))
			return true;
	return false;
}

/* Input is read from no one while stdin is blocked on one client's data:
 * frames stay in order and memory stays bounded both ways. */
static bool may_read(const struct mon *m, const struct mon_client *c)
{
	return m->stdin_owner == NULL && c->in_off >= c->in_len;
}

int mon_attach_pollfds(struct mon *m, struct pollfd *p, int max)
{
	int n = 0;

	for (struct mon_client *c = m->clients; c && n < max; c = c->next) {
		short ev = 0;
		if (may_read(m, c) && !m->exited)
			ev |= POLLIN;
		if (has_output_queued(c))
			ev |= POLLOUT;
		/* Not polled at all while it may not be read: a hung-up peer
		 * would otherwise wake us in a loop (POLLHUP is always on). */
		p[n].fd = ev == 0 && !m->exited ? -1 : c->fd;
		p[n].events = ev;
		p[n].revents = 0;
		n++;
	}
	return n;
}

/* What one send() or splice() to c returned: the bytes that went, 0 to
 * try again (EINTR), -1 to stop (the socket is full, or c hung up). */
static ssize_t sent(struct mon_client *c, ssize_t n)
{
	if (n > 0) {
		c->stuck_since = 0;
		return n;
	}
	if (n < 0 && errno == EINTR)
		return 0;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		c->hung_up = true;
	return -1;
}

/* Sends the ring's first want bytes; false while the socket is full (or the
 * client hung up). */
static bool send_ring(struct mon_client *c, size_t want)
{
	while (want > 0) {
		size_t chunk = RT_MONITOR_CLIENT_BUF - c->head;
		if (chunk > want)
			chunk = want;
		ssize_t n =
		    sent(c, send(c->fd, c->ring + c->head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT));
		if (n < 0)
			return false;
		c->head = (c->head + (size_t)n) % RT_MONITOR_CLIENT_BUF;
		c->len -= (size_t)n;
		want -= (size_t)n;
		if (c->splice_left > 0)
			c->splice_at -= (size_t)n;
	}
	if (c->len == 0)
		c->head = 0;
	return true;
}

/* The pipe holds at least splice_left bytes (counted by FIONREAD, and no one
 * else reads it meanwhile), so EAGAIN means the socket is full. */
static bool send_spliced(struct mon_client *c)
{
	while (c->splice_left > 0) {
		ssize_t n = sent(c, splice(c->splice_fd, NULL, c->fd, NULL, c->splice_left,
		                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
		if (n < 0)
			return false;
		c->splice_left -= (uint32_t)n;
	}
	return true;
}

static bool parse_input(struct mon *m, struct mon_client *c);

/* What c did not take of the pipe is still in it: read again for others. */
static void give_back_splice(struct mon *m, struct mon_client *c)
{
	m->offset -= c->splice_left;
	c->splice_left = 0;
}

/* c hung up: its output goes nowhere.  Its input is still read to its end: a stdin it
 * was blocked on takes what fits, the rest is dropped (nobody is left to
 * wait for it), and its frames after that are parsed. */
static void hang_up(struct mon *m, struct mon_client *c)
{
	give_back_splice(m, c);
	c->head = c->len = 0;
	if (m->stdin_owner == c) {
		m->stdin_owner = NULL;
		if (!parse_input(m, c))
			c->dead = true;
	}
}

static void flush_client(struct mon *m, struct mon_client *c)
{
	if (c->splice_left == 0 || (send_ring(c, c->splice_at) && send_spliced(c)))
		send_ring(c, c->len);
	if (c->hung_up)
		hang_up(m, c);
}

/* The only client that takes output, if there is exactly one. */
static struct mon_client *only_output_client(struct mon *m)
{
	struct mon_client *only = NULL;

	for (struct mon_client *c = m->clients; c; c = c->next) {
		if (!gets_output(c))
			continue;
		if (only != NULL)
			return NULL;
		only = c;
	}
	return only;
}

ssize_t mon_attach_splice(struct mon *m, int fd, int type)
{
	struct mon_client *c = only_output_client(m);
	uint8_t hdr[RT_MONITOR_FRAME_HDR];
	int avail = 0;

	if (c == NULL || c->splice_left > 0 || ring_free(c) < sizeof(hdr) + MON_EXIT_RESERVE)
		return 0;
	if (ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0)
		return 0; /* at EOF (or nothing yet): read() says which */
	if (avail > RT_MONITOR_FRAME_MAX)
		avail = RT_MONITOR_FRAME_MAX;
	rt_frame_header(hdr, type, (uint32_t)avail);
	ring_push(c, hdr, sizeof(hdr));
	c->splice_fd = fd;
	c->splice_left = (uint32_t)avail;
	c->splice_at = c->len;
	flush_client(m, c);
	return avail;
}

void mon_close_stdin(struct mon *m)
{
	if (m->stdin_fd >= 0 && m->master < 0)
		close(m->stdin_fd);
	m->stdin_fd = -1;
	m->stdin_owner = NULL;
}

/* Writes stdin payload from c->in; false if stdin would block. */
static bool feed_stdin(struct mon *m, struct mon_client *c, size_t n)
{
	while (n > 0) {
		if (m->stdin_fd < 0) { /* closed stdin: input is discarded */
			c->in_off += n;
			c->remaining -= (uint32_t)n;
			return true;
		}
		ssize_t w = write(m->stdin_fd, c->in + c->in_off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && c->hung_up) { /* nobody waits for the rest */
			c->in_off += n;
			c->remaining -= (uint32_t)n;
			return true;
		}
		if (w < 0 && errno == EAGAIN) {
			m->stdin_owner = c;
			return false;
		}
		if (w < 0) { /* EPIPE: the container closed its stdin */
			mon_close_stdin(m);
			continue;
		}
		c->in_off += (size_t)w;
		c->remaining -= (uint32_t)w;
		n -= (size_t)w;
	}
	return true;
}

static void control_frame(struct mon *m, struct mon_client *c)
{
	switch (c->type) {
	case RT_FRAME_RESIZE:
		if (m->master >= 0) {
			struct winsize ws = {0};
			ws.ws_row = (unsigned short)(c->small[0] << 8 | c->small[1]);
			ws.ws_col = (unsigned short)(c->small[2] << 8 | c->small[3]);
			ioctl(m->master, TIOCSWINSZ, &ws);
		}
		break;
	case RT_FRAME_STDIN_EOF:
		/* A pty has no half-close; as Docker, EOF on a TTY is ignored. */
		if (m->master < 0)
			mon_close_stdin(m);
		break;
	case RT_FRAME_SIGNAL:
		if (c->small[0] > 0 && c->small[0] < 65 && m->pidfd >= 0)
			pidfd_send_signal(m->pidfd, c->small[0], NULL, 0);
		break;
	case RT_FRAME_NO_OUTPUT:
		c->no_output = true;
		break;
	case RT_FRAME_INTERACTIVE:
		if (!c->interactive)
			m->n_interactive++;
		c->interactive = true;
		break;
	default:
		break;
	}
}

static size_t control_len(uint8_t type)
{
	switch (type) {
	case RT_FRAME_RESIZE:
		return 4;
	case RT_FRAME_SIGNAL:
		return 1;
	case RT_FRAME_STDIN_EOF:
	case RT_FRAME_INTERACTIVE:
	case RT_FRAME_NO_OUTPUT:
		return 0;
	default:
		return SIZE_MAX;
	}
}

/* Starts a frame from a complete header; false drops the client. */
static bool frame_start(struct mon_client *c)
{
	uint32_t len;

	if (rt_frame_parse(c->hdr, &c->type, &len) < 0)
		return false;
	if (c->type != RT_FRAME_STDIN && control_len(c->type) != len)
		return false; /* unknown type or wrong size: a confused peer */
	c->remaining = len;
	c->small_got = 0;
	return true;
}

/* Consumes c->in; false on a protocol error.  Stops early if stdin blocks. */
static bool parse_input(struct mon *m, struct mon_client *c)
{
	while (c->in_off < c->in_len) {
		size_t avail = c->in_len - c->in_off;
		if (c->hdr_got < RT_MONITOR_FRAME_HDR) {
			c->hdr[c->hdr_got++] = c->in[c->in_off++];
			if (c->hdr_got == RT_MONITOR_FRAME_HDR && !frame_start(c))
				return false;
		} else if (c->type == RT_FRAME_STDIN) {
			size_t n = avail < c->remaining ? avail : c->remaining;
			if (!feed_stdin(m, c, n))
				return true;
		} else if (c->remaining > 0) {
			c->small[c->small_got++] = c->in[c->in_off++];
			c->remaining--;
		}
		if (c->hdr_got == RT_MONITOR_FRAME_HDR && c->remaining == 0) {
			if (c->type != RT_FRAME_STDIN)
				control_frame(m, c);
			c->hdr_got = 0;
		}
	}
	c->in_off = c->in_len = 0;
	return true;
}

static void read_client(struct mon *m, struct mon_client *c)
{
	ssize_t n = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->dead = true;
		return;
	}
	c->in_off = 0;
	c->in_len = (size_t)n;
	if (!parse_input(m, c))
		c->dead = true;
}

void mon_attach_stdin_writable(struct mon *m)
{
	struct mon_client *c = m->stdin_owner;

	if (c == NULL)
		return;
	m->stdin_owner = NULL;
	if (!parse_input(m, c))
		c->dead = true;
}

static void free_client(struct mon *m, struct mon_client *c)
{
	if (m->stdin_owner == c)
		m->stdin_owner = NULL;
	give_back_splice(m, c);
	if (c->interactive && --m->n_interactive == 0 && m->o->sighup_on_detach && m->master >= 0 &&
	    !m->exited && m->pidfd >= 0) {
		bh_info("last interactive client left: SIGHUP to the container");
		pidfd_send_signal(m->pidfd, SIGHUP, NULL, 0);
	}
	close(c->fd);
	free(c->ring);
	free(c);
}

static void sweep_dead(struct mon *m)
{
	struct mon_client **pp = &m->clients;

	while (*pp) {
		struct mon_client *c = *pp;
		if (c->dead) {
			*pp = c->next;
			free_client(m, c);
		} else {
			pp = &c->next;
		}
	}
}

void mon_attach_events(struct mon *m, struct pollfd *p, int n)
{
	int i = 0;

	/* p[] follows the client list: nothing is added or removed between
	 * mon_attach_pollfds() and here (accepts and sweeps come after). */
	for (struct mon_client *c = m->clients; c && i < n; c = c->next, i++) {
		short ev = p[i].revents;
		if ((ev & (POLLOUT | POLLHUP | POLLERR)) && has_output_queued(c))
			flush_client(m, c);
		if ((ev & (POLLIN | POLLHUP | POLLERR)) && (may_read(m, c) || m->exited))
			read_client(m, c);
	}
	sweep_dead(m);
}

int mon_attach_reap_stuck(struct mon *m, uint64_t now)
{
	int next = -1;

	for (struct mon_client *c = m->clients; c; c = c->next) {
		bool blocking =
		    c->splice_left > 0 ||
		    ring_free(c) < m->read_max + MON_EXIT_RESERVE + RT_MONITOR_FRAME_HDR;
		if ((!blocking || c->no_output) && !m->exited) {
			c->stuck_since = 0;
			continue;
		}
		if (!has_output_queued(c))
			continue;
		if (c->stuck_since == 0)
			c->stuck_since = now;
		if (now - c->stuck_since >= RT_MONITOR_STUCK_MS) {
			bh_warn("attach client stuck for %d ms: dropped", RT_MONITOR_STUCK_MS);
			c->dead = true;
			continue;
		}
		int left = (int)(c->stuck_since + RT_MONITOR_STUCK_MS - now);
		if (next < 0 || left < next)
			next = left;
	}
	sweep_dead(m);
	return next;
}

void mon_attach_close_all(struct mon *m)
{
	for (struct mon_client *c = m->clients; c; c = c->next)
		c->dead = true;
	m->n_interactive = 0;
	sweep_dead(m);
}
