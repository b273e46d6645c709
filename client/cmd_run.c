/* berth run / berth create: docker's flags mapped onto POST /containers/create,
 * then (run) wait-before-start on a second connection, start, the logs
 * stream demuxed to our stdout/stderr, and the container's exit code as ours.
 * Flags are the user's; the daemon's replies are untrusted text. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

#define ENV_FILE_MAX (1024 * 1024)
#define CLI_EXIT_RUN 125 /* docker's status for run's own failures */

enum {
	OPT_RM = 1000,
	OPT_NAME,
	OPT_ENV_FILE,
	OPT_HOSTNAME,
	OPT_ENTRYPOINT,
	OPT_CPUS,
	OPT_PIDS,
	OPT_READ_ONLY,
	OPT_NETWORK,
	OPT_RESTART,
};

static const struct option run_opts[] = {
    {"detach", no_argument, NULL, 'd'},
    {"rm", no_argument, NULL, OPT_RM},
    {"name", required_argument, NULL, OPT_NAME},
    {"env", required_argument, NULL, 'e'},
    {"env-file", required_argument, NULL, OPT_ENV_FILE},
    {"workdir", required_argument, NULL, 'w'},
    {"user", required_argument, NULL, 'u'},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
    {"memory", required_argument, NULL, 'm'},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"pids-limit", required_argument, NULL, OPT_PIDS},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"network", required_argument, NULL, OPT_NETWORK},
    {"net", required_argument, NULL, OPT_NETWORK},
    {"restart", required_argument, NULL, OPT_RESTART},
    {"label", required_argument, NULL, 'l'},
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char run_usage[] =
    "Usage: berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "       berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
    "Create a container from IMAGE (and, for run, start it and stream its output;\n"
    "berth run exits with the container's exit code).  Options end at IMAGE.\n\n"
    "  -d, --detach             run: start in the background and print the ID\n"
    "      --rm                 remove the container when it exits\n"
    "      --name NAME          name the container\n"
    "  -e, --env K=V            set a variable (-e K takes K from this environment)\n"
    "      --env-file FILE      read K=V lines from FILE\n"
    "  -w, --workdir DIR        working directory inside the container\n"
    "  -u, --user USER[:GROUP]  user (name or uid) to run as\n"
    "      --hostname NAME      the container's host name\n"
    "      --entrypoint CMD     override the image's entrypoint\n"
    "  -m, --memory SIZE        memory limit (64m, 1g, ...)\n"
    "      --cpus N             CPU quota (0.5 = half a core)\n"
    "      --pids-limit N       most processes (-1: unlimited)\n"
    "      --read-only          mount the root file system read-only\n"
    "      --network none|host  network mode\n"
    "      --restart POLICY     no | on-failure[:N] | always | unless-stopped\n"
    "  -l, --label K=V          set a label\n"
    "  -i, -t                   need the streams feature (not yet implemented)\n";

/* The parse in progress: the pieces of the body gathered from the flags. */
struct run_parse {
	struct cli_run *r;
	json_t *env, *labels, *hc;
	bool entrypoint_set;
	const char *entrypoint;
	const char *restart;
	long restart_max;
};

static int bad_value(struct cli *cli, struct run_parse *p, const char *flag, const char *arg,
                     const char *hint)
{
	return cli_fail(cli, CLI_EXIT_RUN, "%s: invalid %s \"%.80s\": %s", p->r->cmd, flag, arg,
	                hint);
}

/* -e K=V, or -e K: K's value here, left out when K is unset (as docker). */
static int add_env(struct cli *cli, struct run_parse *p, const char *kv, size_t len)
{
	cleanup_free char *s = bh_strndup(kv, len);
	const char *eq = strchr(s, '=');
	const char *v;

	if (s[0] == '\0' || s[0] == '=')
		return bad_value(cli, p, "environment variable", s, "want KEY=VALUE");
	if (eq != NULL) {
		json_array_append_new(p->env, json_string(s));
		return 0;
	}
	if ((v = getenv(s)) != NULL)
		json_array_append_new(p->env, json_sprintf("%s=%s", s, v));
	return 0;
}

static int add_env_file(struct cli *cli, struct run_parse *p, const char *path)
{
	cleanup_free char *data = NULL;
	struct bh_err err = {0};
	size_t len, i = 0;

	if (bh_read_file(path, ENV_FILE_MAX, &data, &len, &err) < 0)
		return cli_fail(cli, CLI_EXIT_RUN, "%s: --env-file: %s", p->r->cmd, err.msg);
	while (i < len) {
		size_t end = i, stop;
		while (end < len && data[end] != '\n')
			end++;
		stop = end;
		while (i < stop && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (stop > i && (data[stop - 1] == '\r' || data[stop - 1] == ' '))
			stop--;
		if (stop > i && data[i] != '#' && add_env(cli, p, data + i, stop - i) < 0)
			return -1;
		i = end + 1;
	}
	return 0;
}

static int add_label(struct cli *cli, struct run_parse *p, const char *kv)
{
	const char *eq = strchr(kv, '=');
	cleanup_free char *key = bh_strndup(kv, eq ? (size_t)(eq - kv) : strlen(kv));

	if (key[0] == '\0')
		return bad_value(cli, p, "--label", kv, "want KEY=VALUE");
	json_object_set_new(p->labels, key, json_string(eq ? eq + 1 : ""));
	return 0;
}

static int resource_flag(struct cli *cli, struct run_parse *p, int c, const char *arg)
{
	int64_t v;
	long l;

	switch (c) {
	case 'm':
		if (bh_parse_size(arg, &v) < 0 || v <= 0)
			return bad_value(cli, p, "--memory", arg,
			                 "want a size such as 64m, 512k, 1g (units b, k, m, g)");
		json_object_set_new(p->hc, "Memory", json_integer(v));
		return 0;
	case OPT_CPUS:
		if (cli_parse_cpus(arg, &v) < 0)
			return bad_value(cli, p, "--cpus", arg,
			                 "want a number of CPUs >= 0, as 0.5");
		json_object_set_new(p->hc, "NanoCpus", json_integer(v));
		return 0;
	case OPT_PIDS:
		if (bh_parse_long(arg, -1, 1L << 30, &l) < 0)
			return bad_value(cli, p, "--pids-limit", arg, "want an integer >= -1");
		json_object_set_new(p->hc, "PidsLimit", json_integer(l));
		return 0;
	case OPT_RESTART:
		if (cli_parse_restart(arg, &p->restart, &p->restart_max) < 0)
			return bad_value(cli, p, "--restart", arg,
			                 "want no, on-failure[:N], always or unless-stopped");
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_RUN, "%s: unexpected option %d", p->r->cmd, c);
	}
}

static int config_flag(struct cli *cli, struct run_parse *p, int c, const char *arg)
{
	json_t *body = p->r->body;

	switch (c) {
	case 'w':
		json_object_set_new(body, "WorkingDir", json_string(arg));
		return 0;
	case 'u':
		json_object_set_new(body, "User", json_string(arg));
		return 0;
	case OPT_HOSTNAME:
		json_object_set_new(body, "Hostname", json_string(arg));
		return 0;
	case OPT_ENTRYPOINT:
		p->entrypoint_set = true;
		p->entrypoint = arg;
		return 0;
	case OPT_NETWORK:
		json_object_set_new(p->hc, "NetworkMode", json_string(arg));
		return 0;
	case OPT_READ_ONLY:
		json_object_set_new(p->hc, "ReadonlyRootfs", json_true());
		return 0;
	default:
		return resource_flag(cli, p, c, arg);
	}
}

static int run_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct run_parse *p = data;
	struct cli_run *r = p->r;

	switch (c) {
	case 'd':
		if (strcmp(r->cmd, "run") != 0)
			return cli_fail(cli, CLI_EXIT_RUN, "%s: unknown option -d (see --help)",
			                r->cmd);
		r->detach = true;
		return 0;
	case OPT_RM:
		r->rm = true;
		return 0;
	case OPT_NAME:
		r->name = arg;
		return 0;
	case 'e':
		return add_env(cli, p, arg, strlen(arg));
	case OPT_ENV_FILE:
		return add_env_file(cli, p, arg);
	case 'l':
		return add_label(cli, p, arg);
	case 'i':
		r->interactive = true;
		return 0;
	case 't':
		r->tty = true;
		return 0;
	default:
		return config_flag(cli, p, c, arg);
	}
}

/* What the flags cannot express alone: IMAGE and COMMAND, the entrypoint,
 * the restart policy, and the combinations docker refuses. */
static int finish_body(struct cli *cli, struct run_parse *p, int npos, char **pos)
{
	struct cli_run *r = p->r;
	json_t *b = r->body, *cmd;

	if (r->tty || r->interactive)
		return cli_fail(cli, CLI_EXIT_RUN,
		                "berth %s: -%c needs the streams feature (not yet implemented)",
		                r->cmd, r->tty ? 't' : 'i');
	if (npos < 1)
		return cli_fail(cli, CLI_EXIT_RUN,
		                "%s: requires at least 1 argument: IMAGE [COMMAND] [ARG...]",
		                r->cmd);
	if (r->rm && p->restart != NULL && strcmp(p->restart, "no") != 0)
		return cli_fail(cli, CLI_EXIT_RUN, "%s: conflicting options: --restart and --rm",
		                r->cmd);
	r->image = pos[0];
	json_object_set_new(b, "Image", json_string(r->image));
	if (npos > 1) {
		cmd = json_array();
		for (int i = 1; i < npos; i++)
			json_array_append_new(cmd, json_string(pos[i]));
		json_object_set_new(b, "Cmd", cmd);
	}
	if (p->entrypoint_set) /* --entrypoint "" clears the image's, as docker */
		json_object_set_new(b, "Entrypoint", json_pack("[s]", p->entrypoint));
	if (p->restart != NULL)
		json_object_set_new(p->hc, "RestartPolicy",
		                    json_pack("{s:s, s:I}", "Name", p->restart, "MaximumRetryCount",
		                              (json_int_t)p->restart_max));
	/* An attached run removes the container itself once it has the output
	 * and the exit code; the daemon's AutoRemove could race the logs. */
	if (r->rm && (r->detach || strcmp(r->cmd, "create") == 0))
		json_object_set_new(p->hc, "AutoRemove", json_true());
	return 0;
}

static void body_defaults(struct cli_run *r, struct run_parse *p)
{
	r->body = json_object();
	p->env = json_array();
	p->labels = json_object();
	p->hc = json_object();
}

static void body_attach(struct cli_run *r, struct run_parse *p)
{
	json_t *b = r->body;
	bool attach = !r->detach;

	json_object_set_new(b, "AttachStdin", json_false());
	json_object_set_new(b, "AttachStdout", json_boolean(attach));
	json_object_set_new(b, "AttachStderr", json_boolean(attach));
	json_object_set_new(b, "Tty", json_false());
	json_object_set_new(b, "OpenStdin", json_false());
	if (json_array_size(p->env) > 0)
		json_object_set(b, "Env", p->env);
	if (json_object_size(p->labels) > 0)
		json_object_set(b, "Labels", p->labels);
	json_object_set(b, "HostConfig", p->hc);
}

int cli_run_parse(struct cli *cli, const char *cmd, int argc, char **argv, struct cli_run *out)
{
	struct run_parse p = {.r = out};
	struct cli_opts o = {cmd, run_usage, "de:w:u:m:l:it", run_opts, run_flag, &p};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n;

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	body_defaults(out, &p);
	n = cli_getopt_until_positional(cli, argc, argv, &o, pos);
	if (n >= 0)
		n = finish_body(cli, &p, n, pos);
	if (n == -1)
		cli->exit_code = CLI_EXIT_RUN; /* docker's status for run's flag errors */
	if (n >= 0)
		body_attach(out, &p);
	json_decref(p.env);
	json_decref(p.labels);
	json_decref(p.hc);
	if (n < 0) {
		cli_run_free(out);
		return n;
	}
	return 0;
}

void cli_run_free(struct cli_run *r)
{
	json_decref(r->body);
	r->body = NULL;
}

/* ---- talking to the daemon ---------------------------------------------- */

static void print_warnings(json_t *reply)
{
	size_t i;
	json_t *w;
	char clean[512];

	json_array_foreach(json_object_get(reply, "Warnings"), i, w)
	{
		if (!json_is_string(w))
			continue;
		cli_sanitize(json_string_value(w), clean, sizeof(clean));
		fprintf(stderr, "WARNING: %s\n", clean);
	}
}

/* The Id of a 201 reply: hex only, since it goes into our URLs and output. */
static int reply_id(struct cli *cli, const struct bh_buf *body, char *id, size_t idlen)
{
	json_t *doc = json_loadb(body->data, body->len, 0, NULL);
	const char *s = json_string_value(json_object_get(doc, "Id"));
	size_t n = s ? strspn(s, "0123456789abcdef") : 0;

	if (s == NULL || n == 0 || s[n] != '\0' || n >= idlen) {
		json_decref(doc);
		return cli_fail(cli, CLI_EXIT_DAEMON, "the daemon's create reply has no valid Id");
	}
	bh_strlcpy(id, s, idlen);
	print_warnings(doc);
	json_decref(doc);
	return 0;
}

static void report_missing_image(const struct cli_run *r, int status, const struct bh_buf *b)
{
	cleanup_free char *ref = cli_image_ref_tagged(r->image);
	char msg[600], clean[300];

	cli_daemon_message(status, b, msg, sizeof(msg));
	if (status == 404 && bh_str_has_prefix(msg, "No such image")) {
		cli_sanitize(ref, clean, sizeof(clean));
		fprintf(stderr, "Unable to find image '%s' locally\n", clean);
	}
}

static int create_container(struct cli *cli, const struct cli_run *r, int fail_code, char *id,
                            size_t idlen)
{
	cleanup_free char *name = r->name ? cli_url_escape(r->name) : NULL;
	cleanup_free char *path = name ? bh_asprintf("/containers/create?name=%s", name)
	                               : bh_strdup("/containers/create");
	cleanup_free char *json = json_dumps(r->body, JSON_COMPACT);
	struct cli_http_req rq = {"POST", path, NULL, json, strlen(json), NULL, 0};
	struct bh_buf body;
	int status, rc;

	status = cli_api_do(cli, &rq, &body);
	if (status < 0)
		return -1;
	if (status == 201 || status == 200)
		rc = reply_id(cli, &body, id, idlen);
	else {
		report_missing_image(r, status, &body);
		rc = cli_api_error(cli, fail_code, status, &body);
	}
	bh_buf_free(&body);
	return rc;
}

/* POST /containers/ID/<verb>: 0 on 2xx/304, else -1 with the daemon's error. */
static int container_post(struct cli *cli, const char *id, const char *verb, int fail_code)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/%s", id, verb);
	struct cli_http_req rq = {.method = "POST", .path = path};
	struct bh_buf body;
	int status = cli_api_do(cli, &rq, &body);

	if (status < 0)
		return -1;
	if (status >= 300 && status != 304)
		cli_api_error(cli, fail_code, status, &body);
	bh_buf_free(&body);
	return status >= 300 && status != 304 ? -1 : 0;
}

/* Best effort: the container of a failed --rm run must not stay behind. */
static void remove_quietly(struct cli *cli, const char *id)
{
	cleanup_free char *path = bh_asprintf("/containers/%s?force=1", id);
	struct cli_http_req rq = {.method = "DELETE", .path = path};
	struct bh_err keep = cli->err;
	int code = cli->exit_code;
	struct bh_buf body;
	char msg[600];
	int status = cli_api_do(cli, &rq, &body);

	if (status >= 300 && status != 404) {
		cli_daemon_message(status, &body, msg, sizeof(msg));
		fprintf(stderr, "berth: cannot remove container %.12s: %s\n", id, msg);
	}
	if (status >= 0)
		bh_buf_free(&body);
	cli->err = keep;
	cli->exit_code = code;
}

/* A start that failed: docker's 126 (cannot invoke) or 127 (not found),
 * from the exit code the daemon recorded or else from its message. */
static int start_failure_code(struct cli *cli, const char *id)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/json", id);
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct bh_err keep = cli->err;
	struct bh_buf body;
	json_int_t code = 0;
	int status = cli_api_do(cli, &rq, &body);

	cli->err = keep;
	if (status == 200) {
		json_t *doc = json_loadb(body.data, body.len, 0, NULL);
		code =
		    json_integer_value(json_object_get(json_object_get(doc, "State"), "ExitCode"));
		json_decref(doc);
	}
	if (status >= 0)
		bh_buf_free(&body);
	return cli_start_error_code(cli->err.msg, (long)code);
}

/* The wait result {"StatusCode": N, "Error": {"Message": ...} | null}. */
static int wait_result(struct cli *cli, int status, const struct bh_buf *body)
{
	json_t *doc, *msg;
	json_int_t code;

	if (status != 200)
		return cli_api_error(cli, CLI_EXIT_RUN, status, body);
	doc = json_loadb(body->data, body->len, 0, NULL);
	msg = json_object_get(json_object_get(doc, "Error"), "Message");
	code = json_integer_value(json_object_get(doc, "StatusCode"));
	if (json_is_string(msg) && json_string_length(msg) > 0) {
		char clean[600];
		cli_sanitize(json_string_value(msg), clean, sizeof(clean));
		json_decref(doc);
		return cli_fail(cli, CLI_EXIT_RUN, "Error waiting for container: %s", clean);
	}
	if (json_object_get(doc, "StatusCode") == NULL) {
		json_decref(doc);
		return cli_fail(cli, CLI_EXIT_RUN, "the daemon's wait reply has no StatusCode");
	}
	json_decref(doc);
	return (int)(code & 0xff);
}

/* ---- forwarding our signals to the container (docker's sig-proxy) ------- */

static const int proxied_signals[] = {
    SIGINT,
    SIGTERM,
#ifdef SIGHUP
    SIGHUP,
#endif
#ifdef SIGQUIT
    SIGQUIT,
#endif
};
#define N_PROXIED (sizeof(proxied_signals) / sizeof(proxied_signals[0]))

static volatile sig_atomic_t pending_signal, signals_seen;

/* The first signal goes to the container; a second one ends berth itself
 * (the container goes on), so a hung daemon cannot trap the user. */
static void on_signal(int sig)
{
	if (signals_seen++ > 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	pending_signal = sig;
}

static void proxy_signals(bool on)
{
	pending_signal = 0;
	signals_seen = 0;
	for (size_t i = 0; i < N_PROXIED; i++)
		signal(proxied_signals[i], on ? on_signal : SIG_DFL);
}

struct proxy {
	struct cli *cli;
	const char *id;
};

/* On a connection of its own: the one in use is streaming the output. */
static int forward_signal(void *arg)
{
	struct proxy *p = arg;
	int sig = pending_signal;
	cleanup_free char *path = NULL;
	struct cli_http_req rq = {.method = "POST"};
	const struct ctx_target *t;
	struct cli_http *h = NULL;
	struct bh_buf body;
	struct bh_err err = {0};

	if (sig == 0 || cli_target(p->cli, &t) < 0)
		return 0;
	pending_signal = 0;
	path = bh_asprintf("/containers/%s/kill?signal=%d", p->id, sig);
	rq.path = path;
	if (cli_http_open(t, &h, &err) == 0 && cli_http_do(h, &rq, &body, &err) >= 0)
		bh_buf_free(&body);
	cli_http_close(h);
	bh_debug("forwarded signal %d to %.12s: %s", sig, p->id, err.msg);
	return 0;
}

/* Streams the logs to our stdout/stderr until the container stops.  A
 * failure here is reported but does not hide the exit code. */
static void follow_output(struct cli *cli, const char *id, struct proxy *px)
{
	cleanup_free char *path =
	    bh_asprintf("/containers/%s/logs?follow=1&stdout=1&stderr=1&tail=all", id);
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct cli_stdio_sink sink;
	struct cli_http *h;
	struct bh_err err = {0};
	char msg[600];
	int status;

	if (cli_api_http(cli, &h) < 0)
		return;
	cli_stdio_sink_init(&sink, h, false);
	cli_http_on_tick(h, forward_signal, px);
	status = cli_http_stream(h, &rq, cli_stdio_sink, &sink, &err);
	cli_http_on_tick(h, NULL, NULL);
	if (status >= 0 && status < 300)
		status = cli_stdio_sink_end(&sink, &err);
	if (status < 0)
		fprintf(stderr, "berth: reading the output of %.12s: %s\n", id, err.msg);
	else if (status >= 300) {
		cli_daemon_message(status, &sink.error_body, msg, sizeof(msg));
		fprintf(stderr, "berth: reading the output of %.12s: %s\n", id, msg);
	}
	cli_stdio_sink_free(&sink);
}

/* Sends the wait on its own connection before start, so that even an
 * instant exit is seen: the daemon answers its headers at once. */
static int begin_wait(struct cli *cli, const char *id, struct cli_http **wh)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/wait?condition=next-exit", id);
	struct cli_http_req rq = {.method = "POST", .path = path};
	const struct ctx_target *t;
	struct bh_err err = {0};

	if (cli_target(cli, &t) < 0)
		return -1;
	if (cli_http_open(t, wh, &err) < 0 || cli_http_begin(*wh, &rq, 30000, &err) < 0)
		return cli_fail(cli, CLI_EXIT_RUN, "%s (%s): %s", t->name, t->host, err.msg);
	return 0;
}

static int run_attached(struct cli *cli, const struct cli_run *r, const char *id)
{
	struct proxy px = {cli, id};
	struct cli_http *wh = NULL;
	struct bh_err err = {0};
	struct bh_buf body;
	int status, rc;

	if (begin_wait(cli, id, &wh) < 0) {
		cli_http_close(wh);
		return -1;
	}
	if (container_post(cli, id, "start", CLI_EXIT_RUN) < 0) {
		cli_http_close(wh);
		cli->exit_code = start_failure_code(cli, id);
		return -1;
	}
	proxy_signals(true);
	follow_output(cli, id, &px);
	status = cli_http_finish(wh, &body, &err);
	proxy_signals(false);
	cli_http_close(wh);
	if (status < 0)
		return cli_fail(cli, CLI_EXIT_RUN, "waiting for %.12s: %s", id, err.msg);
	rc = wait_result(cli, status, &body);
	bh_buf_free(&body);
	return rc;
}

static int run_container(struct cli *cli, const struct cli_run *r, const char *id)
{
	int rc;

	if (r->detach) {
		if (container_post(cli, id, "start", CLI_EXIT_RUN) < 0) {
			cli->exit_code = start_failure_code(cli, id);
			return -1;
		}
		printf("%s\n", id);
		return 0;
	}
	rc = run_attached(cli, r, id);
	if (r->rm)
		remove_quietly(cli, id);
	return rc;
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
	struct cli_run r;
	char id[129];
	int rc;

	rc = cli_run_parse(cli, "run", argc, argv, &r);
	if (rc < 0)
		return rc;
	rc = create_container(cli, &r, CLI_EXIT_RUN, id, sizeof(id));
	if (rc == 0)
		rc = run_container(cli, &r, id);
	if (rc < 0 && cli->exit_code == CLI_EXIT_CMD)
		cli->exit_code = CLI_EXIT_RUN;
	cli_run_free(&r);
	return rc;
}

int cmd_create(struct cli *cli, int argc, char **argv)
{
	struct cli_run r;
	char id[129];
	int rc;

	rc = cli_run_parse(cli, "create", argc, argv, &r);
	if (rc < 0)
		return rc;
	rc = create_container(cli, &r, CLI_EXIT_CMD, id, sizeof(id));
	if (rc == 0)
		printf("%s\n", id);
	cli_run_free(&r);
	return rc;
}
