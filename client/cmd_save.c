/* berth save (GET /images/get?names=...) and the download helper export
 * shares: a tar body streamed to a file (written as FILE.part, renamed
 * when complete, so a failure never leaves a plausible truncated archive)
 * or to stdout when that is not a terminal. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client-internal.h"

#define ERR_BODY_MAX (64 * 1024)
#define MAX_NAMES    256

struct download {
	struct cli_http *h;
	FILE *out;
	int status;
	struct bh_buf err_body;
};

static int download_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct download *d = arg;

	if (d->status == 0)
		d->status = cli_http_status(d->h);
	if (d->status >= 300) {
		if (bh_buf_append(&d->err_body, data, len) < 0)
			return bh_err_set(err, EFBIG, "error reply too large");
		return 0;
	}
	if (fwrite(data, 1, len, d->out) != len)
		return bh_err_set(err, errno ? errno : EIO, "write: %s", strerror(errno));
	return 0;
}

static int download_to(struct cli *cli, const char *what, const char *path, FILE *out)
{
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct download d = {.out = out};
	struct bh_err err = {0};
	int status, rc = 0;

	if (cli_api_http(cli, &d.h) < 0)
		return -1;
	bh_buf_init(&d.err_body, ERR_BODY_MAX);
	status = cli_http_stream(d.h, &rq, download_sink, &d, &err);
	if (status < 0)
		rc = cli_fail(cli, CLI_EXIT_CMD, "%s: %s", what, err.msg);
	else if (status >= 300)
		rc = cli_api_error(cli, CLI_EXIT_CMD, status, &d.err_body);
	else if (fflush(out) != 0)
		rc = cli_fail(cli, CLI_EXIT_CMD, "%s: write: %s", what, strerror(errno));
	bh_buf_free(&d.err_body);
	return rc;
}

int cli_download(struct cli *cli, const char *what, const char *path, const char *file)
{
	cleanup_free char *part = NULL;
	FILE *out;
	int rc;

	if (file == NULL || strcmp(file, "-") == 0) {
		if (isatty(STDOUT_FILENO))
			return cli_fail(
			    cli, CLI_EXIT_CMD,
			    "%s: cowardly refusing to write a tar to a terminal; use -o "
			    "FILE or redirect",
			    what);
		return download_to(cli, what, path, stdout);
	}
	part = bh_asprintf("%s.part", file);
	out = fopen(part, "wb");
	if (out == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: cannot create %.200s: %s", what, part,
		                strerror(errno));
	rc = download_to(cli, what, path, out);
	if (fclose(out) != 0 && rc == 0)
		rc = cli_fail(cli, CLI_EXIT_CMD, "%s: write %.200s: %s", what, part,
		              strerror(errno));
	if (rc == 0 && rename(part, file) < 0)
		rc = cli_fail(cli, CLI_EXIT_CMD, "%s: rename to %.200s: %s", what, file,
		              strerror(errno));
	if (rc < 0)
		unlink(part);
	return rc;
}

struct save_opts {
	const char *output;
	const char *format;
};

static const struct option save_long[] = {
    {"output", required_argument, NULL, 'o'},
    {"format", required_argument, NULL, 'F'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int save_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct save_opts *o = data;

	if (c == 'o')
		o->output = arg;
	else if (c == 'F' && (strcmp(arg, "docker") == 0 || strcmp(arg, "oci") == 0))
		o->format = arg;
	else if (c == 'F')
		return cli_fail(cli, CLI_EXIT_CMD,
		                "save: unknown --format \"%.40s\" (docker or oci)", arg);
	else
		return cli_fail(cli, CLI_EXIT_CMD, "save: unexpected option %d", c);
	return 0;
}

static char *save_path(char **names, int n, const char *format)
{
	struct bh_buf b;
	char *out;

	bh_buf_init(&b, 1024 * 1024);
	bh_buf_printf(&b, "/images/get?format=%s", format ? format : "docker");
	for (int i = 0; i < n; i++) {
		cleanup_free char *e = cli_url_escape(names[i]);
		bh_buf_printf(&b, "&names=%s", e);
	}
	out = bh_strdup(b.data ? b.data : "");
	bh_buf_free(&b);
	return out;
}

int cmd_save(struct cli *cli, int argc, char **argv)
{
	struct save_opts o = {0};
	struct cli_opts opts = {"save",
	                        "Usage: berth save [-o FILE] [--format docker|oci] IMAGE...\n\n"
	                        "Write images to a tar archive (docker-archive, or an OCI image\n"
	                        "layout with --format oci); stdout unless -o FILE.\n",
	                        "o:",
	                        save_long,
	                        save_flag,
	                        &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *path = NULL;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n == 0 || n > MAX_NAMES)
		return cli_fail(cli, CLI_EXIT_CMD, "save: requires 1 to %d images", MAX_NAMES);
	path = save_path(pos, n, o.format);
	return cli_download(cli, "save", path, o.output);
}
