/* berth run / berth create, part two: the create request, then (run)
 * start (-i/-t: once the attach stream is up), the logs stream demuxed to
 * our stdout/stderr, our signals forwarded, and the container's exit code
 * as ours (asked for after the output on the same connection, or, with a
 * restart policy, waited for on a second one opened before the start).
 * The daemon's replies are untrusted text. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

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

static bool missing_image(int status, const struct bh_buf *b)
{
	char msg[600];

	cli_daemon_message(status, b, msg, sizeof(msg));
	return status == 404 && bh_str_has_prefix(msg, "No such image");
}

/* POST /containers/create once: 0 with the id, 1 when the daemon lacks the
 * image (nothing printed yet), -1 on other errors (cli->err set). */
static int create_once(struct cli *cli, const struct cli_run *r, int fail_code, char *id,
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
	else if (missing_image(status, &body) && r->pull != CLI_PULL_NEVER)
		rc = 1;
	else
		rc = cli_api_error(cli, fail_code, status, &body);
	bh_buf_free(&body);
	return rc;
}

/* docker's --pull: "missing" pulls when create says the image is absent,
 * "always" first, "never" not at all.  Progress goes to stderr: run -d's
 * stdout is the container id alone. */
static int create_container(struct cli *cli, const struct cli_run *r, int fail_code, char *id,
                            size_t idlen)
{
	cleanup_free char *ref = cli_image_ref_tagged(r->image);
	char clean[300];
	int rc = r->pull == CLI_PULL_ALWAYS ? 1 : create_once(cli, r, fail_code, id, idlen);

	if (rc <= 0)
		return rc;
	cli_sanitize(ref, clean, sizeof(clean));
	if (r->pull != CLI_PULL_ALWAYS)
		fprintf(stderr, "Unable to find image '%s' locally\n", clean);
	if (cli_pull_image(cli, r->image, NULL, stderr) < 0) {
		cli->exit_code = fail_code;
		return -1;
	}
	rc = create_once(cli, r, fail_code, id, idlen);
	return rc == 1 ? cli_fail(cli, fail_code, "No such image: %s", clean) : rc;
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

/* The wait goes out before the start (on its own connection, *wh), so no
 * exit can slip between them; a failed start maps to docker's 125/126/127. */
static int wait_then_start(struct cli *cli, const char *id, struct cli_http **wh)
{
	if (begin_wait(cli, id, wh) < 0) {
		cli_http_close(steal_pointer(wh));
		return -1;
	}
	if (container_post(cli, id, "start", CLI_EXIT_RUN) < 0) {
		cli_http_close(steal_pointer(wh));
		cli->exit_code = start_failure_code(cli, id);
		return -1;
	}
	return 0;
}

/* With a restart policy the container may run again by the time its
 * output ends: only a next-exit wait registered before the start sees the
 * exit of this run. */
static bool may_restart(const struct cli_run *r)
{
	const char *name = json_string_value(json_object_get(
	    json_object_get(json_object_get(r->body, "HostConfig"), "RestartPolicy"), "Name"));

	return name != NULL && name[0] != '\0' && strcmp(name, "no") != 0;
}

/* Without one, the exit code is asked for once the output has ended, on the
 * command's only connection: one mTLS handshake per run instead of two
 * (measured ~5 ms of a 60 ms run).  not-running answers at once for an
 * exited container and otherwise waits for the exit. */
static int run_attached_one_conn(struct cli *cli, const char *id)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/wait?condition=not-running", id);
	struct cli_http_req rq = {.method = "POST", .path = path};
	struct proxy px = {cli, id};
	struct bh_buf body;
	int status, rc;

	if (container_post(cli, id, "start", CLI_EXIT_RUN) < 0) {
		cli->exit_code = start_failure_code(cli, id);
		return -1;
	}
	proxy_signals(true);
	follow_output(cli, id, &px);
	status = cli_api_do(cli, &rq, &body);
	proxy_signals(false);
	if (status < 0)
		return -1; /* cli->err says which daemon could not be reached */
	rc = wait_result(cli, status, &body);
	bh_buf_free(&body);
	return rc;
}

static int run_attached(struct cli *cli, const struct cli_run *r, const char *id)
{
	struct proxy px = {cli, id};
	struct cli_http *wh = NULL;
	struct bh_err err = {0};
	struct bh_buf body;
	int status, rc;

	if (!may_restart(r))
		return run_attached_one_conn(cli, id);
	if (wait_then_start(cli, id, &wh) < 0)
		return -1;
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

struct streamed_start {
	struct cli *cli;
	const char *id;
	struct cli_http **wh;
};

static int start_when_attached(void *arg)
{
	struct streamed_start *st = arg;

	return wait_then_start(st->cli, st->id, st->wh);
}

/* run -i / -t: the attach stream (raw terminal, stdin, detach keys) first,
 * the start once the daemon accepted it (it holds the created container's
 * output for us: a shell's first prompt or a quick command's whole output
 * is never lost), the wait (sent before start) for the status.  A detach
 * leaves the container running and skips --rm, as docker. */
static int run_streamed(struct cli *cli, const struct cli_run *r, const char *id, bool *detached)
{
	struct cli_http *wh = NULL;
	struct streamed_start st = {cli, id, &wh};
	struct bh_err err = {0};
	struct bh_buf body;
	int status, rc;

	rc = cli_attach_stream(cli, id, r->tty, r->interactive, true, NULL, start_when_attached,
	                       &st, detached);
	if (rc < 0 || *detached) {
		cli_http_close(wh);
		return rc;
	}
	status = cli_http_finish(wh, &body, &err);
	cli_http_close(wh);
	if (status < 0)
		return cli_fail(cli, CLI_EXIT_RUN, "waiting for %.12s: %s", id, err.msg);
	rc = wait_result(cli, status, &body);
	bh_buf_free(&body);
	return rc;
}

static int run_container(struct cli *cli, const struct cli_run *r, const char *id)
{
	bool detached = false;
	int rc;

	if (r->detach) {
		if (container_post(cli, id, "start", CLI_EXIT_RUN) < 0) {
			cli->exit_code = start_failure_code(cli, id);
			return -1;
		}
		printf("%s\n", id);
		return 0;
	}
	if (r->interactive || r->tty)
		rc = run_streamed(cli, r, id, &detached);
	else
		rc = run_attached(cli, r, id);
	if (r->rm && !detached)
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
	if (r.interactive && r.tty && !r.detach && !cli_term_isatty(0)) {
		cli_run_free(&r);
		return cli_fail(cli, CLI_EXIT_CMD, "the input device is not a TTY");
	}
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
