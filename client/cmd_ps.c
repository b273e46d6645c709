/* berth ps: GET /containers/json as docker's table, IDs (-q) or JSON lines. */
#include <string.h>
#include <time.h>

#include "client/client-internal.h"

struct ps_opts {
	bool all, quiet, no_trunc, json;
	json_t *filters; /* {"name": ["x"], ...} */
};

static const struct option ps_long[] = {
    {"all", no_argument, NULL, 'a'},
    {"quiet", no_argument, NULL, 'q'},
    {"no-trunc", no_argument, NULL, 'N'},
    {"format", required_argument, NULL, 'F'},
    {"filter", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char ps_usage[] =
    "Usage: berth ps [-a] [-q] [--no-trunc] [--format json] [--filter KEY=VALUE]...\n\n"
    "List containers (running ones unless -a).\n\n"
    "  -a, --all            show all containers\n"
    "  -q, --quiet          only the IDs\n"
    "      --no-trunc       full IDs and commands\n"
    "      --format json    one JSON object per line\n"
    "  -f, --filter K=V     name=, id=, status=, label= (as docker)\n";

static int add_filter(struct cli *cli, struct ps_opts *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	cleanup_free char *key = eq ? bh_strndup(kv, (size_t)(eq - kv)) : NULL;
	json_t *list;

	if (key == NULL || key[0] == '\0')
		return cli_fail(cli, CLI_EXIT_CMD, "ps: invalid --filter \"%.80s\": want KEY=VALUE",
		                kv);
	list = json_object_get(o->filters, key);
	if (list == NULL) {
		list = json_array();
		json_object_set_new(o->filters, key, list);
	}
	json_array_append_new(list, json_string(eq + 1));
	return 0;
}

static int ps_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct ps_opts *o = data;

	switch (c) {
	case 'a':
		o->all = true;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case 'N':
		o->no_trunc = true;
		return 0;
	case 'F':
		if (strcmp(arg, "json") != 0)
			return cli_fail(cli, CLI_EXIT_CMD,
			                "ps: unknown --format \"%.40s\" (only json)", arg);
		o->json = true;
		return 0;
	case 'f':
		return add_filter(cli, o, arg);
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "ps: unexpected option %d", c);
	}
}

static char *ps_path(const struct ps_opts *o)
{
	cleanup_free char *f = NULL, *esc = NULL;

	if (json_object_size(o->filters) == 0)
		return bh_strdup(o->all ? "/containers/json?all=1" : "/containers/json");
	f = json_dumps(o->filters, JSON_COMPACT | JSON_SORT_KEYS);
	esc = cli_url_escape(f);
	return bh_asprintf("/containers/json?%sfilters=%s", o->all ? "all=1&" : "", esc);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* The fields of one row, in docker's words. */
struct ps_row {
	char id[80];
	char command[8192];
	char created[80];
	char created_at[64];
	char names[1024];
};

static void names_of(json_t *c, char *out, size_t n)
{
	struct bh_buf b;
	json_t *v;
	size_t i;

	bh_buf_init(&b, n > 0 ? n - 1 : 0);
	json_array_foreach(json_object_get(c, "Names"), i, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL)
			continue;
		if (s[0] == '/')
			s++;
		if (strchr(s, '/') != NULL)
			continue; /* a link's alias, as docker hides it */
		if (b.len > 0)
			bh_buf_append(&b, ",", 1);
		bh_buf_append(&b, s, strlen(s));
	}
	bh_strlcpy(out, b.data ? b.data : "", n);
	bh_buf_free(&b);
}

static void row_of(json_t *c, bool no_trunc, struct ps_row *r)
{
	json_int_t created = json_integer_value(json_object_get(c, "Created"));
	time_t t = (time_t)created;
	struct tm *tm = gmtime(&t);
	char ago[64];

	snprintf(r->id, sizeof(r->id), "%.*s", no_trunc ? 64 : 12, str(c, "Id"));
	cli_quote_command(str(c, "Command"), no_trunc, r->command, sizeof(r->command));
	cli_human_duration((int64_t)time(NULL) - created, ago, sizeof(ago));
	snprintf(r->created, sizeof(r->created), "%s ago", ago);
	r->created_at[0] = '\0';
	if (tm != NULL)
		strftime(r->created_at, sizeof(r->created_at), "%Y-%m-%d %H:%M:%S +0000 UTC", tm);
	names_of(c, r->names, sizeof(r->names));
}

static void labels_text(json_t *c, struct bh_buf *b)
{
	const char *k;
	json_t *v;

	json_object_foreach(json_object_get(c, "Labels"), k, v)
	{
		if (b->len > 0)
			bh_buf_append(b, ",", 1);
		bh_buf_printf(b, "%s=%s", k, json_string_value(v) ? json_string_value(v) : "");
	}
}

/* To stdout, or appended to out (-1 when it is full). */
static int print_json_line(json_t *c, const struct ps_row *r, struct bh_buf *out)
{
	struct bh_buf labels;
	json_t *line;
	char *s;
	int rc = 0;

	bh_buf_init(&labels, 64 * 1024);
	labels_text(c, &labels);
	line = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Command",
	                 r->command, "CreatedAt", r->created_at, "ID", r->id, "Image",
	                 str(c, "Image"), "Labels", labels.data ? labels.data : "", "Names",
	                 r->names, "Networks", str(json_object_get(c, "HostConfig"), "NetworkMode"),
	                 "Ports", "", "RunningFor", r->created, "State", str(c, "State"), "Status",
	                 str(c, "Status"));
	s = line ? json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (s != NULL && out == NULL)
		printf("%s\n", s);
	else if (s != NULL)
		rc = bh_buf_printf(out, "%s\n", s);
	free(s);
	json_decref(line);
	bh_buf_free(&labels);
	return rc;
}

int cli_ps_json_lines(json_t *list, bool no_trunc, struct bh_buf *out)
{
	struct ps_row r;
	json_t *c;
	size_t i;

	json_array_foreach(list, i, c)
	{
		row_of(c, no_trunc, &r);
		if (print_json_line(c, &r, out) < 0)
			return -1;
	}
	return 0;
}

static void print_list(json_t *list, const struct ps_opts *o)
{
	static const char *const head[] = {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
	                                   "STATUS",       "PORTS", "NAMES"};
	struct cli_table t;
	struct ps_row r;
	json_t *c;
	size_t i;

	cli_table_init(&t, 7);
	cli_table_add(&t, head);
	json_array_foreach(list, i, c)
	{
		row_of(c, o->no_trunc, &r);
		if (o->quiet) {
			cli_sanitize(r.id, r.id, sizeof(r.id));
			printf("%s\n", r.id);
		} else if (o->json) {
			print_json_line(c, &r, NULL);
		} else {
			const char *row[] = {r.id,      str(c, "Image"),  r.command,
			                     r.created, str(c, "Status"), "",
			                     r.names};
			cli_table_add(&t, row);
		}
	}
	if (!o->quiet && !o->json)
		cli_table_print(&t, stdout);
	cli_table_free(&t);
}

int cmd_ps(struct cli *cli, int argc, char **argv)
{
	struct ps_opts o = {.filters = json_object()};
	struct cli_opts opts = {"ps", ps_usage, "aqf:", ps_long, ps_flag, &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *path = NULL;
	json_t *list = NULL;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n > 0)
		n = cli_fail(cli, CLI_EXIT_CMD, "ps: unexpected argument \"%.80s\"", pos[0]);
	if (n == 0) {
		path = ps_path(&o);
		struct cli_http_req rq = {.method = "GET", .path = path};
		n = cli_api_json(cli, &rq, &list);
	}
	if (n == 0 && !json_is_array(list))
		n = cli_fail(cli, CLI_EXIT_DAEMON, "ps: the daemon's reply is not a list");
	if (n == 0)
		print_list(list, &o);
	json_decref(list);
	json_decref(o.filters);
	return n;
}
