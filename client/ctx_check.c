/* client: `berth context ls --check` and the client-certificate expiry
 * warnings of `context ls`.  The probes run at once on one libcurl multi
 * handle (non-blocking sockets, no threads: portable as is), each bounded by
 * the timeout; one GET /version per context through the same TLS material
 * and verification as every other command (client/multi.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/certs.h"
#include "client/multi.h"

#define PROBE_BODY_MAX (64 * 1024)
#define EXPIRY_WARN_S  (7 * 24 * 3600)

/* "in 3 days", "in 5 hours", or "" when not within the warning window;
 * expired certificates say "EXPIRED". */
static void expiry_words(int64_t not_after, int64_t now, char *out, size_t n)
{
	int64_t left = not_after - now;

	if (left <= 0)
		snprintf(out, n, "EXPIRED");
	else if (left < 24 * 3600)
		snprintf(out, n, "expires in %lld hours", (long long)((left + 3599) / 3600));
	else if (left <= EXPIRY_WARN_S)
		snprintf(out, n, "expires in %lld days", (long long)(left / 86400));
	else
		out[0] = '\0';
}

void cli_context_expiry_warnings(const struct ctx_meta *l, size_t n)
{
	int64_t now = (int64_t)time(NULL);
	struct pki_cert_info info;
	struct bh_err err = {0};
	char words[64], when[40];

	for (size_t i = 0; i < n; i++) {
		if (l[i].tls.cert == NULL ||
		    pki_cert_info_from_file(l[i].tls.cert, &info, &err) < 0)
			continue;
		expiry_words(info.not_after, now, words, sizeof(words));
		bh_rfc3339(when, info.not_after, 0);
		if (words[0] != '\0')
			fprintf(stderr,
			        "berth: warning: context \"%s\": client certificate %s (%s): "
			        "berth context renew %s\n",
			        l[i].name, words, when, l[i].name);
		pki_cert_info_free(&info);
	}
}

/* ---- the probes ------------------------------------------------------------ */

struct probe {
	struct ctx_target t;
	bool resolved;
	bool done, reachable;
	int status;
	double rtt_ms, connect_ms;
	char version[64];
	char error[400];
	char expires[80];
};

static void cert_column(struct probe *p)
{
	struct pki_cert_info info;
	struct bh_err err = {0};
	char when[40], words[64];

	if (p->t.pem.cert == NULL) {
		snprintf(p->expires, sizeof(p->expires), "-");
		return;
	}
	if (pki_cert_info_from_pem(p->t.pem.cert, p->t.pem.cert_len, &info, &err) < 0) {
		snprintf(p->expires, sizeof(p->expires), "unreadable");
		return;
	}
	bh_rfc3339(when, info.not_after, 0);
	expiry_words(info.not_after, (int64_t)time(NULL), words, sizeof(words));
	snprintf(p->expires, sizeof(p->expires), "%.10s%s%s%s", when, words[0] ? " (" : "", words,
	         words[0] ? ")" : "");
	pki_cert_info_free(&info);
}

static void probe_setup(struct probe *p, struct cli_multi_get *g, long timeout_ms)
{
	g->t = &p->t;
	g->path = "/version";
	g->timeout_ms = timeout_ms;
	g->connect_timeout_ms = timeout_ms;
	g->body_max = PROBE_BODY_MAX;
	g->user = p;
}

/* The outcome of one finished transfer into its row. */
static void probe_finish(void *arg, struct cli_multi_get *g)
{
	struct probe *p = g->user;
	curl_off_t total = 0, conn = 0, app = 0;
	long status = g->status;
	json_t *doc, *v;

	p->done = true;
	if (g->rc != CURLE_OK) {
		cli_multi_describe(g, p->error, sizeof(p->error));
		return;
	}
	p->reachable = true;
	curl_easy_getinfo(g->curl, CURLINFO_TOTAL_TIME_T, &total);
	curl_easy_getinfo(g->curl, CURLINFO_CONNECT_TIME_T, &conn);
	curl_easy_getinfo(g->curl, CURLINFO_APPCONNECT_TIME_T, &app);
	p->status = (int)status;
	/* RTT: the request's round trip once connected (and the handshake done). */
	p->connect_ms = (double)(app > conn ? app : conn) / 1000.0;
	p->rtt_ms = (double)(total - (app > conn ? app : conn)) / 1000.0;
	if (status >= 300) {
		char msg[300];
		cli_daemon_message((int)status, &g->body, msg, sizeof(msg));
		snprintf(p->error, sizeof(p->error), "HTTP %ld: %s", status, msg);
		return;
	}
	doc = json_loadb(g->body.data ? g->body.data : "", g->body.len, 0, NULL);
	v = json_object_get(doc, "Version");
	cli_sanitize(json_is_string(v) ? json_string_value(v) : "?", p->version,
	             sizeof(p->version));
	json_decref(doc);
}

/* ---- output ---------------------------------------------------------------- */

static void probe_cells(const struct probe *p, char rtt[32], char *out[7])
{
	bool ok = p->reachable && p->status < 300;

	snprintf(rtt, 32, "%.1fms", p->rtt_ms);
	out[0] = p->t.name;
	out[1] = p->t.host;
	out[2] = (char *)(p->reachable ? "yes" : "no");
	out[3] = p->reachable ? rtt : "-";
	out[4] = (char *)(ok ? p->version : "-");
	out[5] = (char *)p->expires;
	out[6] = (char *)(p->error[0] ? p->error : "");
}

static void print_table(struct probe *ps, size_t n)
{
	static const char *const head[] = {"NAME",    "HOST",         "REACHABLE", "RTT",
	                                   "VERSION", "CERT EXPIRES", "ERROR"};
	struct cli_table t;
	char rtt[32], *cells[7];

	cli_table_init(&t, 7);
	cli_table_add(&t, head);
	for (size_t i = 0; i < n; i++) {
		probe_cells(&ps[i], rtt, cells);
		cli_table_add(&t, (const char *const *)cells);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static json_t *probe_json(const struct probe *p)
{
	json_t *j = json_pack("{s:s, s:s, s:b}", "Name", p->t.name ? p->t.name : "", "Host",
	                      p->t.host ? p->t.host : "", "Reachable", p->reachable);

	if (p->reachable) {
		json_object_set_new(j, "RttMs", json_real(p->rtt_ms));
		json_object_set_new(j, "ConnectMs", json_real(p->connect_ms));
		json_object_set_new(j, "Status", json_integer(p->status));
	}
	if (p->version[0] != '\0')
		json_object_set_new(j, "Version", json_string(p->version));
	json_object_set_new(j, "CertExpires", json_string(p->expires));
	if (p->t.source == CTX_SRC_ENV_BUNDLE)
		json_object_set_new(j, "Bundle", json_true());
	if (p->error[0] != '\0')
		json_object_set_new(j, "Error", json_string(p->error));
	return j;
}

static int print_json(struct cli *cli, struct probe *ps, size_t n)
{
	json_t *arr = json_array();
	int r;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, probe_json(&ps[i]));
	r = cli_print_json(cli, arr);
	json_decref(arr);
	return r;
}

/* ---- entry ------------------------------------------------------------------ */

/* A context that cannot even be resolved (incomplete TLS material) is a row
 * with its error, probed no further. */
static void probe_resolve(struct cli *cli, const struct ctx_meta *m, const struct ctx_env *env,
                          struct probe *p)
{
	struct ctx_flags fl = {.context = m->name};
	struct bh_err err = {0};

	if (ctx_resolve(cli->config_dir, &fl, env, &p->t, &err) < 0) {
		p->t.name = bh_strdup(m->name);
		p->t.host = bh_strdup(m->host);
		p->done = true;
		snprintf(p->error, sizeof(p->error), "%s", err.msg);
		snprintf(p->expires, sizeof(p->expires), "-");
		return;
	}
	p->resolved = true;
	cert_column(p);
}

/* BERTH_CONTEXT_BUNDLE as one more row, unless a stored context has its
 * name (that row, resolved like -c NAME, probes the bundle already).
 * Returns 1 when p was filled. */
static size_t probe_bundle(const struct ctx_meta *l, size_t n, const struct ctx_env *env,
                           struct probe *p)
{
	struct bh_err err = {0};

	if (env->berth_context_bundle == NULL)
		return 0;
	if (ctx_bundle_load(env->berth_context_bundle, &p->t, &err) < 0) {
		p->t.name = bh_strdup("BERTH_CONTEXT_BUNDLE");
		p->t.host = bh_strdup("-");
		p->done = true;
		snprintf(p->error, sizeof(p->error), "%s", err.msg);
		snprintf(p->expires, sizeof(p->expires), "-");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, p->t.name) == 0) {
			ctx_target_free(&p->t);
			return 0;
		}
	p->resolved = true;
	cert_column(p);
	return 1;
}

int cli_context_check(struct cli *cli, const struct ctx_meta *l, size_t n, long timeout_ms,
                      bool json)
{
	struct probe *ps = bh_calloc(n + 1, sizeof(*ps));
	struct cli_multi_get *gs;
	struct bh_err err = {0};
	struct ctx_env env;
	size_t rows;
	int r;

	ctx_env_from_process(&env);
	for (size_t i = 0; i < n; i++)
		probe_resolve(cli, &l[i], &env, &ps[i]);
	rows = n + probe_bundle(l, n, &env, &ps[n]);
	gs = bh_calloc(rows, sizeof(*gs));
	for (size_t i = 0; i < rows; i++)
		if (ps[i].resolved) /* the others have no target: skipped */
			probe_setup(&ps[i], &gs[i], timeout_ms);
	if (cli_multi_run(gs, rows, 0, bh_now_ms() + (uint64_t)timeout_ms + 1000, probe_finish,
	                  NULL, &err) < 0) {
		free(gs);
		free(ps);
		return cli_fail(cli, CLI_EXIT_CMD, "%s", err.msg);
	}
	for (size_t i = 0; i < rows; i++)
		if (ps[i].resolved && !ps[i].done)
			snprintf(ps[i].error, sizeof(ps[i].error), "no answer within %ld ms",
			         timeout_ms);
	r = json ? print_json(cli, ps, rows) : (print_table(ps, rows), 0);
	for (size_t i = 0; i < rows; i++) {
		cli_multi_get_free(&gs[i]);
		ctx_target_free(&ps[i].t);
	}
	free(gs);
	free(ps);
	return r;
}
