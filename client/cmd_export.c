/* berth export CONTAINER [-o FILE]: GET /containers/{id}/export, the
 * container's filesystem as a tar, streamed to FILE or stdout. */
#include <string.h>

#include "client/client-internal.h"

static const struct option export_long[] = {
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int export_flag(struct cli *cli, int c, const char *arg, void *data)
{
	if (c != 'o')
		return cli_fail(cli, CLI_EXIT_CMD, "export: unexpected option %d", c);
	*(const char **)data = arg;
	return 0;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	const char *output = NULL;
	struct cli_opts opts = {"export",
	                        "Usage: berth export [-o FILE] CONTAINER\n\n"
	                        "Write a container's filesystem as a tar archive (stdout unless "
	                        "-o FILE).\n",
	                        "o:",
	                        export_long,
	                        export_flag,
	                        &output};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *id = NULL, *path = NULL;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "export: requires exactly 1 container");
	id = cli_url_escape(pos[0]);
	path = bh_asprintf("/containers/%s/export", id);
	return cli_download(cli, "export", path, output);
}
