/* GET /containers/{id}/logs: the json-file log read (and followed) by a
 * producer thread, framed like Docker (8-byte multiplexing headers unless
 * the container has a TTY) and pumped into the HTTP stream on the lws
 * thread.  Backpressure: the producer blocks while LOGS_PENDING_MAX bytes
 * wait for the client; the lws side retries a full stream on a timer. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "runtime/rt-monitor.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

#define LOGS_PENDING_MAX (1024 * 1024)
#define LOGS_PUMP_CHUNK  (64 * 1024)
#define LOGS_RETRY_US    (20 * LWS_US_PER_MS)

struct logstream {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct srv_req *req; /* a reference, dropped when the stream is freed */
	struct bh_buf pending;
	bool tty, follow;
	bool producer_done, client_gone, ended, posted, retry_armed;
	bool finishing; /* the producer's last call ran: only now may ls be freed */
	int stop_fd;
	char *path, *stop_file;
	struct rt_log_read_opts o;
	lws_sorted_usec_list_t retry;
	struct logstream *next_live;
};

/* Producers still running: berthd's stop ends them and waits, so that none
 * posts to the worker pool after it is gone. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cond = PTHREAD_COND_INITIALIZER;
static struct logstream *live;
static int live_n;

static void live_add(struct logstream *ls)
{
	pthread_mutex_lock(&live_mu);
	ls->next_live = live;
	live = ls;
	live_n++;
	pthread_mutex_unlock(&live_mu);
}

/* From the list first (ls may be freed once its last call is posted)... */
static void live_unlink(struct logstream *ls)
{
	pthread_mutex_lock(&live_mu);
	for (struct logstream **p = &live; *p; p = &(*p)->next_live) {
		if (*p == ls) {
			*p = ls->next_live;
			break;
		}
	}
	pthread_mutex_unlock(&live_mu);
}

/* ...then from the count, after the last post. */
static void live_done(void)
{
	pthread_mutex_lock(&live_mu);
	live_n--;
	pthread_cond_broadcast(&live_cond);
	pthread_mutex_unlock(&live_mu);
}

static void stop_producer(struct logstream *ls)
{
	uint64_t one = 1;

	pthread_mutex_lock(&ls->mu);
	ls->client_gone = true;
	pthread_cond_broadcast(&ls->cond);
	pthread_mutex_unlock(&ls->mu);
	if (write(ls->stop_fd, &one, sizeof(one)) < 0)
		bh_debug("logs: stop: %s", strerror(errno));
}

void ctr_logs_stop_all(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000 + 1;
	pthread_mutex_lock(&live_mu);
	for (struct logstream *ls = live; ls; ls = ls->next_live)
		stop_producer(ls);
	while (live_n > 0)
		if (pthread_cond_timedwait(&live_cond, &live_mu, &ts) == ETIMEDOUT)
			break;
	if (live_n > 0)
		bh_warn("logs: %d reader(s) still running at exit", live_n);
	pthread_mutex_unlock(&live_mu);
}

static void ls_free(struct logstream *ls)
{
	if (ls->retry_armed)
		lws_sul_cancel(&ls->retry);
	pthread_mutex_destroy(&ls->mu);
	pthread_cond_destroy(&ls->cond);
	bh_buf_free(&ls->pending);
	if (ls->stop_fd >= 0)
		close(ls->stop_fd);
	free(ls->path);
	free(ls->stop_file);
	srv_req_unref(ls->req);
	free(ls);
}

static void pump(struct logstream *ls);

static void retry_fire(lws_sorted_usec_list_t *sul)
{
	struct logstream *ls = lws_container_of(sul, struct logstream, retry);

	ls->retry_armed = false;
	pump(ls);
}

/* Under ls->mu, lws thread: moves pending bytes into the HTTP stream. */
static bool pump_locked(struct logstream *ls)
{
	struct bh_err err;
	size_t off = 0;
	bool full = false;

	while (off < ls->pending.len && !ls->client_gone) {
		size_t n = ls->pending.len - off;
		if (n > LOGS_PUMP_CHUNK)
			n = LOGS_PUMP_CHUNK;
		if (srv_stream_write(ls->req, ls->pending.data + off, n, &err) < 0) {
			full = err.code == EAGAIN;
			ls->client_gone = !full;
			break;
		}
		off += n;
	}
	if (off > 0) {
		memmove(ls->pending.data, ls->pending.data + off, ls->pending.len - off);
		ls->pending.len -= off;
		ls->pending.data[ls->pending.len] = '\0';
	}
	pthread_cond_broadcast(&ls->cond);
	return full;
}

static void pump(struct logstream *ls)
{
	bool full, done;

	pthread_mutex_lock(&ls->mu);
	ls->posted = false;
	full = pump_locked(ls);
	done = ls->finishing && (ls->pending.len == 0 || ls->client_gone);
	if (done && !ls->ended) {
		ls->ended = true;
		ls->req->on_close = NULL; /* ls is freed below */
		srv_stream_end(ls->req);
	}
	pthread_mutex_unlock(&ls->mu);
	if (done) {
		ls_free(ls);
		return;
	}
	if (full && !ls->retry_armed && ls->req->srv && ls->req->srv->ctx) {
		ls->retry_armed = true;
		lws_sul_schedule(ls->req->srv->ctx, 0, &ls->retry, retry_fire, LOGS_RETRY_US);
	}
}

static void pump_on_loop(struct srv_req *req, void *arg)
{
	struct logstream *ls = arg;

	if (!ls->retry_armed)
		pump(ls);
}

/* The final call: the producer is done. */
static void finish_on_loop(struct srv_req *req, void *arg)
{
	struct logstream *ls = arg;

	if (ls->retry_armed) {
		lws_sul_cancel(&ls->retry);
		ls->retry_armed = false;
	}
	ls->finishing = true;
	pump(ls);
}

/* Producer thread: append a framed entry, blocking while too much waits. */
static int on_entry(const struct rt_log_entry *e, void *arg)
{
	struct logstream *ls = arg;
	uint8_t hdr[8] = {(uint8_t)e->stream,
	                  0,
	                  0,
	                  0,
	                  (uint8_t)(e->len >> 24),
	                  (uint8_t)(e->len >> 16),
	                  (uint8_t)(e->len >> 8),
	                  (uint8_t)e->len};
	size_t need = e->len + (ls->tty ? 0 : sizeof(hdr));
	int stop = 0;

	pthread_mutex_lock(&ls->mu);
	while (!ls->client_gone && ls->pending.len > 0 && ls->pending.len + need > LOGS_PENDING_MAX)
		pthread_cond_wait(&ls->cond, &ls->mu);
	if (ls->client_gone) {
		stop = 1;
	} else if ((!ls->tty && bh_buf_append(&ls->pending, hdr, sizeof(hdr)) < 0) ||
	           bh_buf_append(&ls->pending, e->data, e->len) < 0) {
		stop = 1;
	} else if (!ls->posted) {
		ls->posted = true;
		srv_call_on_loop(ls->req, pump_on_loop, ls);
	}
	pthread_mutex_unlock(&ls->mu);
	return stop;
}

static void *producer_main(void *arg)
{
	struct logstream *ls = arg;
	struct bh_err err;
	int r;

	if (ls->follow)
		r = rt_log_follow(ls->path, &ls->o, ls->stop_file, on_entry, ls, &err);
	else
		r = rt_log_read(ls->path, &ls->o, on_entry, ls, &err);
	if (r < 0 && err.code != ENOENT)
		bh_warn("logs %s: %s", ls->path, err.msg);
	pthread_mutex_lock(&ls->mu);
	ls->producer_done = true;
	pthread_mutex_unlock(&ls->mu);
	live_unlink(ls);
	srv_call_on_loop(ls->req, finish_on_loop, ls);
	live_done();
	return NULL;
}

static void client_left(struct srv_req *req, void *arg)
{
	struct logstream *ls = arg;

	/* Nothing more to send: no timer may outlive the connection. */
	if (ls->retry_armed) {
		lws_sul_cancel(&ls->retry);
		ls->retry_armed = false;
	}
	stop_producer(ls);
}

/* ---- options ------------------------------------------------------------------------- */

/* "UNIX[.NANO]" seconds (Docker's since/until) to ns; 0 when absent. */
static int parse_unix_time(const char *s, int64_t *ns, struct bh_err *err)
{
	const char *dot;
	long sec, frac = 0;
	char buf[32];

	*ns = 0;
	if (s == NULL || s[0] == '\0')
		return 0;
	dot = strchr(s, '.');
	if (bh_strlcpy(buf, s, sizeof(buf)) < 0)
		return bh_err_set(err, EINVAL, "invalid time %s", s);
	if (dot != NULL) {
		buf[dot - s] = '\0';
		char fr[10] = "000000000";
		size_t n = strlen(dot + 1);
		if (n == 0 || n > 9)
			return bh_err_set(err, EINVAL, "invalid time %s", s);
		memcpy(fr, dot + 1, n);
		if (bh_parse_long(fr, 0, 999999999, &frac) < 0)
			return bh_err_set(err, EINVAL, "invalid time %s", s);
	}
	if (bh_parse_long(buf, 0, INT32_MAX * 4L, &sec) < 0)
		return bh_err_set(err, EINVAL, "invalid time %s", s);
	*ns = (int64_t)sec * 1000000000LL + frac;
	return 0;
}

static int parse_opts(struct srv_req *req, struct rt_log_read_opts *o, struct bh_err *err)
{
	const char *tail = srv_query_get(&req->query, "tail");
	long n;

	memset(o, 0, sizeof(*o));
	o->stop_fd = -1;
	o->want_stdout = srv_query_bool(&req->query, "stdout");
	o->want_stderr = srv_query_bool(&req->query, "stderr");
	o->timestamps = srv_query_bool(&req->query, "timestamps");
	if (!o->want_stdout && !o->want_stderr)
		return bh_err_set(err, EINVAL, "You must choose at least one stream");
	o->tail = -1;
	if (tail != NULL && tail[0] != '\0' && strcmp(tail, "all") != 0) {
		if (bh_parse_long(tail, -1, INT32_MAX, &n) < 0)
			return bh_err_set(err, EINVAL, "invalid tail: %s", tail);
		o->tail = n;
	}
	if (parse_unix_time(srv_query_get(&req->query, "since"), &o->since_ns, err) < 0 ||
	    parse_unix_time(srv_query_get(&req->query, "until"), &o->until_ns, err) < 0)
		return -1;
	return 0;
}

/* Under mu: the stream's files and mode from the container. */
static void from_container(struct ctr_mgr *m, struct ctr *c, struct logstream *ls, bool follow)
{
	cleanup_free char *exec = ctr_exec_path(m, c);

	ls->tty = json_is_true(json_object_get(c->config, "Tty"));
	ls->path = bh_asprintf("%s/%s/%s-json.log", m->ctr_dir, c->id, c->id);
	/* Following a container that is not running would never end. */
	ls->follow = follow && c->status == CTR_RUNNING;
	if (ls->follow)
		ls->stop_file = bh_path_join(exec, "exit.json");
}

static struct logstream *ls_new(struct srv_req *req)
{
	struct logstream *ls = bh_calloc(1, sizeof(*ls));

	pthread_mutex_init(&ls->mu, NULL);
	pthread_cond_init(&ls->cond, NULL);
	bh_buf_init(&ls->pending, LOGS_PENDING_MAX + LOGS_PUMP_CHUNK + RT_LOG_LINE_MAX * 8);
	ls->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv_req_ref(req);
	ls->req = req;
	return ls;
}

static int ls_start(struct srv_req *req, struct logstream *ls, struct bh_err *err)
{
	pthread_attr_t a;
	pthread_t t;
	int r;

	ls->o.stop_fd = ls->stop_fd;
	srv_stream_begin(req, 200,
	                 ls->tty ? "application/vnd.docker.raw-stream"
	                         : "application/vnd.docker.multiplexed-stream");
	req->on_close = client_left;
	req->on_close_arg = ls;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	live_add(ls);
	r = pthread_create(&t, &a, producer_main, ls);
	pthread_attr_destroy(&a);
	if (r != 0) {
		live_unlink(ls);
		live_done();
		/* Headers are chosen but nothing was written: end the body. */
		req->on_close = NULL;
		srv_stream_end(req);
		ls_free(ls);
		bh_warn("logs: thread: %s", strerror(r));
	}
	return 0;
}

int srv_h_container_logs(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = req->srv ? req->srv->ctrs : NULL;
	struct rt_log_read_opts o;
	struct logstream *ls;
	struct ctr *c;

	if (m == NULL)
		return bh_err_set(err, ENOTSUP, "containers are not available in this daemon");
	if (parse_opts(req, &o, err) < 0)
		return -1;
	ls = ls_new(req);
	ls->o = o;
	if (ls->stop_fd < 0) {
		ls_free(ls);
		return bh_err_sys(err, errno, "logs: eventfd");
	}
	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, srv_param(req, "id"), &c, err) < 0) {
		pthread_mutex_unlock(&m->mu);
		ls_free(ls);
		return -1;
	}
	from_container(m, c, ls, srv_query_bool(&req->query, "follow"));
	pthread_mutex_unlock(&m->mu);
	return ls_start(req, ls, err);
}
