/* Handlers that must block: the work goes to the pool, the request stays
 * alive (a reference) until done() has run back on the lws thread. */
#include <stdlib.h>

#include "server/server-internal.h"

struct defer_ctx {
	struct srv_req *req;
	srv_done_fn done;
	srv_call_fn call;
	void *arg;
};

static void defer_done(void *p, int rc, const struct bh_err *err)
{
	struct defer_ctx *d = p;

	/* Runs on the lws thread; the client may have left meanwhile, in which
	 * case req->closed is set and replies are dropped. */
	d->done(d->req, d->arg, rc, err);
	srv_req_unref(d->req);
	free(d);
}

struct work_ctx {
	struct defer_ctx d;
	srv_work_fn work;
};

static int work_trampoline(void *p, struct bh_err *err)
{
	struct work_ctx *w = p;

	return w->work(w->d.arg, err);
}

void srv_defer(struct srv_req *req, srv_work_fn work, srv_done_fn done, void *arg)
{
	struct work_ctx *w = bh_calloc(1, sizeof(*w));

	srv_req_ref(req);
	w->d.req = req;
	w->d.done = done;
	w->d.arg = arg;
	w->work = work;
	/* work_ctx starts with its defer_ctx, so defer_done can take either. */
	srv_pool_submit(req->srv->pool, work_trampoline, defer_done, w);
}

static void call_done(void *p, int rc, const struct bh_err *err)
{
	struct defer_ctx *d = p;

	(void)rc;
	(void)err;
	d->call(d->req, d->arg);
	free(d);
}

void srv_call_on_loop(struct srv_req *req, srv_call_fn fn, void *arg)
{
	struct defer_ctx *d = bh_calloc(1, sizeof(*d));

	d->req = req;
	d->call = fn;
	d->arg = arg;
	srv_pool_submit(req->srv->pool, NULL, call_done, d);
}
