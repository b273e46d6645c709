/* Image archive endpoints: save (GET /images/get, /images/{name}/get) and
 * export (GET /containers/{id}/export) stream a tar written by runtime/
 * on a producer thread, with backpressure: the producer blocks while
 * TS_PENDING_MAX bytes wait for the lws thread.  Also import (POST
 * /images/create?fromSrc=-), commit (POST /commit), history, prune and the
 * store check (GET /_berth/store/check, for tests). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "runtime/rt-image-archive.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

#define TS_PENDING_MAX (1024 * 1024)
#define TS_CHUNK       (64 * 1024)
#define TS_RETRY_US    (20 * LWS_US_PER_MS)
#define MAX_NAMES      256
#define MAX_CHANGES    64

/* ---- a tar stream produced on its own thread ------------------------------------ */

struct tstream;
typedef int (*ts_produce_fn)(struct tstream *ts, struct bh_err *err);

struct tstream {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct bh_buf pending;
	struct srv_req *req; /* a reference */
	lws_sorted_usec_list_t retry;
	bool retry_armed, posted, client_gone, finishing, failed;
	bool begun;        /* the 200 headers went out (with the first bytes) */
	struct bh_err err; /* the producer's error; written before finish is posted */
	ts_produce_fn produce;
	struct rt_store *store;
	char **names; /* save: refs; export: layer dirs */
	char *upper;  /* export */
	enum rt_save_format fmt;
	char what[80]; /* for the log */
};

static void ts_free(struct tstream *ts)
{
	if (ts->retry_armed)
		lws_sul_cancel(&ts->retry);
	pthread_mutex_destroy(&ts->mu);
	pthread_cond_destroy(&ts->cond);
	bh_buf_free(&ts->pending);
	rt_image_strv_free(ts->names);
	free(ts->upper);
	srv_req_unref(ts->req);
	free(ts);
}

static void ts_pump(struct tstream *ts);

static void ts_retry_fire(lws_sorted_usec_list_t *sul)
{
	struct tstream *ts = lws_container_of(sul, struct tstream, retry);

	ts->retry_armed = false;
	ts_pump(ts);
}

/* Under ts->mu on the lws thread; true when the stream is full. */
static bool ts_pump_locked(struct tstream *ts)
{
	struct bh_err err;
	size_t off = 0;
	bool full = false;

	/* The status waits for the first bytes: an error before them (no such
	 * layer, a mount that fails) is still a proper error reply. */
	if (!ts->begun && ts->pending.len > 0 && !ts->client_gone) {
		srv_stream_begin(ts->req, 200, "application/x-tar");
		ts->begun = true;
	}
	while (off < ts->pending.len && !ts->client_gone) {
		size_t n = ts->pending.len - off;
		n = n > TS_CHUNK ? TS_CHUNK : n;
		if (srv_stream_write(ts->req, ts->pending.data + off, n, &err) < 0) {
			full = err.code == EAGAIN;
			ts->client_gone = !full;
			break;
		}
		off += n;
	}
	if (off > 0) {
		memmove(ts->pending.data, ts->pending.data + off, ts->pending.len - off);
		ts->pending.len -= off;
	}
	pthread_cond_broadcast(&ts->cond);
	return full;
}

/* A failed producer must not look like a complete tar: the connection is
 * dropped without the final chunk, so the client sees a broken transfer. */
static void ts_end(struct tstream *ts)
{
	ts->req->on_close = NULL;
	if (!ts->begun && ts->failed) {
		srv_reply_error(ts->req, &ts->err);
		return;
	}
	if (!ts->begun)
		srv_stream_begin(ts->req, 200, "application/x-tar");
	if (ts->failed && ts->req->wsi != NULL)
		lws_set_timeout(ts->req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	else
		srv_stream_end(ts->req);
}

static void ts_pump(struct tstream *ts)
{
	bool full, done;

	pthread_mutex_lock(&ts->mu);
	ts->posted = false;
	full = ts_pump_locked(ts);
	done = ts->finishing && (ts->pending.len == 0 || ts->client_gone);
	pthread_mutex_unlock(&ts->mu);
	if (done) {
		ts_end(ts);
		ts_free(ts);
		return;
	}
	if (full && !ts->retry_armed && ts->req->srv && ts->req->srv->ctx) {
		ts->retry_armed = true;
		lws_sul_schedule(ts->req->srv->ctx, 0, &ts->retry, ts_retry_fire, TS_RETRY_US);
	}
}

static void ts_pump_on_loop(struct srv_req *req, void *arg)
{
	struct tstream *ts = arg;

	(void)req;
	if (!ts->retry_armed)
		ts_pump(ts);
}

static void ts_finish_on_loop(struct srv_req *req, void *arg)
{
	struct tstream *ts = arg;

	(void)req;
	if (ts->retry_armed) {
		lws_sul_cancel(&ts->retry);
		ts->retry_armed = false;
	}
	ts->finishing = true;
	ts_pump(ts);
}

/* The producer's sink: blocks while the queue is full. */
static int ts_sink(void *arg, const void *data, size_t len, struct bh_err *err)
{
	struct tstream *ts = arg;
	const char *p = data;

	pthread_mutex_lock(&ts->mu);
	while (len > 0 && !ts->client_gone) {
		size_t room = TS_PENDING_MAX - ts->pending.len, n = len < room ? len : room;
		if (n == 0) {
			pthread_cond_wait(&ts->cond, &ts->mu);
			continue;
		}
		bh_buf_append(&ts->pending, p, n);
		p += n;
		len -= n;
		if (!ts->posted) {
			ts->posted = true;
			srv_call_on_loop(ts->req, ts_pump_on_loop, ts);
		}
	}
	pthread_mutex_unlock(&ts->mu);
	return ts->client_gone ? bh_err_set(err, EPIPE, "client went away") : 0;
}

static void *ts_main(void *arg)
{
	struct tstream *ts = arg;

	if (ts->produce(ts, &ts->err) < 0) {
		ts->failed = true;
		if (ts->err.code != EPIPE)
			bh_warn("%s: %s", ts->what, ts->err.msg);
	}
	srv_call_on_loop(ts->req, ts_finish_on_loop, ts);
	return NULL;
}

static void ts_client_left(struct srv_req *req, void *arg)
{
	struct tstream *ts = arg;

	(void)req;
	pthread_mutex_lock(&ts->mu);
	ts->client_gone = true;
	pthread_cond_broadcast(&ts->cond);
	pthread_mutex_unlock(&ts->mu);
	if (ts->retry_armed) {
		lws_sul_cancel(&ts->retry);
		ts->retry_armed = false;
	}
}

static struct tstream *ts_new(struct srv_req *req, ts_produce_fn produce)
{
	struct tstream *ts = bh_calloc(1, sizeof(*ts));

	pthread_mutex_init(&ts->mu, NULL);
	pthread_cond_init(&ts->cond, NULL);
	bh_buf_init(&ts->pending, TS_PENDING_MAX + 1);
	srv_req_ref(req);
	ts->req = req;
	ts->produce = produce;
	ts->store = req->srv->ctrs->store;
	return ts;
}

static int ts_start(struct srv_req *req, struct tstream *ts, struct bh_err *err)
{
	pthread_attr_t a;
	pthread_t t;
	int r;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	req->on_close = ts_client_left;
	req->on_close_arg = ts;
	r = pthread_create(&t, &a, ts_main, ts);
	pthread_attr_destroy(&a);
	if (r != 0) {
		ts->failed = true;
		bh_err_set(&ts->err, r, "image stream: cannot start a thread");
		ts_end(ts);
		ts_free(ts);
		bh_warn("image stream: thread: %s", strerror(r));
	}
	(void)err;
	return 0;
}

static struct ctr_mgr *mgr(struct srv_req *req, struct bh_err *err)
{
	if (req->srv == NULL || req->srv->ctrs == NULL) {
		bh_err_set(err, ENOTSUP, "images are not available in this daemon");
		return NULL;
	}
	return req->srv->ctrs;
}

/* ---- save ---------------------------------------------------------------------------- */

static int save_produce(struct tstream *ts, struct bh_err *err)
{
	return rt_image_save(ts->store, ts->names, ts->fmt, ts_sink, ts, err);
}

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = bh_realloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = bh_strdup(s);
	(*v)[*n] = NULL;
}

/* Resolving here gives a 404 before any byte of the tar is sent. */
static int save_start(struct srv_req *req, char **names, struct bh_err *err)
{
	struct ctr_mgr *m = mgr(req, err);
	const char *format = srv_query_get(&req->query, "format");
	struct tstream *ts;
	char id[RT_IMAGE_ID_LEN];

	if (m == NULL) {
		rt_image_strv_free(names);
		return -1;
	}
	for (char **n = names; *n; n++)
		if (rt_image_resolve(m->store, *n, id, err) < 0) {
			if (err->code == ENOENT)
				bh_err_set(err, ENOENT, "No such image: %s", *n);
			rt_image_strv_free(names);
			return -1;
		}
	if (format && *format && strcmp(format, "oci") != 0 && strcmp(format, "docker") != 0) {
		rt_image_strv_free(names);
		return bh_err_set(err, EINVAL, "invalid format %s (docker or oci)", format);
	}
	ts = ts_new(req, save_produce);
	ts->names = names;
	ts->fmt = format && strcmp(format, "oci") == 0 ? RT_SAVE_OCI : RT_SAVE_DOCKER;
	snprintf(ts->what, sizeof(ts->what), "save %s%s", names[0], names[1] ? " ..." : "");
	return ts_start(req, ts, err);
}

int srv_h_image_get(struct srv_req *req, struct bh_err *err)
{
	char **names = bh_calloc(1, sizeof(char *));
	size_t n = 0;

	for (size_t i = 0; i < req->query.n && n < MAX_NAMES; i++)
		if (strcmp(req->query.kv[i].name, "names") == 0 && req->query.kv[i].value[0])
			strv_add(&names, &n, req->query.kv[i].value);
	if (n == 0) {
		free(names);
		return bh_err_set(err, EINVAL, "save: names is required");
	}
	return save_start(req, names, err);
}

int srv_h_image_get_one(struct srv_req *req, struct bh_err *err)
{
	char **names = bh_calloc(1, sizeof(char *));
	size_t n = 0;

	strv_add(&names, &n, srv_param(req, "name"));
	return save_start(req, names, err);
}

/* ---- export --------------------------------------------------------------------------- */

static int export_produce(struct tstream *ts, struct bh_err *err)
{
	return rt_rootfs_export(ts->store, ts->names, ts->upper, ts_sink, ts, err);
}

int srv_h_container_export(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr(req, err);
	struct ctr *c = NULL;
	char image[RT_IMAGE_ID_LEN];
	char **layers = NULL;
	struct tstream *ts;

	if (m == NULL || ctr_find(m, srv_param(req, "id"), &c, err) < 0)
		return -1;
	ts = ts_new(req, export_produce);
	pthread_mutex_lock(&m->mu);
	ts->upper = ctr_data_path(m, c, "upper");
	bh_strlcpy(image, c->image_id, sizeof(image));
	snprintf(ts->what, sizeof(ts->what), "export %.12s", c->id);
	ctr_put(m, c);
	pthread_mutex_unlock(&m->mu);
	if (rt_image_layer_dirs(m->store, image, &layers, err) < 0) {
		ts_free(ts);
		return bh_err_wrap(err, "export");
	}
	ts->names = layers;
	return ts_start(req, ts, err);
}

/* ---- deferred JSON jobs: import, commit, history, prune, check ---------------------- */

struct arc_job {
	struct ctr_mgr *m;
	char ref[SRV_PARAM_MAX]; /* image or container */
	char *tag;               /* repo[:tag] to set, or NULL */
	char *comment, *author;
	json_t *changes; /* a Config fragment */
	json_t *config;  /* commit: the container's Config */
	char parent[RT_IMAGE_ID_LEN];
	char *upper;
	char **keep; /* prune: images containers use */
	bool all;
	int fd;
	int status;
	json_t *out;
};

static struct arc_job *job_new(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr(req, err);
	struct arc_job *j;

	if (m == NULL)
		return NULL;
	j = bh_calloc(1, sizeof(*j));
	j->m = m;
	j->fd = -1;
	j->status = 200;
	return j;
}

static void job_free(struct arc_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->tag);
	free(j->comment);
	free(j->author);
	free(j->upper);
	json_decref(j->changes);
	json_decref(j->config);
	json_decref(j->out);
	rt_image_strv_free(j->keep);
	free(j);
}

static void job_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct arc_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_json(req, j->status, json_incref(j->out));
	job_free(j);
}

static const char *qget(struct srv_req *req, const char *name)
{
	const char *v = srv_query_get(&req->query, name);

	return v && *v ? v : NULL;
}

/* repo and tag query arguments -> "repo:tag", "repo" or NULL. */
static char *repo_tag(struct srv_req *req)
{
	const char *repo = qget(req, "repo"), *tag = qget(req, "tag");

	if (repo == NULL)
		return NULL;
	return tag ? bh_asprintf("%s:%s", repo, tag) : bh_strdup(repo);
}

/* Docker's changes=... (repeated) applied to a fresh Config fragment. */
static int parse_changes(struct srv_req *req, json_t **out, struct bh_err *err)
{
	size_t n = 0;

	*out = json_object();
	for (size_t i = 0; i < req->query.n; i++) {
		if (strcmp(req->query.kv[i].name, "changes") != 0 || !req->query.kv[i].value[0])
			continue;
		if (++n > MAX_CHANGES)
			return bh_err_set(err, EINVAL, "too many changes (max %d)", MAX_CHANGES);
		if (rt_image_apply_change(*out, req->query.kv[i].value, err) < 0)
			return -1;
	}
	return 0;
}

static int import_work(void *arg, struct bh_err *err)
{
	struct arc_job *j = arg;
	char id[RT_IMAGE_ID_LEN];

	if (lseek(j->fd, 0, SEEK_SET) < 0)
		return bh_err_sys(err, errno, "import: rewind the request body");
	if (rt_image_import(j->m->store, j->fd, j->changes, j->tag, j->comment, id, err) < 0) {
		if (err->code != ENOSPC && err->code != EIO && err->code != EAGAIN)
			err->code = EINVAL; /* a bad tar is the client's */
		return -1;
	}
	cleanup_free char *line = bh_asprintf("%s", id);
	j->out = json_pack("{ss}", "status", line);
	bh_info("image %s imported%s%s", id, j->tag ? " as " : "", j->tag ? j->tag : "");
	return 0;
}

static int image_import(struct srv_req *req, struct bh_err *err)
{
	struct arc_job *j;
	json_t *changes = NULL;

	if (strcmp(qget(req, "fromSrc"), "-") != 0)
		return bh_err_set(err, EINVAL,
		                  "import: only fromSrc=- (the request body) is supported");
	if (req->body_fd < 0)
		return bh_err_set(err, EINVAL, "import: a tar archive is required as the body");
	if (parse_changes(req, &changes, err) < 0) {
		json_decref(changes);
		return -1;
	}
	j = job_new(req, err);
	if (j == NULL) {
		json_decref(changes);
		return -1;
	}
	j->changes = changes;
	j->tag = repo_tag(req);
	j->comment = qget(req, "message") ? bh_strdup(qget(req, "message")) : NULL;
	j->fd = dup(req->body_fd);
	if (j->fd < 0) {
		job_free(j);
		return bh_err_sys(err, errno, "import: dup");
	}
	srv_defer(req, import_work, job_done, j);
	return 0;
}

int srv_h_image_import(struct srv_req *req, struct bh_err *err)
{
	if (qget(req, "fromSrc") == NULL)
		return bh_err_set(err, EINVAL, "import: fromSrc is required");
	return image_import(req, err);
}

/* ---- commit ---------------------------------------------------------------------------- */

static int commit_work(void *arg, struct bh_err *err)
{
	struct arc_job *j = arg;
	char id[RT_IMAGE_ID_LEN];
	struct rt_commit_opts o = {.parent_id = j->parent,
	                           .upper_dir = j->upper,
	                           .config = j->config,
	                           .comment = j->comment,
	                           .author = j->author,
	                           .ref = j->tag};
	cleanup_free char *by = NULL;
	json_t *argv = ctr_argv(j->config);

	by = json_dumps(argv, JSON_COMPACT);
	json_decref(argv);
	o.created_by = by;
	if (!bh_path_exists(j->upper))
		return bh_err_set(err, EINVAL, "commit %s: the container was never started",
		                  j->ref);
	if (rt_image_commit(j->m->store, &o, id, err) < 0)
		return -1;
	j->out = json_pack("{ss}", "Id", id);
	j->status = 201;
	bh_info("container %.12s committed as %s", j->ref, id);
	return 0;
}

static int commit_prepare(struct srv_req *req, struct arc_job *j, struct bh_err *err)
{
	struct ctr *c = NULL;
	json_t *changes = NULL;

	if (ctr_find(j->m, qget(req, "container"), &c, err) < 0)
		return -1;
	pthread_mutex_lock(&j->m->mu);
	bh_strlcpy(j->ref, c->id, sizeof(j->ref));
	bh_strlcpy(j->parent, c->image_id, sizeof(j->parent));
	j->config = json_deep_copy(c->config);
	j->upper = ctr_data_path(j->m, c, "upper");
	ctr_put(j->m, c);
	pthread_mutex_unlock(&j->m->mu);
	if (parse_changes(req, &changes, err) < 0) {
		json_decref(changes);
		return -1;
	}
	json_object_update(j->config, changes);
	json_decref(changes);
	return 0;
}

int srv_h_commit(struct srv_req *req, struct bh_err *err)
{
	struct arc_job *j;

	if (qget(req, "container") == NULL)
		return bh_err_set(err, EINVAL, "commit: container is required");
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	if (commit_prepare(req, j, err) < 0) {
		job_free(j);
		return -1;
	}
	j->tag = repo_tag(req);
	j->comment = qget(req, "comment") ? bh_strdup(qget(req, "comment")) : NULL;
	j->author = qget(req, "author") ? bh_strdup(qget(req, "author")) : NULL;
	srv_defer(req, commit_work, job_done, j);
	return 0;
}

/* ---- history, prune, check --------------------------------------------------------------- */

static int history_work(void *arg, struct bh_err *err)
{
	struct arc_job *j = arg;
	char id[RT_IMAGE_ID_LEN];

	if (rt_image_resolve(j->m->store, j->ref, id, err) < 0)
		return err->code == ENOENT ? bh_err_set(err, ENOENT, "No such image: %s", j->ref)
		                           : -1;
	return rt_image_history(j->m->store, id, &j->out, err);
}

int srv_h_image_history(struct srv_req *req, struct bh_err *err)
{
	struct arc_job *j = job_new(req, err);

	if (j == NULL)
		return -1;
	bh_strlcpy(j->ref, srv_param(req, "name"), sizeof(j->ref));
	srv_defer(req, history_work, job_done, j);
	return 0;
}

/* The images of every container (any state): prune keeps them. */
static char **images_in_use(struct ctr_mgr *m)
{
	char **v = bh_calloc(1, sizeof(char *));
	size_t n = 0;

	pthread_mutex_lock(&m->mu);
	for (struct ctr *c = m->list; c; c = c->next)
		strv_add(&v, &n, c->image_id);
	pthread_mutex_unlock(&m->mu);
	return v;
}

static int prune_work(void *arg, struct bh_err *err)
{
	struct arc_job *j = arg;

	j->keep = images_in_use(j->m);
	return rt_image_prune(j->m->store, j->all, j->keep, &j->out, err);
}

/* filters={"dangling":["false"]} means all unused images (prune -a). */
int srv_image_prune_filters(const char *text, bool *all, struct bh_err *err)
{
	json_t *f, *v, *x;
	const char *key;
	size_t i;

	*all = false;
	if (text == NULL)
		return 0;
	f = json_loads(text, 0, NULL);
	if (!json_is_object(f)) {
		json_decref(f);
		return bh_err_set(err, EINVAL, "invalid filters: %.64s", text);
	}
	json_object_foreach(f, key, v)
	{
		if (strcmp(key, "dangling") != 0) {
			/* key lives in f: the message first (found by fuzz_api_bodies) */
			bh_err_set(err, EINVAL, "invalid filter '%s'", key);
			json_decref(f);
			return -1;
		}
		json_array_foreach(v, i, x)
		{
			const char *s = json_string_value(x);
			*all = *all || (s && (strcmp(s, "false") == 0 || strcmp(s, "0") == 0));
		}
		if (json_is_object(v))
			*all = *all || json_object_get(v, "false") != NULL;
	}
	json_decref(f);
	return 0;
}

int srv_h_image_prune(struct srv_req *req, struct bh_err *err)
{
	struct arc_job *j;
	bool all;

	if (srv_image_prune_filters(qget(req, "filters"), &all, err) < 0)
		return -1;
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	j->all = all;
	srv_defer(req, prune_work, job_done, j);
	return 0;
}

static int check_work(void *arg, struct bh_err *err)
{
	struct arc_job *j = arg;
	json_t *problems = NULL;

	if (rt_store_check(j->m->store, &problems, err) < 0)
		return -1;
	j->out = json_pack("{sb so}", "OK", json_array_size(problems) == 0, "Problems", problems);
	return 0;
}

int srv_h_store_check(struct srv_req *req, struct bh_err *err)
{
	struct arc_job *j = job_new(req, err);

	if (j == NULL)
		return -1;
	srv_defer(req, check_work, job_done, j);
	return 0;
}

/* ---- names with '/' ------------------------------------------------------------------ */

/* "/images/{n1}/{n2}/json": the segments joined back into {name}, then the
 * single-segment handler runs as if the name had been one segment. */
static int with_joined_name(struct srv_req *req, srv_handler_fn fn, struct bh_err *err)
{
	static const char *const parts[] = {"n1", "n2", "n3", "n4"};
	char name[SRV_PARAM_MAX] = "";
	size_t len = 0;

	for (size_t i = 0; i < 4; i++) {
		const char *v = srv_param(req, parts[i]);
		int n;
		if (v == NULL)
			break;
		n = snprintf(name + len, sizeof(name) - len, "%s%s", len ? "/" : "", v);
		if (n < 0 || (size_t)n >= sizeof(name) - len)
			return bh_err_set(err, EINVAL, "image name too long");
		len += (size_t)n;
	}
	/* The parts are copied: the one parameter left is the joined name. */
	req->params.n = 1;
	bh_strlcpy(req->params.p[0].name, "name", sizeof(req->params.p[0].name));
	bh_strlcpy(req->params.p[0].value, name, sizeof(req->params.p[0].value));
	return fn(req, err);
}

int srv_h_image_inspect_path(struct srv_req *req, struct bh_err *err)
{
	return with_joined_name(req, srv_h_image_inspect, err);
}

int srv_h_image_delete_path(struct srv_req *req, struct bh_err *err)
{
	return with_joined_name(req, srv_h_image_delete, err);
}

int srv_h_image_history_path(struct srv_req *req, struct bh_err *err)
{
	return with_joined_name(req, srv_h_image_history, err);
}

int srv_h_image_get_path(struct srv_req *req, struct bh_err *err)
{
	return with_joined_name(req, srv_h_image_get_one, err);
}
