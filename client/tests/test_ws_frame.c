/* The stream client's RFC 6455 codec and the docs/streams.md message layer:
 * headers, masking, a receiver fed in every split, and what it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/client-internal.h"

struct got {
	int n;
	int op[16];
	size_t len[16];
	uint8_t data[16][300000 / 16 + 256];
	size_t big_len;
};

static int collect(void *arg, int op, uint8_t *data, size_t len, struct bh_err *err)
{
	struct got *g = arg;

	assert_true(g->n < 16);
	g->op[g->n] = op;
	g->len[g->n] = len;
	if (len <= sizeof(g->data[0]))
		memcpy(g->data[g->n], data, len);
	else
		g->big_len = len;
	g->n++;
	return 0;
}

/* A server frame (unmasked) appended to buf. */
static size_t server_frame(uint8_t *buf, int op, bool fin, const void *p, size_t len)
{
	size_t h = cli_ws_header(buf, op, fin, len, NULL);
	memcpy(buf + h, p, len);
	return h + len;
}

static int feed(struct cli_ws_rx *rx, const uint8_t *b, size_t n, size_t step, struct bh_err *e)
{
	for (size_t i = 0; i < n; i += step) {
		uint8_t *at;
		size_t k = n - i < step ? n - i : step;
		assert_true(cli_ws_rx_space(rx, &at) >= k);
		memcpy(at, b + i, k);
		if (cli_ws_rx_commit(rx, k, e) < 0)
			return -1;
	}
	return 0;
}

static void test_header_roundtrip(void **state)
{
	static const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, 300000};
	uint8_t hdr[CLI_WS_HDR_MAX], mask[4] = {1, 2, 3, 4};
	struct cli_ws_hdr h;
	struct bh_err err = {0};

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = cli_ws_header(hdr, CLI_WS_OP_BINARY, true, lens[i], mask);
		assert_int_equal(n, (lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10) + 4);
		assert_int_equal(cli_ws_parse_header(hdr, n - 1, &h, &err), 0); /* short */
		assert_int_equal(cli_ws_parse_header(hdr, n, &h, &err), (int)n);
		assert_true(h.fin && h.masked);
		assert_int_equal(h.opcode, CLI_WS_OP_BINARY);
		assert_true(h.len == lens[i]);
		assert_memory_equal(h.mask, mask, 4);
	}
}

static void test_mask_matches_bytewise(void **state)
{
	uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef}, a[1031], b[1031];

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	for (size_t pos = 0; pos < 4; pos++) {
		for (size_t len = 0; len < 40; len++) {
			memcpy(a, b, sizeof(a));
			cli_ws_mask(a + 3, len, mask, pos);
			for (size_t i = 0; i < len; i++)
				assert_int_equal(a[3 + i], b[3 + i] ^ mask[(pos + i) & 3]);
			assert_int_equal(a[3 + len], b[3 + len]); /* nothing past the end */
		}
	}
	memcpy(a, b, sizeof(a));
	cli_ws_mask(a, sizeof(a), mask, 1);
	assert_memory_not_equal(a, b, sizeof(a));
	cli_ws_mask(a, sizeof(a), mask, 1);
	assert_memory_equal(a, b, sizeof(a)); /* an involution */
}

/* Binary, a fragmented message with a ping between its parts, a close:
 * whatever the read sizes, the same messages come out. */
static void test_rx_any_split(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 100000};
	uint8_t *buf = malloc(4096);
	size_t n = 0;

	n += server_frame(buf + n, CLI_WS_OP_BINARY, true, "\x01hello", 6);
	n += server_frame(buf + n, CLI_WS_OP_BINARY, false, "ab", 2);
	n += server_frame(buf + n, CLI_WS_OP_PING, true, "p", 1);
	n += server_frame(buf + n, CLI_WS_OP_CONT, false, "cd", 2);
	n += server_frame(buf + n, CLI_WS_OP_CONT, true, "ef", 2);
	n += server_frame(buf + n, CLI_WS_OP_CLOSE, true, "\x03\xe8", 2);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct got *g = calloc(1, sizeof(*g));
		struct cli_ws_rx rx;
		struct bh_err err = {0};

		cli_ws_rx_init(&rx, CLI_STREAM_MSG_MAX, collect, g);
		assert_int_equal(feed(&rx, buf, n, steps[s], &err), 0);
		assert_int_equal(g->n, 4);
		assert_int_equal(g->op[0], CLI_WS_OP_BINARY);
		assert_memory_equal(g->data[0], "\x01hello", 6);
		assert_int_equal(g->op[1], CLI_WS_OP_PING);
		assert_int_equal(g->op[2], CLI_WS_OP_BINARY);
		assert_int_equal(g->len[2], 6);
		assert_memory_equal(g->data[2], "abcdef", 6);
		assert_int_equal(g->op[3], CLI_WS_OP_CLOSE);
		assert_int_equal(rx.len, 0);
		cli_ws_rx_free(&rx);
		free(g);
	}
	free(buf);
}

static void test_rx_largest_frame(void **state)
{
	size_t len = CLI_STREAM_MSG_MAX;
	uint8_t *buf = calloc(1, len + 16), *p = calloc(1, len);
	struct got *g = calloc(1, sizeof(*g));
	struct cli_ws_rx rx;
	struct bh_err err = {0};
	size_t n = server_frame(buf, CLI_WS_OP_BINARY, true, p, len);

	cli_ws_rx_init(&rx, CLI_STREAM_MSG_MAX, collect, g);
	assert_int_equal(feed(&rx, buf, n, 65536, &err), 0);
	assert_int_equal(g->n, 1);
	assert_int_equal(g->big_len, len);
	cli_ws_rx_free(&rx);
	free(buf);
	free(p);
	free(g);
}

static void expect_refused(const uint8_t *b, size_t n, const char *needle)
{
	struct got *g = calloc(1, sizeof(*g));
	struct cli_ws_rx rx;
	struct bh_err err = {0};

	cli_ws_rx_init(&rx, CLI_STREAM_MSG_MAX, collect, g);
	assert_int_equal(feed(&rx, b, n, n, &err), -1);
	assert_non_null(strstr(err.msg, needle));
	cli_ws_rx_free(&rx);
	free(g);
}

static void test_rx_refuses(void **state)
{
	uint8_t b[300], big[200], mask[4] = {1, 2, 3, 4};
	size_t n;

	n = cli_ws_header(b, CLI_WS_OP_BINARY, true, 1, mask);
	b[n++] = 0;
	expect_refused(b, n, "masked");
	n = server_frame(b, CLI_WS_OP_BINARY, true, "x", 1);
	b[0] |= 0x40;
	expect_refused(b, n, "reserved");
	n = cli_ws_header(b, CLI_WS_OP_BINARY, true, CLI_STREAM_MSG_MAX + 1, NULL);
	expect_refused(b, n, "over"); /* refused from the header alone */
	n = server_frame(b, CLI_WS_OP_CONT, true, "x", 1);
	expect_refused(b, n, "continuation");
	n = server_frame(b, CLI_WS_OP_PING, false, "x", 1);
	expect_refused(b, n, "control");
	memset(big, 'a', sizeof(big));
	n = server_frame(b, CLI_WS_OP_PING, true, big, 126);
	expect_refused(b, n, "control");
	n = server_frame(b, 3, true, "x", 1);
	expect_refused(b, n, "opcode");
	n = server_frame(b, CLI_WS_OP_BINARY, false, "x", 1);
	n += server_frame(b + n, CLI_WS_OP_BINARY, true, "y", 1);
	expect_refused(b, n, "inside");
}

/* Fragments that add up to more than the bound are refused too. */
static void test_rx_fragments_bounded(void **state)
{
	size_t half = CLI_STREAM_MSG_MAX / 2 + 1;
	uint8_t *b = calloc(1, 2 * half + 64), *p = calloc(1, half);
	size_t n = server_frame(b, CLI_WS_OP_BINARY, false, p, half);

	n += server_frame(b + n, CLI_WS_OP_CONT, true, p, half);
	expect_refused(b, n, "over");
	free(b);
	free(p);
}

static void test_stream_data_and_offsets(void **state)
{
	uint8_t f[32] = {CLI_CHAN_STDERR};
	struct cli_stream_msg m;
	struct bh_err err = {0};

	cli_stream_put_be64(f + 1, 0x0102030405060708ull);
	memcpy(f + 9, "oops", 4);
	assert_int_equal(cli_stream_parse(f, 13, &m, &err), 0);
	assert_int_equal(m.channel, CLI_CHAN_STDERR);
	assert_true(m.offset == 0x0102030405060708ull);
	assert_int_equal(m.len, 4);
	assert_memory_equal(m.data, "oops", 4);
	assert_int_equal(cli_stream_parse(f, 9, &m, &err), 0); /* empty payload */
	assert_int_equal(cli_stream_parse(f, 8, &m, &err), -1);
	assert_non_null(strstr(err.msg, "short"));
	f[0] = 7;
	assert_int_equal(cli_stream_parse(f, 13, &m, &err), -1);
	assert_int_equal(cli_stream_parse(f, 0, &m, &err), -1);
	cli_stream_stdin_header(f, 258);
	assert_memory_equal(f, "\0\0\0\0\0\0\0\x01\x02", 9);
}

static void test_stream_control(void **state)
{
	static const char hello[] =
	    "{\"type\":\"hello\",\"offset\":42,\"tty\":true,\"stdin\":true}";
	static const char ex[] =
	    "{\"type\":\"exit\",\"code\":137,\"signal\":9,\"oom\":false,\"x\":1}";
	static const char bad[] = "{\"type\":\"error\",\"message\":\"no\\u001b[2J\"}";
	struct cli_stream_control c;
	struct bh_err err = {0};
	uint8_t big[CLI_STREAM_CONTROL_MAX + 2] = {CLI_CHAN_CONTROL};
	struct cli_stream_msg m;

	assert_int_equal(cli_stream_control_parse((const uint8_t *)hello, strlen(hello), &c, &err),
	                 0);
	assert_int_equal(c.type, CLI_CTL_HELLO);
	assert_true(c.offset == 42 && c.tty && c.stdin_open);
	assert_int_equal(cli_stream_control_parse((const uint8_t *)ex, strlen(ex), &c, &err), 0);
	assert_true(c.type == CLI_CTL_EXIT && c.code == 137 && c.signal == 9);
	assert_int_equal(cli_stream_control_parse((const uint8_t *)bad, strlen(bad), &c, &err), 0);
	assert_int_equal(c.type, CLI_CTL_ERROR);
	assert_string_equal(c.message, "no?[2J"); /* no terminal escapes from the daemon */
	assert_int_equal(
	    cli_stream_control_parse((const uint8_t *)"{\"type\":\"new\"}", 14, &c, &err), 0);
	assert_int_equal(c.type, CLI_CTL_UNKNOWN);
	assert_int_equal(cli_stream_control_parse((const uint8_t *)"[1]", 3, &c, &err), -1);
	assert_int_equal(cli_stream_control_parse((const uint8_t *)"{\"a\":1}", 7, &c, &err), -1);
	assert_int_equal(cli_stream_control_parse((const uint8_t *)"{", 1, &c, &err), -1);
	memset(big + 1, ' ', sizeof(big) - 1);
	assert_int_equal(cli_stream_parse(big, sizeof(big), &m, &err), -1);
	assert_int_equal(cli_stream_parse(big, sizeof(big) - 1, &m, &err), 0);
}

static void test_stream_client_controls(void **state)
{
	uint8_t out[128];
	size_t n;

	n = cli_stream_control_resize(out, sizeof(out), 50, 132);
	assert_int_equal(out[0], CLI_CHAN_CONTROL);
	assert_int_equal(n, 1 + strlen("{\"type\":\"resize\",\"rows\":50,\"cols\":132}"));
	assert_memory_equal(out + 1, "{\"type\":\"resize\",\"rows\":50,\"cols\":132}", n - 1);
	n = cli_stream_control_signal(out, sizeof(out), "SIGTERM");
	assert_memory_equal(out + 1, "{\"type\":\"signal\",\"signal\":\"SIGTERM\"}", n - 1);
	n = cli_stream_control_eof(out, sizeof(out));
	assert_memory_equal(out, "\x03{\"type\":\"eof\"}", n);
	assert_int_equal(cli_stream_control_eof(out, 5), 0); /* too small: nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_roundtrip),
	    cmocka_unit_test(test_mask_matches_bytewise),
	    cmocka_unit_test(test_rx_any_split),
	    cmocka_unit_test(test_rx_largest_frame),
	    cmocka_unit_test(test_rx_refuses),
	    cmocka_unit_test(test_rx_fragments_bounded),
	    cmocka_unit_test(test_stream_data_and_offsets),
	    cmocka_unit_test(test_stream_control),
	    cmocka_unit_test(test_stream_client_controls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
