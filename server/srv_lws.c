/* libwebsockets glue: ONE context, ONE service thread, one vhost per
 * listener.  protocols[0] gets every HTTP request and every WebSocket upgrade
 * without a subprotocol; a second protocol owns the adopted signalfd.
 * Everything here runs on the service thread. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <libwebsockets.h>

#include "server/server-internal.h"

/* Seconds a client may take for the TLS handshake, and for a request head
 * (or between two pieces of a request body): see create_context(). */
#define SRV_HANDSHAKE_S 10
#define SRV_REQUEST_S   10

/* Per-connection state (lws allocates and zeroes it; protocols[0]). */
struct srv_conn {
	struct srv_req *req; /* the HTTP request in progress */
	struct srv_ws *ws;   /* after a WebSocket upgrade */
	struct srv_identity id;
	bool id_known;
};

/* The listener whose vhost is being created: lws hands us its SSL_CTX from
 * inside lws_create_vhost(), before the vhost pointer is returned. */
static struct srv_listener *creating;

static struct srv_server *server_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static struct srv_listener *listener_of(struct lws *wsi)
{
	return lws_vhost_user(lws_get_vhost(wsi));
}

static int conn_identity(struct lws *wsi, struct srv_conn *conn, struct bh_err *err)
{
	struct srv_listener *l = listener_of(wsi);

	if (conn->id_known)
		return 0;
	if (l != NULL && l->spec.kind == SRV_LISTEN_UNIX) {
		if (srv_unix_peer_identity(lws_get_socket_fd(wsi), &conn->id) < 0)
			return bh_err_set(err, EACCES, "cannot read the peer's credentials");
	} else if (srv_tls_identity(wsi, &conn->id, err) < 0) {
		return -1;
	} else {
		/* name and role from the store now (logs, audit); the gate reads
		 * them again on every request, and refuses, by itself */
		struct bh_err scratch;
		(void)srv_authorize(server_of(wsi), &conn->id, SRV_ROLE_ENROLL, "connection",
		                    &scratch);
	}
	conn->id_known = true;
	return 0;
}

static enum srv_method method_of(struct lws *wsi)
{
	static const enum srv_method map[] = {
	    [LWSHUMETH_GET] = SRV_GET,
	    [LWSHUMETH_POST] = SRV_POST,
	    [LWSHUMETH_OPTIONS] = SRV_OPTIONS,
	    [LWSHUMETH_PUT] = SRV_PUT,
	    [LWSHUMETH_PATCH] = SRV_PATCH,
	    [LWSHUMETH_DELETE] = SRV_DELETE,
	    [LWSHUMETH_CONNECT] = SRV_METHOD_OTHER,
	    [LWSHUMETH_HEAD] = SRV_HEAD,
	};
	char *uri;
	int len, m = lws_http_get_uri_and_method(wsi, &uri, &len);

	if (m < 0 || (size_t)m >= sizeof(map) / sizeof(map[0]))
		return SRV_METHOD_OTHER;
	return map[m];
}

static int read_query(struct lws *wsi, struct srv_req *req, struct bh_err *err)
{
	char frag[4096];

	for (int i = 0;; i++) {
		int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (len <= 0)
			return 0; /* no more arguments */
		if ((size_t)len >= sizeof(frag))
			return bh_err_set(err, EINVAL, "query argument too long");
		if (lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			return bh_err_set(err, EINVAL, "bad query argument");
		if (srv_query_add(&req->query, frag, err) < 0)
			return -1;
	}
}

static bool header_value(struct lws *wsi, enum lws_token_indexes h, char *out, size_t size)
{
	int len = lws_hdr_total_length(wsi, h);

	if (len <= 0 || (size_t)len >= size)
		return len > 0; /* present but too long still counts as present */
	return lws_hdr_copy(wsi, out, (int)size, h) >= 0;
}

/* Sets req->content_length; replies 411/413 itself and returns -1. */
static int check_body(struct lws *wsi, struct srv_req *req)
{
	char v[32] = "";
	long cl;
	bool needs_length = req->method == SRV_POST || req->method == SRV_PUT;

	/* STACK.md: lws answers chunked bodies with nothing and hangs on a body
	 * without a length, so refuse both up front. */
	if (header_value(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, v, sizeof(v)) ||
	    (!header_value(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, v, sizeof(v)) && needs_length)) {
		req->close_after = true;
		srv_reply_json(
		    req, 411, json_pack("{s:s}", "message", "a request body needs Content-Length"));
		return -1;
	}
	if (v[0] == '\0')
		return 0;
	if (bh_parse_long(v, 0, INT64_MAX / 2, &cl) < 0) {
		req->close_after = true;
		srv_reply_errorf(req, EINVAL, "bad Content-Length");
		return -1;
	}
	req->content_length = cl;
	if ((size_t)cl > req->body.max) {
		req->close_after = true;
		srv_reply_errorf(req, EFBIG, "request body of %ld bytes exceeds the limit of %zu",
		                 cl, req->body.max);
		return -1;
	}
	return 0;
}

static void handle(struct srv_req *req)
{
	/* Handlers may take long (deferred work, streams): lws must not time
	 * the request out meanwhile. */
	lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
	srv_handle(req);
	if (!req->finished && (!req->responded || req->streaming))
		srv_req_watch(req);
}

static int on_http(struct lws *wsi, struct srv_conn *conn, const char *uri)
{
	struct srv_server *srv = server_of(wsi);
	struct srv_req *req;
	struct bh_err err;

	if (conn->req != NULL)
		srv_req_detach(steal_pointer(&conn->req));
	req = conn->req = srv_req_new(srv, wsi);
	req->method = method_of(wsi);
	bh_err_clear(&err);
	if (conn_identity(wsi, conn, &err) < 0) {
		req->close_after = true;
		srv_reply_error(req, &err);
		return 0;
	}
	req->id = conn->id;
	if (bh_strlcpy(req->path, uri, sizeof(req->path)) < 0 || read_query(wsi, req, &err) < 0) {
		req->close_after = true;
		srv_reply_errorf(req, EINVAL, "%s", err.msg[0] ? err.msg : "path too long");
		return 0;
	}
	if (srv->stopping) {
		req->close_after = true;
		srv_reply_json(req, 503, json_pack("{s:s}", "message", "berthd is shutting down"));
		return 0;
	}
	/* Route first: unknown paths are refused before any body is read, and
	 * the route decides how large a body may be. */
	if (srv_route_resolve(req) < 0) {
		req->close_after = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
		                   lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
		return 0;
	}
	if (check_body(wsi, req) < 0 || req->content_length > 0)
		return 0; /* replied, or the body comes in HTTP_BODY */
	handle(req);
	return 0;
}

static int on_body(struct srv_conn *conn, const void *in, size_t len)
{
	struct srv_req *req = conn->req;

	if (req == NULL || req->responded || req->body_failed)
		return 0;
	/* Not answered before the whole body is in: closing on a client that
	 * still sends resets the connection, and the answer is lost with it. */
	if (srv_req_body_append(req, in, len, &req->body_err) < 0)
		req->body_failed = true;
	return 0;
}

static int on_http_writeable(struct lws *wsi, struct srv_conn *conn)
{
	struct srv_req *req = conn->req;
	bool close;
	int r;

	if (req == NULL)
		return 0;
	r = srv_http_write(req);
	if (r <= 0)
		return r;
	/* The response is complete: hand the connection back to lws. */
	close = req->close_after || server_of(wsi)->stopping;
	conn->req = NULL;
	req->wsi = NULL;
	req->closed = true;
	srv_req_unref(req);
	if (close || lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

static void on_http_closed(struct srv_conn *conn)
{
	if (conn != NULL && conn->req != NULL)
		srv_req_detach(steal_pointer(&conn->req));
}

/* ---- WebSockets ------------------------------------------------------------- */

static int ws_uri(struct lws *wsi, char *uri, size_t size)
{
	return lws_hdr_copy(wsi, uri, (int)size, WSI_TOKEN_GET_URI) > 0 ? 0 : -1;
}

static int on_ws_filter(struct lws *wsi, struct srv_conn *conn)
{
	char uri[SRV_PATH_MAX];
	struct srv_conn scratch;
	struct bh_err err;

	if (ws_uri(wsi, uri, sizeof(uri)) < 0)
		return 1; /* no URI: refuse the upgrade */
	if (conn == NULL) {
		memset(&scratch, 0, sizeof(scratch));
		conn = &scratch;
	}
	bh_err_clear(&err);
	if (conn_identity(wsi, conn, &err) < 0) {
		bh_warn("websocket %s: %s", uri, err.msg);
		return 1;
	}
	/* Unknown URI, role, exec or container: refused with the HTTP error. */
	return srv_ws_filter(wsi, server_of(wsi), &conn->id, uri);
}

static int on_ws_established(struct lws *wsi, struct srv_conn *conn)
{
	char uri[SRV_PATH_MAX];
	struct bh_err err;
	struct srv_ws *ws = bh_calloc(1, sizeof(*ws));

	bh_err_clear(&err);
	ws->wsi = wsi;
	ws->srv = server_of(wsi);
	bh_buf_init(&ws->out, SRV_STREAM_MAX);
	conn->ws = ws;
	if (conn_identity(wsi, conn, &err) < 0 || ws_uri(wsi, uri, sizeof(uri)) < 0) {
		bh_warn("websocket: %s", err.msg[0] ? err.msg : "no URI");
		return -1;
	}
	ws->id = conn->id;
	if (srv_ws_open(ws, uri, &err) < 0) {
		bh_warn("websocket %s: %s", uri, err.msg);
		return -1;
	}
	bh_info("%s WS %s open", ws->id.text, uri);
	return 0;
}

static void on_ws_closed(struct srv_conn *conn)
{
	if (conn == NULL || conn->ws == NULL)
		return;
	srv_ws_closed(conn->ws);
	bh_buf_free(&conn->ws->out);
	free(steal_pointer(&conn->ws));
}

static int on_ws(struct lws *wsi, enum lws_callback_reasons reason, struct srv_conn *conn, void *in,
                 size_t len)
{
	switch ((int)reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_ws_established(wsi, conn);
	case LWS_CALLBACK_RECEIVE:
		if (conn->ws == NULL || conn->ws->route == NULL || conn->ws->route->on_rx == NULL)
			return 0;
		return conn->ws->route->on_rx(conn->ws, in, len, lws_frame_is_binary(wsi),
		                              lws_is_final_fragment(wsi)) < 0
		           ? -1
		           : 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return conn->ws ? srv_ws_writeable(conn->ws) : 0;
	case LWS_CALLBACK_CLOSED:
		on_ws_closed(conn);
		return 0;
	default:
		return 0;
	}
}

/* ---- revocation: closing an identity's connections ---------------------------- */

/* fp: the fingerprint to cut off, or "" for every connection whose
 * certificate the store no longer trusts. */
static bool conn_matches(struct srv_server *srv, const struct srv_identity *id, const char *fp)
{
	struct bh_err err;

	if (id->is_unix || id->fingerprint[0] == '\0')
		return false;
	if (fp[0] != '\0')
		return strcmp(id->fingerprint, fp) == 0;
	if (id->self_signed || srv->trust == NULL)
		return false;
	return srv_trust_check(srv->trust, id->fingerprint, NULL, &err) < 0;
}

/* LWS_CALLBACK_USER from close_fingerprint(): runs for every connection of
 * a TCP vhost (idle keep-alives, requests in progress, long responses and
 * WebSocket streams alike; the listening socket has no conn). */
static void close_if_matching(struct lws *wsi, struct srv_conn *conn, const char *fp)
{
	struct srv_listener *l = listener_of(wsi);
	struct srv_identity id;
	struct bh_err err;

	if (conn == NULL || fp == NULL || l == NULL || l->spec.kind != SRV_LISTEN_TCP)
		return;
	if (conn->id_known)
		id = conn->id;
	else if (srv_tls_identity(wsi, &id, &err) < 0)
		return; /* not past the handshake yet: it is checked there */
	if (!conn_matches(server_of(wsi), &id, fp))
		return;
	bh_info("%s (%s): closing the connection, identity no longer trusted", id.text, id.addr);
	/* Asynchronously: lws is iterating its connections right now. */
	lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void close_fingerprint(struct srv_server *srv, const char *fp)
{
	static const char *const names[] = {"http", "berth.stream.v1"};

	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct lws_vhost *vh = srv->listeners[i].vh;
		if (vh == NULL || srv->listeners[i].spec.kind != SRV_LISTEN_TCP)
			continue;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			const struct lws_protocols *p = lws_vhost_name_to_protocol(vh, names[k]);
			if (p != NULL)
				lws_callback_all_protocol_vhost_args(vh, p, LWS_CALLBACK_USER,
				                                     (void *)fp, 0);
		}
	}
}

struct close_job {
	struct srv_server *srv;
	char fp[65];
};

static void close_job_done(void *arg, int rc, const struct bh_err *err)
{
	struct close_job *j = arg;

	(void)rc;
	(void)err;
	if (j->srv->ctx != NULL)
		close_fingerprint(j->srv, j->fp);
	free(j);
}

void srv_conns_close_fingerprint(struct srv_server *srv, const char *fp)
{
	struct close_job *j;

	if (srv == NULL || srv->pool == NULL)
		return;
	/* Through the pool's done queue: from a worker this is how work
	 * reaches the lws thread; from the lws thread it runs at the next
	 * drain, a moment later, outside whatever callback called us. */
	j = bh_calloc(1, sizeof(*j));
	j->srv = srv;
	bh_strlcpy(j->fp, fp != NULL ? fp : "", sizeof(j->fp));
	srv_pool_submit(srv->pool, NULL, close_job_done, j);
}

/* ---- the protocols ------------------------------------------------------------- */

/* At its fd limit lws stops accepting and clients hang in the backlog until
 * they give up.  Fds are handed out lowest first, so a new connection whose
 * fd is within SRV_FD_RESERVE of the limit means the process is nearly full:
 * it is closed at once (the client sees the close), and the reserve stays
 * for request bodies, monitors and logs. */
#define SRV_FD_RESERVE 64

static int on_network_connection(int fd)
{
	static uint64_t last_warn_ms; /* lws thread only */
	static unsigned refused;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    (rlim_t)fd + SRV_FD_RESERVE < rl.rlim_cur)
		return 0;
	refused++;
	if (bh_now_ms() - last_warn_ms >= 1000) { /* a flood of them is one line a second */
		bh_warn("refused %u connection(s): %d fds open, the limit is %llu", refused, fd,
		        (unsigned long long)rl.rlim_cur);
		last_warn_ms = bh_now_ms();
		refused = 0;
	}
	return 1;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct srv_conn *conn = user;

	switch ((int)reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return on_network_connection((int)(intptr_t)in);
	case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
		return srv_tls_verify(wsi ? server_of(wsi) : NULL, user, (int)len);
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		if (creating != NULL)
			creating->ssl_ctx = user;
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* Reaches every protocol of every vhost and repeats: draining an
		 * empty queue is harmless. */
		if (server_of(wsi) && server_of(wsi)->pool)
			srv_pool_drain(server_of(wsi)->pool);
		return 0;
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, conn, in);
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(conn, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* Content-Length: 0 was handled in on_http already (a deferred
		 * handler has not responded yet: do not run it twice). */
		if (conn->req != NULL && !conn->req->responded && conn->req->body_failed)
			srv_reply_error(conn->req, &conn->req->body_err);
		else if (conn->req != NULL && !conn->req->responded && conn->req->content_length > 0)
			handle(conn->req);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return conn ? on_http_writeable(wsi, conn) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		on_http_closed(conn);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return on_ws_filter(wsi, conn);
	case LWS_CALLBACK_USER:
		close_if_matching(wsi, conn, in);
		return 0;
	default:
		if (conn && on_ws(wsi, reason, conn, in, len) < 0)
			return -1;
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static void begin_stop(struct srv_server *srv);

static int signal_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
	struct srv_server *srv;
	struct signalfd_siginfo si;

	/* A client offering this protocol's name as a subprotocol would get a
	 * WebSocket nobody serves: refuse the upgrade. */
	if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
		return 1;
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	srv = server_of(wsi);
	while (read(srv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			srv_reload_tls(srv);
		else
			begin_stop(srv);
	}
	return 0;
}

static int stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
	if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
		return 1; /* an internal protocol, never a subprotocol (see above) */
	return srv_bridge_lws_callback(wsi, (int)reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* tx_packet_size: lws 4.1.6 sends at most this much (else 4 KiB) per
     * write and queues the rest in a malloc'd buffer drained 4 KiB per
     * POLLOUT; a stream's frame goes out in one SSL_write instead. */
    {.name = "http",
     .callback = http_callback,
     .per_session_data_size = sizeof(struct srv_conn),
     .tx_packet_size = SRV_WS_TX_PACKET},
    /* docs/streams.md: a client may offer this subprotocol; lws refuses an
     * upgrade whose offered names match no entry.  The same callback serves
     * it: the upgrade gets a fresh srv_conn (identity is read again in
     * ESTABLISHED) and dispatches on the URI like protocols[0]. */
    {.name = "berth.stream.v1",
     .callback = http_callback,
     .per_session_data_size = sizeof(struct srv_conn),
     .tx_packet_size = SRV_WS_TX_PACKET},
    {.name = "berth-signal", .callback = signal_callback},
    /* attach sockets of exec/attach streams (stream.c) */
    {.name = "berth-stream", .callback = stream_callback},
    {.name = NULL},
};

/* ---- lifecycle ------------------------------------------------------------------- */

static void stop_deadline(lws_sorted_usec_list_t *sul)
{
	(void)sul;
}

static void begin_stop(struct srv_server *srv)
{
	static lws_sorted_usec_list_t grace;

	if (srv->stopping) {
		bh_warn("second stop signal: exiting without waiting");
		srv->stop_now = true;
		return;
	}
	bh_info("stopping: no new connections, %d request(s) in flight", srv->inflight);
	srv->stopping = true;
	srv->stop_deadline = bh_now_ms() + SRV_STOP_GRACE_MS;
	if (srv->on_stop)
		srv->on_stop(srv);
	/* lws_context_deprecate() of lws 4.1.6 touches a freed wsi and crashes:
	 * close the listen sockets underneath lws instead. */
	srv_stop_accepting();
	/* Only to wake the loop at the deadline. */
	lws_sul_schedule(srv->ctx, 0, &grace, stop_deadline,
	                 (lws_usec_t)SRV_STOP_GRACE_MS * LWS_US_PER_MS + 1000);
}

void srv_reload_tls(struct srv_server *srv)
{
	void *ctxs[SRV_MAX_LISTENERS];
	struct bh_err err;
	size_t n = 0;

	for (size_t i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i].spec.kind == SRV_LISTEN_TCP && srv->listeners[i].ssl_ctx)
			ctxs[n++] = srv->listeners[i].ssl_ctx;
	if (n == 0) {
		bh_info("SIGHUP: no TLS listener, nothing to reload");
		return;
	}
	bh_err_clear(&err);
	if (srv_tls_reload(ctxs, n, srv->cfg.tls_dir, &err) < 0) {
		bh_error("SIGHUP: %s (keeping the old certificates)", err.msg);
		return;
	}
	bh_info("SIGHUP: reloaded TLS material from %s into %zu listener(s)", srv->cfg.tls_dir, n);
}

static void lws_log_line(int level, const char *line)
{
	size_t len = strlen(line);

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	bh_debug("lws: %.*s", (int)len, line);
	(void)level;
}

static void wake_loop(void *arg)
{
	struct srv_server *srv = arg;

	lws_cancel_service(srv->ctx);
}

static int create_context(struct srv_server *srv, struct bh_err *err)
{
	struct lws_context_creation_info info;

	/* lws logs every connection by default: quiet unless debugging. */
	lws_set_log_level(srv->cfg.log_level >= BH_LOG_DEBUG ? (LLL_ERR | LLL_WARN | LLL_NOTICE)
	                                                     : 0,
	                  lws_log_line);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = srv;
	info.server_string = "berth/" BERTH_VERSION;
	info.count_threads = 1;
	/* Slowloris: after the handshake, a request head must be complete and a
	 * request body must move within SRV_REQUEST_S (lws 4.1.6 takes this one
	 * from the context, the handshake's per vhost; measured).  Deferred work
	 * and long responses are not bound by it. */
	info.timeout_secs = SRV_REQUEST_S;
	srv->ctx = lws_create_context(&info);
	if (srv->ctx == NULL)
		return bh_err_set(err, EIO, "cannot create the libwebsockets context");
	return 0;
}

static void vhost_info_tls(struct srv_server *srv, struct lws_context_creation_info *info,
                           char *paths[3])
{
	paths[0] = bh_path_join(srv->cfg.tls_dir, "server-cert.pem");
	paths[1] = bh_path_join(srv->cfg.tls_dir, "server-key.pem");
	paths[2] = bh_path_join(srv->cfg.tls_dir, "ca.pem");
	info->ssl_cert_filepath = paths[0];
	info->ssl_private_key_filepath = paths[1];
	info->ssl_ca_filepath = paths[2];
	info->options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
	/* Client certs chain to ca.pem alone: without this lws also loads the
	 * OS bundle (~140 public CAs) into the verify store, 0.5 MB of heap at
	 * start and anchors no client of ours should have. */
	info->options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
	info->alpn = "http/1.1"; /* STACK.md: no h2 */
	info->ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION |
	                        SSL_OP_CIPHER_SERVER_PREFERENCE;
	/* Streams move GiBs: AES-128-GCM costs both ends less CPU than the
	 * AES-256 that OpenSSL clients offer first, at a security level that
	 * is still ample (128-bit). */
	info->tls1_3_plus_cipher_list =
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
}

static void vhost_info(struct srv_listener *l, struct lws_context_creation_info *info)
{
	memset(info, 0, sizeof(*info));
	info->protocols = protocols;
	info->user = l;
	info->vhost_name = l->url;
	info->options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	/* Slowloris: the TLS handshake must be over SRV_HANDSHAKE_S after
	 * connecting (the rest is create_context's timeout_secs). */
	info->timeout_secs_ah_idle = SRV_HANDSHAKE_S;
	if (l->spec.kind == SRV_LISTEN_UNIX) {
		info->options |= LWS_SERVER_OPTION_UNIX_SOCK;
		info->iface = l->spec.path;
		return;
	}
	info->port = l->spec.port;
	/* An IPv4 address on lws's default IPv6 socket is silently ignored and
	 * the port opens on every interface: use an IPv4 socket for IPv4. */
	if (strchr(l->spec.host, ':') == NULL)
		info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (strcmp(l->spec.host, "0.0.0.0") != 0 && strcmp(l->spec.host, "::") != 0)
		info->iface = l->spec.host;
}

static int listen_error(struct srv_listener *l, struct bh_err *err)
{
	if (l->spec.kind == SRV_LISTEN_TCP && srv_tcp_in_use(l->spec.host, l->spec.port))
		return bh_err_set(err, EADDRINUSE, "listen %s: address already in use", l->url);
	if (l->spec.kind == SRV_LISTEN_TCP)
		return bh_err_set(err, EIO, "listen %s: cannot listen (bad address?)", l->url);
	return bh_err_set(err, EIO, "listen %s: cannot create the socket", l->url);
}

static int create_listener(struct srv_server *srv, struct srv_listener *l, struct bh_err *err)
{
	struct lws_context_creation_info info;
	char *paths[3] = {NULL, NULL, NULL};
	mode_t old_umask = 0;

	vhost_info(l, &info);
	if (l->spec.kind == SRV_LISTEN_TCP)
		vhost_info_tls(srv, &info, paths);
	else
		old_umask = umask(0117); /* the socket is born 0660 */
	creating = l;
	l->vh = lws_create_vhost(srv->ctx, &info);
	creating = NULL;
	if (l->spec.kind == SRV_LISTEN_UNIX)
		umask(old_umask);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	if (l->vh == NULL)
		return listen_error(l, err);
	if (l->spec.kind == SRV_LISTEN_TCP && l->ssl_ctx == NULL)
		return bh_err_set(err, EIO, "listen %s: no TLS context", l->url);
	if (l->spec.kind == SRV_LISTEN_TCP)
		snprintf(l->url, sizeof(l->url),
		         strchr(l->spec.host, ':') ? "tcp://[%s]:%d" : "tcp://%s:%d", l->spec.host,
		         lws_get_vhost_listen_port(l->vh));
	return 0;
}

static int adopt_signals(struct srv_server *srv, struct bh_err *err)
{
	lws_sock_file_fd_type fd;

	fd.filefd = srv->sigfd;
	if (lws_adopt_descriptor_vhost(srv->listeners[0].vh, LWS_ADOPT_RAW_FILE_DESC, fd,
	                               "berth-signal", NULL) == NULL)
		return bh_err_set(err, EIO, "cannot watch signals in the event loop");
	return 0;
}

int srv_lws_start(struct srv_server *srv, struct bh_err *err)
{
	if (create_context(srv, err) < 0)
		return -1;
	for (size_t i = 0; i < srv->cfg.n_listen; i++) {
		struct srv_listener *l = &srv->listeners[i];
		if (srv_listen_parse(srv->cfg.listen[i], &l->spec, err) < 0)
			return -1;
		bh_strlcpy(l->url, srv->cfg.listen[i], sizeof(l->url));
		srv->n_listeners++;
		if (create_listener(srv, l, err) < 0)
			return -1;
	}
	if (adopt_signals(srv, err) < 0)
		return -1;
	srv->pool = srv_pool_new(SRV_WORKERS, wake_loop, srv);
	return 0;
}

int srv_lws_run(struct srv_server *srv)
{
	while (!srv->stop_now) {
		if (lws_service(srv->ctx, 0) < 0)
			return -1;
		if (srv->stopping && srv->inflight <= 0)
			break;
		if (srv->stopping && bh_now_ms() >= srv->stop_deadline) {
			bh_warn("stopping: %d request(s) still in flight after %d ms, exiting",
			        srv->inflight, SRV_STOP_GRACE_MS);
			break;
		}
	}
	return 0;
}

void srv_lws_stop(struct srv_server *srv)
{
	/* Workers must not wake a context that is going away. */
	if (srv->pool)
		srv_pool_set_wake(srv->pool, NULL, NULL);
	if (srv->ctx)
		lws_context_destroy(srv->ctx);
	srv->ctx = NULL;
	/* Jobs still running finish now; their done() sees closed requests. */
	srv_pool_free(srv->pool);
	srv->pool = NULL;
}
