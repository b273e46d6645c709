/* berth rmi, image inspect, history, image prune, and `berth image SUB`
 * (docker's management command) dispatching to the same functions.  The
 * daemon's text (tags, history lines) is sanitised before printing. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"

#define CREATED_BY_WIDTH 45

/* ---- rmi ------------------------------------------------------------------------ */

static const struct option rmi_long[] = {
    {"force", no_argument, NULL, 'f'},
    {"no-prune", no_argument, NULL, 'P'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bool_flag(struct cli *cli, int c, const char *arg, void *data)
{
	bool *b = data;

	(void)arg;
	if (c == 'f' || c == 'a')
		b[c == 'f' ? 0 : 1] = true;
	else if (c != 'P')
		return cli_fail(cli, CLI_EXIT_CMD, "unexpected option %d", c);
	return 0;
}

/* [{"Untagged": x}, {"Deleted": y}] -> "Untagged: x" lines. */
static void print_report(json_t *rows, bool lower)
{
	json_t *row, *v;
	const char *key;
	size_t i;
	char clean[1024];

	json_array_foreach(rows, i, row)
	{
		json_object_foreach(row, key, v)
		{
			if (!json_is_string(v))
				continue;
			cli_sanitize(json_string_value(v), clean, sizeof(clean));
			if (lower)
				printf("%s: %s\n",
				       strcmp(key, "Untagged") == 0 ? "untagged" : "deleted",
				       clean);
			else
				printf("%s: %s\n",
				       strcmp(key, "Untagged") == 0 ? "Untagged" : "Deleted",
				       clean);
		}
	}
}

static int rmi_one(struct cli *cli, const char *name, bool force)
{
	cleanup_free char *e = cli_url_escape(name);
	cleanup_free char *path = bh_asprintf("/images/%s%s", e, force ? "?force=1" : "");
	struct cli_http_req rq = {.method = "DELETE", .path = path};
	json_t *reply = NULL;

	if (cli_api_json(cli, &rq, &reply) < 0)
		return -1;
	print_report(reply, false);
	json_decref(reply);
	return 0;
}

int cmd_rmi(struct cli *cli, int argc, char **argv)
{
	bool flags[2] = {false, false};
	struct cli_opts opts = {"rmi",
	                        "Usage: berth rmi [-f] IMAGE...\n\n"
	                        "Remove images (untag; delete when the last tag goes).\n"
	                        "  -f, --force   also images a container uses (untagged only)\n",
	                        "f",
	                        rmi_long,
	                        bool_flag,
	                        flags};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n = cli_getopt(cli, argc, argv, &opts, pos), rc = 0;
	char first[1024] = "";

	if (n < 0)
		return n;
	if (n == 0)
		return cli_fail(cli, CLI_EXIT_CMD, "rmi: requires at least 1 image");
	/* As docker: every image is tried; the first failure is reported. */
	for (int i = 0; i < n; i++) {
		if (rmi_one(cli, pos[i], flags[0]) == 0)
			continue;
		if (rc == 0)
			bh_strlcpy(first, cli->err.msg, sizeof(first));
		else
			fprintf(stderr, "berth: %s\n", cli->err.msg);
		rc = -1;
	}
	if (rc < 0)
		bh_err_set(&cli->err, cli->err.code, "%s", first);
	return rc;
}

/* ---- image inspect ---------------------------------------------------------------- */

static int image_inspect(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	bool unused[2];
	struct cli_opts opts = {
	    "image inspect", "Usage: berth image inspect IMAGE...\n", "", lo, bool_flag, unused};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n = cli_getopt(cli, argc, argv, &opts, pos);
	json_t *all = json_array();
	int rc = 0;

	if (n <= 0) {
		json_decref(all);
		return n < 0 ? n : cli_fail(cli, CLI_EXIT_CMD, "image inspect: requires 1 image");
	}
	for (int i = 0; i < n && rc == 0; i++) {
		cleanup_free char *e = cli_url_escape(pos[i]);
		cleanup_free char *path = bh_asprintf("/images/%s/json", e);
		json_t *one = NULL;
		rc = cli_api_get_json(cli, path, &one);
		if (rc == 0)
			json_array_append_new(all, one);
	}
	if (rc == 0)
		rc = cli_print_json(cli, all);
	json_decref(all);
	return rc;
}

/* ---- history ------------------------------------------------------------------------ */

struct history_opts {
	bool quiet, no_trunc, human_off, json;
};

static const struct option history_long[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"no-trunc", no_argument, NULL, 'N'},
    {"format", required_argument, NULL, 'F'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int history_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct history_opts *o = data;

	if (c == 'q')
		o->quiet = true;
	else if (c == 'N')
		o->no_trunc = true;
	else if (c == 'F' && strcmp(arg, "json") == 0)
		o->json = true;
	else
		return cli_fail(cli, CLI_EXIT_CMD, "history: unexpected option or format");
	return 0;
}

static const char *str_or(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

static void history_row(json_t *r, const struct history_opts *o, struct cli_table *t)
{
	const char *id = json_string_value(json_object_get(r, "Id"));
	char sid[80], created[80], by[4096], size[32], comment[1024], ago[64];
	json_int_t when = json_integer_value(json_object_get(r, "Created"));

	id = id ? id : "<missing>";
	if (!o->no_trunc && bh_str_has_prefix(id, "sha256:"))
		snprintf(sid, sizeof(sid), "%.12s", id + 7);
	else
		cli_sanitize(id, sid, sizeof(sid));
	if (o->quiet) {
		printf("%s\n", sid);
		return;
	}
	cli_human_duration((int64_t)time(NULL) - when, ago, sizeof(ago));
	snprintf(created, sizeof(created), "%s ago", ago);
	cli_sanitize(str_or(r, "CreatedBy"), by, sizeof(by));
	if (!o->no_trunc && strlen(by) > CREATED_BY_WIDTH)
		memcpy(by + CREATED_BY_WIDTH - 3, "...", 4);
	cli_human_size((double)json_integer_value(json_object_get(r, "Size")), size, sizeof(size));
	cli_sanitize(str_or(r, "Comment"), comment, sizeof(comment));
	const char *row[] = {sid, created, by, size, comment};
	cli_table_add(t, row);
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
	static const char *const head[] = {"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"};
	struct history_opts o = {0};
	struct cli_opts opts = {"history",
	                        "Usage: berth history [-q] [--no-trunc] [--format json] IMAGE\n\n"
	                        "Show the history of an image (newest layer first).\n",
	                        "qH",
	                        history_long,
	                        history_flag,
	                        &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *path = NULL, *e = NULL;
	struct cli_table t;
	json_t *rows = NULL, *r;
	size_t i;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "history: requires exactly 1 image");
	e = cli_url_escape(pos[0]);
	path = bh_asprintf("/images/%s/history", e);
	if (cli_api_get_json(cli, path, &rows) < 0)
		return -1;
	if (o.json) {
		int rc = cli_print_json(cli, rows);
		json_decref(rows);
		return rc;
	}
	cli_table_init(&t, 5);
	cli_table_add(&t, head);
	json_array_foreach(rows, i, r) history_row(r, &o, &t);
	if (!o.quiet)
		cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(rows);
	return 0;
}

/* ---- image prune --------------------------------------------------------------------- */

static const struct option prune_long[] = {
    {"all", no_argument, NULL, 'a'},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool confirm(bool all)
{
	char line[16];

	fprintf(stderr,
	        "WARNING! This will remove all %s.\nAre you sure you want to continue? "
	        "[y/N] ",
	        all ? "images without at least one container associated to them"
	            : "dangling images");
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

int cmd_image_prune(struct cli *cli, int argc, char **argv)
{
	bool flags[2] = {false, false}; /* force, all */
	struct cli_opts opts = {"image prune",
	                        "Usage: berth image prune [-a] [-f]\n\n"
	                        "Remove dangling images (-a: all images no container uses) and\n"
	                        "the layers nothing references any more.\n",
	                        "af",
	                        prune_long,
	                        bool_flag,
	                        flags};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	struct cli_http_req rq = {.method = "POST"};
	json_t *reply = NULL;
	char size[32];
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n;
	if (n > 0)
		return cli_fail(cli, CLI_EXIT_CMD, "image prune: unexpected argument \"%.80s\"",
		                pos[0]);
	/* Scripts and CI never get a prompt: without a terminal, -f is needed. */
	if (!flags[0] && !cli_term_isatty(0))
		return cli_fail(cli, CLI_EXIT_CMD,
		                "image prune: stdin is not a terminal, so there is no prompt: "
		                "pass -f to prune");
	if (!flags[0] && !confirm(flags[1]))
		return 0;
	rq.path = flags[1] ? "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D"
	                   : "/images/prune";
	if (cli_api_json(cli, &rq, &reply) < 0)
		return -1;
	if (json_array_size(json_object_get(reply, "ImagesDeleted")) > 0) {
		printf("Deleted Images:\n");
		print_report(json_object_get(reply, "ImagesDeleted"), true);
		printf("\n");
	}
	cli_human_size((double)json_integer_value(json_object_get(reply, "SpaceReclaimed")), size,
	               sizeof(size));
	printf("Total reclaimed space: %s\n", size);
	json_decref(reply);
	return 0;
}

/* ---- berth image SUB ------------------------------------------------------------------- */

struct image_sub {
	const char *name;
	cli_cmd_fn fn;
};

static const struct image_sub image_subs[] = {
    {"history", cmd_history},   {"import", cmd_import},
    {"inspect", image_inspect}, {"load", cmd_load},
    {"ls", cmd_images},         {"list", cmd_images},
    {"prune", cmd_image_prune}, {"pull", cmd_pull},
    {"push", cmd_push},         {"rm", cmd_rmi},
    {"save", cmd_save},         {"tag", cmd_tag},
};

int cmd_image(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("Usage: berth image COMMAND\n\nCommands:\n");
		for (size_t i = 0; i < sizeof(image_subs) / sizeof(image_subs[0]); i++)
			printf("  %s\n", image_subs[i].name);
		return argc < 2 ? cli_fail(cli, CLI_EXIT_CMD, "image: a command is required") : 0;
	}
	for (size_t i = 0; i < sizeof(image_subs) / sizeof(image_subs[0]); i++)
		if (strcmp(argv[1], image_subs[i].name) == 0)
			return image_subs[i].fn(cli, argc - 1, argv + 1);
	return cli_fail(cli, CLI_EXIT_CMD, "image: unknown command \"%.40s\"", argv[1]);
}
