/* Passing the pty master over the console socket (SCM_RIGHTS).  A file of
 * its own, depending on nothing else of the runtime, so that the statically
 * linked berth-monitor pulls in only this when it receives a master. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "runtime/runtime.h"

int rt_console_send(int sock, int fd, struct bh_err *err)
{
	char byte = 'M';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return bh_err_sys(err, errno, "console socket: send the pty master");
	return 0;
}

int rt_console_recv(int sock, int timeout_ms, int *master, struct bh_err *err)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;
	ssize_t n;
	int r;

	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return bh_err_set(err, ETIMEDOUT, "console socket: no pty master came");
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return bh_err_sys(err, n < 0 ? errno : EPIPE, "console socket: receive");
	c = CMSG_FIRSTHDR(&mh);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) || (mh.msg_flags & MSG_CTRUNC))
		return bh_err_set(err, EPROTO, "console socket: no pty master in the message");
	memcpy(master, CMSG_DATA(c), sizeof(int));
	return 0;
}
