/* client: the in-process fan-out of ps and images.  Instead of one child per
 * host (fork, libcurl and OpenSSL set up again, one handshake each on its
 * own), this process sends one GET per host at once on one libcurl multi
 * handle (client/multi.c) and hands each host's outcome to fanout_run.c as
 * the child would have produced it: its exit status, its one stderr line and
 * its stdout (the JSON lines of ps/images --format json, rendered by the
 * commands' own code).  Only flags understood here take this path; anything
 * else runs as children (fanout.c). */
#include <stdlib.h>
#include <string.h>

#include "client/fanout.h"
#include "client/multi.h"

#define FAST_CONNECT_MS (15 * 1000) /* as http.c's CURLOPT_CONNECTTIMEOUT */
#define FAST_ERR_MAX    sizeof(((struct bh_err *)0)->msg)

/* ---- which command lines take this path ------------------------------------ */

static bool is_json_value(int argc, char **argv, int *i)
{
	if (strcmp(argv[*i], "--format=json") == 0)
		return true;
	if (strcmp(argv[*i], "--format") == 0 && *i + 1 < argc &&
	    strcmp(argv[*i + 1], "json") == 0) {
		(*i)++;
		return true;
	}
	return false;
}

/* ps's filter value: KEY=VALUE with a key, as cmd_ps.c's add_filter wants;
 * else NULL (the child says what is wrong with it). */
static const char *filter_value(int argc, char **argv, int *i)
{
	const char *v = NULL;

	if (strncmp(argv[*i], "--filter=", 9) == 0)
		v = argv[*i] + 9;
	else if ((strcmp(argv[*i], "--filter") == 0 || strcmp(argv[*i], "-f") == 0) &&
	         *i + 1 < argc)
		v = argv[++(*i)];
	if (v == NULL || v[0] == '=' || strchr(v, '=') == NULL)
		return NULL;
	return v;
}

static void filter_add(json_t *filters, const char *kv)
{
	const char *eq = strchr(kv, '=');
	cleanup_free char *key = bh_strndup(kv, (size_t)(eq - kv));
	json_t *list = json_object_get(filters, key);

	if (list == NULL) {
		list = json_array();
		json_object_set_new(filters, key, list);
	}
	json_array_append_new(list, json_string(eq + 1));
}

/* The query of GET /containers/json as cmd_ps.c's ps_path builds it. */
static char *ps_path(bool all, json_t *filters)
{
	cleanup_free char *f = NULL, *esc = NULL;

	if (json_object_size(filters) == 0)
		return bh_strdup(all ? "/containers/json?all=1" : "/containers/json");
	f = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
	esc = cli_url_escape(f);
	return bh_asprintf("/containers/json?%sfilters=%s", all ? "all=1&" : "", esc);
}

static char *ps_fast_path(int argc, char **argv, bool *no_trunc)
{
	json_t *filters = json_object();
	bool all = false, ok = true;
	const char *kv;
	char *path = NULL;

	for (int i = 1; i < argc && ok; i++) {
		if (strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--all") == 0)
			all = true;
		else if (strcmp(argv[i], "--no-trunc") == 0)
			*no_trunc = true;
		else if (is_json_value(argc, argv, &i))
			continue;
		else if ((kv = filter_value(argc, argv, &i)) != NULL)
			filter_add(filters, kv);
		else
			ok = false;
	}
	if (ok)
		path = ps_path(all, filters);
	json_decref(filters);
	return path;
}

static char *images_fast_path(int argc, char **argv, bool *no_trunc)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-trunc") == 0)
			*no_trunc = true;
		else if (!is_json_value(argc, argv, &i))
			return NULL;
	}
	return bh_strdup("/images/json");
}

/* info, version: nothing but --format json (-f json, -fjson), as
 * cmd_version.c's cli_parse_format takes it. */
static char *whole_fast_path(const char *path, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-fjson") == 0 || is_json_value(argc, argv, &i))
			continue;
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0)
			i++;
		else
			return NULL;
	}
	return bh_strdup(path);
}

char *cli_fan_fast_path(const char *cmd, int argc, char **argv, bool json_mode, bool *no_trunc)
{
	*no_trunc = false;
	if (strcmp(cmd, "ps") == 0)
		return ps_fast_path(argc, argv, no_trunc);
	if (strcmp(cmd, "images") == 0)
		return images_fast_path(argc, argv, no_trunc);
	if (json_mode && strcmp(cmd, "info") == 0)
		return whole_fast_path("/info", argc, argv);
	if (json_mode && strcmp(cmd, "version") == 0)
		return whole_fast_path("/version", argc, argv);
	return NULL;
}

/* ---- one host's outcome, as `berth -c NAME ps --format json` ends -------------- */

struct fast_run {
	const struct cli_fan_plan *p;
	struct ctx_target *ts;
	struct cli_multi_get *gs;
	cli_fan_fast_done fn;
	void *arg;
};

/* main.c's cli_error_name_daemon: a message about the daemon names it. */
static void name_daemon(const struct ctx_target *t, int code, char *msg, size_t n)
{
	size_t len = strlen(msg);

	if (code != CLI_EXIT_DAEMON && !bh_str_has_prefix(msg, "Error response from daemon"))
		return;
	if (strstr(msg, t->host) != NULL)
		return;
	snprintf(msg + len, n - len, " (context %s, host %s)", t->name, t->host);
}

/* The command's reply into JSON lines; returns the exit status, msg set on
 * failure. */
static int reply_lines(const struct fast_run *r, const struct cli_multi_get *g, struct bh_buf *out,
                       bool *overflow, char *msg, size_t n)
{
	const char *cmd = r->p->cmd;
	char text[800]; /* as cli_api_error */
	json_t *list;
	int full;

	if (g->status >= 300) {
		cli_daemon_message((int)g->status, &g->body, text, sizeof(text));
		snprintf(msg, n, "Error response from daemon: %s", text);
		return CLI_EXIT_CMD;
	}
	list = json_loadb(g->body.data ? g->body.data : "", g->body.len, 0, NULL);
	if (list == NULL) {
		snprintf(msg, n, "GET %s: the daemon's reply is not JSON", g->path);
		return CLI_EXIT_DAEMON;
	}
	if (!json_is_array(list)) {
		json_decref(list);
		snprintf(msg, n, "%s: the daemon's reply is not a list", cmd);
		return CLI_EXIT_DAEMON;
	}
	full = strcmp(cmd, "ps") == 0 ? cli_ps_json_lines(list, r->p->fast_no_trunc, out)
	                              : cli_images_json_lines(list, r->p->fast_no_trunc, out);
	*overflow = full < 0;
	json_decref(list);
	return 0;
}

/* info and version: cli_api_get_json's reading of the reply (its messages
 * carry the label), *doc the parsed body; returns the exit status. */
static int whole_reply(const struct cli_multi_get *g, json_t **doc, char *msg, size_t n)
{
	char label[400], text[600];
	json_error_t jerr;

	cli_target_label(g->t, label, sizeof(label));
	if (g->status >= 400) {
		json_t *b = json_loadb(g->body.data ? g->body.data : "", g->body.len, 0, NULL);
		json_t *m = json_object_get(b, "message");
		if (json_is_string(m))
			cli_sanitize(json_string_value(m), text, sizeof(text));
		else
			snprintf(text, sizeof(text), "the daemon answered HTTP %ld", g->status);
		json_decref(b);
		snprintf(msg, n, "%s: %s", label, text);
		return g->status >= 500 ? CLI_EXIT_DAEMON : CLI_EXIT_CMD;
	}
	*doc = json_loadb(g->body.data ? g->body.data : "", g->body.len, 0, &jerr);
	if (*doc != NULL)
		return 0;
	snprintf(msg, n, "%s: GET %s: the daemon's reply is not JSON: %s", label, g->path,
	         jerr.text);
	return CLI_EXIT_DAEMON;
}

/* What `info/version --format json` prints: the reply as it is, or
 * {"Client", "Server"} (Server null when the daemon did not answer). */
static void whole_out(const struct fast_run *r, const struct cli_multi_get *g, json_t *doc,
                      struct bh_buf *out, bool *overflow)
{
	json_t *v = doc;
	char *s;

	if (strcmp(r->p->cmd, "version") == 0)
		v = json_pack("{s:o, s:O}", "Client", cli_version_client_json(g->t->name), "Server",
		              doc ? doc : json_null());
	else if (doc == NULL)
		return; /* info prints nothing when it failed */
	s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	*overflow = s != NULL && bh_buf_printf(out, "%s\n", s) < 0;
	free(s);
	if (v != doc)
		json_decref(v);
}

/* --timeout ended it (its child would have been killed), not the connect
 * timeout of a longer --timeout; curl's clock and ours may differ by a tick. */
static bool ours_timed_out(const struct cli_multi_get *g, long timeout_s)
{
	uint64_t limit = (uint64_t)timeout_s * 1000u;

	if (g->rc != CURLE_OPERATION_TIMEDOUT || timeout_s <= 0)
		return false;
	return limit <= FAST_CONNECT_MS || bh_now_ms() - g->started_ms + 100 >= limit;
}

static void host_done(void *arg, struct cli_multi_get *g)
{
	struct fast_run *r = arg;
	const struct cli_fan_plan *p = r->p;
	size_t i = (size_t)(g - r->gs);
	char msg[FAST_ERR_MAX], label[400];
	bool timed_out = false, overflow = false;
	bool whole = strcmp(p->cmd, "info") == 0 || strcmp(p->cmd, "version") == 0;
	json_t *doc = NULL;
	struct bh_buf out;
	int code;

	msg[0] = '\0';
	bh_buf_init(&out, CLI_FAN_OUT_MAX);
	if (g->rc == CURLE_OK && whole) {
		code = whole_reply(g, &doc, msg, sizeof(msg));
		whole_out(r, g, doc, &out, &overflow);
	} else if (g->rc == CURLE_OK) {
		code = reply_lines(r, g, &out, &overflow, msg, sizeof(msg));
	} else if (ours_timed_out(g, p->timeout_s)) {
		timed_out = true; /* the child would have been killed: no line */
		code = CLI_FAN_EXIT_TIMEOUT;
	} else {
		cli_target_label(g->t, label, sizeof(label));
		code = CLI_EXIT_DAEMON;
		snprintf(msg, sizeof(msg), "%s: ", label);
		cli_multi_describe(g, msg + strlen(msg), sizeof(msg) - strlen(msg));
		if (strcmp(p->cmd, "version") == 0)
			whole_out(r, g, NULL, &out, &overflow);
	}
	if (msg[0] != '\0')
		name_daemon(g->t, code, msg, sizeof(msg));
	r->fn(r->arg, i, code, timed_out, overflow, msg, &out);
	json_decref(doc);
	bh_buf_free(&out);
	cli_multi_get_free(g);
}

/* A context that does not resolve fails as the child's cli_target would. */
static bool host_resolve(struct fast_run *r, size_t i, const struct ctx_env *env)
{
	struct ctx_flags fl = {.context = r->p->hosts[i].name};
	struct bh_err err = {0};
	struct bh_buf none;

	if (ctx_resolve(r->p->config_dir, &fl, env, &r->ts[i], &err) == 0)
		return true;
	bh_buf_init(&none, 0);
	r->fn(r->arg, i, CLI_EXIT_CMD, false, false, err.msg, &none);
	return false;
}

int cli_fan_fast_run(const struct cli_fan_plan *p, cli_fan_fast_done fn, void *arg,
                     struct bh_err *err)
{
	struct fast_run r = {.p = p, .fn = fn, .arg = arg};
	long timeout_ms = p->timeout_s * 1000;
	struct ctx_env env;
	int rc;

	r.ts = bh_calloc(p->nhosts, sizeof(*r.ts));
	r.gs = bh_calloc(p->nhosts, sizeof(*r.gs));
	ctx_env_from_process(&env);
	for (size_t i = 0; i < p->nhosts; i++) {
		if (!host_resolve(&r, i, &env))
			continue;
		r.gs[i] = (struct cli_multi_get){
		    .t = &r.ts[i],
		    .path = p->fast_path,
		    .timeout_ms = timeout_ms,
		    .connect_timeout_ms = timeout_ms > 0 && timeout_ms < FAST_CONNECT_MS
		                              ? timeout_ms
		                              : FAST_CONNECT_MS,
		    .body_max = CLI_BODY_MAX,
		};
	}
	rc = cli_multi_run(r.gs, p->nhosts, (size_t)p->parallel, 0, host_done, &r, err);
	for (size_t i = 0; i < p->nhosts; i++) {
		cli_multi_get_free(&r.gs[i]);
		ctx_target_free(&r.ts[i]);
	}
	free(r.gs);
	free(r.ts);
	return rc;
}
