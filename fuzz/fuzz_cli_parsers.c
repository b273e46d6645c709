/* libFuzzer target for the client's parsers of untrusted input: the
 * multiplexed-stream demuxer (daemon bytes, split at a fuzzed point), and
 * the pure parsers and formatters of cmd_units.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

static int discard(void *arg, int stream, const void *data, size_t len, struct bh_err *err)
{
	size_t *total = arg;

	if (stream < 0 || stream > CLI_STREAM_SYSTEMERR || len == 0)
		abort(); /* the demuxer must never pass these on */
	*total += len;
	return 0;
}

static void fuzz_demux(const uint8_t *data, size_t size)
{
	struct cli_demux d;
	struct bh_err err = {0};
	size_t total = 0, cut = size ? data[0] % (size + 1) : 0;

	cli_demux_init(&d, discard, &total);
	if (cli_demux_feed(&d, data, cut, &err) == 0 &&
	    cli_demux_feed(&d, data + cut, size - cut, &err) == 0)
		cli_demux_finish(&d, &err);
	if (total > size)
		abort(); /* payload is never invented */
}

static void fuzz_text(const uint8_t *data, size_t size)
{
	char *s = bh_strndup((const char *)data, size);
	char out[256];
	const char *name;
	int64_t n;
	long max;

	cli_parse_cpus(s, &n);
	cli_parse_restart(s, &name, &max);
	cli_parse_since(s, 1700000000, out, sizeof(out));
	cli_quote_command(s, size % 2 == 0, out, sizeof(out));
	free(cli_image_ref_tagged(s));
	free(cli_url_escape(s));
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_demux(data, size);
	fuzz_text(data, size);
	return 0;
}
