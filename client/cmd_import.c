/* berth import FILE|- [REPO[:TAG]]: POST /images/create?fromSrc=- with the
 * rootfs tar (plain, gzip, zstd) as a Content-Length body; a pipe is
 * spooled to a temporary file first.  Prints the new image id. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client-internal.h"

#define IMPORT_SPOOL_MAX ((int64_t)64 * 1024 * 1024 * 1024)
#define MAX_CHANGES      64

struct import_opts {
	const char *message;
	const char *changes[MAX_CHANGES];
	int nchanges;
};

static const struct option import_long[] = {
    {"change", required_argument, NULL, 'c'},
    {"message", required_argument, NULL, 'm'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int import_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct import_opts *o = data;

	if (c == 'm') {
		o->message = arg;
	} else if (c == 'c') {
		if (o->nchanges >= MAX_CHANGES)
			return cli_fail(cli, CLI_EXIT_CMD, "import: at most %d --change",
			                MAX_CHANGES);
		o->changes[o->nchanges++] = arg;
	} else {
		return cli_fail(cli, CLI_EXIT_CMD, "import: unexpected option %d", c);
	}
	return 0;
}

static int spool_stdin(struct cli *cli, FILE **out, int64_t *len)
{
	char buf[65536];
	FILE *tmp = tmpfile();
	int64_t total = 0;
	size_t n;

	if (tmp == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "import: cannot create a temporary file: %s",
		                strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		total += (int64_t)n;
		if (total > IMPORT_SPOOL_MAX || fwrite(buf, 1, n, tmp) != n) {
			fclose(tmp);
			return cli_fail(cli, CLI_EXIT_CMD, "import: cannot spool stdin");
		}
	}
	if (ferror(stdin) || fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0) {
		fclose(tmp);
		return cli_fail(cli, CLI_EXIT_CMD, "import: cannot read stdin: %s",
		                strerror(errno));
	}
	*out = tmp;
	*len = total;
	return 0;
}

static int open_source(struct cli *cli, const char *src, FILE **f, int64_t *len)
{
	struct stat st;

	if (strcmp(src, "-") == 0) {
		if (isatty(STDIN_FILENO))
			return cli_fail(cli, CLI_EXIT_CMD,
			                "import: stdin is a terminal, not a tar");
		return spool_stdin(cli, f, len);
	}
	*f = fopen(src, "rb");
	if (*f == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "import: cannot open %.200s: %s", src,
		                strerror(errno));
	if (fstat(fileno(*f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(*f);
		return cli_fail(cli, CLI_EXIT_CMD, "import: %.200s is not a regular file", src);
	}
	*len = (int64_t)st.st_size;
	return 0;
}

static char *import_path(const struct import_opts *o, const char *ref)
{
	cleanup_free char *rt = cli_repo_tag_query(ref);
	struct bh_buf b;
	char *out;

	bh_buf_init(&b, 256 * 1024);
	bh_buf_printf(&b, "/images/create?fromSrc=-%s", rt);
	cli_query_add(&b, "message", o->message);
	for (int i = 0; i < o->nchanges; i++)
		cli_query_add(&b, "changes", o->changes[i]);
	out = bh_strdup(b.data ? b.data : "");
	bh_buf_free(&b);
	return out;
}

static int send_import(struct cli *cli, const char *path, FILE *f, int64_t len)
{
	struct cli_http_req rq = {.method = "POST",
	                          .path = path,
	                          .content_type = "application/x-tar",
	                          .upload = f,
	                          .upload_len = len};
	json_t *reply = NULL;
	char clean[128];

	if (cli_api_json(cli, &rq, &reply) < 0)
		return -1;
	cli_sanitize(json_is_string(json_object_get(reply, "status"))
	                 ? json_string_value(json_object_get(reply, "status"))
	                 : "",
	             clean, sizeof(clean));
	printf("%s\n", clean);
	json_decref(reply);
	return 0;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	struct import_opts o = {0};
	struct cli_opts opts = {"import",
	                        "Usage: berth import [-c CHANGE]... [-m MESSAGE] FILE|- "
	                        "[REPOSITORY[:TAG]]\n\n"
	                        "Create an image from a rootfs tarball (plain, gzip or zstd).\n"
	                        "  -c, --change 'CMD [\"sh\"]'   apply a Dockerfile instruction\n",
	                        "c:m:",
	                        import_long,
	                        import_flag,
	                        &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *path = NULL;
	FILE *f = NULL;
	int64_t len = 0;
	int n = cli_getopt(cli, argc, argv, &opts, pos), rc;

	if (n < 0)
		return n;
	if (n < 1 || n > 2)
		return cli_fail(cli, CLI_EXIT_CMD, "import: requires FILE|- [REPOSITORY[:TAG]]");
	if (open_source(cli, pos[0], &f, &len) < 0)
		return -1;
	path = import_path(&o, n == 2 ? pos[1] : NULL);
	rc = send_import(cli, path, f, len);
	fclose(f);
	return rc;
}
