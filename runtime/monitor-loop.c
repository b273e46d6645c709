/* The monitor's event loop: one poll() over the container's output, the
 * SIGCHLD signalfd, the attach socket and its clients.  No threads.  Output is
 * read only while every attach client has room for a full read, so a slow
 * client slows the container instead of growing our memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/monitor-internal.h"
#include "runtime/rt-container.h"

#define DRAIN_IDLE_MS 2000 /* after exit: give up on output nobody closes */
#define FLUSH_MS      5000 /* after exit.json: time to hand clients the tail */
#define MAX_CLIENTS   64
#define MON_PIPE_SIZE (1024 * 1024)

enum { P_SIG, P_LISTEN, P_OUT0, P_OUT1, P_STDIN, P_CLIENTS };

static bool outputs_open(const struct mon *m)
{
	for (int i = 0; i < m->nout; i++)
		if (m->out[i].fd >= 0)
			return true;
	return false;
}

static void close_output(struct mon *m, struct mon_out *s)
{
	mon_lines_flush(&s->lines, &m->log, s->stream);
	if (s->fd == m->master) {
		m->stdin_fd = -1;
		m->stdin_owner = NULL;
		m->master = -2; /* still a TTY for the protocol; the fd is gone */
	}
	close(s->fd);
	s->fd = -1;
}

/* An exec has no log: its output is read in frames of the largest size
 * (one syscall and one frame per 64 KiB instead of per 16 KiB) and never
 * split and escaped into lines nobody keeps (that cost ~85% of the
 * monitor's CPU on a fast stream). */
static uint8_t exec_buf[RT_MONITOR_FRAME_MAX];

/* A pty gives at most 4 KiB per read (the line discipline's buffer), so it
 * is read until it is empty or cap is reached: one frame, one wake-up of
 * berthd per batch instead of per 4 KiB.  A pipe gives all it holds in one
 * read.  Returns what read() would (bytes, 0 at EOF, -1 with errno) for the
 * first read, the total once something was read. */
static ssize_t read_batch(int fd, uint8_t *buf, size_t cap, bool tty)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return got > 0 ? (ssize_t)got : n;
		got += (size_t)n;
		if (!tty)
			break;
	}
	return (ssize_t)got;
}

static void read_output(struct mon *m, struct mon_out *s)
{
	struct mon_lines *l = &s->lines;
	bool no_log = m->o->log_path == NULL;
	uint8_t *buf = no_log ? exec_buf : (uint8_t *)l->buf + l->len;
	ssize_t n;

	/* An exec's pipe with one reader: its bytes go to the socket by
	 * splice(), without two copies through us (a third of the server's
	 * CPU on a fast stream). */
	if (no_log && s->fd != m->master && (n = mon_attach_splice(m, s->fd, s->stream)) > 0) {
		m->offset += (uint64_t)n;
		m->last_progress_ms = bh_now_ms();
		return;
	}
	n = read_batch(s->fd, buf, no_log ? sizeof(exec_buf) : sizeof(l->buf) - l->len,
	               s->fd == m->master);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* EOF, or EIO from a pty whose last slave closed */
		close_output(m, s);
		return;
	}
	m->offset += (uint64_t)n;
	m->last_progress_ms = bh_now_ms();
	mon_attach_broadcast(m, s->stream, buf, (size_t)n);
	if (no_log)
		return;
	l->len += (size_t)n;
	mon_lines_feed(l, &m->log, s->stream);
}

static void reap_children(struct mon *m)
{
	struct signalfd_siginfo si;
	int st;
	pid_t p;

	while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	/* As subreaper we also inherit orphans (exec'd processes): reap all. */
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p != m->cpid)
			continue;
		m->exited = true;
		m->wstatus = st;
		bh_rfc3339_now(m->finished_at);
		m->last_progress_ms = m->exited_ms = bh_now_ms();
	}
}

static void accept_client(struct mon *m)
{
	if (mon_attach_count(m) >= MAX_CLIENTS) {
		int fd = accept(m->listen_fd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		return;
	}
	mon_attach_accept(m);
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int fill_pollfds(struct mon *m, struct pollfd *p, bool can_read, bool held)
{
	for (int i = 0; i < P_CLIENTS; i++) {
		p[i].fd = -1;
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	p[P_SIG].fd = m->sigfd;
	/* Held output still waits for its first client after the exit. */
	p[P_LISTEN].fd = m->exited && !held ? -1 : m->listen_fd;
	for (int i = 0; i < m->nout; i++)
		p[P_OUT0 + i].fd = can_read ? m->out[i].fd : -1;
	if (m->stdin_owner != NULL) {
		p[P_STDIN].fd = m->stdin_fd;
		p[P_STDIN].events = POLLOUT;
	}
	return P_CLIENTS + mon_attach_pollfds(m, p + P_CLIENTS, MAX_CLIENTS);
}

static void dispatch(struct mon *m, struct pollfd *p, int n)
{
	if (p[P_SIG].revents)
		reap_children(m);
	for (int i = 0; i < m->nout; i++)
		if (p[P_OUT0 + i].revents && m->out[i].fd >= 0)
			read_output(m, &m->out[i]);
	if (p[P_STDIN].revents)
		mon_attach_stdin_writable(m);
	mon_attach_events(m, p + P_CLIENTS, n - P_CLIENTS);
	if (p[P_LISTEN].revents)
		accept_client(m);
	mon_logw_flush(&m->log);
}

static bool output_pending(const struct mon *m)
{
	for (int i = 0; i < m->nout; i++) {
		int n = 0;
		if (m->out[i].fd >= 0 && ioctl(m->out[i].fd, FIONREAD, &n) == 0 && n > 0)
			return true;
	}
	return false;
}

/* Whether output may wait for a client: always in exec mode (no log keeps
 * it) unless --detached (nobody will come: read and dropped); in container
 * mode with --hold-output until the first output client came (the log has
 * everything after that, a client that leaves must not stop the container). */
static bool holds_output(const struct mon *m)
{
	if (m->o->exec_id != NULL)
		return !m->o->detached;
	return m->o->hold_output && !m->output_taken;
}

/* Held output waits in the pipe or pty (the process blocks when it is full)
 * until a client that takes output is attached; after the exit, while some
 * is unread, for at most RT_MONITOR_STUCK_MS (exit.json waits for it).
 * Released output is logged as usual.  Returns ms left, -1: not held. */
static int held_ms(struct mon *m, uint64_t now)
{
	if (!holds_output(m))
		return -1;
	if (mon_attach_output_clients(m) > 0) {
		m->output_taken = true;
		return -1;
	}
	if (!m->exited)
		return INT32_MAX;
	if (now - m->exited_ms >= RT_MONITOR_STUCK_MS)
		return -1;
	/* A pty's last bytes can still sit in the tty layer's flip buffer,
	 * where FIONREAD does not count them (a fast `stty size` lost its
	 * output that way): until the first client has come, a pty is held
	 * whatever FIONREAD says.  A pipe's count is exact. */
	if ((m->output_taken || m->master < 0) && !output_pending(m))
		return -1;
	return (int)(RT_MONITOR_STUCK_MS - (now - m->exited_ms));
}

/* Runs until the container exited and its output is drained. */
static void run_until_drained(struct mon *m)
{
	struct pollfd p[P_CLIENTS + MAX_CLIENTS];

	reap_children(m); /* a SIGCHLD from before the signalfd existed */
	for (;;) {
		uint64_t now = bh_now_ms();
		int held = held_ms(m, now);
		bool can_read = held < 0 && mon_attach_room(m, m->read_max + MON_EXIT_RESERVE);
		int timeout = mon_attach_reap_stuck(m, now);

		if (held >= 0 && m->exited)
			timeout = min_timeout(timeout, held);
		if (m->exited) {
			if (!can_read)
				m->last_progress_ms = now; /* a slow client, not a dead pipe */
			if (!outputs_open(m) || now - m->last_progress_ms >= DRAIN_IDLE_MS)
				return;
			timeout = min_timeout(timeout,
			                      (int)(DRAIN_IDLE_MS - (now - m->last_progress_ms)));
		}
		int n = fill_pollfds(m, p, can_read, held >= 0);
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			bh_error("poll: %s", strerror(errno));
			return;
		}
		dispatch(m, p, n);
	}
}

static void exit_json(const struct mon *m, char *buf, size_t cap, bool oom)
{
	int code = 0, sig = 0;

	if (WIFEXITED(m->wstatus))
		code = WEXITSTATUS(m->wstatus);
	else if (WIFSIGNALED(m->wstatus)) {
		sig = WTERMSIG(m->wstatus);
		code = 128 + sig;
	}
	snprintf(buf, cap, "{\"ExitCode\":%d,\"Signal\":%d,\"OOMKilled\":%s,\"FinishedAt\":\"%s\"}",
	         code, sig, oom ? "true" : "false", m->finished_at);
}

static bool oom_killed(const struct mon *m)
{
	struct bh_err err;
	bool oom = false;

#ifdef RT_MONITOR_TEST_HOOKS
	if (m->o->host_cmd != NULL)
		return false;
#endif
	if (m->o->exec_id != NULL) /* the container's counter, not this process's */
		return false;
	if (rt_container_oom_killed(m->o->state_root, m->o->id, &oom, &err) < 0) {
		bh_warn("oom state of %s: %s", m->o->id, err.msg);
		return false;
	}
	return oom;
}

static void record_exit(struct mon *m)
{
	char body[256], *path = bh_path_join(m->o->dir, "exit.json");
	struct bh_err err;

	exit_json(m, body, sizeof(body), oom_killed(m));
	/* EXEC_ROOT state: rename-atomic is what a crash of berthd or of this
	 * monitor needs; an fsync here sat on every exit code's path. */
	if (bh_write_file_volatile(path, body, strlen(body), 0644, &err) < 0)
		bh_error("exit status: %s", err.msg);
	mon_attach_broadcast(m, RT_FRAME_EXIT, body, strlen(body));
	free(path);
}

/* Hands the clients what is queued (bounded by FLUSH_MS), then closes them. */
static void flush_clients(struct mon *m)
{
	struct pollfd p[MAX_CLIENTS];
	uint64_t deadline = bh_now_ms() + FLUSH_MS;

	while (mon_attach_pending(m)) {
		uint64_t now = bh_now_ms();
		if (now >= deadline)
			break;
		int n = mon_attach_pollfds(m, p, MAX_CLIENTS);
		if (poll(p, (nfds_t)n, (int)(deadline - now)) < 0 && errno != EINTR)
			break;
		mon_attach_events(m, p, n);
	}
	mon_attach_close_all(m);
}

/* A container writing into a 64 KiB pipe wakes us every 64 KiB; a larger
 * pipe lets it run ahead while we are busy (bounded by the kernel's
 * pipe-max-size; failure only costs speed).  A pty has no such knob. */
static void grow_pipes(struct mon *m)
{
	for (int i = 0; i < m->nout; i++)
		if (m->out[i].fd >= 0 && m->out[i].fd != m->master)
			(void)fcntl(m->out[i].fd, F_SETPIPE_SZ, MON_PIPE_SIZE);
}

int mon_loop(struct mon *m)
{
	char *sock;

	m->read_max = m->o->log_path == NULL ? RT_MONITOR_FRAME_MAX : RT_LOG_LINE_MAX;
	grow_pipes(m);
	run_until_drained(m);
	for (int i = 0; i < m->nout; i++)
		if (m->out[i].fd >= 0)
			close_output(m, &m->out[i]);
	mon_logw_close(&m->log);
	if (!m->exited) /* drained without SIGCHLD: wait for it */
		m->exited = waitpid(m->cpid, &m->wstatus, 0) == m->cpid;
	if (m->finished_at[0] == '\0')
		bh_rfc3339_now(m->finished_at);
	record_exit(m);
	flush_clients(m);
	sock = bh_path_join(m->o->dir, "attach.sock");
	unlink(sock);
	free(sock);
	return 0;
}
