/* libFuzzer target: what the event store reads from outside.  The filters
 * and times of GET /events come from any viewer's query string; the event
 * files are read back at every start (a crash can tear them, an admin can
 * edit them).  Filters must parse or fail with a message; a loaded store
 * must hand out only JSON objects, with cursors that only grow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz-util.h"
#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_filter(const char *text)
{
	struct srv_evfilter f = {0};
	struct bh_err err = {0};
	json_t *ev;

	if (srv_evfilter_parse(text, &f.filters, &err) < 0) {
		if (err.msg[0] == '\0' || f.filters != NULL)
			abort(); /* a failure says why and leaves nothing */
		return;
	}
	ev = json_loads(text, 0, NULL); /* the same text as an event, shapes and all */
	if (ev == NULL)
		ev = json_object();
	(void)srv_evfilter_match(&f, ev);
	json_decref(ev);
	json_decref(f.filters);
}

static void check_store(const uint8_t *data, size_t size)
{
	cleanup_free char *root = fz_path("root");
	cleanup_free char *dir = bh_path_join(root, "events");
	cleanup_free char *file = bh_path_join(dir, "events.jsonl");
	struct srv_evread r = {0};
	struct srv_evfilter f = {0};
	struct bh_buf out;
	struct bh_err err = {0};
	uint64_t last = 0;

	if (bh_mkdir_p(dir, 0700, &err) < 0)
		abort();
	fz_write_file(file, data, size, 0600);
	if (srv_events_open(root, &err) < 0)
		abort();
	bh_buf_init(&out, 64 * 1024 * 1024);
	/* Cursors that start high look older than the ring from 0: the files
	 * are read first, as for a reader with an old cursor. */
	for (int i = 0; i < 3; i++) {
		srv_events_collect(&r, &f, &out, out.max);
		if (!r.need_file)
			break;
		if (srv_events_read_files(&r, &f, &out, out.max, &err) < 0)
			abort();
	}
	for (char *p = out.data, *nl; p && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		uint64_t c;
		int64_t t;
		json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
		if (!json_is_object(o) || srv_event_line_keys(p, (size_t)(nl - p), &c, &t) < 0 ||
		    c <= last)
			abort();
		last = c;
		json_decref(o);
	}
	srv_events_emit("container", "start", "x", NULL); /* appends after what was there */
	if (srv_events_last() != last + 1)
		abort();
	bh_buf_free(&out);
	srv_events_close();
	bh_rm_rf(root, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	int64_t ns;
	uint64_t c;
	int64_t t;
	struct bh_err err = {0};

	if (size > 64 * 1024)
		return 0;
	text = bh_strndup((const char *)data, size);
	check_filter(text);
	if (srv_evtime_parse(text, &ns, &err) == 0 && ns < 0)
		abort();
	(void)srv_event_line_keys((const char *)data, size, &c, &t);
	check_store(data, size);
	free(text);
	return 0;
}
