/* GET /events: past events (since, cursor) then, without a past until, the
 * live ones, one JSON object per line, chunked and flushed per batch.  A
 * subscriber is a position (struct srv_evread) and a filter: it never owns
 * a queue of its own.  The store only says "something new" (notify); the
 * lws thread then copies what the client has room for.  A live client
 * whose SUB_QUEUE_MAX of unsent bytes stayed full for SUB_STALL_MS while
 * more than SUB_LAG_MAX events behind is dropped with a final
 * {"error":...,"cursor":N} line, from which it can resume with nothing
 * lost (docs/events.md). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "server/server-internal.h"

#define SUB_BUDGET    (256 * 1024) /* bytes copied per pump */
#define SUB_QUEUE_MAX (256 * 1024) /* unsent bytes a subscriber may hold */
#define SUB_LAG_MAX   1000         /* events behind, with a stalled queue: dropped */
#define SUB_STALL_MS  2000         /* how long a full queue may stay full */
#define SUB_RETRY_US  (50 * LWS_US_PER_MS)

struct evsub {
	struct srv_req *req; /* a reference while the subscriber lives */
	struct srv_evfilter f;
	struct srv_evread r;
	bool live;           /* new events are streamed (no until, or a future one) */
	bool ended;          /* lws thread */
	bool reading;        /* a file read is on the pool */
	bool scheduled;      /* subs_mu: a pump is queued on the loop */
	uint64_t full_since; /* monotonic ms the queue has been full since; 0 = not full */
	int refs;            /* subs_mu */
	lws_sorted_usec_list_t retry, until;
	struct evsub *next; /* subs (lws thread) */
};

static pthread_mutex_t subs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct evsub *subs; /* every open stream; lws thread */

static void sub_ref(struct evsub *s)
{
	pthread_mutex_lock(&subs_mu);
	s->refs++;
	pthread_mutex_unlock(&subs_mu);
}

/* lws thread. */
static void sub_put(struct evsub *s)
{
	int left;

	pthread_mutex_lock(&subs_mu);
	left = --s->refs;
	pthread_mutex_unlock(&subs_mu);
	if (left > 0)
		return;
	lws_sul_cancel(&s->retry);
	lws_sul_cancel(&s->until);
	json_decref(s->f.filters);
	srv_req_unref(s->req);
	free(s);
}

static void pump(struct evsub *s);

static void on_loop(struct srv_req *req, void *arg)
{
	struct evsub *s = arg;

	(void)req;
	pthread_mutex_lock(&subs_mu);
	s->scheduled = false;
	pthread_mutex_unlock(&subs_mu);
	pump(s);
	sub_put(s);
}

/* Any thread, under the store's lock: one pump queued at most. */
static void notify(void *arg)
{
	struct evsub *s = arg;
	bool go;

	pthread_mutex_lock(&subs_mu);
	go = !s->scheduled;
	if (go) {
		s->scheduled = true;
		s->refs++;
	}
	pthread_mutex_unlock(&subs_mu);
	if (go)
		srv_call_on_loop(s->req, on_loop, s);
}

/* The stream is over for whatever reason (lws thread). */
static void detach(struct evsub *s)
{
	s->ended = true;
	for (struct evsub **p = &subs; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	srv_events_unwatch(notify, s);
	lws_sul_cancel(&s->retry);
	lws_sul_cancel(&s->until);
}

static void finish(struct evsub *s, const char *why)
{
	struct bh_err err;

	if (s->ended)
		return;
	detach(s);
	if (why != NULL) {
		json_t *o = json_pack("{s:s, s:I}", "error", why, "cursor", (json_int_t)s->r.after);
		char *text = json_dumps(o, JSON_COMPACT);
		cleanup_free char *line = bh_asprintf("%s\n", text ? text : "{}");
		free(text);
		json_decref(o);
		srv_stream_write(s->req, line, strlen(line), &err);
	}
	s->req->on_close = NULL;
	srv_stream_end(s->req);
	sub_put(s);
}

static void client_left(struct srv_req *req, void *arg)
{
	struct evsub *s = arg;

	(void)req;
	if (s->ended)
		return;
	detach(s);
	sub_put(s);
}

static void retry_fire(lws_sorted_usec_list_t *sul)
{
	pump(lws_container_of(sul, struct evsub, retry));
}

static void until_fire(lws_sorted_usec_list_t *sul)
{
	finish(lws_container_of(sul, struct evsub, until), NULL);
}

/* ---- reading the files (older than the ring) -------------------------------------- */

struct file_job {
	struct evsub *s;
	struct srv_evread r;
	struct bh_buf out;
};

static int file_work(void *arg, struct bh_err *err)
{
	struct file_job *j = arg;

	return srv_events_read_files(&j->r, &j->s->f, &j->out, SUB_BUDGET, err);
}

static int write_lines(struct evsub *s, const struct bh_buf *out)
{
	struct bh_err err;

	if (out->len == 0)
		return 0;
	return srv_stream_write(s->req, out->data, out->len, &err);
}

static void file_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct file_job *j = arg;
	struct evsub *s = j->s;

	(void)req;
	s->reading = false;
	if (!s->ended && rc < 0) {
		finish(s, err->msg);
	} else if (!s->ended) {
		s->r.after = j->r.after;
		s->r.past_until = j->r.past_until;
		if (write_lines(s, &j->out) == 0 && s->r.past_until)
			finish(s, NULL);
		else
			pump(s);
	}
	bh_buf_free(&j->out);
	free(j);
	sub_put(s);
}

static void read_files(struct evsub *s)
{
	struct file_job *j = bh_calloc(1, sizeof(*j));

	j->s = s;
	j->r = s->r;
	bh_buf_init(&j->out, SUB_BUDGET + SRV_EVENTS_LINE_MAX);
	s->reading = true;
	sub_ref(s);
	srv_defer(s->req, file_work, file_done, j);
}

/* ---- the pump ------------------------------------------------------------------------ */

/* Room for more?  Else wait, or drop a live subscriber that is far behind
 * and has not taken a byte for SUB_STALL_MS (a reader catching up on
 * history drains its queue, and is not dropped). */
static bool has_room(struct evsub *s)
{
	uint64_t now = bh_now_ms();

	if (srv_stream_queued(s->req) < SUB_QUEUE_MAX) {
		s->full_since = 0;
		return true;
	}
	if (s->full_since == 0)
		s->full_since = now;
	s->r.head = srv_events_last(); /* how far behind, now */
	if (s->live && s->r.head > s->r.after + SUB_LAG_MAX &&
	    now - s->full_since >= SUB_STALL_MS) {
		bh_warn("events: %s reads too slowly, dropped at cursor %" PRIu64, s->req->id.text,
		        s->r.after);
		/* The final line gets SUB_STALL_MS to go out, then the
		 * connection (and what it still holds) is closed. */
		if (s->req->wsi != NULL)
			lws_set_timeout(s->req->wsi, PENDING_TIMEOUT_USER_OK,
			                SUB_STALL_MS / 1000 + 1);
		finish(s, "events: this reader fell too far behind and was dropped; "
		          "resume with cursor");
		return false;
	}
	lws_sul_schedule(s->req->srv->ctx, 0, &s->retry, retry_fire, SUB_RETRY_US);
	return false;
}

static void pump(struct evsub *s)
{
	struct bh_buf out;

	if (s->ended || s->reading || s->req->closed)
		return;
	sub_ref(s); /* finish() may drop the last other one */
	bh_buf_init(&out, SUB_BUDGET + SRV_EVENTS_LINE_MAX);
	while (!s->ended && has_room(s)) {
		bh_buf_reset(&out);
		srv_events_collect(&s->r, &s->f, &out, SUB_BUDGET);
		if (s->r.need_file) {
			read_files(s);
			break;
		}
		if (write_lines(s, &out) < 0)
			break; /* the client left: client_left() follows */
		if (s->r.past_until || (!s->live && s->r.after >= s->r.head)) {
			finish(s, NULL);
			break;
		}
		if (s->r.after >= s->r.head)
			break; /* caught up: notify() brings the next */
	}
	bh_buf_free(&out);
	sub_put(s);
}

/* ---- the handler -------------------------------------------------------------------- */

static int parse_cursor(const char *v, uint64_t *out, struct bh_err *err)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0)
		return bh_err_set(err, EINVAL, "invalid cursor '%.32s': want a number", v);
	return 0;
}

static int parse_query(struct srv_req *req, struct evsub *s, bool *from_past, struct bh_err *err)
{
	const char *since = srv_query_get(&req->query, "since");
	const char *until = srv_query_get(&req->query, "until");
	const char *cursor = srv_query_get(&req->query, "cursor");

	if ((since && since[0] && srv_evtime_parse(since, &s->f.since_ns, err) < 0) ||
	    (until && until[0] && srv_evtime_parse(until, &s->f.until_ns, err) < 0) ||
	    (cursor && parse_cursor(cursor, &s->r.after, err) < 0) ||
	    srv_evfilter_parse(srv_query_get(&req->query, "filters"), &s->f.filters, err) < 0)
		return -1;
	if (s->f.until_ns != 0 && s->f.since_ns > s->f.until_ns)
		return bh_err_set(err, EINVAL, "since must not be after until");
	*from_past = cursor != NULL || (since != NULL && since[0] != '\0');
	return 0;
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int srv_h_events(struct srv_req *req, struct bh_err *err)
{
	struct evsub *s = bh_calloc(1, sizeof(*s));
	bool from_past = false;
	char head[32];
	int64_t now = wall_ns();

	if (parse_query(req, s, &from_past, err) < 0) {
		json_decref(s->f.filters);
		free(s);
		return -1;
	}
	s->r.head = srv_events_last();
	if (srv_query_get(&req->query, "cursor") != NULL && s->r.after > s->r.head) {
		json_decref(s->f.filters);
		free(s);
		/* Waiting would silently skip every event up to it. */
		return bh_err_set(err, EINVAL,
		                  "cursor %s is ahead of this daemon's newest event %" PRIu64
		                  " (another data root?)",
		                  srv_query_get(&req->query, "cursor"), srv_events_last());
	}
	if (!from_past) /* without cursor or since: only what happens from now on */
		s->r.after = s->r.head;
	s->live = s->f.until_ns == 0 || s->f.until_ns > now;
	s->req = req;
	s->refs = 1;
	srv_req_ref(req);
	snprintf(head, sizeof(head), "%" PRIu64, s->r.head);
	srv_resp_header(req, "X-Berth-Cursor", head);
	srv_stream_begin(req, 200, "application/json");
	req->on_close = client_left;
	req->on_close_arg = s;
	s->next = subs;
	subs = s;
	if (s->live)
		srv_events_watch(notify, s); /* before the first collect: nothing slips */
	if (s->live && s->f.until_ns != 0)
		lws_sul_schedule(req->srv->ctx, 0, &s->until, until_fire,
		                 (lws_usec_t)((s->f.until_ns - now) / 1000) + 1);
	pump(s);
	return 0;
}

void srv_events_end_streams(void)
{
	while (subs != NULL) {
		/* A reader that does not read must not hold the stop for the
		 * whole grace period: its connection gets 2 s for the end. */
		if (subs->req->wsi != NULL)
			lws_set_timeout(subs->req->wsi, PENDING_TIMEOUT_USER_OK, 2);
		finish(subs, NULL);
	}
}
