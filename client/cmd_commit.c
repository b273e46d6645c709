/* berth commit CONTAINER [REPO[:TAG]]: POST /commit -> 201 {"Id"}; prints
 * the new image id as docker does.  Also the "&repo=..&tag=..&changes=.."
 * query builder import shares. */
#include <string.h>

#include "client/client-internal.h"

#define MAX_CHANGES 64

/* "repo:tag" -> "&repo=repo&tag=tag" (tag split at the last ':' after the
 * last '/', so "host:5000/x" has no tag); "" for NULL. */
char *cli_repo_tag_query(const char *ref)
{
	const char *slash, *colon;
	cleanup_free char *repo = NULL, *erepo = NULL, *etag = NULL;

	if (ref == NULL || *ref == '\0')
		return bh_strdup("");
	slash = strrchr(ref, '/');
	colon = strrchr(slash ? slash : ref, ':');
	repo = colon ? bh_strndup(ref, (size_t)(colon - ref)) : bh_strdup(ref);
	erepo = cli_url_escape(repo);
	if (colon == NULL)
		return bh_asprintf("&repo=%s", erepo);
	etag = cli_url_escape(colon + 1);
	return bh_asprintf("&repo=%s&tag=%s", erepo, etag);
}

/* Appends "&NAME=<escaped value>" to b; -1 when b is full. */
int cli_query_add(struct bh_buf *b, const char *name, const char *value)
{
	cleanup_free char *e = NULL;

	if (value == NULL)
		return 0;
	e = cli_url_escape(value);
	return bh_buf_printf(b, "&%s=%s", name, e);
}

struct commit_opts {
	const char *author, *message;
	const char *changes[MAX_CHANGES];
	int nchanges;
	bool pause;
};

static const struct option commit_long[] = {
    {"author", required_argument, NULL, 'a'}, {"message", required_argument, NULL, 'm'},
    {"change", required_argument, NULL, 'c'}, {"pause", no_argument, NULL, 'p'},
    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
};

static int commit_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct commit_opts *o = data;

	switch (c) {
	case 'a':
		o->author = arg;
		return 0;
	case 'm':
		o->message = arg;
		return 0;
	case 'p':
		o->pause = true;
		return 0;
	case 'c':
		if (o->nchanges >= MAX_CHANGES)
			return cli_fail(cli, CLI_EXIT_CMD, "commit: at most %d --change",
			                MAX_CHANGES);
		o->changes[o->nchanges++] = arg;
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "commit: unexpected option %d", c);
	}
}

static char *commit_path(const struct commit_opts *o, const char *ctr, const char *ref)
{
	cleanup_free char *rt = cli_repo_tag_query(ref);
	struct bh_buf b;
	char *out;

	bh_buf_init(&b, 256 * 1024);
	bh_buf_printf(&b, "/commit?pause=%d", o->pause ? 1 : 0);
	cli_query_add(&b, "container", ctr);
	bh_buf_printf(&b, "%s", rt);
	cli_query_add(&b, "author", o->author);
	cli_query_add(&b, "comment", o->message);
	for (int i = 0; i < o->nchanges; i++)
		cli_query_add(&b, "changes", o->changes[i]);
	out = bh_strdup(b.data ? b.data : "");
	bh_buf_free(&b);
	return out;
}

int cmd_commit(struct cli *cli, int argc, char **argv)
{
	struct commit_opts o = {0};
	struct cli_opts opts = {"commit",
	                        "Usage: berth commit [-a AUTHOR] [-m MESSAGE] [-c CHANGE]... "
	                        "CONTAINER [REPOSITORY[:TAG]]\n\n"
	                        "Create a new image from a container's changes.\n",
	                        "a:m:c:p",
	                        commit_long,
	                        commit_flag,
	                        &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *path = NULL;
	struct cli_http_req rq = {.method = "POST"};
	json_t *reply = NULL;
	char clean[128];
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n < 1 || n > 2)
		return cli_fail(cli, CLI_EXIT_CMD, "commit: requires CONTAINER [REPOSITORY[:TAG]]");
	path = commit_path(&o, pos[0], n == 2 ? pos[1] : NULL);
	rq.path = path;
	if (cli_api_json(cli, &rq, &reply) < 0)
		return -1;
	cli_sanitize(json_is_string(json_object_get(reply, "Id"))
	                 ? json_string_value(json_object_get(reply, "Id"))
	                 : "",
	             clean, sizeof(clean));
	printf("%s\n", clean);
	json_decref(reply);
	return 0;
}
