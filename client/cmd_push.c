/* berth push [-q] NAME[:TAG]: POST /images/{name}/push?tag= with
 * X-Registry-Auth; progress as pull's. */
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

static const struct option push_long[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int push_flag(struct cli *cli, int c, const char *arg, void *data)
{
	bool *quiet = data;

	if (c != 'q')
		return cli_fail(cli, CLI_EXIT_CMD, "push: unexpected option %d", c);
	*quiet = true;
	return 0;
}

/* "127.0.0.1:5000/x:v1" -> path "/images/127.0.0.1:5000/x/push?tag=v1": the
 * name keeps its slashes (the daemon's routes take up to four parts). */
static char *push_path(const char *ref)
{
	cleanup_free char *tagged = cli_image_ref_tagged(ref);
	char *colon = strrchr(tagged, ':');
	cleanup_free char *tag = NULL;
	char *out;

	tag = cli_url_escape(colon + 1);
	*colon = '\0';
	out = bh_asprintf("/images/%s/push?tag=%s", tagged, tag);
	return out;
}

int cmd_push(struct cli *cli, int argc, char **argv)
{
	bool quiet = false;
	const struct cli_opts opts = {.name = "push",
	                              .usage = "Usage: berth push [-q] NAME[:TAG]\n",
	                              .shortopts = "qh",
	                              .longopts = push_long,
	                              .fn = push_flag,
	                              .data = &quiet};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	cleanup_free char *path = NULL, *registry = NULL, *auth = NULL;
	int n = cli_getopt(cli, argc, argv, &opts, pos), rc;

	if (n < 0)
		return n == -2 ? 0 : -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "push: want exactly one image reference");
	if (strchr(pos[0], '@') || strpbrk(pos[0], "?#% ") != NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "push: invalid reference format: %s", pos[0]);
	path = push_path(pos[0]);
	registry = cli_ref_registry(pos[0]);
	auth = cli_registry_auth_header(cli, registry);
	struct cli_http_req rq = {.method = "POST", .path = path};
	rc = cli_progress_request(cli, &rq, auth, quiet ? NULL : stdout);
	bh_wipe(auth, strlen(auth));
	return rc;
}
