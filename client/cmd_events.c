/* berth events: GET /events, printed in docker's line format or as JSON
 * lines.  Without --until it follows until Ctrl-C (exit 0).  The daemon's
 * lines are input: each is bounded, parsed, and printed sanitised. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"

#define EVENT_LINE_MAX (64 * 1024)
#define EVENT_RESUMES  100 /* a follower dropped as too slow reconnects this often */

struct events_opts {
	char since[64], until[64];
	char cursor[24];
	json_t *filters; /* {"key":["v",...]} */
	bool json;
	bool resume; /* the daemon dropped us (too slow): go on from cursor */
};

static const struct option events_long[] = {
    {"since", required_argument, NULL, 's'},
    {"until", required_argument, NULL, 'u'},
    {"filter", required_argument, NULL, 'f'},
    {"format", required_argument, NULL, 'F'},
    {"cursor", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char events_usage[] =
    "Usage: berth events [--since T] [--until T] [--filter K=V]... [--format json]\n\n"
    "Print the daemon's events: containers, images and the audit log (who did\n"
    "what, from where).  Without --until: follow until Ctrl-C.\n\n"
    "  --since T        from T on: 10m, 2h, RFC 3339 or Unix seconds\n"
    "  --until T        up to T, then exit\n"
    "  -f, --filter K=V type=container|image|audit, event=start, container=NAME,\n"
    "                   image=REF, label=K[=V], identity=NAME (repeatable)\n"
    "  --format json    one JSON object per line\n"
    "  --cursor N       events after cursor N (each JSON event has one): a\n"
    "                   reader that reconnects with its last cursor loses nothing\n";

static int time_flag(struct cli *cli, const char *name, const char *arg, char *out, size_t size)
{
	if (cli_parse_since(arg, (int64_t)time(NULL), out, size) < 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "events: invalid --%s \"%.40s\": want 10m, 2h, an RFC 3339 time "
		                "or Unix seconds",
		                name, arg);
	return 0;
}

static int filter_flag(struct cli *cli, struct events_opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	cleanup_free char *key = NULL;
	json_t *vals;

	if (eq == NULL || eq == arg || eq[1] == '\0')
		return cli_fail(cli, CLI_EXIT_CMD,
		                "events: invalid --filter \"%.60s\": want KEY=VALUE", arg);
	key = bh_strndup(arg, (size_t)(eq - arg));
	vals = json_object_get(o->filters, key);
	if (vals == NULL) {
		vals = json_array();
		json_object_set_new(o->filters, key, vals);
	}
	json_array_append_new(vals, json_string(eq + 1));
	return 0;
}

static int events_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct events_opts *o = data;
	long n;

	switch (c) {
	case 's':
		return time_flag(cli, "since", arg, o->since, sizeof(o->since));
	case 'u':
		return time_flag(cli, "until", arg, o->until, sizeof(o->until));
	case 'f':
		return filter_flag(cli, o, arg);
	case 'F':
		if (strcmp(arg, "json") != 0 && strcmp(arg, "{{json .}}") != 0)
			return cli_fail(cli, CLI_EXIT_CMD,
			                "events: --format: only json is supported");
		o->json = true;
		return 0;
	case 'C':
		if (bh_parse_long(arg, 0, INT64_MAX / 2, &n) < 0)
			return cli_fail(cli, CLI_EXIT_CMD, "events: invalid --cursor \"%.30s\"",
			                arg);
		bh_strlcpy(o->cursor, arg, sizeof(o->cursor));
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "events: unexpected option %d", c);
	}
}

/* ---- printing ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* " (k=v, k=v)" with the keys sorted, like docker. */
static void format_attrs(json_t *attrs, struct bh_buf *out)
{
	size_t n = json_object_size(attrs), i = 0;
	cleanup_free const char **keys = NULL;
	const char *k;
	json_t *v;

	if (n == 0)
		return;
	keys = bh_calloc(n, sizeof(*keys));
	json_object_foreach(attrs, k, v) keys[i++] = k;
	qsort(keys, n, sizeof(*keys), cmp_str);
	bh_buf_append(out, " (", 2);
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_object_get(attrs, keys[i]));
		bh_buf_printf(out, "%s%s=%s", i ? ", " : "", keys[i], s ? s : "");
	}
	bh_buf_append(out, ")", 1);
}

int cli_event_format(json_t *ev, struct bh_buf *out)
{
	json_t *actor = json_object_get(ev, "Actor");
	json_int_t ns = json_integer_value(json_object_get(ev, "timeNano"));
	const char *type = json_string_value(json_object_get(ev, "Type"));
	const char *action = json_string_value(json_object_get(ev, "Action"));
	const char *id = json_string_value(json_object_get(actor, "ID"));
	char when[40];

	if (type == NULL || action == NULL)
		return -1;
	if (ns == 0)
		ns = json_integer_value(json_object_get(ev, "time")) * 1000000000;
	bh_rfc3339(when, (int64_t)(ns / 1000000000), (long)(ns % 1000000000));
	bh_buf_printf(out, "%s %s %s %s", when, type, action, id ? id : "");
	format_attrs(json_object_get(actor, "Attributes"), out);
	return 0;
}

static int print_line(struct cli *cli, struct events_opts *o, const char *line, size_t len)
{
	json_t *ev = json_loadb(line, len, 0, NULL);
	struct bh_buf out;
	cleanup_free char *clean = NULL;
	const char *error = json_string_value(json_object_get(ev, "error"));

	if (!json_is_object(ev)) {
		json_decref(ev);
		return cli_fail(cli, CLI_EXIT_CMD,
		                "events: the daemon sent a line that is not JSON");
	}
	if (error != NULL) {
		long long at = (long long)json_integer_value(json_object_get(ev, "cursor"));
		cli_fail(cli, CLI_EXIT_CMD, "events: %.200s (resume with --cursor %lld)", error,
		         at);
		/* A follower picks up where the daemon cut it off: nothing lost. */
		o->resume = o->until[0] == '\0' && json_is_integer(json_object_get(ev, "cursor"));
		snprintf(o->cursor, sizeof(o->cursor), "%lld", at);
		json_decref(ev);
		return -1;
	}
	bh_buf_init(&out, EVENT_LINE_MAX * 2);
	if (o->json)
		bh_buf_append(&out, line, len);
	else
		cli_event_format(ev, &out);
	json_decref(ev);
	clean = bh_malloc(out.len + 1);
	cli_sanitize(out.data ? out.data : "", clean, out.len + 1);
	bh_buf_free(&out);
	printf("%s\n", clean);
	fflush(stdout); /* a follower sees each event at once; Ctrl-C loses nothing */
	return 0;
}

/* ---- the stream ----------------------------------------------------------------- */

struct events_sink {
	struct cli *cli;
	struct events_opts *o;
	struct cli_http *h;
	struct bh_buf line;  /* the unfinished line */
	struct bh_buf error; /* a non-2xx body */
};

static int events_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct events_sink *s = arg;
	const char *p = data, *nl;

	if (cli_http_status(s->h) >= 300) {
		bh_buf_append(&s->error, data, len); /* bounded: the rest is dropped */
		return 0;
	}
	while (len > 0) {
		nl = memchr(p, '\n', len);
		size_t take = nl ? (size_t)(nl - p) : len;
		if (bh_buf_append(&s->line, p, take) < 0)
			return bh_err_set(err, EMSGSIZE, "events: a line longer than %d bytes",
			                  EVENT_LINE_MAX);
		if (nl == NULL)
			break;
		if (s->line.len > 0 && print_line(s->cli, s->o, s->line.data, s->line.len) < 0)
			return bh_err_set(err, EPROTO, "%s", s->cli->err.msg);
		bh_buf_reset(&s->line);
		len -= take + 1;
		p = nl + 1;
	}
	return 0;
}

static void on_interrupt(int sig)
{
	(void)sig;
	_exit(0); /* every printed line was flushed: nothing is lost */
}

static char *events_path(const struct events_opts *o)
{
	char *f = json_object_size(o->filters) ? json_dumps(o->filters, JSON_COMPACT) : NULL;
	cleanup_free char *fesc = f ? cli_url_escape(f) : NULL;
	char *path = bh_asprintf("/events?since=%s&until=%s%s%s%s%s", o->since, o->until,
	                         o->cursor[0] ? "&cursor=" : "", o->cursor, fesc ? "&filters=" : "",
	                         fesc ? fesc : "");

	free(f);
	return path;
}

static int stream_once(struct cli *cli, struct events_opts *o)
{
	cleanup_free char *path = events_path(o);
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct events_sink s = {.cli = cli, .o = o};
	struct bh_err err = {0};
	int status;

	if (cli_api_http(cli, &s.h) < 0)
		return -1;
	bh_buf_init(&s.line, EVENT_LINE_MAX);
	bh_buf_init(&s.error, 64 * 1024);
	signal(SIGINT, on_interrupt);
	status = cli_http_stream(s.h, &rq, events_sink, &s, &err);
	signal(SIGINT, SIG_DFL);
	if (status < 0 && cli->err.msg[0] == '\0')
		cli_fail(cli, CLI_EXIT_CMD, "events: %s", err.msg);
	else if (status >= 300)
		cli_api_error(cli, CLI_EXIT_CMD, status, &s.error);
	bh_buf_free(&s.line);
	bh_buf_free(&s.error);
	return status < 0 || status >= 300 ? -1 : 0;
}

static int stream_events(struct cli *cli, struct events_opts *o)
{
	for (int i = 0;; i++) {
		int r = stream_once(cli, o);
		if (r == 0 || !o->resume || i == EVENT_RESUMES)
			return r;
		fprintf(stderr, "berth: %s: resuming\n", cli->err.msg);
		cli->err.msg[0] = '\0';
		o->resume = false;
	}
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	struct events_opts o = {0};
	struct cli_opts opts = {"events", events_usage, "f:", events_long, events_flag, &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n, r;

	o.filters = json_object();
	n = cli_getopt(cli, argc, argv, &opts, pos);
	if (n > 0)
		n = cli_fail(cli, CLI_EXIT_CMD, "events: takes no arguments (see --help)");
	r = n < 0 ? n : stream_events(cli, &o);
	json_decref(o.filters);
	return r;
}
