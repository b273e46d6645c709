/* libFuzzer target: the monitor's reader of attach-socket input (frames from
 * an untrusted client: stdin data, resize, stdin-EOF, signal, interactive,
 * no-output), runtime/monitor-attach.c compiled in.  A struct mon without a
 * container (no pidfd, no pty) accepts one client over a real unix socket;
 * the client sends the input and half-closes.  Input: [stdin mode][frames];
 * stdin mode & 1: the container's stdin is a 4 KiB non-blocking pipe that
 * fills up (the backpressure path), else stdin is closed.  Checked: the
 * stdin bytes that come out are at most the input's size, and the client is
 * gone after EOF. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz/fuzz-util.h"
#include "runtime/monitor-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX  (64 * 1024) /* below the socket buffer: the send never blocks */
#define MAX_ROUNDS 256

static struct sockaddr_un addr;

static void die(const char *what)
{
	perror(what);
	abort();
}

static int listener(void)
{
	static int fd = -1;
	char *path;

	if (fd >= 0)
		return fd;
	path = fz_path("attach.sock");
	addr.sun_family = AF_UNIX;
	if (bh_strlcpy(addr.sun_path, path, sizeof(addr.sun_path)) < 0)
		die("socket path too long");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0)
		die(path);
	free(path);
	return fd;
}

static int client(const uint8_t *data, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	if (size > 0 && send(fd, data, size, MSG_NOSIGNAL) != (ssize_t)size)
		die("send");
	shutdown(fd, SHUT_WR);
	return fd;
}

static size_t drain(int fd)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

/* Polls and serves the clients until none is left; returns stdin bytes. */
static size_t serve(struct mon *m, int stdin_rd)
{
	struct pollfd p[4];
	size_t out = 0;

	for (int round = 0; m->clients != NULL && round < MAX_ROUNDS; round++) {
		int n = mon_attach_pollfds(m, p, 4);
		if (poll(p, (nfds_t)n, 0) < 0)
			die("poll");
		mon_attach_events(m, p, n);
		out += drain(stdin_rd);
		mon_attach_stdin_writable(m);
	}
	return out + drain(stdin_rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mon_opts o = {0};
	struct mon m = {.o = &o, .pidfd = -1, .sigfd = -1, .stdin_fd = -1, .master = -1};
	int pipefd[2] = {-1, -1}, cfd;
	size_t out;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	m.listen_fd = listener();
	if ((data[0] & 1) && pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) == 0) {
		fcntl(pipefd[1], F_SETPIPE_SZ, 4096);
		m.stdin_fd = pipefd[1];
	}
	cfd = client(data + 1, size - 1);
	mon_attach_accept(&m);
	if (m.clients == NULL)
		die("accept");
	out = serve(&m, pipefd[0]);
	if (m.clients != NULL)
		abort(); /* a client that sent EOF was never let go */
	if (out > size)
		abort(); /* stdin got bytes nobody sent */
	mon_close_stdin(&m);
	mon_attach_close_all(&m);
	close(cfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	return 0;
}
