/* berth tag SOURCE TARGET: POST /images/{source}/tag?repo=&tag= -> 201. */
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

static const struct option tag_long[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int tag_flag(struct cli *cli, int c, const char *arg, void *data)
{
	return cli_fail(cli, CLI_EXIT_CMD, "tag: unexpected option %d", c);
}

int cmd_tag(struct cli *cli, int argc, char **argv)
{
	const struct cli_opts opts = {.name = "tag",
	                              .usage = "Usage: berth tag SOURCE[:TAG] TARGET[:TAG]\n",
	                              .shortopts = "h",
	                              .longopts = tag_long,
	                              .fn = tag_flag};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	cleanup_free char *target = NULL, *repo = NULL, *tag = NULL, *path = NULL;
	char *colon;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n == -2 ? 0 : -1;
	if (n != 2)
		return cli_fail(cli, CLI_EXIT_CMD, "tag: want SOURCE and TARGET");
	if (strpbrk(pos[0], "?#% ") != NULL || strchr(pos[1], '@'))
		return cli_fail(cli, CLI_EXIT_CMD, "tag: invalid reference format");
	target = cli_image_ref_tagged(pos[1]);
	colon = strrchr(target, ':');
	tag = cli_url_escape(colon + 1);
	*colon = '\0';
	repo = cli_url_escape(target);
	path = bh_asprintf("/images/%s/tag?repo=%s&tag=%s", pos[0], repo, tag);
	struct cli_http_req rq = {.method = "POST", .path = path};
	return cli_api_ok(cli, &rq);
}
