/* start, stop, kill, restart, rm, wait, inspect: one request per container
 * named on the command line.  As docker: each success prints the name as
 * given, a failure does not stop the others, and any failure exits 1. */
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

void cli_multi_failed(struct cli *cli, struct cli_multi *m)
{
	/* Print the previous failure now; the last one is main()'s to print. */
	if (m->failed > 0)
		fprintf(stderr, "berth: %s\n", m->last.msg);
	m->last = cli->err;
	m->failed++;
}

int cli_multi_end(struct cli *cli, struct cli_multi *m)
{
	if (m->failed == 0)
		return 0;
	cli->err = m->last;
	cli->exit_code = CLI_EXIT_CMD;
	return -1;
}

/* What each command does to one container. */
struct verb {
	const char *name;   /* the command, for messages */
	const char *method; /* POST, DELETE, GET */
	const char *action; /* "/start" ...; "" for DELETE /containers/ID */
	char query[160];    /* "?t=3" ... from the options */
	bool force;         /* rm -f */
	bool print_status;  /* wait: print StatusCode */
	json_t *collect;    /* inspect: the documents */
	int tried;          /* requests the daemon answered */
};

static const struct option verb_opts[] = {
    {"time", required_argument, NULL, 't'},   {"timeout", required_argument, NULL, 't'},
    {"signal", required_argument, NULL, 's'}, {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
};

static int verb_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct verb *v = data;
	cleanup_free char *sig = NULL;
	long t;

	switch (c) {
	case 't':
		if (bh_parse_long(arg, -1, 86400 * 365, &t) < 0)
			return cli_fail(cli, CLI_EXIT_CMD, "%s: invalid -t \"%.40s\": want seconds",
			                v->name, arg);
		snprintf(v->query, sizeof(v->query), "?t=%ld", t);
		return 0;
	case 's':
		if (arg[0] == '\0' || strlen(arg) > 32)
			return cli_fail(cli, CLI_EXIT_CMD, "%s: invalid signal \"%.40s\"", v->name,
			                arg);
		sig = cli_url_escape(arg);
		snprintf(v->query, sizeof(v->query), "?signal=%s", sig);
		return 0;
	case 'f':
		v->force = true;
		snprintf(v->query, sizeof(v->query), "?force=1");
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "%s: unexpected option %d", v->name, c);
	}
}

/* The reply of a successful request, per command. */
static int item_done(struct cli *cli, struct verb *v, const char *target, struct bh_buf *body)
{
	json_t *doc;
	char clean[300];

	if (v->collect == NULL && !v->print_status) {
		cli_sanitize(target, clean, sizeof(clean));
		printf("%s\n", clean);
		return 0;
	}
	doc = json_loadb(body->data, body->len, 0, NULL);
	if (doc == NULL)
		return cli_fail(cli, CLI_EXIT_DAEMON, "%s %s: the daemon's reply is not JSON",
		                v->name, target);
	if (v->print_status)
		printf("%lld\n", (long long)json_integer_value(json_object_get(doc, "StatusCode")));
	if (v->collect != NULL)
		json_array_append(v->collect, doc);
	json_decref(doc);
	return 0;
}

static int one_container(struct cli *cli, struct verb *v, const char *target)
{
	cleanup_free char *esc = cli_url_escape(target);
	cleanup_free char *path = bh_asprintf("/containers/%s%s%s", esc, v->action, v->query);
	struct cli_http_req rq = {.method = v->method, .path = path};
	struct bh_buf body;
	int status, rc;

	status = cli_api_do(cli, &rq, &body);
	if (status < 0)
		return -1;
	v->tried++;
	if (status >= 300 && status != 304)
		rc = cli_api_error(cli, CLI_EXIT_CMD, status, &body);
	else
		rc = item_done(cli, v, target, &body);
	bh_buf_free(&body);
	return rc;
}

static int run_verb(struct cli *cli, int argc, char **argv, struct verb *v, const char *shortopts,
                    const char *usage)
{
	struct cli_opts o = {v->name, usage, shortopts, verb_opts, verb_flag, v};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	struct cli_multi m = {0};
	int n = cli_getopt(cli, argc, argv, &o, pos);

	if (n < 0)
		return n;
	if (n == 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: requires at least 1 argument (see --help)",
		                v->name);
	for (int i = 0; i < n; i++) {
		if (one_container(cli, v, pos[i]) == 0)
			continue;
		/* A transport failure will fail every other container too. */
		if (cli->exit_code == CLI_EXIT_DAEMON)
			return -1;
		cli_multi_failed(cli, &m);
	}
	return cli_multi_end(cli, &m);
}

int cmd_start(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "start", .method = "POST", .action = "/start"};

	return run_verb(cli, argc, argv, &v, "",
	                "Usage: berth start CONTAINER...\n\nStart stopped containers.\n");
}

int cmd_stop(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "stop", .method = "POST", .action = "/stop"};

	return run_verb(cli, argc, argv, &v, "t:",
	                "Usage: berth stop [-t SECONDS] CONTAINER...\n\n"
	                "Stop running containers: SIGTERM, then SIGKILL after the grace time.\n\n"
	                "  -t, --time N   seconds to wait before killing (default: the "
	                "container's)\n");
}

int cmd_kill(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "kill", .method = "POST", .action = "/kill"};

	return run_verb(cli, argc, argv, &v, "s:",
	                "Usage: berth kill [-s SIGNAL] CONTAINER...\n\n"
	                "Send a signal (default SIGKILL) to running containers.\n\n"
	                "  -s, --signal SIG   name (SIGTERM, TERM) or number\n");
}

int cmd_restart(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "restart", .method = "POST", .action = "/restart"};

	return run_verb(cli, argc, argv, &v, "t:",
	                "Usage: berth restart [-t SECONDS] CONTAINER...\n\n"
	                "Stop and start containers again.\n\n"
	                "  -t, --time N   seconds to wait before killing\n");
}

int cmd_rm(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "rm", .method = "DELETE", .action = ""};

	return run_verb(cli, argc, argv, &v, "f",
	                "Usage: berth rm [-f] CONTAINER...\n\n"
	                "Remove containers.\n\n"
	                "  -f, --force   kill a running container first\n");
}

int cmd_wait(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "wait", .method = "POST", .action = "/wait", .print_status = true};

	return run_verb(cli, argc, argv, &v, "",
	                "Usage: berth wait CONTAINER...\n\n"
	                "Wait until containers stop, then print their exit codes.\n");
}

int cmd_inspect(struct cli *cli, int argc, char **argv)
{
	struct verb v = {.name = "inspect", .method = "GET", .action = "/json"};
	char *s;
	int rc;

	v.collect = json_array();
	rc = run_verb(cli, argc, argv, &v, "",
	              "Usage: berth inspect CONTAINER...\n\n"
	              "Print what the daemon knows about containers, as a JSON array.\n");
	if (v.tried > 0) {
		/* docker prints the array (maybe []) and then the errors. */
		s = json_dumps(v.collect, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		if (s != NULL)
			printf("%s\n", s);
		free(s);
	}
	json_decref(v.collect);
	return rc;
}
