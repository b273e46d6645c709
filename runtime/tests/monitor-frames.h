/* Test helpers shared by test_monitor.c and test_exec.c: talking the attach
 * protocol to a berth-monitor and waiting for a process to be gone.  Include
 * after <cmocka.h> and "runtime/runtime.h". */
#ifndef BERTH_TEST_MONITOR_FRAMES_H
#define BERTH_TEST_MONITOR_FRAMES_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"

static void read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static size_t read_frame(int fd, uint8_t *type, char *buf, size_t cap)
{
	uint8_t hdr[RT_MONITOR_FRAME_HDR];
	uint32_t len;

	read_exact(fd, hdr, sizeof(hdr));
	assert_int_equal(rt_frame_parse(hdr, type, &len), 0);
	assert_true(len < cap);
	read_exact(fd, buf, len);
	buf[len] = '\0';
	return len;
}

static void send_frame(int fd, int type, const void *data, size_t len)
{
	uint8_t hdr[RT_MONITOR_FRAME_HDR];

	rt_frame_header(hdr, type, (uint32_t)len);
	assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), sizeof(hdr));
	if (len > 0)
		assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void wait_gone(pid_t pid)
{
	int fd = pidfd_open(pid, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (fd < 0) {
		assert_int_equal(errno, ESRCH);
		return;
	}
	assert_int_equal(poll(&p, 1, 30000), 1);
	close(fd);
}

#endif
