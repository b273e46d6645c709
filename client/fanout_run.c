/* client: runs a fan-out plan: at most p->parallel children at once, each
 * with its own deadline; their output is read as it comes (nothing blocks on
 * a silent host) and printed line by line with a "NAME | " prefix, merged
 * into one table (ps, images) or wrapped in one JSON object per host.  One
 * host failing or timing out never stops the others. */
#include <stdlib.h>
#include <string.h>

#include "client/fanout.h"

#define FAN_LINE_MAX     (64 * 1024) /* a longer line is split */
#define FAN_OUT_MAX      CLI_FAN_OUT_MAX
#define FAN_REAP_MS      1 /* streams closed, process not yet gone */
#define FAN_EXIT_TIMEOUT CLI_FAN_EXIT_TIMEOUT

struct fan_job {
	const struct cli_fan_host *h;
	struct cli_child *child;
	struct bh_buf line[2]; /* the partial line of stdout, stderr */
	struct bh_buf out;     /* stdout captured (table, json) */
	char last_err[512];    /* the last non-empty stderr line */
	uint64_t deadline;     /* 0: none */
	bool running, done, timed_out, overflow;
	struct cli_child_status st;
};

struct fan_run {
	const struct cli_fan_plan *p;
	struct fan_job *jobs;
	struct cli_child **kids; /* kids[i] = jobs[i].child while it runs */
	size_t next, running, done, failed;
};

/* ---- output ----------------------------------------------------------------- */

/* fwrite, not %.*s: a NUL in the output must not cut the line short. */
static void print_prefixed(FILE *f, const char *name, const char *line, size_t len)
{
	fprintf(f, "%s | ", name);
	fwrite(line, 1, len, f);
	fputc('\n', f);
}

static json_t *text_json(const char *s, size_t len);

/* One event line as {"Context": NAME, ...its fields}, or {"Context", "Line"}
 * when it is not a JSON object. */
static void print_event(const struct fan_job *j, const char *line, size_t len)
{
	json_t *ev = len > 0 ? json_loadb(line, len, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s}", "Context", j->h->name);
	char *s;

	if (json_is_object(ev))
		json_object_update(o, ev);
	else if (len > 0)
		json_object_set_new(o, "Line", text_json(line, len));
	s = len > 0 ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(o);
	json_decref(ev);
}

static void line_done(struct fan_run *r, struct fan_job *j, int s)
{
	struct bh_buf *b = &j->line[s - 1];
	size_t len = b->len;

	if (len > 0 && b->data[len - 1] == '\r')
		len--;
	if (s == 2 && len > 0)
		snprintf(j->last_err, sizeof(j->last_err), "%.*s", (int)len, b->data);
	if (s == 1 && r->p->mode == CLI_FAN_JSON_STREAM)
		print_event(j, b->data ? b->data : "", len);
	else if (s == 1)
		print_prefixed(stdout, j->h->name, b->data ? b->data : "", len);
	else if (r->p->mode != CLI_FAN_JSON && r->p->mode != CLI_FAN_JSON_STREAM)
		print_prefixed(stderr, j->h->name, b->data ? b->data : "", len);
	bh_buf_reset(b);
}

/* Splits data into lines; a line longer than FAN_LINE_MAX leaves in pieces. */
static void feed_lines(struct fan_run *r, struct fan_job *j, int s, const char *d, size_t len)
{
	struct bh_buf *b = &j->line[s - 1];

	while (len > 0) {
		const char *nl = memchr(d, '\n', len);
		size_t want = nl ? (size_t)(nl - d) : len;
		size_t room = FAN_LINE_MAX - b->len;
		size_t take = want < room ? want : room;

		bh_buf_append(b, d, take);
		d += take;
		len -= take;
		if (nl != NULL && take == want) {
			d++;
			len--;
			line_done(r, j, s);
		} else if (b->len == FAN_LINE_MAX) {
			line_done(r, j, s);
		}
	}
}

static void on_output(void *arg, size_t index, int stream, const char *data, size_t len)
{
	struct fan_run *r = arg;
	struct fan_job *j = &r->jobs[index];

	if (stream == 1 && r->p->mode != CLI_FAN_LINES && r->p->mode != CLI_FAN_JSON_STREAM) {
		if (len > 0 && bh_buf_append(&j->out, data, len) < 0)
			j->overflow = true;
		return;
	}
	if (len == 0) {
		if (j->line[stream - 1].len > 0)
			line_done(r, j, stream);
		return;
	}
	feed_lines(r, j, stream, data, len);
}

/* ---- JSON per host ------------------------------------------------------------- */

/* jansson wants UTF-8: anything else becomes '?' rather than vanishing. */
static json_t *text_json(const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);
	char *copy;

	if (v != NULL)
		return v;
	copy = bh_strndup(s, len);
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	v = json_string(copy);
	free(copy);
	return v ? v : json_string("");
}

static json_t *result_json(const struct fan_job *j, enum cli_fan_result kind)
{
	const char *d = j->out.data ? j->out.data : "";
	size_t len = j->out.len;
	json_t *arr, *v;

	if (kind == CLI_FAN_RESULT_WHOLE && (v = json_loadb(d, len, 0, NULL)) != NULL)
		return v;
	arr = json_array();
	while (len > 0) {
		const char *nl = memchr(d, '\n', len);
		size_t n = nl ? (size_t)(nl - d) : len;
		v = NULL;
		if (kind != CLI_FAN_RESULT_TEXT)
			v = json_loadb(d, n, JSON_DECODE_ANY, NULL);
		json_array_append_new(arr, v ? v : text_json(d, n));
		d += nl ? n + 1 : n;
		len -= nl ? n + 1 : n;
	}
	return arr;
}

static int exit_code_of(const struct fan_job *j)
{
	if (j->timed_out)
		return FAN_EXIT_TIMEOUT;
	if (j->st.signal != 0)
		return 128 + j->st.signal;
	return j->st.code;
}

static bool job_ok(const struct fan_job *j)
{
	return !j->timed_out && !j->overflow && j->st.signal == 0 && j->st.code == 0;
}

/* Why a host failed, in one line ("" when it did not). */
static void job_error(const struct cli_fan_plan *p, const struct fan_job *j, char *out,
                      size_t outlen)
{
	const char *e = j->last_err;

	if (bh_str_has_prefix(e, "berth: "))
		e += strlen("berth: ");
	if (j->timed_out)
		snprintf(out, outlen, "timed out after %lds", p->timeout_s);
	else if (j->overflow)
		snprintf(out, outlen, "output over %d MiB", FAN_OUT_MAX >> 20);
	else if (j->st.signal != 0)
		snprintf(out, outlen, "killed by signal %d", j->st.signal);
	else if (j->st.code != 0 && e[0] != '\0')
		snprintf(out, outlen, "%s", e);
	else if (j->st.code != 0)
		snprintf(out, outlen, "exit status %d", j->st.code);
	else
		out[0] = '\0';
}

static void print_json(const struct cli_fan_plan *p, const struct fan_job *j)
{
	char err[600];
	json_t *o;
	char *s;

	job_error(p, j, err, sizeof(err));
	o = json_pack("{s:s, s:s, s:i, s:o, s:o}", "Context", j->h->name, "Host", j->h->host,
	              "ExitCode", exit_code_of(j), "Result",
	              p->mode == CLI_FAN_JSON_STREAM ? json_null() : result_json(j, p->result),
	              "Error", err[0] ? text_json(err, strlen(err)) : json_null());
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

/* ---- scheduling -------------------------------------------------------------- */

static void job_finish(struct fan_run *r, struct fan_job *j)
{
	char err[600];

	j->running = false;
	j->done = true;
	r->running--;
	r->done++;
	r->kids[j - r->jobs] = NULL;
	cli_child_free(j->child);
	j->child = NULL;
	if (!job_ok(j))
		r->failed++;
	if (r->p->mode == CLI_FAN_JSON || r->p->mode == CLI_FAN_JSON_STREAM) {
		print_json(r->p, j);
		return;
	}
	/* Its own stderr lines are out already; say what they cannot. */
	if (j->timed_out || j->overflow || j->st.signal != 0) {
		job_error(r->p, j, err, sizeof(err));
		print_prefixed(stderr, j->h->name, err, strlen(err));
	}
}

/* A forked child: the marker, then berth's main() on the child's argv. */
static int forked_main(void *arg)
{
	const struct cli_fan_plan *p = arg;
	int argc = 0;

	while (p->argv[argc] != NULL)
		argc++;
	if (putenv((char *)p->marker) != 0)
		return CLI_EXIT_CMD;
	return p->entry(argc, p->argv);
}

static int child_start(const struct cli_fan_plan *p, struct cli_child **out, struct bh_err *err)
{
	if (p->entry != NULL)
		return cli_child_fork(forked_main, (void *)p, out, err);
	return cli_child_start(p->exe, p->argv, p->marker, out, err);
}

static void job_start(struct fan_run *r, struct fan_job *j)
{
	const struct cli_fan_plan *p = r->p;
	struct bh_err err = {0};

	p->argv[p->ctx_index] = (char *)j->h->name;
	j->running = true;
	r->running++;
	if (child_start(p, &j->child, &err) < 0) {
		snprintf(j->last_err, sizeof(j->last_err), "%s", err.msg);
		j->st.code = CLI_EXIT_CMD;
		job_finish(r, j);
		return;
	}
	r->kids[j - r->jobs] = j->child;
	if (p->timeout_s > 0)
		j->deadline = bh_now_ms() + (uint64_t)p->timeout_s * 1000u;
}

/* Ends what timed out, reaps what ended; returns the poll timeout to use. */
static int job_check(struct fan_run *r, struct fan_job *j, uint64_t now)
{
	if (!j->running)
		return -1;
	if (j->deadline != 0 && !j->timed_out && now >= j->deadline) {
		j->timed_out = true;
		cli_child_kill(j->child);
	}
	if (!cli_child_streams_open(j->child)) {
		if (cli_child_try_reap(j->child, &j->st) == 1) {
			job_finish(r, j);
			return -1;
		}
		return FAN_REAP_MS;
	}
	if (j->deadline != 0 && !j->timed_out)
		return (int)(j->deadline - now);
	return -1;
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int fan_loop(struct cli *cli, struct fan_run *r)
{
	const struct cli_fan_plan *p = r->p;
	struct bh_err err = {0};
	int sig;

	while (r->done < p->nhosts) {
		int wait_ms = -1;
		uint64_t now;

		while (r->running < (size_t)p->parallel && r->next < p->nhosts)
			job_start(r, &r->jobs[r->next++]);
		now = bh_now_ms();
		for (size_t i = 0; i < r->next; i++)
			wait_ms = min_timeout(wait_ms, job_check(r, &r->jobs[i], now));
		if (r->done == p->nhosts)
			break;
		if (r->running == 0)
			continue; /* every started one ended: start more */
		if (cli_child_wait(r->kids, p->nhosts, wait_ms, on_output, r, &err) < 0)
			return cli_fail(cli, CLI_EXIT_CMD, "fan-out: %s", err.msg);
		fflush(stdout);
		if ((sig = cli_child_signal_taken()) != 0)
			return cli_fail(cli, 128 + sig,
			                "stopped by signal %d: %zu of %zu contexts "
			                "had not finished",
			                sig, p->nhosts - r->done, p->nhosts);
	}
	return 0;
}

/* ---- in process (fanout_fast.c): each host's end as its child's ---------- */

static void fast_done(void *arg, size_t index, int code, bool timed_out, bool overflow,
                      const char *err, const struct bh_buf *out)
{
	struct fan_run *r = arg;
	struct fan_job *j = &r->jobs[index];

	if (out->len > 0 && bh_buf_append(&j->out, out->data, out->len) < 0)
		overflow = true;
	j->overflow = overflow;
	if (err[0] != '\0') { /* the child's one stderr line */
		snprintf(j->last_err, sizeof(j->last_err), "berth: %s", err);
		if (r->p->mode != CLI_FAN_JSON)
			print_prefixed(stderr, j->h->name, j->last_err, strlen(j->last_err));
	}
	j->st.code = code;
	j->timed_out = timed_out;
	j->running = true;
	r->running++;
	job_finish(r, j);
	fflush(stdout);
}

static int fast_loop(struct cli *cli, struct fan_run *r)
{
	struct bh_err err = {0};

	if (cli_fan_fast_run(r->p, fast_done, r, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "fan-out: %s", err.msg);
	return 0;
}

static void print_table(const struct fan_run *r)
{
	const struct cli_fan_plan *p = r->p;
	struct cli_table t;
	size_t bad = 0;

	cli_fan_table_head(p->cmd, &t);
	for (size_t i = 0; i < p->nhosts; i++) {
		const struct fan_job *j = &r->jobs[i];
		if (job_ok(j))
			cli_fan_table_rows(p->cmd, j->h->name, j->out.data ? j->out.data : "",
			                   j->out.len, &t, &bad);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	if (bad > 0)
		fprintf(stderr, "berth: warning: %zu lines of output were not JSON\n", bad);
}

/* "2 of 5 contexts failed: b (exit 125), c (timed out after 3s)" */
static void summary(struct cli *cli, const struct fan_run *r)
{
	struct bh_buf b;
	char err[600];
	size_t shown = 0;

	bh_buf_init(&b, sizeof(cli->err.msg) - 1);
	bh_buf_printf(&b, "%zu of %zu contexts failed:", r->failed, r->p->nhosts);
	for (size_t i = 0; i < r->p->nhosts; i++) {
		const struct fan_job *j = &r->jobs[i];
		if (job_ok(j))
			continue;
		job_error(r->p, j, err, sizeof(err));
		if (bh_buf_printf(&b, "%s %s (exit %d%s%.80s)", shown++ ? "," : "", j->h->name,
		                  exit_code_of(j), j->timed_out ? ", " : "",
		                  j->timed_out ? err : "") < 0)
			break;
	}
	cli_fail(cli, CLI_EXIT_CMD, "%s", b.data ? b.data : "contexts failed");
	bh_buf_free(&b);
}

int cli_fan_run(struct cli *cli, const struct cli_fan_plan *p)
{
	struct fan_run r = {.p = p};
	struct bh_err err = {0};
	int rc;

	r.jobs = bh_calloc(p->nhosts, sizeof(*r.jobs));
	r.kids = bh_calloc(p->nhosts, sizeof(*r.kids));
	for (size_t i = 0; i < p->nhosts; i++) {
		r.jobs[i].h = &p->hosts[i];
		bh_buf_init(&r.jobs[i].line[0], FAN_LINE_MAX);
		bh_buf_init(&r.jobs[i].line[1], FAN_LINE_MAX);
		bh_buf_init(&r.jobs[i].out, FAN_OUT_MAX);
	}
	fflush(stdout);
	/* A signal to us ends the children too (cli_child_free below), rather
	 * than leaving `events` streams running without a reader. */
	rc = p->fast_path != NULL ? 0 : cli_child_signals(true, &err);
	if (rc == 0)
		rc = p->fast_path != NULL ? fast_loop(cli, &r) : fan_loop(cli, &r);
	else
		cli_fail(cli, CLI_EXIT_CMD, "fan-out: %s", err.msg);
	if (rc == 0 && p->mode == CLI_FAN_TABLE)
		print_table(&r);
	if (rc == 0 && r.failed > 0)
		summary(cli, &r);
	for (size_t i = 0; i < p->nhosts; i++) {
		cli_child_free(r.jobs[i].child);
		bh_buf_free(&r.jobs[i].line[0]);
		bh_buf_free(&r.jobs[i].line[1]);
		bh_buf_free(&r.jobs[i].out);
	}
	free(r.jobs);
	free(r.kids);
	if (p->fast_path == NULL)
		cli_child_signals(false, &err);
	if (rc < 0)
		return -1;
	return r.failed > 0 ? -1 : 0;
}
