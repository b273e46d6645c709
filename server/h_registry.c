/* Registry endpoints: pull (POST /images/create?fromImage=&tag=&platform=),
 * push (POST /images/{name}/push?tag=), tag (POST /images/{name}/tag) and
 * login (POST /auth), all through runtime/'s registry client on the pool.
 * Pull and push stream Docker's JSON progress lines; the 200 goes out with
 * the first line, so an error found before it (bad reference, unknown
 * manifest, unauthorized) is an ordinary 4xx/5xx JSON reply, and one found
 * after it is a final {"errorDetail":{"message"},"error"} line.
 * X-Registry-Auth carries the caller's credentials: decoded into memory,
 * wiped after use, never logged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

#define AUTH_HDR_MAX (16 * 1024)

struct reg_job {
	struct ctr_mgr *m;
	struct srv_req *req; /* only for srv_call_on_loop from the workers */
	char ref[2 * SRV_PARAM_MAX + 8];
	char platform[96];
	struct rt_reg_auth auth;
	struct rt_reg_opts opts;
	volatile bool cancel;
	json_t *out;
};

/* X-Registry-Auth, read on the lws thread while the request is current. */
static int read_auth(struct srv_req *req, struct rt_reg_auth *auth, struct bh_err *err)
{
	char *buf;
	int n, r;

	memset(auth, 0, sizeof(*auth));
	if (req->wsi == NULL)
		return 0;
	n = lws_hdr_custom_length(req->wsi, "x-registry-auth:", 16);
	if (n <= 0)
		return 0;
	if (n > AUTH_HDR_MAX)
		return bh_err_set(err, EINVAL, "X-Registry-Auth larger than %d bytes",
		                  AUTH_HDR_MAX);
	buf = bh_malloc((size_t)n + 1);
	if (lws_hdr_custom_copy(req->wsi, buf, n + 1, "x-registry-auth:", 16) < 0) {
		free(buf);
		return bh_err_set(err, EINVAL, "X-Registry-Auth: cannot read the header");
	}
	r = rt_reg_auth_decode(buf, auth, err);
	bh_wipe(buf, (size_t)n);
	free(buf);
	return r;
}

static struct reg_job *job_new(struct srv_req *req, struct bh_err *err)
{
	struct reg_job *j;

	if (req->srv == NULL || req->srv->ctrs == NULL) {
		bh_err_set(err, ENOTSUP, "images are not available in this daemon");
		return NULL;
	}
	j = bh_calloc(1, sizeof(*j));
	j->m = req->srv->ctrs;
	j->req = req;
	if (read_auth(req, &j->auth, err) < 0) {
		free(j);
		return NULL;
	}
	j->opts.certs_d = req->srv->cfg.certs_d;
	j->opts.insecure = (const char *const *)req->srv->cfg.insecure;
	j->opts.auth = &j->auth;
	j->opts.cancel = &j->cancel;
	return j;
}

static void job_free(struct reg_job *j)
{
	rt_reg_auth_clear(&j->auth);
	json_decref(j->out);
	free(j);
}

/* ---- progress lines ------------------------------------------------------------------ */

struct line {
	char *text;
	bool droppable; /* "Downloading": may go when the client reads slowly */
};

static void stream_line(struct srv_req *req, const char *text, size_t len, bool droppable)
{
	struct bh_err err;

	if (req->closed || req->ended)
		return;
	if (!req->streaming)
		srv_stream_begin(req, 200, "application/json");
	if (srv_stream_write(req, text, len, &err) < 0 && !droppable)
		bh_warn("%s: progress line dropped: %s", req->path, err.msg);
}

static void line_on_loop(struct srv_req *req, void *arg)
{
	struct line *l = arg;

	stream_line(req, l->text, strlen(l->text), l->droppable);
	free(l->text);
	free(l);
}

/* A worker thread: hand the event to the lws thread.  The deferral holds a
 * reference on req, and these calls are queued before its done(). */
static void on_progress(void *arg, json_t *event)
{
	struct reg_job *j = arg;
	struct line *l = bh_calloc(1, sizeof(*l));
	char *text = json_dumps(event, JSON_COMPACT);
	const char *st = json_string_value(json_object_get(event, "status"));

	l->text = bh_asprintf("%s\n", text ? text : "{}");
	l->droppable = st && strcmp(st, "Downloading") == 0;
	free(text);
	srv_call_on_loop(j->req, line_on_loop, l);
}

static void on_client_left(struct srv_req *req, void *arg)
{
	struct reg_job *j = arg;

	j->cancel = true;
}

static void stream_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct reg_job *j = arg;

	req->on_close = NULL;
	if (rc < 0 && !req->streaming) {
		srv_reply_error(req, err);
	} else if (rc < 0) {
		json_t *o =
		    json_pack("{s{ss}ss}", "errorDetail", "message", err->msg, "error", err->msg);
		char *text = json_dumps(o, JSON_COMPACT);
		cleanup_free char *line = bh_asprintf("%s\n", text);
		free(text);
		json_decref(o);
		stream_line(req, line, strlen(line), false);
		srv_stream_end(req);
	} else {
		if (!req->streaming)
			srv_stream_begin(req, 200, "application/json");
		srv_stream_end(req);
	}
	job_free(j);
}

static void start_stream_job(struct srv_req *req, struct reg_job *j, srv_work_fn work)
{
	req->on_close = on_client_left;
	req->on_close_arg = j;
	srv_defer(req, work, stream_done, j);
}

/* ---- pull -------------------------------------------------------------------------- */

static int pull_work(void *arg, struct bh_err *err)
{
	struct reg_job *j = arg;

	if (rt_registry_pull(j->m->store, j->ref, &j->opts, on_progress, j, err) < 0)
		return -1;
	srv_events_image("pull", j->ref, j->ref);
	return 0;
}

/* fromImage (maybe with a tag or digest) and tag (a tag or a digest). */
static int pull_ref(struct srv_req *req, char *out, size_t len, struct bh_err *err)
{
	const char *from = srv_query_get(&req->query, "fromImage");
	const char *tag = srv_query_get(&req->query, "tag");
	const char *slash, *colon;
	int n;

	if (from == NULL || *from == '\0')
		return bh_err_set(err, EINVAL,
		                  "fromImage is required (import with fromSrc is "
		                  "not handled by the registry endpoint)");
	slash = strrchr(from, '/');
	colon = strrchr(from, ':');
	if (tag == NULL || *tag == '\0' || strchr(from, '@') ||
	    (colon && (slash == NULL || colon > slash)))
		n = snprintf(out, len, "%s", from);
	else
		n = snprintf(out, len, "%s%s%s", from,
		             bh_str_has_prefix(tag, "sha256:") ? "@" : ":", tag);
	if (n < 0 || (size_t)n >= len)
		return bh_err_set(err, EINVAL, "invalid reference format: too long");
	return 0;
}

int srv_h_image_create(struct srv_req *req, struct bh_err *err)
{
	const char *platform = srv_query_get(&req->query, "platform");
	struct reg_job *j;
	struct rt_reg_ref check;
	struct rt_platform plat;

	/* Docker's import shares this endpoint: the tar body (h_images_archive.c). */
	if (srv_query_get(&req->query, "fromSrc") != NULL)
		return srv_h_image_import(req, err);
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	if (pull_ref(req, j->ref, sizeof(j->ref), err) < 0 ||
	    rt_reg_ref_parse(j->ref, &check, err) < 0 ||
	    (platform && bh_strlcpy(j->platform, platform, sizeof(j->platform)) < 0)) {
		job_free(j);
		return err->code ? -1 : bh_err_set(err, EINVAL, "platform too long");
	}
	rt_reg_ref_free(&check);
	j->opts.platform = j->platform[0] ? j->platform : NULL;
	if (j->opts.platform && rt_platform_parse(j->opts.platform, &plat, err) < 0) {
		job_free(j);
		return -1; /* a 400 before any registry is asked */
	}
	start_stream_job(req, j, pull_work);
	return 0;
}

/* ---- push ------------------------------------------------------------------------------ */

/* The {n1}/{n2}/... parameters joined back into the name. */
static int joined_name(struct srv_req *req, char *out, size_t len, struct bh_err *err)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < req->params.n; i++) {
		int n =
		    snprintf(out + used, len - used, "%s%s", i ? "/" : "", req->params.p[i].value);
		if (n < 0 || (size_t)n >= len - used)
			return bh_err_set(err, EINVAL, "image name too long");
		used += (size_t)n;
	}
	return 0;
}

static int push_work(void *arg, struct bh_err *err)
{
	struct reg_job *j = arg;

	if (rt_registry_push(j->m->store, j->ref, &j->opts, on_progress, j, err) < 0)
		return -1;
	srv_events_image("push", j->ref, j->ref);
	return 0;
}

int srv_h_image_push(struct srv_req *req, struct bh_err *err)
{
	const char *tag = srv_query_get(&req->query, "tag");
	char name[2 * SRV_PARAM_MAX];
	struct reg_job *j;
	struct rt_reg_ref check;
	const char *slash, *colon;
	int n;

	if (joined_name(req, name, sizeof(name), err) < 0)
		return -1;
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (tag == NULL || *tag == '\0' || (colon && (slash == NULL || colon > slash)))
		n = snprintf(j->ref, sizeof(j->ref), "%s", name);
	else
		n = snprintf(j->ref, sizeof(j->ref), "%s:%s", name, tag);
	if (n < 0 || (size_t)n >= sizeof(j->ref) || rt_reg_ref_parse(j->ref, &check, err) < 0) {
		job_free(j);
		return err->code ? -1 : bh_err_set(err, EINVAL, "invalid reference format");
	}
	rt_reg_ref_free(&check);
	start_stream_job(req, j, push_work);
	return 0;
}

/* ---- tag -------------------------------------------------------------------------------- */

static int tag_work(void *arg, struct bh_err *err)
{
	struct reg_job *j = arg;
	const char *target = j->ref + strlen(j->ref) + 1;
	char id[RT_IMAGE_ID_LEN];

	if (rt_image_resolve(j->m->store, j->ref, id, err) < 0)
		return err->code == ENOENT ? bh_err_set(err, ENOENT, "No such image: %s", j->ref)
		                           : -1;
	if (rt_image_tag(j->m->store, id, target, err) < 0)
		return -1;
	srv_events_image("tag", id, target);
	return 0;
}

static void tag_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct reg_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_empty(req, 201);
	job_free(j);
}

int srv_h_image_tag(struct srv_req *req, struct bh_err *err)
{
	const char *repo = srv_query_get(&req->query, "repo");
	const char *tag = srv_query_get(&req->query, "tag");
	char name[2 * SRV_PARAM_MAX];
	struct reg_job *j;
	int n;

	if (repo == NULL || *repo == '\0')
		return bh_err_set(err, EINVAL, "repo is required");
	if (joined_name(req, name, sizeof(name), err) < 0)
		return -1;
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	/* ref holds "SRC\0DST" */
	n = snprintf(j->ref, sizeof(j->ref), "%s%c%s%s%s", name, '\0', repo, tag && *tag ? ":" : "",
	             tag && *tag ? tag : "");
	if (n < 0 || (size_t)n >= sizeof(j->ref)) {
		job_free(j);
		return bh_err_set(err, EINVAL, "invalid reference format: too long");
	}
	srv_defer(req, tag_work, tag_done, j);
	return 0;
}

/* ---- login ----------------------------------------------------------------------------- */

static int auth_work(void *arg, struct bh_err *err)
{
	struct reg_job *j = arg;

	return rt_registry_login(j->ref, &j->opts, err);
}

static void auth_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct reg_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_json(
		    req, 200,
		    json_pack("{ssss}", "Status", "Login Succeeded", "IdentityToken", ""));
	job_free(j);
}

static char *field(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v && *v ? bh_strdup(v) : NULL;
}

int srv_h_auth(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL;
	struct reg_job *j;
	int r;

	r = srv_req_body_json(req, &body, err);
	if (req->body.data)
		bh_wipe(req->body.data, req->body.len); /* it holds a password */
	if (r < 0)
		return -1;
	j = job_new(req, err);
	if (j == NULL) {
		json_decref(body);
		return -1;
	}
	rt_reg_auth_clear(&j->auth);
	j->auth.username = field(body, "username");
	j->auth.password = field(body, "password");
	j->auth.serveraddress = field(body, "serveraddress");
	json_decref(body);
	if (j->auth.serveraddress == NULL ||
	    bh_strlcpy(j->ref, j->auth.serveraddress, sizeof(j->ref)) < 0) {
		job_free(j);
		return bh_err_set(err, EINVAL, "serveraddress is required");
	}
	srv_defer(req, auth_work, auth_done, j);
	return 0;
}
