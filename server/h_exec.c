/* The Exec API in Docker Engine API shapes: create, start (detached only:
 * attached exec streams are the WebSocket GET /exec/{id}/ws), inspect,
 * resize, and kill (berth's addition: a signal to the exec'd process).
 * Blocking work (spawning a monitor, talking to its attach socket) runs on
 * the pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"
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

int srv_h_exec_create(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(req, err);
	json_t *body = NULL;
	char id[65];
	int r;

	if (m == NULL || srv_req_body_json(req, &body, err) < 0)
		return -1;
	r = srv_exec_create(m, srv_param(req, "id"), body, id, err);
	json_decref(body);
	if (r < 0)
		return -1;
	srv_reply_json(req, 201, json_pack("{s:s}", "Id", id));
	return 0;
}

int srv_h_exec_inspect(struct srv_req *req, struct bh_err *err)
{
	struct ctr_mgr *m = mgr_of(req, err);
	json_t *j = m ? srv_exec_inspect_json(m, srv_param(req, "id"), err) : NULL;

	if (j == NULL)
		return -1;
	srv_reply_json(req, 200, j);
	return 0;
}

/* ---- on the pool ------------------------------------------------------------------ */

enum exec_op { OP_START, OP_RESIZE, OP_KILL };

struct exec_job {
	enum exec_op op;
	struct ctr_mgr *m;
	char id[65];
	int sig;
	unsigned rows, cols;
};

static int send_all(int fd, const uint8_t *p, size_t len, struct bh_err *err)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return bh_err_sys(err, errno, "attach socket");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A control connection: no-output, then resize. */
static int resize_work(const char *dir, unsigned rows, unsigned cols, struct bh_err *err)
{
	uint8_t buf[2 * RT_MONITOR_FRAME_HDR + 4];
	int fd = rt_monitor_attach_connect(dir, err);
	int r;

	if (fd < 0)
		return -1;
	rt_frame_header(buf, RT_FRAME_NO_OUTPUT, 0);
	rt_frame_header(buf + RT_MONITOR_FRAME_HDR, RT_FRAME_RESIZE, 4);
	buf[10] = (uint8_t)(rows >> 8);
	buf[11] = (uint8_t)rows;
	buf[12] = (uint8_t)(cols >> 8);
	buf[13] = (uint8_t)cols;
	r = send_all(fd, buf, sizeof(buf), err);
	close(fd);
	return r;
}

static int running_dir(struct exec_job *j, struct srv_exec_info *info, struct bh_err *err)
{
	if (srv_exec_lookup(j->m, j->id, info, err) < 0)
		return -1;
	if (info->state != SRV_EXEC_RUNNING)
		return bh_err_set(err, EBUSY, "Exec %s is not running", j->id);
	return 0;
}

static int job_work(void *arg, struct bh_err *err)
{
	struct exec_job *j = arg;
	struct srv_exec_info info;

	if (j->op == OP_START)
		return srv_exec_spawn(j->m, j->id, true, err);
	if (running_dir(j, &info, err) < 0)
		return -1;
	if (j->op == OP_RESIZE)
		return resize_work(info.dir, j->rows, j->cols, err);
	if (rt_monitor_signal(info.dir, j->sig, err) < 0) {
		if (err->code == ECONNREFUSED || err->code == ENOENT)
			return bh_err_set(err, EBUSY, "Exec %s is not running", j->id);
		return -1;
	}
	return 0;
}

static void job_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct exec_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else if (j->op == OP_START)
		srv_reply_empty(req, 200);
	else
		srv_reply_empty(req, j->op == OP_KILL ? 204 : 200);
	free(j);
}

static int job_defer(struct srv_req *req, struct exec_job *j, struct bh_err *err)
{
	j->m = mgr_of(req, err);
	if (j->m == NULL || bh_strlcpy(j->id, srv_param(req, "id"), sizeof(j->id)) < 0) {
		if (j->m != NULL)
			bh_err_set(err, ENOENT, "No such exec instance: %s", srv_param(req, "id"));
		free(j);
		return -1;
	}
	srv_defer(req, job_work, job_done, j);
	return 0;
}

int srv_h_exec_start(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL;
	bool detach;
	struct exec_job *j;

	if (req->body.len == 0)
		body = json_object();
	else if (srv_req_body_json(req, &body, err) < 0)
		return -1;
	detach = json_is_true(json_object_get(body, "Detach"));
	json_decref(body);
	if (!detach)
		return bh_err_set(
		    err, EINVAL,
		    "attached exec over plain HTTP is not supported: use the WebSocket "
		    "GET /exec/%s/ws (docs/streams.md), or Detach: true",
		    srv_param(req, "id"));
	srv_exec_note_caller(srv_param(req, "id"), &req->id);
	j = bh_calloc(1, sizeof(*j));
	j->op = OP_START;
	return job_defer(req, j, err);
}

static int query_size(struct srv_req *req, const char *name, unsigned *out, struct bh_err *err)
{
	const char *v = srv_query_get(&req->query, name);
	long n;

	if (v == NULL || bh_parse_long(v, 1, SRV_SF_TTY_MAX, &n) < 0)
		return bh_err_set(err, EINVAL, "invalid %s: %s (1..%d)", name, v ? v : "(missing)",
		                  SRV_SF_TTY_MAX);
	*out = (unsigned)n;
	return 0;
}

int srv_h_exec_resize(struct srv_req *req, struct bh_err *err)
{
	struct exec_job *j = bh_calloc(1, sizeof(*j));

	j->op = OP_RESIZE;
	if (query_size(req, "h", &j->rows, err) < 0 || query_size(req, "w", &j->cols, err) < 0) {
		free(j);
		return -1;
	}
	return job_defer(req, j, err);
}

int srv_h_exec_kill(struct srv_req *req, struct bh_err *err)
{
	const char *s = srv_query_get(&req->query, "signal");
	struct exec_job *j;
	int sig = s == NULL || s[0] == '\0' ? 9 : srv_sf_signal_parse(s);

	if (sig < 0)
		return bh_err_set(err, EINVAL, "Invalid signal: %s", s);
	j = bh_calloc(1, sizeof(*j));
	j->op = OP_KILL;
	j->sig = sig;
	return job_defer(req, j, err);
}
