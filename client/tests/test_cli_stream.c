/* client/stream.c: Docker's 8-byte multiplexed frames, fed in every possible
 * split, with bad headers and streams cut inside a frame. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

struct got {
	struct bh_buf out, err;
	int calls;
	int fail_at; /* fail on this call (1-based); 0 = never */
};

static int collect(void *arg, int stream, const void *data, size_t len, struct bh_err *err)
{
	struct got *g = arg;

	if (++g->calls == g->fail_at)
		return bh_err_set(err, EPIPE, "sink refused");
	assert_true(len > 0);
	if (stream == CLI_STREAM_STDOUT)
		return bh_buf_append(&g->out, data, len);
	if (stream == CLI_STREAM_STDERR)
		return bh_buf_append(&g->err, data, len);
	return bh_err_set(err, EPROTO, "stream %d", stream);
}

static void got_init(struct got *g)
{
	memset(g, 0, sizeof(*g));
	bh_buf_init(&g->out, 1 << 20);
	bh_buf_init(&g->err, 1 << 20);
}

static void got_free(struct got *g)
{
	bh_buf_free(&g->out);
	bh_buf_free(&g->err);
}

static size_t frame(uint8_t *p, int stream, const char *payload, size_t len)
{
	p[0] = (uint8_t)stream;
	p[1] = p[2] = p[3] = 0;
	p[4] = (uint8_t)(len >> 24);
	p[5] = (uint8_t)(len >> 16);
	p[6] = (uint8_t)(len >> 8);
	p[7] = (uint8_t)len;
	memcpy(p + 8, payload, len);
	return 8 + len;
}

/* stdout "hello\n", stderr "oops\0x" (binary), an empty frame, stdout "bye". */
static size_t sample(uint8_t *buf)
{
	size_t n = 0;

	n += frame(buf + n, 1, "hello\n", 6);
	n += frame(buf + n, 2, "oops\0x", 6);
	n += frame(buf + n, 1, "", 0);
	n += frame(buf + n, 1, "bye", 3);
	return n;
}

static void test_every_split(void **state)
{
	uint8_t buf[256];
	size_t n = sample(buf);

	/* Two cuts anywhere: headers and payloads split at every byte. */
	for (size_t a = 0; a <= n; a++)
		for (size_t b = a; b <= n; b++) {
			struct cli_demux d;
			struct bh_err err = {0};
			struct got g;

			got_init(&g);
			cli_demux_init(&d, collect, &g);
			assert_int_equal(cli_demux_feed(&d, buf, a, &err), 0);
			assert_int_equal(cli_demux_feed(&d, buf + a, b - a, &err), 0);
			assert_int_equal(cli_demux_feed(&d, buf + b, n - b, &err), 0);
			assert_int_equal(cli_demux_finish(&d, &err), 0);
			assert_int_equal(g.out.len, 9);
			assert_memory_equal(g.out.data, "hello\nbye", 9);
			assert_int_equal(g.err.len, 6);
			assert_memory_equal(g.err.data, "oops\0x", 6);
			got_free(&g);
		}
}

static void test_large_frame_is_not_buffered(void **state)
{
	static char payload[100000];
	static uint8_t buf[sizeof(payload) + 8];
	struct cli_demux d;
	struct bh_err err = {0};
	struct got g;
	size_t n;

	memset(payload, 'z', sizeof(payload));
	n = frame(buf, 1, payload, sizeof(payload));
	got_init(&g);
	cli_demux_init(&d, collect, &g);
	for (size_t off = 0; off < n; off += 4096)
		assert_int_equal(
		    cli_demux_feed(&d, buf + off, n - off < 4096 ? n - off : 4096, &err), 0);
	assert_int_equal(cli_demux_finish(&d, &err), 0);
	assert_int_equal(g.out.len, sizeof(payload));
	/* Passed through piece by piece, as it came. */
	assert_true(g.calls >= (int)(sizeof(payload) / 4096));
	got_free(&g);
}

static void test_bad_header(void **state)
{
	uint8_t raw[] = "hello, this is a TTY stream";
	uint8_t badpad[8] = {1, 0, 7, 0, 0, 0, 0, 1};
	uint8_t badstream[8] = {9, 0, 0, 0, 0, 0, 0, 1};
	struct cli_demux d;
	struct bh_err err = {0};
	struct got g;

	got_init(&g);
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, raw, sizeof(raw) - 1, &err), -1);
	assert_non_null(strstr(err.msg, "bad stream frame header"));
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, badpad, 8, &err), -1);
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, badstream, 8, &err), -1);
	assert_int_equal(g.calls, 0);
	got_free(&g);
}

static void test_cut_inside_frame(void **state)
{
	uint8_t buf[64];
	size_t n = frame(buf, 1, "abcdef", 6);
	struct cli_demux d;
	struct bh_err err = {0};
	struct got g;

	got_init(&g);
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, buf, n - 2, &err), 0);
	assert_int_equal(cli_demux_finish(&d, &err), -1);
	assert_non_null(strstr(err.msg, "middle of a frame"));
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, buf, 5, &err), 0); /* half a header */
	assert_int_equal(cli_demux_finish(&d, &err), -1);
	got_free(&g);
}

static void test_sink_failure_stops(void **state)
{
	uint8_t buf[256];
	size_t n = sample(buf);
	struct cli_demux d;
	struct bh_err err = {0};
	struct got g;

	got_init(&g);
	g.fail_at = 2;
	cli_demux_init(&d, collect, &g);
	assert_int_equal(cli_demux_feed(&d, buf, n, &err), -1);
	assert_string_equal(err.msg, "sink refused");
	assert_int_equal(g.calls, 2);
	got_free(&g);
}

static void test_system_error_frame(void **state)
{
	uint8_t buf[64];
	size_t n = frame(buf, 3, "boom\x1b[2J", 8);
	struct cli_demux d;
	struct bh_err err = {0};

	cli_demux_init(&d, cli_stream_write_std, NULL);
	assert_int_equal(cli_demux_feed(&d, buf, n, &err), -1);
	/* The daemon's text, with the escape sequence defused. */
	assert_string_equal(err.msg, "error from daemon in stream: boom?[2J");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_split),
	    cmocka_unit_test(test_large_frame_is_not_buffered),
	    cmocka_unit_test(test_bad_header),
	    cmocka_unit_test(test_cut_inside_frame),
	    cmocka_unit_test(test_sink_failure_stops),
	    cmocka_unit_test(test_system_error_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
