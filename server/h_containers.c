/* /containers endpoints in Docker Engine API shapes.  Everything blocking
 * (mounts, the monitor, fsync) runs on the pool through srv_defer; wait
 * holds its body until the manager fires the waiter. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

static struct ctr_mgr *mgr_of(struct srv_req *req, struct bh_err *err)
{
	if (req->srv == NULL || req->srv->ctrs == NULL) {
		bh_err_set(err, ENOTSUP, "containers are not available in this daemon");
		return NULL;
	}
	return req->srv->ctrs;
}

/* ---- blocking operations on the pool ------------------------------------------------ */

enum op_kind { OP_CREATE, OP_START, OP_STOP, OP_KILL, OP_RESTART, OP_REMOVE };

struct op {
	enum op_kind kind;
	struct ctr_mgr *m;
	char ref[SRV_PARAM_MAX];
	char name[SRV_PARAM_MAX];
	char id[65];
	json_t *body;
	int num; /* stop timeout, signal */
	bool force;
};

static int op_work(void *arg, struct bh_err *err)
{
	struct op *o = arg;
	int r;

	switch (o->kind) {
	case OP_CREATE:
		return ctr_create(o->m, o->name, o->body, o->id, err);
	case OP_START:
		return ctr_start(o->m, o->ref, err);
	case OP_STOP:
		return ctr_stop(o->m, o->ref, o->num, err);
	case OP_KILL:
		return ctr_kill(o->m, o->ref, o->num, err);
	case OP_RESTART:
		r = ctr_stop(o->m, o->ref, o->num, err);
		if (r < 0 || ctr_start(o->m, o->ref, err) < 0)
			return -1;
		ctr_event_ref(o->m, o->ref, "restart");
		return 0;
	case OP_REMOVE:
		return ctr_remove(o->m, o->ref, o->force, err);
	}
	return bh_err_set(err, EINVAL, "bad operation");
}

static void op_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct op *o = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else if (o->kind == OP_CREATE)
		srv_reply_json(req, 201, json_pack("{s:s, s:[]}", "Id", o->id, "Warnings"));
	else
		srv_reply_empty(req, rc == 1 ? 304 : 204);
	json_decref(o->body);
	free(o);
}

static int op_defer(struct srv_req *req, enum op_kind kind, struct op *o, struct bh_err *err)
{
	const char *id = srv_param(req, "id");

	o->m = mgr_of(req, err);
	if (o->m == NULL) {
		json_decref(o->body);
		free(o);
		return -1;
	}
	o->kind = kind;
	if (id != NULL)
		bh_strlcpy(o->ref, id, sizeof(o->ref));
	srv_defer(req, op_work, op_done, o);
	return 0;
}

static struct op *op_new(void)
{
	return bh_calloc(1, sizeof(struct op));
}

int srv_h_container_create(struct srv_req *req, struct bh_err *err)
{
	struct op *o = op_new();
	const char *name = srv_query_get(&req->query, "name");

	if (srv_req_body_json(req, &o->body, err) < 0) {
		free(o);
		return -1;
	}
	if (name != NULL && bh_strlcpy(o->name, name, sizeof(o->name)) < 0) {
		json_decref(o->body);
		free(o);
		return bh_err_set(err, EINVAL, "Invalid container name");
	}
	return op_defer(req, OP_CREATE, o, err);
}

int srv_h_container_start(struct srv_req *req, struct bh_err *err)
{
	return op_defer(req, OP_START, op_new(), err);
}

static int stop_timeout(struct srv_req *req, int *out, struct bh_err *err)
{
	const char *t = srv_query_get(&req->query, "t");
	long v;

	*out = -1;
	if (t == NULL || t[0] == '\0')
		return 0;
	if (bh_parse_long(t, -1, 24 * 3600, &v) < 0)
		return bh_err_set(err, EINVAL, "invalid value for t: %s", t);
	*out = (int)v;
	return 0;
}

static int stop_like(struct srv_req *req, enum op_kind kind, struct bh_err *err)
{
	struct op *o = op_new();

	if (stop_timeout(req, &o->num, err) < 0) {
		free(o);
		return -1;
	}
	return op_defer(req, kind, o, err);
}

int srv_h_container_stop(struct srv_req *req, struct bh_err *err)
{
	return stop_like(req, OP_STOP, err);
}

int srv_h_container_restart(struct srv_req *req, struct bh_err *err)
{
	return stop_like(req, OP_RESTART, err);
}

int srv_h_container_kill(struct srv_req *req, struct bh_err *err)
{
	const char *s = srv_query_get(&req->query, "signal");
	int sig = ctr_signal_parse(s);
	struct op *o;

	if (sig < 0)
		return bh_err_set(err, EINVAL, "Invalid signal: %s", s);
	o = op_new();
	o->num = sig;
	return op_defer(req, OP_KILL, o, err);
}

int srv_h_container_delete(struct srv_req *req, struct bh_err *err)
{
	struct op *o = op_new();

	o->force = srv_query_bool(&req->query, "force");
	return op_defer(req, OP_REMOVE, o, err);
}

/* ---- views ------------------------------------------------------------------------------- */

int srv_h_container_inspect(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(req, err);
	struct ctr *c;
	json_t *v;

	if (m == NULL)
		return -1;
	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, srv_param(req, "id"), &c, err) < 0) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	v = ctr_inspect_json(m, c);
	pthread_mutex_unlock(&m->mu);
	srv_reply_json(req, 200, v);
	return 0;
}

static int list_limit(struct srv_req *req, long *limit, struct bh_err *err)
{
	const char *l = srv_query_get(&req->query, "limit");

	*limit = -1;
	if (l != NULL && l[0] != '\0' && bh_parse_long(l, -1, 1L << 30, limit) < 0)
		return bh_err_set(err, EINVAL, "invalid limit: %s", l);
	if (*limit == 0)
		*limit = -1;
	return 0;
}

/* Newest first, like Docker. */
static int by_created_desc(const void *a, const void *b)
{
	const char *ca = json_string_value(json_object_get(*(json_t *const *)a, "_created"));
	const char *cb = json_string_value(json_object_get(*(json_t *const *)b, "_created"));

	return strcmp(cb ? cb : "", ca ? ca : "");
}

static json_t *list_sorted(json_t **items, size_t n, long limit)
{
	json_t *out = json_array();

	qsort(items, n, sizeof(*items), by_created_desc);
	for (size_t i = 0; i < n; i++) {
		json_object_del(items[i], "_created");
		if (limit < 0 || (long)i < limit)
			json_array_append(out, items[i]);
		json_decref(items[i]);
	}
	free(items);
	return out;
}

int srv_h_container_list(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(req, err);
	bool all = srv_query_bool(&req->query, "all");
	json_t *filters = NULL, **items;
	size_t n = 0, cap = 0;
	long limit;

	if (m == NULL || list_limit(req, &limit, err) < 0 ||
	    ctr_filters_parse(srv_query_get(&req->query, "filters"), &filters, err) < 0)
		return -1;
	all = all || limit > 0 || json_object_get(filters, "status") != NULL;
	pthread_mutex_lock(&m->mu);
	for (struct ctr *c = m->list; c; c = c->next)
		cap++;
	items = bh_calloc(cap + 1, sizeof(*items));
	for (struct ctr *c = m->list; c; c = c->next) {
		if ((!all && c->status != CTR_RUNNING) || !ctr_filters_match(filters, c))
			continue;
		items[n] = ctr_list_json(c, time(NULL));
		json_object_set_new(items[n++], "_created", json_string(c->created));
	}
	pthread_mutex_unlock(&m->mu);
	json_decref(filters);
	srv_reply_json(req, 200, list_sorted(items, n, limit));
	return 0;
}

/* ---- wait ----------------------------------------------------------------------------------- */

static void wait_reply(struct srv_req *req, void *arg)
{
	struct ctr_waiter *w = arg;
	cleanup_free char *body = bh_asprintf("{\"StatusCode\":%d,\"Error\":null}\n", w->status);
	struct bh_err err;

	if (!req->closed && srv_stream_write(req, body, strlen(body), &err) == 0)
		srv_stream_end(req);
	req->on_close = NULL;
	free(w);
	srv_req_unref(req);
}

void ctr_fire_waiters(struct ctr *c, enum ctr_wait_cond what, int status)
{
	struct ctr_waiter **p = &c->waiters;

	while (*p != NULL) {
		struct ctr_waiter *w = *p;
		/* An exit answers not-running and next-exit; a removal answers all. */
		if (what != CTR_WAIT_REMOVED && w->cond == CTR_WAIT_REMOVED) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->status = status;
		srv_call_on_loop(w->req, wait_reply, w);
	}
}

void ctr_mgr_end_streams(struct ctr_mgr *m)
{
	ctr_logs_stop_all(2000);
	pthread_mutex_lock(&m->mu);
	for (struct ctr *c = m->list; c; c = c->next) {
		while (c->waiters != NULL) {
			struct ctr_waiter *w = c->waiters;
			c->waiters = w->next;
			/* No status to give: the body ends empty, as dockerd's
			 * connection close on shutdown. */
			w->req->on_close = NULL;
			srv_stream_end(w->req);
			srv_req_unref(w->req);
			free(w);
		}
	}
	pthread_mutex_unlock(&m->mu);
}

static void wait_client_left(struct srv_req *req, void *arg)
{
	struct ctr_waiter *w = arg;
	struct ctr_mgr *m = w->m;
	struct ctr *c = NULL;
	struct bh_err err;
	bool found = false;

	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, w->id, &c, &err) == 0) {
		for (struct ctr_waiter **p = &c->waiters; *p; p = &(*p)->next) {
			if (*p == w) {
				*p = w->next;
				found = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	/* Not found: it was fired and wait_reply frees it. */
	if (found) {
		free(w);
		srv_req_unref(req);
	}
}

static int wait_cond(struct srv_req *req, enum ctr_wait_cond *out, struct bh_err *err)
{
	const char *s = srv_query_get(&req->query, "condition");

	if (s == NULL || s[0] == '\0' || strcmp(s, "not-running") == 0)
		*out = CTR_WAIT_NOT_RUNNING;
	else if (strcmp(s, "next-exit") == 0)
		*out = CTR_WAIT_NEXT_EXIT;
	else if (strcmp(s, "removed") == 0)
		*out = CTR_WAIT_REMOVED;
	else
		return bh_err_set(err, EINVAL, "invalid condition: \"%s\"", s);
	return 0;
}

static void wait_now(struct srv_req *req, int status)
{
	char body[64];
	struct bh_err err;

	snprintf(body, sizeof(body), "{\"StatusCode\":%d,\"Error\":null}\n", status);
	if (srv_stream_write(req, body, strlen(body), &err) == 0)
		srv_stream_end(req);
}

int srv_h_container_wait(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(req, err);
	enum ctr_wait_cond cond = CTR_WAIT_NOT_RUNNING;
	struct ctr *c;
	struct ctr_waiter *w;

	if (m == NULL || wait_cond(req, &cond, err) < 0)
		return -1;
	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, srv_param(req, "id"), &c, err) < 0) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	srv_stream_begin(req, 200, "application/json");
	if (cond == CTR_WAIT_NOT_RUNNING && c->status != CTR_RUNNING &&
	    c->status != CTR_RESTARTING) {
		int code = c->exit_code;
		pthread_mutex_unlock(&m->mu);
		wait_now(req, code);
		return 0;
	}
	w = bh_calloc(1, sizeof(*w));
	w->req = req;
	w->m = m;
	w->cond = cond;
	bh_strlcpy(w->id, c->id, sizeof(w->id));
	w->next = c->waiters;
	c->waiters = w;
	srv_req_ref(req);
	req->on_close = wait_client_left;
	req->on_close_arg = w;
	pthread_mutex_unlock(&m->mu);
	return 0;
}
