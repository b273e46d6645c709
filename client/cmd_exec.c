/* berth exec: POST /containers/{id}/exec (ConsoleSize from our terminal),
 * then, on the same connection, the stream GET /exec/{id}/ws (or, with -d,
 * POST /exec/{id}/start detached); exits with the process's exit code.  berth exec-kill signals a
 * running exec.  The daemon's replies are untrusted text. */
#include <errno.h>
#include <string.h>

#include "client/client-internal.h"

enum { OPT_DETACH_KEYS = 1000, OPT_PRIVILEGED };

const struct option cli_exec_longopts[] = {
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"detach", no_argument, NULL, 'd'},
    {"env", required_argument, NULL, 'e'},
    {"workdir", required_argument, NULL, 'w'},
    {"user", required_argument, NULL, 'u'},
    {"detach-keys", required_argument, NULL, OPT_DETACH_KEYS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char exec_usage[] =
    "Usage: berth exec [OPTIONS] CONTAINER COMMAND [ARG...]\n\n"
    "Run a command in a running container; berth exec exits with its exit code.\n"
    "Options end at CONTAINER.\n\n"
    "  -i, --interactive        forward stdin (EOF is passed on)\n"
    "  -t, --tty                allocate a terminal (stdin must be one)\n"
    "  -d, --detach             start it in the background, print nothing\n"
    "  -e, --env K=V            set a variable\n"
    "  -w, --workdir DIR        working directory\n"
    "  -u, --user USER[:GROUP]  user (name or uid)\n"
    "      --detach-keys KEYS   keys that detach (default \"" CLI_DETACH_DEFAULT "\",\n"
    "                           \"\" for none)\n";

struct exec_parse {
	bool interactive, tty, detach;
	const char *detach_keys;
	json_t *body, *env;
};

static int exec_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct exec_parse *p = data;

	switch (c) {
	case 'i':
		p->interactive = true;
		return 0;
	case 't':
		p->tty = true;
		return 0;
	case 'd':
		p->detach = true;
		return 0;
	case 'e':
		if (arg[0] == '\0' || arg[0] == '=')
			return cli_fail(
			    cli, CLI_EXIT_CMD,
			    "exec: invalid environment variable \"%.80s\": want KEY=VALUE", arg);
		json_array_append_new(p->env, json_string(arg));
		return 0;
	case 'w':
		json_object_set_new(p->body, "WorkingDir", json_string(arg));
		return 0;
	case 'u':
		json_object_set_new(p->body, "User", json_string(arg));
		return 0;
	case OPT_DETACH_KEYS:
		p->detach_keys = arg;
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "exec: unexpected option %d", c);
	}
}

/* The create body: the command, what to attach, and our terminal's size so
 * a shell never starts at 80x24. */
static void exec_body(struct exec_parse *p, int npos, char **pos)
{
	json_t *cmd = json_array();
	int rows, cols;

	for (int i = 1; i < npos; i++)
		json_array_append_new(cmd, json_string(pos[i]));
	json_object_set_new(p->body, "Cmd", cmd);
	json_object_set_new(p->body, "AttachStdin", json_boolean(p->interactive && !p->detach));
	json_object_set_new(p->body, "AttachStdout", json_boolean(!p->detach));
	json_object_set_new(p->body, "AttachStderr", json_boolean(!p->detach));
	json_object_set_new(p->body, "Tty", json_boolean(p->tty));
	if (json_array_size(p->env) > 0)
		json_object_set(p->body, "Env", p->env);
	if (p->tty && cli_term_size(0, &rows, &cols) == 0)
		json_object_set_new(p->body, "ConsoleSize", json_pack("[i,i]", rows, cols));
}

/* An id from the daemon goes into our URLs: hex only. */
static int reply_id(struct cli *cli, json_t *reply, char *id, size_t idlen)
{
	const char *s = json_string_value(json_object_get(reply, "Id"));
	size_t n = s ? strspn(s, "0123456789abcdef") : 0;

	if (s == NULL || n == 0 || s[n] != '\0' || n >= idlen)
		return cli_fail(cli, CLI_EXIT_DAEMON, "the daemon's exec reply has no valid Id");
	bh_strlcpy(id, s, idlen);
	return 0;
}

static int exec_create(struct cli *cli, const char *container, json_t *body, char *id, size_t idlen)
{
	cleanup_free char *name = cli_url_escape(container);
	cleanup_free char *path = bh_asprintf("/containers/%s/exec", name);
	cleanup_free char *json = json_dumps(body, JSON_COMPACT);
	struct cli_http_req rq = {"POST", path, NULL, json, strlen(json), NULL, 0};
	json_t *reply = NULL;
	int rc;

	if (cli_api_json(cli, &rq, &reply) < 0)
		return -1;
	rc = reply_id(cli, reply, id, idlen);
	json_decref(reply);
	return rc;
}

static int exec_start_detached(struct cli *cli, const char *id, bool tty)
{
	cleanup_free char *path = bh_asprintf("/exec/%s/start", id);
	cleanup_free char *json =
	    bh_asprintf("{\"Detach\":true,\"Tty\":%s}", tty ? "true" : "false");
	struct cli_http_req rq = {"POST", path, NULL, json, strlen(json), NULL, 0};

	return cli_api_ok(cli, &rq);
}

/* The create's reply on the stream's connection: its Id (hex only, it goes
 * into the URL) names the stream to upgrade to.  arg: the container. */
static char *exec_ws_path(void *arg, const struct bh_buf *body, struct bh_err *err)
{
	json_t *doc = body->data ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	const char *s = json_string_value(json_object_get(doc, "Id"));
	size_t n = s ? strspn(s, "0123456789abcdef") : 0;
	char *path = NULL;

	if (s == NULL || n == 0 || s[n] != '\0' || n > 128)
		bh_err_set(err, EPROTO, "the daemon's exec reply has no valid Id");
	else
		path = bh_asprintf("/exec/%s/ws", s);
	if (path != NULL) /* e2e/test_exec.py reads this line for the id */
		bh_debug("exec %s created in %s", s, (const char *)arg);
	json_decref(doc);
	return path;
}

/* Attached: the create goes on the stream's own connection, before its
 * upgrade, so an exec costs one TLS handshake (and no libcurl at all). */
static int exec_attached(struct cli *cli, struct exec_parse *p, const char *container,
                         const struct cli_detach *keys)
{
	cleanup_free char *name = cli_url_escape(container);
	cleanup_free char *create = bh_asprintf("/containers/%s/exec", name);
	cleanup_free char *json = json_dumps(p->body, JSON_COMPACT);
	struct cli_ws_prelude pre = {
	    .method = "POST",
	    .path = create,
	    .body = json,
	    .body_len = strlen(json),
	    .then = exec_ws_path,
	    .arg = (void *)container,
	};
	struct cli_session_opts o = {
	    .tty = p->tty,
	    .stdin_on = p->interactive,
	    .sig_proxy = true,
	    .keys = keys,
	    .in_fd = 0,
	    .out_fd = 1,
	    .err_fd = 2,
	    .prelude = &pre,
	};

	return cli_stream_session(cli, create, &o, NULL);
}

static int exec_run(struct cli *cli, struct exec_parse *p, const char *container)
{
	struct cli_detach keys;
	struct bh_err err = {0};
	char id[129];

	if (cli_detach_parse(p->detach_keys ? p->detach_keys : CLI_DETACH_DEFAULT, &keys, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "exec: %s", err.msg);
	if (!p->detach)
		return exec_attached(cli, p, container, &keys);
	if (exec_create(cli, container, p->body, id, sizeof(id)) < 0)
		return -1;
	bh_debug("exec %s created in %s", id, container);
	return exec_start_detached(cli, id, p->tty);
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	struct exec_parse p = {.body = json_object(), .env = json_array()};
	struct cli_opts o = {"exec",    exec_usage, CLI_EXEC_SHORTOPTS, cli_exec_longopts,
	                     exec_flag, &p};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n, rc = -1;

	n = cli_getopt_until_positional(cli, argc, argv, &o, pos);
	if (n == -2)
		rc = -2;
	else if (n >= 0 && n < 2)
		cli_fail(cli, CLI_EXIT_CMD,
		         "exec: requires at least 2 arguments: CONTAINER COMMAND [ARG...]");
	else if (n >= 2 && p.tty && !p.detach && !cli_term_isatty(0))
		cli_fail(cli, CLI_EXIT_CMD, "the input device is not a TTY");
	else if (n >= 2) {
		exec_body(&p, n, pos);
		rc = exec_run(cli, &p, pos[0]);
	}
	json_decref(p.body);
	json_decref(p.env);
	return rc;
}

/* ---- berth exec-kill ------------------------------------------------------ */

static const struct option kill_opts[] = {
    {"signal", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char kill_usage[] = "Usage: berth exec-kill [-s SIGNAL] EXEC_ID\n\n"
                                 "Send a signal (default SIGKILL) to a running exec.\n\n"
                                 "  -s, --signal SIG   name (SIGTERM, TERM) or number\n";

static int kill_flag(struct cli *cli, int c, const char *arg, void *data)
{
	const char **sig = data;

	if (c != 's')
		return cli_fail(cli, CLI_EXIT_CMD, "exec-kill: unexpected option %d", c);
	*sig = arg;
	return 0;
}

int cmd_exec_kill(struct cli *cli, int argc, char **argv)
{
	const char *sig = "SIGKILL";
	struct cli_opts o = {"exec-kill", kill_usage, "s:", kill_opts, kill_flag, &sig};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *id = NULL, *s = NULL, *path = NULL;
	int n;

	n = cli_getopt(cli, argc, argv, &o, pos);
	if (n < 0)
		return n;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "exec-kill: requires exactly 1 argument: EXEC_ID");
	id = cli_url_escape(pos[0]);
	s = cli_url_escape(sig);
	path = bh_asprintf("/exec/%s/kill?signal=%s", id, s);
	struct cli_http_req rq = {.method = "POST", .path = path};
	return cli_api_ok(cli, &rq);
}
