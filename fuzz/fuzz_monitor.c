/* libFuzzer target: what berthd reads from a container's monitor: attach
 * frame headers (rt_frame_parse over a stream of frames), exit.json
 * (rt_monitor_parse_exit), and the json-file log written from container
 * output (rt_log_read over temp files, rotated or not, with fuzzed
 * tail/since/until/stream/timestamps options; rt_log_parse_time).
 * Input: [flags][tail][cut][log text...]; the whole input is also read as
 * frames, as exit.json and as a timestamp. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz-util.h"
#include "runtime/rt-monitor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	int64_t n;
	const struct rt_log_read_opts *o;
};

static int on_entry(const struct rt_log_entry *e, void *arg)
{
	struct seen *s = arg;

	if ((e->stream != 1 && e->stream != 2) || (e->len > 0 && e->data == NULL))
		abort();
	if ((e->stream == 1 && !s->o->want_stdout) || (e->stream == 2 && !s->o->want_stderr))
		abort(); /* the stream filter let one through */
	if (s->o->since_ns > 0 && e->time_ns < s->o->since_ns)
		abort();
	s->n++;
	return 0;
}

static void fuzz_frames(const uint8_t *data, size_t size)
{
	uint8_t hdr[RT_MONITOR_FRAME_HDR], type;
	uint32_t len;

	while (size >= RT_MONITOR_FRAME_HDR) {
		if (rt_frame_parse(data, &type, &len) < 0) {
			if (len <= RT_MONITOR_FRAME_MAX)
				abort();
			return;
		}
		rt_frame_header(hdr, type, len);
		if (memcmp(hdr, data, sizeof(hdr)) != 0)
			abort(); /* header and parser disagree */
		data += RT_MONITOR_FRAME_HDR;
		size -= RT_MONITOR_FRAME_HDR;
		data += len < size ? len : size;
		size -= len < size ? len : size;
	}
}

static void fuzz_small(const uint8_t *data, size_t size)
{
	struct rt_monitor_state st;
	struct bh_err err = {0};
	char *s = bh_strndup((const char *)data, size);
	int64_t ns;

	memset(&st, 0, sizeof(st));
	if (rt_monitor_parse_exit((const char *)data, size, &st, &err) == 0 &&
	    (st.status != RT_MONITOR_EXITED || strlen(st.finished_at) >= sizeof(st.finished_at)))
		abort();
	rt_log_parse_time(s, &ns);
	free(s);
}

static void fuzz_logs(const uint8_t *data, size_t size)
{
	static char *path, *rotated;
	struct rt_log_read_opts o = {.stop_fd = -1};
	struct seen seen = {.o = &o};
	struct bh_err err = {0};
	size_t cut;

	if (path == NULL) {
		path = fz_path("c-json.log");
		rotated = fz_path("c-json.log.1");
	}
	o.want_stdout = data[0] & 1;
	o.want_stderr = data[0] & 2;
	o.timestamps = data[0] & 4;
	o.tail = data[0] & 8 ? data[1] : -1;
	o.since_ns = data[0] & 16 ? 1700000000000000000LL : 0;
	o.until_ns = data[0] & 32 ? 1800000000000000000LL : 0;
	data += 3, size -= 3;
	cut = data[-1] % (size + 1);
	if (data[-3] & 64) { /* rotated: the first part is the older file */
		fz_write_file(rotated, data, cut, 0600);
		fz_write_file(path, data + cut, size - cut, 0600);
	} else {
		unlink(rotated);
		fz_write_file(path, data, size, 0600);
	}
	if (rt_log_read(path, &o, on_entry, &seen, &err) == 0 && o.tail >= 0 && seen.n > o.tail)
		abort(); /* tail delivered too much */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_frames(data, size);
	fuzz_small(data, size);
	if (size >= 3)
		fuzz_logs(data, size);
	return 0;
}
