/* berth pull [-q] [--platform P] REF: POST /images/create?fromImage=&tag=
 * with X-Registry-Auth, and the progress renderer pull and push share.  The
 * daemon's lines are untrusted: each is bounded, parsed as JSON and
 * sanitised before it reaches the terminal. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client-internal.h"

#define LINE_MAX_BYTES (64 * 1024)
#define MAX_ROWS       256 /* layers shown with a bar */
#define BAR_WIDTH      40

struct row {
	char id[16];
	char text[200];
};

struct progress {
	struct cli_http *h;
	int status;
	FILE *out; /* NULL: quiet */
	bool tty;
	struct bh_buf line;
	struct bh_buf whole; /* a non-2xx reply */
	char error[800];
	struct row rows[MAX_ROWS];
	size_t nrows;
};

static void bar(char *out, size_t len, int64_t cur, int64_t total)
{
	int fill = total > 0 ? (int)(cur * BAR_WIDTH / total) : 0;
	char b[BAR_WIDTH + 1];
	char human_c[32], human_t[32];

	fill = fill < 0 ? 0 : fill > BAR_WIDTH ? BAR_WIDTH : fill;
	memset(b, '=', (size_t)fill);
	if (fill < BAR_WIDTH)
		b[fill > 0 ? fill - 1 : 0] = fill > 0 ? '>' : ' ';
	memset(b + fill, ' ', (size_t)(BAR_WIDTH - fill));
	b[BAR_WIDTH] = '\0';
	cli_human_size((double)cur, human_c, sizeof(human_c));
	cli_human_size((double)total, human_t, sizeof(human_t));
	snprintf(out, len, "[%s] %s/%s", b, human_c, human_t);
}

/* TTY: one line per layer, rewritten in place with cursor movements. */
static void tty_update(struct progress *p, const char *id, const char *text)
{
	size_t i;

	for (i = 0; i < p->nrows; i++)
		if (strcmp(p->rows[i].id, id) == 0)
			break;
	if (i == p->nrows) {
		if (p->nrows == MAX_ROWS) {
			fprintf(p->out, "%s: %s\n", id, text);
			return;
		}
		bh_strlcpy(p->rows[i].id, id, sizeof(p->rows[i].id));
		p->nrows++;
		fprintf(p->out, "\n");
	}
	bh_strlcpy(p->rows[i].text, text, sizeof(p->rows[i].text));
	size_t up = p->nrows - i;
	fprintf(p->out, "\033[%zuA\r\033[2K%s: %s\033[%zuB\r", up, id, text, up);
}

static void show(struct progress *p, json_t *doc)
{
	char status[300], id[16] = "", text[300];
	const char *st = json_string_value(json_object_get(doc, "status"));
	const char *rid = json_string_value(json_object_get(doc, "id"));
	json_t *pd = json_object_get(doc, "progressDetail");
	int64_t cur = json_integer_value(json_object_get(pd, "current"));
	int64_t total = json_integer_value(json_object_get(pd, "total"));
	bool moving = st && (strcmp(st, "Downloading") == 0 || strcmp(st, "Extracting") == 0 ||
	                     strcmp(st, "Pushing") == 0);

	if (st == NULL || p->out == NULL)
		return;
	cli_sanitize(st, status, sizeof(status));
	if (rid)
		cli_sanitize(rid, id, sizeof(id));
	if (p->tty && id[0] && !bh_str_has_prefix(status, "Pulling from")) {
		if (moving && total > 0) {
			char b[120];
			bar(b, sizeof(b), cur, total);
			snprintf(text, sizeof(text), "%s %s", status, b);
		} else {
			snprintf(text, sizeof(text), "%s", status);
		}
		tty_update(p, id, text);
	} else if (!moving) {
		if (id[0])
			fprintf(p->out, "%s: %s\n", id, status);
		else
			fprintf(p->out, "%s\n", status);
	}
	fflush(p->out);
}

static void progress_line(struct progress *p, const char *line, size_t len)
{
	json_t *doc = json_loadb(line, len, 0, NULL);
	const char *msg =
	    json_string_value(json_object_get(json_object_get(doc, "errorDetail"), "message"));

	if (msg == NULL)
		msg = json_string_value(json_object_get(doc, "error"));
	if (msg != NULL && p->error[0] == '\0')
		cli_sanitize(msg, p->error, sizeof(p->error));
	else if (msg == NULL)
		show(p, doc);
	json_decref(doc);
}

static int progress_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct progress *p = arg;
	const char *c = data;

	if (p->status == 0)
		p->status = cli_http_status(p->h);
	if (p->status >= 300) {
		if (bh_buf_append(&p->whole, data, len) < 0)
			return bh_err_set(err, EFBIG, "error reply too large");
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (c[i] != '\n') {
			if (bh_buf_append(&p->line, c + i, 1) < 0)
				return bh_err_set(err, EFBIG, "a reply line longer than %d bytes",
				                  LINE_MAX_BYTES);
			continue;
		}
		if (p->line.len > 0)
			progress_line(p, p->line.data, p->line.len);
		bh_buf_reset(&p->line);
	}
	return 0;
}

int cli_progress_request(struct cli *cli, const struct cli_http_req *rq, const char *auth,
                         FILE *out)
{
	struct progress *p = bh_calloc(1, sizeof(*p));
	struct bh_err err = {0};
	int status, rc = 0;

	if (cli_api_http(cli, &p->h) < 0) {
		free(p);
		return -1;
	}
	p->out = out;
	cli_http_set_extra_header(p->h, auth);
	p->tty = out != NULL && isatty(fileno(out));
	bh_buf_init(&p->line, LINE_MAX_BYTES);
	bh_buf_init(&p->whole, 64 * 1024);
	status = cli_http_stream(p->h, rq, progress_sink, p, &err);
	if (status >= 0 && status < 300 && p->line.len > 0)
		progress_line(p, p->line.data, p->line.len);
	if (status < 0)
		rc = cli_fail(cli, CLI_EXIT_DAEMON, "%s", err.msg);
	else if (status >= 300)
		rc = cli_api_error(cli, CLI_EXIT_CMD, status, &p->whole);
	else if (p->error[0] != '\0')
		rc = cli_fail(cli, CLI_EXIT_CMD, "%s", p->error);
	cli_http_set_extra_header(p->h, NULL);
	bh_buf_free(&p->line);
	bh_buf_free(&p->whole);
	free(p);
	return rc;
}

/* ---- pull ------------------------------------------------------------------- */

struct pull_opts {
	bool quiet;
	const char *platform;
};

static const struct option pull_long[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"platform", required_argument, NULL, 'P'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int pull_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct pull_opts *o = data;

	if (c == 'q')
		o->quiet = true;
	else if (c == 'P')
		o->platform = arg;
	else
		return cli_fail(cli, CLI_EXIT_CMD, "pull: unexpected option %d", c);
	return 0;
}

int cli_pull_image(struct cli *cli, const char *image, const char *platform, FILE *out)
{
	cleanup_free char *ref = NULL, *from = NULL, *plat = NULL, *path = NULL;
	cleanup_free char *registry = NULL, *auth = NULL;
	int rc;

	ref = strchr(image, '@') ? bh_strdup(image) : cli_image_ref_tagged(image);
	from = cli_url_escape(ref);
	plat = platform ? cli_url_escape(platform) : NULL;
	path = bh_asprintf("/images/create?fromImage=%s%s%s", from, plat ? "&platform=" : "",
	                   plat ? plat : "");
	registry = cli_ref_registry(image);
	auth = cli_registry_auth_header(cli, registry);
	struct cli_http_req rq = {.method = "POST", .path = path};
	rc = cli_progress_request(cli, &rq, auth, out);
	bh_wipe(auth, strlen(auth));
	return rc;
}

int cmd_pull(struct cli *cli, int argc, char **argv)
{
	struct pull_opts o = {0};
	const struct cli_opts opts = {
	    .name = "pull",
	    .usage = "Usage: berth pull [-q] [--platform OS/ARCH[/VARIANT]] NAME[:TAG|@DIGEST]\n",
	    .shortopts = "qh",
	    .longopts = pull_long,
	    .fn = pull_flag,
	    .data = &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	cleanup_free char *ref = NULL;
	int n = cli_getopt(cli, argc, argv, &opts, pos), rc;

	if (n < 0)
		return n == -2 ? 0 : -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "pull: want exactly one image reference");
	rc = cli_pull_image(cli, pos[0], o.platform, o.quiet ? NULL : stdout);
	ref = strchr(pos[0], '@') ? bh_strdup(pos[0]) : cli_image_ref_tagged(pos[0]);
	if (rc == 0 && o.quiet)
		printf("%s\n", ref);
	return rc;
}
