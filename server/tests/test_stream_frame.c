/* The exec/attach stream framing (stream-frame.c): what a hostile client can
 * send — short frames, unknown channels, oversized or non-JSON control
 * messages, absurd sizes, text messages, split messages, resent stdin —
 * ends in an error with the right close code, never in a crash. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server-internal.h"

struct sink {
	char stdin_data[1024];
	size_t stdin_len;
	struct srv_sf_ctl ctl[8];
	int n_ctl;
};

static int on_stdin(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct sink *s = arg;

	(void)err;
	assert_true(s->stdin_len + len <= sizeof(s->stdin_data));
	memcpy(s->stdin_data + s->stdin_len, data, len);
	s->stdin_len += len;
	return 0;
}

static int on_control(void *arg, const struct srv_sf_ctl *c, struct bh_err *err)
{
	struct sink *s = arg;

	(void)err;
	assert_true(s->n_ctl < 8);
	s->ctl[s->n_ctl++] = *c;
	return 0;
}

static const struct srv_sf_rx_ops ops = {.on_stdin = on_stdin, .on_control = on_control};

/* Feeds one whole message; returns srv_sf_rx_feed's result. */
static int feed(struct srv_sf_rx *rx, struct sink *s, const void *msg, size_t len,
                struct bh_err *err)
{
	return srv_sf_rx_feed(rx, msg, len, true, true, &ops, s, err);
}

static size_t stdin_msg(uint8_t *out, uint64_t off, const char *data)
{
	size_t n = strlen(data);

	srv_sf_header(out, SRV_SF_STDIN, off);
	memcpy(out + SRV_SF_HDR, data, n);
	return SRV_SF_HDR + n;
}

static size_t ctl_msg(uint8_t *out, const char *json)
{
	out[0] = SRV_SF_CONTROL;
	memcpy(out + 1, json, strlen(json));
	return 1 + strlen(json);
}

static void test_stdin_and_overlap(void **state)
{
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;
	uint8_t m[64];

	(void)state;
	srv_sf_rx_init(&rx);
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, 0, "hello "), &err), 0);
	/* a resent frame overlapping what was delivered: only the new part */
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, 3, "lo world"), &err), 0);
	/* entirely old: dropped */
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, 0, "hel"), &err), 0);
	assert_int_equal(s.stdin_len, strlen("hello world"));
	assert_memory_equal(s.stdin_data, "hello world", s.stdin_len);
}

static void test_split_message(void **state)
{
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;
	uint8_t m[64];
	size_t n = stdin_msg(m, 0, "abcdef");

	(void)state;
	srv_sf_rx_init(&rx);
	/* lws may hand a message over in pieces, even inside the header */
	assert_int_equal(srv_sf_rx_feed(&rx, m, 4, true, false, &ops, &s, &err), 0);
	assert_int_equal(srv_sf_rx_feed(&rx, m + 4, 7, true, false, &ops, &s, &err), 0);
	assert_int_equal(srv_sf_rx_feed(&rx, m + 11, n - 11, true, true, &ops, &s, &err), 0);
	assert_int_equal(s.stdin_len, 6);
	assert_memory_equal(s.stdin_data, "abcdef", 6);
	n = ctl_msg(m, "{\"type\":\"eof\"}");
	assert_int_equal(srv_sf_rx_feed(&rx, m, 3, true, false, &ops, &s, &err), 0);
	assert_int_equal(s.n_ctl, 0);
	assert_int_equal(srv_sf_rx_feed(&rx, m + 3, n - 3, true, true, &ops, &s, &err), 0);
	assert_int_equal(s.n_ctl, 1);
	assert_int_equal(s.ctl[0].type, SRV_SF_CTL_EOF);
}

static void test_controls(void **state)
{
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;
	uint8_t m[256];

	(void)state;
	srv_sf_rx_init(&rx);
	assert_int_equal(
	    feed(&rx, &s, m, ctl_msg(m, "{\"type\":\"resize\",\"rows\":50,\"cols\":132}"), &err),
	    0);
	assert_int_equal(
	    feed(&rx, &s, m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":\"SIGINT\"}"), &err), 0);
	assert_int_equal(feed(&rx, &s, m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":9}"), &err),
	                 0);
	assert_int_equal(
	    feed(&rx, &s, m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":\"TERM\"}"), &err), 0);
	/* unknown types and fields are ignored (forward compatibility) */
	assert_int_equal(feed(&rx, &s, m, ctl_msg(m, "{\"type\":\"future\",\"x\":1}"), &err), 0);
	assert_int_equal(s.n_ctl, 4);
	assert_int_equal(s.ctl[0].type, SRV_SF_CTL_RESIZE);
	assert_int_equal(s.ctl[0].rows, 50);
	assert_int_equal(s.ctl[0].cols, 132);
	assert_int_equal(s.ctl[1].signal, 2);
	assert_int_equal(s.ctl[2].signal, 9);
	assert_int_equal(s.ctl[3].signal, 15);
}

/* Each bad message ends the session with this errno-style code. */
static void expect_error(const void *msg, size_t len, bool binary, int code, const char *what)
{
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;

	srv_sf_rx_init(&rx);
	bh_err_clear(&err);
	assert_int_equal(srv_sf_rx_feed(&rx, msg, len, binary, true, &ops, &s, &err), -1);
	assert_int_equal(err.code, code);
	assert_non_null(strstr(err.msg, what));
	assert_int_equal(s.n_ctl, 0);
	assert_int_equal(s.stdin_len, 0);
}

static void test_bad_frames(void **state)
{
	uint8_t m[64];

	(void)state;
	expect_error("", 0, true, EPROTO, "short frame");
	m[0] = SRV_SF_STDIN;
	expect_error(m, 5, true, EPROTO, "short frame");
	m[0] = 7;
	expect_error(m, 12, true, EPROTO, "unknown channel 7");
	m[0] = 0xff;
	expect_error(m, 1, true, EPROTO, "unknown channel");
	m[0] = SRV_SF_STDOUT; /* server-to-client only */
	expect_error(m, 12, true, EPROTO, "server-to-client");
	expect_error("\x03{\"type\":\"eof\"}", 15, false, ENOTSUP, "text");
	assert_int_equal(srv_sf_close_code(ENOTSUP), 1003);
	assert_int_equal(srv_sf_close_code(EPROTO), 1008);
	assert_int_equal(srv_sf_close_code(EMSGSIZE), 1008);
}

static void test_bad_controls(void **state)
{
	uint8_t m[256];

	(void)state;
	expect_error(m, ctl_msg(m, "not json"), true, EPROTO, "not a JSON object");
	expect_error(m, ctl_msg(m, "[1,2]"), true, EPROTO, "not a JSON object");
	expect_error(m, ctl_msg(m, "{\"rows\":1}"), true, EPROTO, "without a type");
	expect_error(m, 1, true, EPROTO, "not a JSON object"); /* empty control */
	expect_error(m, ctl_msg(m, "{\"type\":\"resize\",\"rows\":0,\"cols\":80}"), true, EPROTO,
	             "rows 0 out of range");
	expect_error(m, ctl_msg(m, "{\"type\":\"resize\",\"rows\":24,\"cols\":100000}"), true,
	             EPROTO, "cols 100000 out of range");
	expect_error(m, ctl_msg(m, "{\"type\":\"resize\",\"rows\":-1,\"cols\":80}"), true, EPROTO,
	             "out of range");
	expect_error(m, ctl_msg(m, "{\"type\":\"resize\",\"rows\":\"24\",\"cols\":80}"), true,
	             EPROTO, "integer");
	expect_error(m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":\"SIGNOPE\"}"), true, EPROTO,
	             "signal");
	expect_error(m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":0}"), true, EPROTO, "signal");
	expect_error(m, ctl_msg(m, "{\"type\":\"signal\",\"signal\":65}"), true, EPROTO, "signal");
}

static void test_oversized(void **state)
{
	size_t n = SRV_SF_CTL_MAX + 100;
	uint8_t *big = calloc(1, SRV_SF_HDR + SRV_SF_DATA_MAX + 1);
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;

	(void)state;
	assert_non_null(big);
	big[0] = SRV_SF_CONTROL;
	memset(big + 1, ' ', n);
	expect_error(big, n + 1, true, EMSGSIZE, "control message over 4096");
	/* The limit holds across pieces too: no unbounded accumulation. */
	srv_sf_rx_init(&rx);
	assert_int_equal(srv_sf_rx_feed(&rx, big, 4000, true, false, &ops, &s, &err), 0);
	assert_int_equal(srv_sf_rx_feed(&rx, big, 200, true, false, &ops, &s, &err), -1);
	assert_int_equal(err.code, EMSGSIZE);
	/* A data frame over 256 KiB: refused before its excess is delivered. */
	srv_sf_header(big, SRV_SF_STDIN, 0);
	srv_sf_rx_init(&rx);
	s.stdin_len = 0;
	assert_int_equal(srv_sf_rx_feed(&rx, big, SRV_SF_HDR, true, false, &ops, &s, &err), 0);
	assert_int_equal(
	    srv_sf_rx_feed(&rx, big + SRV_SF_HDR, SRV_SF_DATA_MAX + 1, true, true, &ops, &s, &err),
	    -1);
	assert_int_equal(err.code, EMSGSIZE);
	assert_int_equal(s.stdin_len, 0);
	free(big);
}

/* A stdin offset whose end passes 2^64 would wrap the delivered mark back
 * to a small value and let resent bytes through twice: refused. */
static void test_offset_wrap_resend_twice(void **state)
{
	struct srv_sf_rx rx;
	struct sink s = {0};
	struct bh_err err;
	uint8_t m[64];

	(void)state;
	srv_sf_rx_init(&rx);
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, 0, "abc"), &err), 0);
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, UINT64_MAX - 1, "xy"), &err), -1);
	assert_int_equal(err.code, EPROTO);
	assert_int_equal(s.stdin_len, 3);
	/* ending exactly at the last offset is fine */
	srv_sf_rx_init(&rx);
	assert_int_equal(feed(&rx, &s, m, stdin_msg(m, UINT64_MAX - 1, "x"), &err), 0);
	assert_int_equal(s.stdin_len, 4);
}

static void test_signal_names(void **state)
{
	(void)state;
	assert_int_equal(srv_sf_signal_parse("SIGKILL"), 9);
	assert_int_equal(srv_sf_signal_parse("kill"), 9);
	assert_int_equal(srv_sf_signal_parse("15"), 15);
	assert_int_equal(srv_sf_signal_parse("SIGWINCH"), 28);
	assert_int_equal(srv_sf_signal_parse("0"), -1);
	assert_int_equal(srv_sf_signal_parse("65"), -1);
	assert_int_equal(srv_sf_signal_parse(""), -1);
	assert_int_equal(srv_sf_signal_parse(NULL), -1);
	assert_int_equal(srv_sf_signal_parse("SIG"), -1);
}

static void test_header(void **state)
{
	uint8_t h[SRV_SF_HDR];
	static const uint8_t want[SRV_SF_HDR] = {2, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};

	(void)state;
	srv_sf_header(h, SRV_SF_STDERR, 0x0102030405060708ULL);
	assert_memory_equal(h, want, sizeof(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stdin_and_overlap), cmocka_unit_test(test_split_message),
	    cmocka_unit_test(test_controls),          cmocka_unit_test(test_bad_frames),
	    cmocka_unit_test(test_bad_controls),      cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_signal_names),      cmocka_unit_test(test_header),
	    cmocka_unit_test(test_offset_wrap_resend_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
