/* The HTTP layer: request objects (query, params, bounded body), the
 * response builder (full JSON/text bodies or chunked streams), the one
 * error -> status mapping, and the writer that feeds lws piece by piece. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "server/server-internal.h"

#define REPLY_MAX (256u * 1024 * 1024) /* our own JSON; not network input */

static const char *const method_names[] = {
    [SRV_GET] = "GET",         [SRV_HEAD] = "HEAD",          [SRV_POST] = "POST",
    [SRV_PUT] = "PUT",         [SRV_DELETE] = "DELETE",      [SRV_PATCH] = "PATCH",
    [SRV_OPTIONS] = "OPTIONS", [SRV_METHOD_OTHER] = "OTHER",
};

const char *srv_method_name(enum srv_method m)
{
	if ((unsigned)m > SRV_METHOD_OTHER)
		return "OTHER";
	return method_names[m];
}

/* ---- query ---------------------------------------------------------------- */

static int query_put(struct srv_query *q, const char *name, size_t nlen, const char *value,
                     size_t vlen, struct bh_err *err)
{
	if (q->n >= SRV_MAX_QUERY)
		return bh_err_set(err, EINVAL, "too many query arguments (at most %d)",
		                  SRV_MAX_QUERY);
	if (nlen == 0)
		return 0; /* "&&" or "=x": nothing to name */
	q->kv[q->n].name = bh_strndup(name, nlen);
	q->kv[q->n].value = bh_strndup(value, vlen);
	q->n++;
	return 0;
}

int srv_query_add(struct srv_query *q, const char *frag, struct bh_err *err)
{
	const char *eq = strchr(frag, '=');

	if (eq == NULL)
		return query_put(q, frag, strlen(frag), "", 0, err);
	return query_put(q, frag, (size_t)(eq - frag), eq + 1, strlen(eq + 1), err);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent- and '+'-decodes s[0..len) into a new string; NULL on a bad escape. */
static char *url_decode(const char *s, size_t len, size_t *out_len)
{
	char *out = bh_malloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] != '%') {
			out[o++] = s[i];
		} else if (i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			free(out);
			return NULL;
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static int query_put_encoded(struct srv_query *q, const char *s, size_t len, struct bh_err *err)
{
	const char *eq = memchr(s, '=', len);
	size_t nraw = eq ? (size_t)(eq - s) : len, nlen, vlen = 0;
	cleanup_free char *name = url_decode(s, nraw, &nlen);
	cleanup_free char *value = eq ? url_decode(eq + 1, len - nraw - 1, &vlen) : bh_strdup("");

	if (name == NULL || value == NULL)
		return bh_err_set(err, EINVAL, "bad percent-escape in query");
	return query_put(q, name, nlen, value, vlen, err);
}

int srv_query_parse(struct srv_query *q, const char *qs, struct bh_err *err)
{
	const char *p = qs;

	if (*p == '?')
		p++;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (query_put_encoded(q, p, len, err) < 0)
			return -1;
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;
}

const char *srv_query_get(const struct srv_query *q, const char *name)
{
	/* The first one wins, as with Go's r.FormValue in dockerd. */
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->kv[i].name, name) == 0)
			return q->kv[i].value;
	return NULL;
}

bool srv_query_bool(const struct srv_query *q, const char *name)
{
	static const char *const falsy[] = {"", "0", "no", "false", "none"};
	const char *v = srv_query_get(q, name);

	if (v == NULL)
		return false;
	for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++)
		if (strcasecmp(v, falsy[i]) == 0)
			return false;
	return true;
}

void srv_query_free(struct srv_query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->kv[i].name);
		free(q->kv[i].value);
	}
	q->n = 0;
}

const char *srv_param(const struct srv_req *req, const char *name)
{
	for (size_t i = 0; i < req->params.n; i++)
		if (strcmp(req->params.p[i].name, name) == 0)
			return req->params.p[i].value;
	return NULL;
}

/* ---- client-gone watch ---------------------------------------------------------
 * While lws serves an h1 transaction it does not read the socket, so a client
 * that leaves during a long handler or an idle stream goes unnoticed (and
 * re-enabling rx makes lws spin on the hang-up).  Probe for the hang-up now
 * and then instead.  HTTP clients do not half-close mid-request; hijacked
 * raw streams (attach) will need their own rule. */
struct hup_watch {
	lws_sorted_usec_list_t sul;
	struct srv_req *req;
};

#define HUP_PROBE_US (500 * LWS_US_PER_MS)

static void watch_cancel(struct srv_req *req)
{
	struct hup_watch *w = req->hup_watch;

	if (w == NULL)
		return;
	lws_sul_cancel(&w->sul);
	free(w);
	req->hup_watch = NULL;
}

static void watch_fire(lws_sorted_usec_list_t *sul)
{
	struct hup_watch *w = lws_container_of(sul, struct hup_watch, sul);
	struct srv_req *req = w->req;
	struct pollfd pfd;

	if (req->closed || req->finished || req->wsi == NULL)
		return;
	pfd.fd = lws_get_socket_fd(lws_get_network_wsi(req->wsi));
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	if (pfd.fd >= 0 && poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		bh_debug("%s %s: client went away", srv_method_name(req->method), req->path);
		lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return;
	}
	lws_sul_schedule(lws_get_context(req->wsi), 0, &w->sul, watch_fire, HUP_PROBE_US);
}

void srv_req_watch(struct srv_req *req)
{
	struct hup_watch *w;

	if (req->hup_watch != NULL || req->wsi == NULL || req->finished)
		return;
	w = bh_calloc(1, sizeof(*w));
	w->req = req;
	req->hup_watch = w;
	lws_sul_schedule(lws_get_context(req->wsi), 0, &w->sul, watch_fire, HUP_PROBE_US);
}

/* ---- request lifetime ------------------------------------------------------- */

struct srv_req *srv_req_new(struct srv_server *srv, struct lws *wsi)
{
	struct srv_req *req = bh_calloc(1, sizeof(*req));

	req->refs = 1; /* the connection's */
	req->wsi = wsi;
	req->srv = srv;
	req->content_length = -1;
	req->body_fd = -1;
	req->start_ms = bh_now_ms();
	bh_buf_init(&req->body, SRV_BODY_MAX_DEFAULT);
	bh_buf_init(&req->out, REPLY_MAX);
	if (srv)
		srv->inflight++;
	return req;
}

void srv_req_ref(struct srv_req *req)
{
	req->refs++;
}

void srv_req_unref(struct srv_req *req)
{
	if (req == NULL || --req->refs > 0)
		return;
	watch_cancel(req);
	srv_query_free(&req->query);
	bh_buf_free(&req->body);
	if (req->body_fd >= 0)
		close(req->body_fd);
	bh_buf_free(&req->out);
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->headers[i].name);
		free(req->headers[i].value);
	}
	free(req);
}

static void log_path(const char *in, char *out, size_t size)
{
	size_t i;

	/* A decoded path can carry control bytes: keep log lines one line. */
	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
	out[i] = '\0';
}

/* The audit event exists before the last byte of the reply leaves: a client
 * that got its answer finds the event (GET /events?since=...). */
static void req_record(struct srv_req *req)
{
	if (req->recorded)
		return;
	req->recorded = true;
	srv_events_request_done(req);
}

static void req_finish(struct srv_req *req, const char *note)
{
	char path[256];

	if (req->finished)
		return;
	req->finished = true;
	watch_cancel(req);
	if (req->srv)
		req->srv->inflight--;
	log_path(req->path, path, sizeof(path));
	bh_info("%s %s %s %d %llums%s", req->id.text[0] ? req->id.text : "-",
	        srv_method_name(req->method), path, req->status,
	        (unsigned long long)(bh_now_ms() - req->start_ms), note);
	req_record(req);
}

void srv_req_detach(struct srv_req *req)
{
	if (req->closed)
		return;
	req->closed = true;
	req->wsi = NULL;
	watch_cancel(req);
	if (!req->finished)
		req_finish(req, " (client closed)");
	if (req->on_close)
		req->on_close(req, req->on_close_arg);
	srv_req_unref(req);
}

static int spool_open(struct srv_req *req, struct bh_err *err)
{
	cleanup_free char *dir = NULL;

	if (req->srv == NULL || req->srv->cfg.data_root == NULL)
		return bh_err_set(err, EIO, "no directory for request bodies");
	dir = bh_path_join(req->srv->cfg.data_root, "tmp");
	if (bh_mkdir_p(dir, 0700, err) < 0)
		return -1;
	/* O_TMPFILE: never visible by name, gone with the last close. */
	req->body_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (req->body_fd < 0)
		return bh_err_sys(err, errno, "request body: temp file in %s", dir);
	return 0;
}

static int spool_write(struct srv_req *req, const char *p, size_t len, struct bh_err *err)
{
	while (len > 0) {
		ssize_t n = write(req->body_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bh_err_sys(err, errno, "request body: write to %s/tmp",
			                  req->srv->cfg.data_root);
		p += n;
		len -= (size_t)n;
		req->body_spooled += n;
	}
	return 0;
}

int srv_req_body_append(struct srv_req *req, const void *data, size_t len, struct bh_err *err)
{
	bool spool = req->route != NULL && (req->route->body_max & SRV_BODY_SPOOL);

	if (!spool) {
		if (bh_buf_append(&req->body, data, len) < 0)
			return bh_err_set(err, EFBIG, "request body exceeds the limit of %zu bytes",
			                  req->body.max);
		return 0;
	}
	if ((uint64_t)req->body_spooled + len > req->body.max)
		return bh_err_set(err, EFBIG, "request body exceeds the limit of %zu bytes",
		                  req->body.max);
	if (req->body_fd < 0 && spool_open(req, err) < 0)
		return -1;
	return spool_write(req, data, len, err);
}

int srv_req_body_json(const struct srv_req *req, json_t **out, struct bh_err *err)
{
	json_error_t jerr;

	*out = NULL;
	if (req->body.len == 0)
		return bh_err_set(err, EINVAL, "a JSON request body is required");
	*out = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL)
		return bh_err_set(err, EINVAL, "invalid JSON body: line %d column %d: %s",
		                  jerr.line, jerr.column, jerr.text);
	if (!json_is_object(*out)) {
		json_decref(steal_pointer(out));
		return bh_err_set(err, EINVAL, "the JSON body must be an object");
	}
	return 0;
}

/* ---- errors ----------------------------------------------------------------- */

int srv_err_status(int code)
{
	switch (code) {
	case ENOENT:
		return 404;
	case EEXIST:
	case EBUSY:
		return 409;
	case EINVAL:
		return 400;
	case EACCES:
	case EPERM:
		return 403;
	case EFBIG:
	case EMSGSIZE:
		return 413;
	case ENOTSUP:
		return 501;
	default:
		return 500;
	}
}

/* ---- building responses ------------------------------------------------------ */

static void kick(struct srv_req *req)
{
	if (req->wsi)
		lws_callback_on_writable(req->wsi);
}

static bool may_reply(struct srv_req *req)
{
	if (req->closed)
		return false;
	if (req->responded) {
		bh_warn("%s %s: second reply dropped", srv_method_name(req->method), req->path);
		return false;
	}
	return true;
}

void srv_resp_header(struct srv_req *req, const char *name, const char *value)
{
	if (req->n_headers >= SRV_MAX_HEADERS || req->headers_sent) {
		bh_warn("response header %s dropped", name);
		return;
	}
	req->headers[req->n_headers].name = bh_strdup(name);
	req->headers[req->n_headers].value = bh_strdup(value);
	req->n_headers++;
}

void srv_reply_text(struct srv_req *req, int status, const char *content_type, const char *data,
                    size_t len)
{
	if (!may_reply(req))
		return;
	req->status = status;
	req->responded = true;
	req->ended = true;
	if (content_type)
		bh_strlcpy(req->content_type, content_type, sizeof(req->content_type));
	if (len > 0 && bh_buf_append(&req->out, data, len) < 0) {
		bh_error("%s: reply of %zu bytes is too large", req->path, len);
		req->status = 500;
		req->close_after = true;
	}
	kick(req);
}

void srv_reply_json(struct srv_req *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	cleanup_free char *line = text ? bh_asprintf("%s\n", text) : NULL;

	free(text);
	json_decref(body);
	if (line == NULL) {
		srv_reply_errorf(req, ENOMEM, "cannot encode the reply");
		return;
	}
	srv_reply_text(req, status, "application/json", line, strlen(line));
}

void srv_reply_empty(struct srv_req *req, int status)
{
	srv_reply_text(req, status, NULL, NULL, 0);
}

static void reply_message(struct srv_req *req, int status, const char *msg)
{
	srv_reply_json(req, status, json_pack("{s:s}", "message", msg));
}

void srv_reply_error(struct srv_req *req, const struct bh_err *err)
{
	reply_message(req, srv_err_status(err->code), err->msg);
}

void srv_reply_errorf(struct srv_req *req, int code, const char *fmt, ...)
{
	struct bh_err err;
	va_list ap;

	err.code = code;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	srv_reply_error(req, &err);
}

/* ---- streams ------------------------------------------------------------------ */

void srv_stream_begin(struct srv_req *req, int status, const char *content_type)
{
	if (!may_reply(req))
		return;
	req->status = status;
	req->responded = true;
	req->streaming = true;
	req->out.max = SRV_STREAM_MAX + 64;
	if (content_type)
		bh_strlcpy(req->content_type, content_type, sizeof(req->content_type));
	kick(req);
}

size_t srv_stream_queued(const struct srv_req *req)
{
	return req->out.len - req->out_off;
}

int srv_stream_write(struct srv_req *req, const void *data, size_t len, struct bh_err *err)
{
	char head[24];

	if (req->closed)
		return bh_err_set(err, EPIPE, "client went away");
	if (!req->streaming || req->ended)
		return bh_err_set(err, EINVAL, "stream write outside a stream");
	if (len == 0)
		return 0; /* a zero-length chunk would end the body */
	if (srv_stream_queued(req) + len > SRV_STREAM_MAX)
		return bh_err_set(err, EAGAIN, "stream buffer full");
	snprintf(head, sizeof(head), "%zx\r\n", len);
	/* Sent bytes before out_off still count against out.max: drop them
	 * now, or a chunk could be cut after its header. */
	if (req->out.len + strlen(head) + len + 2 > req->out.max && req->out_off > 0) {
		memmove(req->out.data, req->out.data + req->out_off, req->out.len - req->out_off);
		req->out.len -= req->out_off;
		req->out_off = 0;
		req->out.data[req->out.len] = '\0';
	}
	if (bh_buf_append(&req->out, head, strlen(head)) < 0 ||
	    bh_buf_append(&req->out, data, len) < 0 || bh_buf_append(&req->out, "\r\n", 2) < 0)
		return bh_err_set(err, EAGAIN, "stream buffer full");
	if (req->headers_sent)
		kick(req);
	return 0;
}

void srv_stream_end(struct srv_req *req)
{
	if (req->closed || !req->streaming || req->ended)
		return;
	req->ended = true;
	req->out.max += 8; /* the terminator always fits */
	bh_buf_append(&req->out, "0\r\n\r\n", 5);
	kick(req);
}

/* ---- writing to lws -------------------------------------------------------------- */

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

static int add_std_headers(struct srv_req *req, unsigned char **p, unsigned char *end)
{
	struct lws *wsi = req->wsi;
	int r = 0;

	r |= add_header(wsi, "api-version:", BERTH_API_VERSION, p, end);
	r |= add_header(wsi, "ostype:", "linux", p, end);
	if (req->content_type[0])
		r |= add_header(wsi, "content-type:", req->content_type, p, end);
	if (req->streaming)
		r |= add_header(wsi, "transfer-encoding:", "chunked", p, end);
	else if (lws_add_http_header_content_length(wsi, req->out.len, p, end))
		r = 1;
	if (req->close_after)
		r |= add_header(wsi, "connection:", "close", p, end);
	return r;
}

static int write_headers(struct srv_req *req)
{
	unsigned char buf[LWS_PRE + 4096];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	cleanup_free char *name = NULL;

	if (lws_add_http_header_status(req->wsi, (unsigned)req->status, &p, end) ||
	    add_std_headers(req, &p, end))
		return -1;
	for (size_t i = 0; i < req->n_headers; i++) {
		free(name);
		name = bh_asprintf("%s:", req->headers[i].name);
		if (add_header(req->wsi, name, req->headers[i].value, &p, end))
			return -1;
	}
	if (lws_finalize_write_http_header(req->wsi, start, &p, end))
		return -1;
	req->headers_sent = true;
	return 0;
}

static void out_compact(struct srv_req *req)
{
	if (req->out_off == req->out.len) {
		req->out.len = 0;
		req->out_off = 0;
	} else if (req->out_off > req->out.len / 2) {
		memmove(req->out.data, req->out.data + req->out_off, req->out.len - req->out_off);
		req->out.len -= req->out_off;
		req->out_off = 0;
	}
	if (req->out.data)
		req->out.data[req->out.len] = '\0';
}

/* Returns 1 when the last byte went out, 0 for more later, -1 on error. */
static int write_body(struct srv_req *req)
{
	unsigned char buf[LWS_PRE + SRV_WRITE_CHUNK];
	size_t left = req->out.len - req->out_off;
	size_t n = left < SRV_WRITE_CHUNK ? left : SRV_WRITE_CHUNK;
	bool last = req->ended && n == left;

	if (n == 0)
		return req->ended ? 1 : 0;
	if (last)
		req_record(req);
	memcpy(buf + LWS_PRE, req->out.data + req->out_off, n);
	if (lws_write(req->wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
	    (int)n)
		return -1;
	req->out_off += n;
	out_compact(req);
	if (last)
		return 1;
	if (srv_stream_queued(req) > 0 || req->ended)
		kick(req);
	return 0;
}

int srv_http_write(struct srv_req *req)
{
	bool bodyless = req->method == SRV_HEAD || req->status == 204 || req->status == 304;
	int r;

	if (req->closed || !req->responded || req->finished)
		return 0;
	if (!req->headers_sent) {
		if (!req->streaming && (bodyless || req->out.len == 0))
			req_record(req);
		if (write_headers(req) < 0)
			return -1;
		if (!req->streaming && (bodyless || req->out.len == 0)) {
			req_finish(req, "");
			return 1;
		}
		kick(req);
		return 0;
	}
	r = write_body(req);
	if (r == 1)
		req_finish(req, "");
	return r;
}
