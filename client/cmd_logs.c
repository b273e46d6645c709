/* berth logs: a container's output, demuxed to our stdout and stderr (raw when
 * the container has a TTY), optionally followed until the container stops. */
#include <string.h>
#include <time.h>

#include "client/client-internal.h"

struct logs_opts {
	bool follow, timestamps;
	char tail[24];
	char since[64];
};

static const struct option logs_long[] = {
    {"follow", no_argument, NULL, 'f'},     {"tail", required_argument, NULL, 'n'},
    {"timestamps", no_argument, NULL, 't'}, {"since", required_argument, NULL, 'S'},
    {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
};

static const char logs_usage[] =
    "Usage: berth logs [-f] [--tail N] [-t] [--since TIME] CONTAINER\n\n"
    "Print a container's output: its stdout on stdout, its stderr on stderr.\n\n"
    "  -f, --follow       keep printing until the container stops\n"
    "  -n, --tail N       only the last N lines (or all)\n"
    "  -t, --timestamps   prefix each line with its time\n"
    "      --since TIME   from TIME on: 10m, 2h, RFC 3339 or Unix seconds\n";

static int logs_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct logs_opts *o = data;
	long n;

	switch (c) {
	case 'f':
		o->follow = true;
		return 0;
	case 't':
		o->timestamps = true;
		return 0;
	case 'n':
		if (strcmp(arg, "all") != 0 && bh_parse_long(arg, 0, 1L << 40, &n) < 0)
			return cli_fail(cli, CLI_EXIT_CMD,
			                "logs: invalid --tail \"%.40s\": want a number or all",
			                arg);
		bh_strlcpy(o->tail, arg, sizeof(o->tail));
		return 0;
	case 'S':
		if (cli_parse_since(arg, (int64_t)time(NULL), o->since, sizeof(o->since)) < 0)
			return cli_fail(
			    cli, CLI_EXIT_CMD,
			    "logs: invalid --since \"%.40s\": want 10m, 2h, an RFC 3339 "
			    "time or Unix seconds",
			    arg);
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "logs: unexpected option %d", c);
	}
}

/* Whether the container has a TTY (then its log is raw, not framed). */
static int container_tty(struct cli *cli, const char *esc, bool *tty)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/json", esc);
	struct cli_http_req rq = {.method = "GET", .path = path};
	json_t *doc = NULL;

	if (cli_api_json(cli, &rq, &doc) < 0)
		return -1;
	*tty = json_is_true(json_object_get(json_object_get(doc, "Config"), "Tty"));
	json_decref(doc);
	return 0;
}

static int stream_logs(struct cli *cli, const char *path, bool tty)
{
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct cli_stdio_sink sink;
	struct cli_http *h;
	struct bh_err err = {0};
	int status;

	if (cli_api_http(cli, &h) < 0)
		return -1;
	cli_stdio_sink_init(&sink, h, tty);
	status = cli_http_stream(h, &rq, cli_stdio_sink, &sink, &err);
	if (status >= 0 && status < 300 && cli_stdio_sink_end(&sink, &err) < 0)
		status = -1;
	if (status < 0)
		cli_fail(cli, CLI_EXIT_CMD, "logs: %s", err.msg);
	else if (status >= 300)
		cli_api_error(cli, CLI_EXIT_CMD, status, &sink.error_body);
	cli_stdio_sink_free(&sink);
	return status < 0 || status >= 300 ? -1 : 0;
}

int cmd_logs(struct cli *cli, int argc, char **argv)
{
	struct logs_opts o = {.tail = "all"};
	struct cli_opts opts = {"logs", logs_usage, "fn:t", logs_long, logs_flag, &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *esc = NULL, *path = NULL;
	bool tty = false;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "logs: requires exactly 1 argument: CONTAINER");
	esc = cli_url_escape(pos[0]);
	if (container_tty(cli, esc, &tty) < 0)
		return -1;
	path = bh_asprintf("/containers/%s/logs?stdout=1&stderr=1&tail=%s%s%s%s%s", esc, o.tail,
	                   o.follow ? "&follow=1" : "", o.timestamps ? "&timestamps=1" : "",
	                   o.since[0] ? "&since=" : "", o.since);
	return stream_logs(cli, path, tty);
}
