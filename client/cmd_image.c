/* berth load (POST /images/load with the tar as a Content-Length body) and
 * berth images (GET /images/json as docker's table).  The tar is the user's;
 * the daemon's progress lines are untrusted text, parsed with a bounded
 * line buffer and sanitised before they reach the terminal. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"

#define LOAD_SPOOL_MAX ((int64_t)64 * 1024 * 1024 * 1024) /* a piped tar, spooled */
#define LOAD_LINE_MAX  (1024 * 1024)

/* ---- load ----------------------------------------------------------------- */

struct load_opts {
	const char *input;
	bool quiet;
};

static const struct option load_long[] = {
    {"input", required_argument, NULL, 'i'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int load_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct load_opts *o = data;

	if (c == 'i')
		o->input = arg;
	else if (c == 'q')
		o->quiet = true;
	else
		return cli_fail(cli, CLI_EXIT_CMD, "load: unexpected option %d", c);
	return 0;
}

/* A pipe has no length: copy it into a temporary file first, so the upload
 * carries a Content-Length (the daemon needs one). */
static int spool(struct cli *cli, FILE *in, FILE **out, int64_t *len)
{
	char buf[65536];
	FILE *tmp = tmpfile();
	int64_t total = 0;
	size_t n;

	if (tmp == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "load: cannot create a temporary file: %s",
		                strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		total += (int64_t)n;
		if (total > LOAD_SPOOL_MAX || fwrite(buf, 1, n, tmp) != n) {
			fclose(tmp);
			return cli_fail(cli, CLI_EXIT_CMD, "load: cannot spool stdin (%s)",
			                total > LOAD_SPOOL_MAX ? "larger than 64 GiB"
			                                       : strerror(errno));
		}
	}
	if (ferror(in) || fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0) {
		fclose(tmp);
		return cli_fail(cli, CLI_EXIT_CMD, "load: cannot read stdin: %s", strerror(errno));
	}
	*out = tmp;
	*len = total;
	return 0;
}

/* The tar to send and its length: -i FILE, or stdin when it is no terminal. */
static int open_input(struct cli *cli, const struct load_opts *o, FILE **f, int64_t *len)
{
	struct stat st;
	off_t pos;

	if (o->input != NULL && strcmp(o->input, "-") != 0) {
		*f = fopen(o->input, "rb");
		if (*f == NULL)
			return cli_fail(cli, CLI_EXIT_CMD, "load: cannot open %.200s: %s", o->input,
			                strerror(errno));
		if (fstat(fileno(*f), &st) < 0 || !S_ISREG(st.st_mode)) {
			fclose(*f);
			return cli_fail(cli, CLI_EXIT_CMD, "load: %.200s is not a regular file",
			                o->input);
		}
		*len = (int64_t)st.st_size;
		return 0;
	}
	if (isatty(STDIN_FILENO))
		return cli_fail(cli, CLI_EXIT_CMD,
		                "load: requested load from stdin, but stdin is empty (a terminal); "
		                "use -i FILE or berth load < FILE");
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (pos = lseek(STDIN_FILENO, 0, SEEK_CUR)) >= 0) {
		*f = stdin;
		*len = (int64_t)(st.st_size - pos);
		return 0;
	}
	return spool(cli, stdin, f, len);
}

/* The reply: JSON lines {"stream": "..."} or {"error": ..., "errorDetail": ...}. */
struct load_reply {
	struct cli_http *h;
	int status;
	struct bh_buf line;  /* the line being received */
	struct bh_buf whole; /* a non-2xx reply's body */
	char error[800];
};

static void print_stream_text(const char *text)
{
	char clean[1024];

	while (*text != '\0') {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		cleanup_free char *one = bh_strndup(text, len);
		cli_sanitize(one, clean, sizeof(clean));
		if (clean[0] != '\0')
			printf("%s\n", clean);
		text += len + (nl != NULL);
	}
	fflush(stdout);
}

static void load_line(struct load_reply *r, const char *line, size_t len)
{
	json_t *doc = json_loadb(line, len, 0, NULL);
	json_t *detail = json_object_get(json_object_get(doc, "errorDetail"), "message");
	const char *msg = json_string_value(detail);

	if (msg == NULL)
		msg = json_string_value(json_object_get(doc, "error"));
	if (msg != NULL && r->error[0] == '\0')
		cli_sanitize(msg, r->error, sizeof(r->error));
	else if (json_is_string(json_object_get(doc, "stream")))
		print_stream_text(json_string_value(json_object_get(doc, "stream")));
	json_decref(doc);
}

static int load_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct load_reply *r = arg;
	const char *p = data;

	if (r->status == 0)
		r->status = cli_http_status(r->h);
	if (r->status >= 300) {
		if (bh_buf_append(&r->whole, data, len) < 0)
			return bh_err_set(err, EFBIG, "error reply too large");
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n') {
			if (bh_buf_append(&r->line, p + i, 1) < 0)
				return bh_err_set(err, EFBIG, "a reply line longer than %d bytes",
				                  LOAD_LINE_MAX);
			continue;
		}
		if (r->line.len > 0)
			load_line(r, r->line.data, r->line.len);
		bh_buf_reset(&r->line);
	}
	return 0;
}

static int send_tar(struct cli *cli, const struct load_opts *o, FILE *f, int64_t len)
{
	struct cli_http_req rq = {.method = "POST",
	                          .path = o->quiet ? "/images/load?quiet=1" : "/images/load",
	                          .content_type = "application/x-tar",
	                          .upload = f,
	                          .upload_len = len};
	struct load_reply r = {0};
	struct bh_err err = {0};
	int status, rc = 0;

	if (cli_api_http(cli, &r.h) < 0)
		return -1;
	bh_buf_init(&r.line, LOAD_LINE_MAX);
	bh_buf_init(&r.whole, 64 * 1024);
	status = cli_http_stream(r.h, &rq, load_sink, &r, &err);
	if (status >= 0 && status < 300 && r.line.len > 0)
		load_line(&r, r.line.data, r.line.len);
	if (status < 0)
		rc = cli_fail(cli, err.code == EIO ? CLI_EXIT_DAEMON : CLI_EXIT_CMD, "load: %s",
		              err.msg);
	else if (status >= 300)
		rc = cli_api_error(cli, CLI_EXIT_CMD, status, &r.whole);
	else if (r.error[0] != '\0')
		rc = cli_fail(cli, CLI_EXIT_CMD, "Error response from daemon: %s", r.error);
	bh_buf_free(&r.line);
	bh_buf_free(&r.whole);
	return rc;
}

int cmd_load(struct cli *cli, int argc, char **argv)
{
	struct load_opts o = {0};
	struct cli_opts opts = {"load",
	                        "Usage: berth load [-q] [-i FILE | < FILE]\n\n"
	                        "Load images from a tar archive (docker save's or "
	                        "an OCI layout).\n\n"
	                        "  -i, --input FILE   read FILE instead of stdin\n"
	                        "  -q, --quiet        print less\n",
	                        "i:q",
	                        load_long,
	                        load_flag,
	                        &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	FILE *f = NULL;
	int64_t len = 0;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n > 0)
		return cli_fail(cli, CLI_EXIT_CMD, "load: unexpected argument \"%.80s\"", pos[0]);
	if (n < 0 || open_input(cli, &o, &f, &len) < 0)
		return n < 0 ? n : -1;
	n = send_tar(cli, &o, f, len);
	if (f != stdin)
		fclose(f);
	return n;
}

/* ---- images ---------------------------------------------------------------- */

struct images_opts {
	bool quiet, json, no_trunc;
	struct bh_buf *out; /* set: the JSON lines go here, not to stdout */
};

static const struct option images_long[] = {
    {"quiet", no_argument, NULL, 'q'},    {"format", required_argument, NULL, 'F'},
    {"no-trunc", no_argument, NULL, 'N'}, {"all", no_argument, NULL, 'a'},
    {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0},
};

static int images_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct images_opts *o = data;

	switch (c) {
	case 'q':
		o->quiet = true;
		return 0;
	case 'N':
		o->no_trunc = true;
		return 0;
	case 'a': /* no intermediate images exist without build: same list */
		return 0;
	case 'F':
		if (strcmp(arg, "json") != 0)
			return cli_fail(cli, CLI_EXIT_CMD,
			                "images: unknown --format \"%.40s\" (only json)", arg);
		o->json = true;
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "images: unexpected option %d", c);
	}
}

struct image_row {
	char repo[512], tag[256], id[80], created[80], created_at[64], size[32];
};

/* "repo:tag" split at the last colon after the last slash. */
static void split_tag(const char *ref, struct image_row *r)
{
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');

	if (colon == NULL) {
		bh_strlcpy(r->repo, ref, sizeof(r->repo));
		bh_strlcpy(r->tag, "<none>", sizeof(r->tag));
		return;
	}
	snprintf(r->repo, sizeof(r->repo), "%.*s", (int)(colon - ref), ref);
	bh_strlcpy(r->tag, colon + 1, sizeof(r->tag));
}

static void image_common(json_t *img, bool no_trunc, struct image_row *r)
{
	const char *id = json_string_value(json_object_get(img, "Id"));
	json_int_t created = json_integer_value(json_object_get(img, "Created"));
	time_t t = (time_t)created;
	struct tm *tm = gmtime(&t);
	char ago[64];

	id = id ? id : "";
	if (!no_trunc && bh_str_has_prefix(id, "sha256:"))
		id += strlen("sha256:");
	snprintf(r->id, sizeof(r->id), "%.*s", no_trunc ? 71 : 12, id);
	cli_human_duration((int64_t)time(NULL) - created, ago, sizeof(ago));
	snprintf(r->created, sizeof(r->created), "%s ago", ago);
	r->created_at[0] = '\0';
	if (tm != NULL)
		strftime(r->created_at, sizeof(r->created_at), "%Y-%m-%d %H:%M:%S +0000 UTC", tm);
	cli_human_size((double)json_integer_value(json_object_get(img, "Size")), r->size,
	               sizeof(r->size));
}

/* To stdout, or appended to out (-1 when it is full). */
static int image_json_line(const struct image_row *r, struct bh_buf *out)
{
	json_t *line =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Containers", "N/A", "CreatedAt",
	              r->created_at, "CreatedSince", r->created, "ID", r->id, "Repository", r->repo,
	              "Size", r->size, "Tag", r->tag, "VirtualSize", r->size);
	char *s = line ? json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char clean[2048];
	int rc = 0;

	if (s != NULL) {
		cli_sanitize(s, clean, sizeof(clean));
		if (out == NULL)
			printf("%s\n", clean);
		else
			rc = bh_buf_printf(out, "%s\n", clean);
	}
	free(s);
	json_decref(line);
	return rc;
}

static int image_rows(json_t *img, const struct images_opts *o, struct cli_table *t)
{
	json_t *tags = json_object_get(img, "RepoTags"), *tag;
	struct image_row r;
	size_t i, ntags = json_array_size(tags);

	image_common(img, o->no_trunc, &r);
	if (o->quiet) {
		cli_sanitize(r.id, r.id, sizeof(r.id));
		printf("%s\n", r.id);
		return 0;
	}
	for (i = 0; i < (ntags ? ntags : 1); i++) {
		tag = json_array_get(tags, i);
		if (json_is_string(tag)) {
			split_tag(json_string_value(tag), &r);
		} else {
			bh_strlcpy(r.repo, "<none>", sizeof(r.repo));
			bh_strlcpy(r.tag, "<none>", sizeof(r.tag));
		}
		if (o->json) {
			if (image_json_line(&r, o->out) < 0)
				return -1;
		} else {
			const char *row[] = {r.repo, r.tag, r.id, r.created, r.size};
			cli_table_add(t, row);
		}
	}
	return 0;
}

int cli_images_json_lines(json_t *list, bool no_trunc, struct bh_buf *out)
{
	struct images_opts o = {.json = true, .no_trunc = no_trunc, .out = out};
	json_t *img;
	size_t i;

	json_array_foreach(list, i, img)
	{
		if (image_rows(img, &o, NULL) < 0)
			return -1;
	}
	return 0;
}

int cmd_images(struct cli *cli, int argc, char **argv)
{
	static const char *const head[] = {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"};
	struct images_opts o = {0};
	struct cli_opts opts = {"images",
	                        "Usage: berth images [-q] [--no-trunc] [--format json]\n\n"
	                        "List the daemon's images.\n",
	                        "qa",
	                        images_long,
	                        images_flag,
	                        &o};
	struct cli_http_req rq = {.method = "GET", .path = "/images/json"};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	struct cli_table t;
	json_t *list = NULL, *img;
	size_t i;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n > 0)
		return cli_fail(cli, CLI_EXIT_CMD, "images: unexpected argument \"%.80s\"", pos[0]);
	if (n < 0 || cli_api_json(cli, &rq, &list) < 0)
		return n < 0 ? n : -1;
	if (!json_is_array(list)) {
		json_decref(list);
		return cli_fail(cli, CLI_EXIT_DAEMON, "images: the daemon's reply is not a list");
	}
	cli_table_init(&t, 5);
	cli_table_add(&t, head);
	json_array_foreach(list, i, img) image_rows(img, &o, &t);
	if (!o.quiet && !o.json)
		cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(list);
	return 0;
}
