/* server: berthd — lws glue -> router -> handlers -> runtime/.  This is the
 * one internal header of the module.  Everything that arrives over a socket
 * (paths, queries, headers, bodies, client certificates) is hostile until a
 * function here has bounded and checked it.
 *
 * Threading: ONE lws service thread owns every struct srv_req and every lws
 * call.  Blocking work runs on the worker pool (srv_defer); its completion is
 * handed back to the service thread.  Only functions marked "any thread" may
 * be called from elsewhere. */
#ifndef BERTH_SERVER_INTERNAL_H
#define BERTH_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/common.h"

struct lws;
struct lws_context;
struct lws_vhost;
struct srv_server;
struct srv_req;
struct ctr_mgr;

#define SRV_MAX_LISTENERS    16
#define SRV_MAX_INSECURE     32 /* --insecure-registry entries */
#define SRV_BODY_MAX_DEFAULT (1024 * 1024) /* JSON request bodies */
#define SRV_MAX_QUERY        64
#define SRV_MAX_PARAMS       4
#define SRV_PARAM_MAX        256 /* longest {param} value, bytes */
#define SRV_PATH_MAX         2048
#define SRV_MAX_HEADERS      16                /* extra response headers */
#define SRV_STREAM_MAX       (4 * 1024 * 1024) /* queued, unsent stream bytes */
#define SRV_WRITE_CHUNK      (32 * 1024)       /* bytes per WRITEABLE callback */
#define SRV_CONFIG_MAX       (64 * 1024)       /* --config file size */
#define SRV_STOP_GRACE_MS    10000             /* in-flight requests get this long on SIGTERM */
#define SRV_WORKERS          4  /* base size of the worker pool */
#define SRV_POOL_MAX_THREADS 64 /* it grows to this while jobs wait */
/* A route's body_max with this bit set: the body goes to an unlinked temp
 * file under DATA_ROOT/tmp (req->body_fd) instead of memory; the rest of
 * body_max is the limit (large uploads such as /images/load). */
#define SRV_BODY_SPOOL ((size_t)1 << 62)

/* ---- config (config.c) -------------------------------------------------- */
enum srv_listen_kind { SRV_LISTEN_UNIX, SRV_LISTEN_TCP };

struct srv_listen {
	enum srv_listen_kind kind;
	char path[108]; /* unix: socket path (sun_path size) */
	char host[256]; /* tcp: address to bind ("0.0.0.0", "127.0.0.1", "::1") */
	int port;       /* tcp: 0 = any free port */
};

/* Flags override the --config file; a NULL/0 field means "not given". */
struct srv_config {
	char *listen[SRV_MAX_LISTENERS];
	size_t n_listen;
	char *tls_dir;
	char *data_root;
	char *exec_root;
	char *config_file;
	char *monitor_path; /* berth-monitor; default: beside /proc/self/exe */
	int log_level; /* enum bh_log_level, -1 = not given */
	/* registries: CERTS_D/HOST:PORT/ca.crt (default /etc/berth/certs.d) and the
	 * registries that may be reached over plain HTTP (besides loopback) */
	char *certs_d;
	char *insecure[SRV_MAX_INSECURE + 1]; /* NULL-terminated */
	size_t n_insecure;
	bool help;
	bool version;
	int max_cert_days; /* longest client cert it signs; 0 = not given (srv_config_max_cert_days) */
};

#define SRV_MAX_CERT_DAYS_DEFAULT 90
/* max-cert-days, or its default. */
int srv_config_max_cert_days(const struct srv_config *cfg);
void srv_config_init(struct srv_config *cfg);
void srv_config_free(struct srv_config *cfg);
/* Parses argv (after argv[0]); "--flag value" and "--flag=value" forms. */
int srv_config_parse_args(struct srv_config *cfg, int argc, char **argv, struct bh_err *err);
/* Parses a JSON config text; name is used in messages (the file path). */
int srv_config_parse_json(struct srv_config *cfg, const char *text, const char *name,
                          struct bh_err *err);
/* argv + optional --config file + defaults; the result is complete. */
int srv_config_load(struct srv_config *cfg, int argc, char **argv, struct bh_err *err);
int srv_listen_parse(const char *url, struct srv_listen *out, struct bh_err *err);
void srv_usage(FILE *out);

/* ---- worker pool (pool.c) ------------------------------------------------
 * Jobs run work() on a worker thread, then done() on whichever thread calls
 * srv_pool_drain() (the lws thread).  wake() is called (from a worker) each
 * time a job finishes; berthd passes lws_cancel_service. */
typedef int (*srv_work_fn)(void *arg, struct bh_err *err);
typedef void (*srv_pool_done_fn)(void *arg, int rc, const struct bh_err *err);
struct srv_pool;

struct srv_pool *srv_pool_new(int nthreads, void (*wake)(void *), void *wake_arg);
/* Any thread.  work may be NULL: done() then just runs on the drain thread
 * (how another thread hands something to the lws thread). */
void srv_pool_submit(struct srv_pool *p, srv_work_fn work, srv_pool_done_fn done, void *arg);
/* Replaces the wake hook; a barrier: the old one is no longer running after. */
void srv_pool_set_wake(struct srv_pool *p, void (*wake)(void *), void *wake_arg);
/* Runs done() of every finished job; returns how many ran. */
size_t srv_pool_drain(struct srv_pool *p);
/* Waits for queued jobs, joins the workers, drains, frees. */
void srv_pool_free(struct srv_pool *p);

/* ---- requests and responses (http.c) ------------------------------------ */
enum srv_method {
	SRV_GET,
	SRV_HEAD,
	SRV_POST,
	SRV_PUT,
	SRV_DELETE,
	SRV_PATCH,
	SRV_OPTIONS,
	SRV_METHOD_OTHER,
};
const char *srv_method_name(enum srv_method m);

struct srv_query {
	size_t n;
	struct {
		char *name;
		char *value; /* "" when the argument had no '=' */
	} kv[SRV_MAX_QUERY];
};
/* Adds one already-decoded "name=value" fragment (what lws hands out). */
int srv_query_add(struct srv_query *q, const char *frag, struct bh_err *err);
/* Parses a raw query string "a=1&b=x%20y" (percent- and '+'-decoding). */
int srv_query_parse(struct srv_query *q, const char *qs, struct bh_err *err);
const char *srv_query_get(const struct srv_query *q, const char *name);
/* Docker's boolean query values: absent, "", "0", "false" (any case) -> false. */
bool srv_query_bool(const struct srv_query *q, const char *name);
void srv_query_free(struct srv_query *q);

struct srv_params {
	size_t n;
	struct {
		char name[32];
		char value[SRV_PARAM_MAX];
	} p[SRV_MAX_PARAMS];
};
const char *srv_param(const struct srv_req *req, const char *name);

/* Roles, lowest first: a route names the least role that may call it.
 * SRV_ROLE_ENROLL routes need no trusted identity at all (enrollment with a
 * token); every other route needs an identity from the trust store (TLS) or
 * the root-only unix socket (admin). */
enum srv_role {
	SRV_ROLE_ENROLL = 0,
	SRV_ROLE_VIEWER,   /* read-only: ps, logs, inspect, images, events */
	SRV_ROLE_OPERATOR, /* plus run/exec/attach/stop/start/pull/... */
	SRV_ROLE_ADMIN,    /* plus trust management, daemon settings */
};

/* Who is calling: a client certificate or a unix-socket peer. */
struct srv_identity {
	bool is_unix;
	uid_t uid;            /* unix */
	char cn[256];         /* tls */
	char fingerprint[65]; /* tls: sha-256 of the DER, hex */
	char text[300];       /* for logs: "cn=alice fp=0123456789ab" or "unix:uid=0" */
	char addr[64];        /* source: "127.0.0.1:5555", "[::1]:5555" or "unix" */
	char name[64];        /* trust-store identity name ("" until known) */
	enum srv_role role;   /* from the trust store; unix socket: admin */
	bool self_signed;     /* tls: an enrollment client (no trust-store entry) */
};

/* Called on the lws thread when the client goes away before the response
 * ended (a stream's producer stops here). */
typedef void (*srv_close_fn)(struct srv_req *req, void *arg);

struct srv_header {
	char *name;
	char *value;
};

struct srv_req {
	int refs;        /* lws thread only */
	bool closed;     /* connection gone: replies are dropped */
	struct lws *wsi; /* NULL once closed */
	struct srv_server *srv;
	struct srv_identity id;

	enum srv_method method;
	char path[SRV_PATH_MAX]; /* without the /v1.NN prefix */
	struct srv_query query;
	struct srv_params params;
	const struct srv_route *route; /* set by srv_route_resolve */
	int64_t content_length;        /* -1 if none */
	struct bh_buf body;            /* bounded by body.max */
	int body_fd;                   /* SRV_BODY_SPOOL routes: the body; else -1 */
	int64_t body_spooled;          /* bytes written to body_fd */
	bool body_failed;              /* storing the body failed (ENOSPC...): the rest */
	struct bh_err body_err;        /* is read and dropped, then this is the answer */
	uint64_t start_ms;

	/* response state */
	int status;
	bool responded; /* a reply was chosen: full or stream */
	bool streaming; /* chunked body pushed over time */
	bool headers_sent;
	bool ended;       /* no more body will be added */
	bool finished;    /* final bytes written and logged */
	bool recorded;    /* audit event emitted (before the final bytes) */
	bool close_after; /* e.g. after 413: the unread body makes the connection unusable */
	char content_type[96];
	struct srv_header headers[SRV_MAX_HEADERS];
	size_t n_headers;
	struct bh_buf out; /* body bytes (full) or framed chunks (stream) not yet written */
	size_t out_off;
	srv_close_fn on_close;
	void *on_close_arg;
	void *hup_watch; /* http.c: probes for a client that left */
};

struct srv_req *srv_req_new(struct srv_server *srv, struct lws *wsi);
void srv_req_ref(struct srv_req *req);
void srv_req_unref(struct srv_req *req);
/* Watches a request whose answer comes later (deferred work, streams) for
 * a client that hangs up; lws then closes the connection (-> detach). */
void srv_req_watch(struct srv_req *req);
/* The connection ended: detach from lws, tell the producer, drop lws's ref. */
void srv_req_detach(struct srv_req *req);

/* Adds request body bytes: to body, or to the spool file of a SRV_BODY_SPOOL
 * route (created on the first call).  EFBIG past the limit. */
int srv_req_body_append(struct srv_req *req, const void *data, size_t len, struct bh_err *err);

/* Parses the (already bounded) body as a JSON object; EINVAL -> 400. */
int srv_req_body_json(const struct srv_req *req, json_t **out, struct bh_err *err);

/* THE mapping of an error code to an HTTP status. */
int srv_err_status(int code);

void srv_resp_header(struct srv_req *req, const char *name, const char *value);
/* Full replies; each ends the request.  No-ops on a closed request. */
void srv_reply_json(struct srv_req *req, int status, json_t *body /* stolen */);
void srv_reply_text(struct srv_req *req, int status, const char *content_type, const char *data,
                    size_t len);
void srv_reply_empty(struct srv_req *req, int status);
/* The one way an error becomes a response: status from srv_err_status(),
 * body {"message": err->msg}. */
void srv_reply_error(struct srv_req *req, const struct bh_err *err);
void srv_reply_errorf(struct srv_req *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Streamed replies (logs -f, wait, events): headers go out at once with
 * chunked framing; write chunks whenever data arrives; end once. */
void srv_stream_begin(struct srv_req *req, int status, const char *content_type);
/* Returns -1 with EAGAIN-style backpressure when SRV_STREAM_MAX bytes are
 * already queued, -1 with EPIPE if the client left. */
int srv_stream_write(struct srv_req *req, const void *data, size_t len, struct bh_err *err);
void srv_stream_end(struct srv_req *req);
size_t srv_stream_queued(const struct srv_req *req);

/* Writes the next piece of the response; called from HTTP_WRITEABLE.
 * Returns -1 when lws must close the connection. */
int srv_http_write(struct srv_req *req);

/* ---- deferral (defer.c) ---------------------------------------------------
 * work(arg) runs on a worker thread and must not touch req or lws; done runs
 * on the lws thread afterwards, ALWAYS (also when the client left: then
 * req->closed is true and replies are dropped), so it can free arg. */
typedef void (*srv_done_fn)(struct srv_req *req, void *arg, int rc, const struct bh_err *err);
void srv_defer(struct srv_req *req, srv_work_fn work, srv_done_fn done, void *arg);
/* Any thread: runs fn(req, arg) on the lws thread.  The caller must hold a
 * reference on req (srv_req_ref on the lws thread); fn may drop it. */
typedef void (*srv_call_fn)(struct srv_req *req, void *arg);
void srv_call_on_loop(struct srv_req *req, srv_call_fn fn, void *arg);

/* ---- router (router.c) ---------------------------------------------------- */
/* A handler returns < 0 with err filled (the router replies with the mapped
 * error) or 0 after replying, deferring or starting a stream. */
typedef int (*srv_handler_fn)(struct srv_req *req, struct bh_err *err);

struct srv_route {
	enum srv_method method;
	const char *pattern; /* "/containers/{id}/start" */
	srv_handler_fn fn;
	size_t body_max; /* request body limit; 0 = SRV_BODY_MAX_DEFAULT */
	enum srv_role role; /* the least role that may call it */
};

enum srv_match { SRV_MATCH_FOUND, SRV_MATCH_NOT_FOUND, SRV_MATCH_BAD_METHOD };

/* Strips a leading "/v1.NN" (returns the rest via *rest); a version above
 * ours is EINVAL like dockerd's "client version ... is too new". */
int srv_api_version_strip(const char *path, const char **rest, struct bh_err *err);
enum srv_match srv_route_match(const struct srv_route *table, size_t n, enum srv_method m,
                               const char *path, const struct srv_route **out,
                               struct srv_params *params);
/* Strips the version prefix and finds req's route (before the body is
 * read, so it can set the body limit); replies 400/404/405 itself and
 * returns -1 when there is none. */
int srv_route_resolve(struct srv_req *req);
/* Runs the resolved route's handler; an error return becomes the reply. */
void srv_handle(struct srv_req *req);
/* Both steps at once (requests without a body, tests). */
void srv_dispatch(struct srv_req *req);
extern const struct srv_route srv_routes[];
extern const size_t srv_n_routes;

/* ---- handlers (h_*.c) ------------------------------------------------------ */
int srv_h_ping(struct srv_req *req, struct bh_err *err);
int srv_h_version(struct srv_req *req, struct bh_err *err);
int srv_h_info(struct srv_req *req, struct bh_err *err);
/* h_containers.c, containers-logs.c */
int srv_h_container_create(struct srv_req *req, struct bh_err *err);
int srv_h_container_list(struct srv_req *req, struct bh_err *err);
int srv_h_container_inspect(struct srv_req *req, struct bh_err *err);
int srv_h_container_start(struct srv_req *req, struct bh_err *err);
int srv_h_container_stop(struct srv_req *req, struct bh_err *err);
int srv_h_container_restart(struct srv_req *req, struct bh_err *err);
int srv_h_container_kill(struct srv_req *req, struct bh_err *err);
int srv_h_container_wait(struct srv_req *req, struct bh_err *err);
int srv_h_container_logs(struct srv_req *req, struct bh_err *err);
int srv_h_container_delete(struct srv_req *req, struct bh_err *err);
/* h_trust.c (admin) */
int srv_h_trust_list(struct srv_req *req, struct bh_err *err);
int srv_h_trust_add(struct srv_req *req, struct bh_err *err);
int srv_h_trust_revoke(struct srv_req *req, struct bh_err *err);
/* h_images.c */
#define SRV_IMAGE_LOAD_MAX ((size_t)8 * 1024 * 1024 * 1024) /* /images/load bodies */
int srv_h_image_load(struct srv_req *req, struct bh_err *err);
int srv_h_image_list(struct srv_req *req, struct bh_err *err);
int srv_h_image_inspect(struct srv_req *req, struct bh_err *err);
int srv_h_image_delete(struct srv_req *req, struct bh_err *err);
/* h_registry.c: pull (POST /images/create), push, tag, login (POST /auth) */
int srv_h_image_create(struct srv_req *req, struct bh_err *err);
int srv_h_image_push(struct srv_req *req, struct bh_err *err);
int srv_h_image_tag(struct srv_req *req, struct bh_err *err);
int srv_h_auth(struct srv_req *req, struct bh_err *err);
/* h_images_archive.c: save, export (streamed tars), import, commit, history, prune and
 * the store check.  srv_h_image_import serves POST /images/create?fromSrc=- (the tar is
 * the body, spooled): srv_h_image_create (h_registry.c) hands such requests to it, and
 * that route needs SRV_BODY_SPOOL | SRV_IMAGE_LOAD_MAX for import bodies. */
int srv_h_image_import(struct srv_req *req, struct bh_err *err);
int srv_h_image_get(struct srv_req *req, struct bh_err *err);
int srv_h_image_get_one(struct srv_req *req, struct bh_err *err);
int srv_h_image_history(struct srv_req *req, struct bh_err *err);
int srv_h_image_prune(struct srv_req *req, struct bh_err *err);
int srv_h_commit(struct srv_req *req, struct bh_err *err);
int srv_h_container_export(struct srv_req *req, struct bh_err *err);
int srv_h_store_check(struct srv_req *req, struct bh_err *err);
/* The same for names of 2 to 4 '/'-separated segments ({n1}/{n2}/...). */
int srv_h_image_inspect_path(struct srv_req *req, struct bh_err *err);
int srv_h_image_delete_path(struct srv_req *req, struct bh_err *err);
int srv_h_image_history_path(struct srv_req *req, struct bh_err *err);
int srv_h_image_get_path(struct srv_req *req, struct bh_err *err);
/* h_enroll.c: enrollment tokens (admin), CSR -> certificate with a token
 * (SRV_ROLE_ENROLL), renewal of the caller's own certificate (viewer). */
int srv_h_trust_token(struct srv_req *req, struct bh_err *err);
int srv_h_enroll(struct srv_req *req, struct bh_err *err);
int srv_h_renew(struct srv_req *req, struct bh_err *err);

/* ---- WebSocket routes (ws.c) ----------------------------------------------
 * Upgrades without a subprotocol land on protocols[0]; ESTABLISHED looks the
 * URI up here.  Later: attach, exec, uploads of unknown size. */
struct srv_ws;
struct srv_ws_route {
	const char *pattern;
	enum srv_role role; /* the least role that may open it */
	int (*on_open)(struct srv_ws *ws, struct bh_err *err);
	int (*on_rx)(struct srv_ws *ws, const void *data, size_t len, bool binary, bool final);
	void (*on_close)(struct srv_ws *ws);
	/* Optional.  Before the upgrade (FILTER_PROTOCOL_CONNECTION): < 0 with
	 * err refuses it with the mapped HTTP status and a JSON message. */
	int (*check)(struct srv_server *srv, const struct srv_params *params, struct bh_err *err);
	/* Optional: the route writes its own frames in SERVER_WRITEABLE instead
	 * of the generic queue.  Returns -1 to close the connection. */
	int (*on_writeable)(struct srv_ws *ws);
};
struct srv_ws {
	struct lws *wsi;
	struct srv_server *srv;
	struct srv_identity id;
	const struct srv_ws_route *route;
	struct srv_params params;
	struct bh_buf out; /* queued frames: [1 byte binary flag][4 bytes len][data] */
	size_t out_off;
	void *user;
};
int srv_ws_open(struct srv_ws *ws, const char *uri, struct bh_err *err);
int srv_ws_send(struct srv_ws *ws, const void *data, size_t len, bool binary);
int srv_ws_writeable(struct srv_ws *ws);
void srv_ws_closed(struct srv_ws *ws);
/* FILTER_PROTOCOL_CONNECTION: 0 lets the upgrade go on; 1 refuses it (an
 * HTTP error with a JSON body has then been written when the role gate or
 * the route's check failed).  id: the caller (srv_authorize refreshes it). */
int srv_ws_filter(struct lws *wsi, struct srv_server *srv, struct srv_identity *id,
                  const char *uri);

/* ---- TLS (tls.c) ---------------------------------------------------------- */
/* Checks ca.pem, server-cert.pem, server-key.pem in dir (readable, parseable,
 * key matches cert); the error names the file. */
int srv_tls_check_dir(const char *dir, struct bh_err *err);
/* The client-certificate verdict for LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
 * 0 accepts, 1 rejects.  x509_ctx is the X509_STORE_CTX. */
int srv_tls_verify(struct srv_server *srv, void *x509_ctx, int preverify_ok);
/* SHA-256 of an X509's DER, lowercase hex (what the trust store keys on). */
int srv_tls_cert_fingerprint(void *x509, char out[65]);
struct srv_trust_entry;
/* The first certificate of a PEM text (at most 64 KiB), checked as the
 * handshake will check it against TLS_DIR/ca.pem (clientAuth, not expired)
 * unless tls_dir is NULL: fills e->fingerprint and e->expires, and cn. */
int srv_tls_cert_entry(const char *tls_dir, const char *pem, size_t len,
                       struct srv_trust_entry *e, char cn[256], struct bh_err *err);
/* h_trust.c: a POST /_berth/trust body {Name, Role, Certificate} checked
 * into e (the certificate through srv_tls_cert_entry); EINVAL. */
int srv_trust_body_parse(const char *tls_dir, json_t *body, struct srv_trust_entry *e,
                         struct bh_err *err);
/* h_images_archive.c: POST /images/prune's filters (only "dangling");
 * *all when it asks for every unused image.  EINVAL. */
int srv_image_prune_filters(const char *text, bool *all, struct bh_err *err);
/* Identity of the peer of a TLS connection, from its certificate. */
int srv_tls_identity(struct lws *wsi, struct srv_identity *id, struct bh_err *err);
/* Loads new server cert, key and CA from dir once and installs them into
 * each SSL_CTX of ssl_ctxs.  Files that do not load or match change nothing. */
int srv_tls_reload(void *const *ssl_ctxs, size_t n, const char *dir, struct bh_err *err);

/* ---- trust store (trust.c) -------------------------------------------------
 * DATA_ROOT/trust.json: the identities allowed in, keyed by the sha-256 of
 * their certificate's DER (lowercase hex), and the pending enrollment tokens
 * (only the sha-256 of each secret).  Written atomically, 0600.  Every
 * function: any thread (one mutex). */
struct srv_trust;
struct srv_trust_entry {
	char name[64];
	char fingerprint[65];
	enum srv_role role;
	int64_t created, expires, last_seen; /* unix seconds; expires = cert notAfter */
	bool revoked;
};
struct srv_token {
	char name[64];
	enum srv_role role;
	int64_t expires;
	int cert_days;
};
/* h_enroll.c: a POST /_berth/trust/tokens body {Name, Role, ExpiresIn,
 * CertDays} checked into tok (CertDays at most max_days); EINVAL. */
int srv_token_body_parse(json_t *body, int max_days, struct srv_token *tok, struct bh_err *err);
/* A missing file is an empty store; a file that does not parse is an error
 * naming it (never "trust nothing" or "trust everything" silently). */
int srv_trust_open(const char *data_root, struct srv_trust **out, struct bh_err *err);
/* Flushes a pending last_seen, frees. */
void srv_trust_free(struct srv_trust *t);
/* 0 + *out when fp is trusted now; -1 with err saying why (unknown, revoked, expired) */
int srv_trust_check(struct srv_trust *t, const char *fp, struct srv_trust_entry *out,
                    struct bh_err *err);
int srv_trust_add(struct srv_trust *t, const struct srv_trust_entry *e, struct bh_err *err);
/* revokes every entry whose name or fingerprint matches; returns how many (0 -> ENOENT error) */
int srv_trust_revoke(struct srv_trust *t, const char *name_or_fp, struct bh_err *err);
json_t *srv_trust_list_json(struct srv_trust *t);
void srv_trust_seen(struct srv_trust *t, const char *fp, int64_t now); /* in memory; flushed lazily */
/* Tokens: only the SHA-256 of the secret is stored. take() finds an unexpired unused token,
 * marks it used durably, then returns 0: single use even across a crash. */
int srv_trust_token_add(struct srv_trust *t, const struct srv_token *tok,
                        const uint8_t secret_sha256[32], struct bh_err *err);
int srv_trust_token_take(struct srv_trust *t, const uint8_t secret_sha256[32],
                         struct srv_token *out, struct bh_err *err);
bool srv_trust_tokens_pending(struct srv_trust *t);
/* Is a last_seen write due (dirty, and the last write >= 60 s ago)?  A
 * true answer claims it: the caller must then call srv_trust_flush. */
bool srv_trust_flush_due(struct srv_trust *t, int64_t now);
/* Writes the store now (last_seen included). */
int srv_trust_flush(struct srv_trust *t, struct bh_err *err);
/* True once when the store was created by this open (no trust.json before):
 * first start, when TLS_DIR/cert.pem is entered as admin. */
bool srv_trust_is_new(struct srv_trust *t);
/* "viewer" ... ; srv_role_parse: -1 on an unknown name. */
const char *srv_role_name(enum srv_role role);
int srv_role_parse(const char *s, enum srv_role *out);

/* authz.c: the store in the daemon and THE gate. */
/* Opens DATA_ROOT/trust.json into srv->trust; on first start enters
 * TLS_DIR/cert.pem (from `berth certs init`) as admin. */
int srv_trust_start(struct srv_server *srv, struct bh_err *err);
void srv_trust_stop(struct srv_server *srv);
/* Before any handler (REST) and any WebSocket upgrade: refreshes id's name
 * and role from the store (a revoked identity fails here even on a
 * connection opened before) and checks role >= need.  EACCES (403):
 * "<what> needs role operator; alice is viewer".  Lws thread. */
int srv_authorize(struct srv_server *srv, struct srv_identity *id, enum srv_role need,
                  const char *what, struct bh_err *err);

/* ---- the daemon (srv_lws.c, daemon.c) ------------------------------------- */
struct srv_listener {
	struct srv_listen spec;
	struct lws_vhost *vh;
	void *ssl_ctx; /* SSL_CTX of a TCP vhost, captured at creation */
	char url[300]; /* as listening, with the real port */
};

struct srv_server {
	struct srv_config cfg;
	struct lws_context *ctx;
	struct srv_listener listeners[SRV_MAX_LISTENERS];
	size_t n_listeners;
	struct srv_pool *pool;
	int sigfd;
	char engine_id[80];
	char pid_path[4096];
	bool pid_written;
	bool stopping;
	bool stop_now;
	uint64_t stop_deadline;
	int inflight;                   /* requests between HTTP and their final write */
	const struct srv_route *routes; /* NULL: srv_routes (tests swap tables) */
	size_t n_routes;
	struct ctr_mgr *ctrs; /* the container manager (containers-internal.h); NULL in tests */
	/* Graceful stop began (lws thread): end endless streams (logs -f, wait)
	 * so that the in-flight requests can finish.  May be NULL. */
	void (*on_stop)(struct srv_server *srv);
	struct srv_trust *trust; /* trust.c; NULL in tests: TLS peers get no role */
};

int srv_lws_start(struct srv_server *srv, struct bh_err *err);
int srv_lws_run(struct srv_server *srv);
void srv_lws_stop(struct srv_server *srv);
/* Any thread: closes every TLS connection (REST keep-alive, long responses,
 * WebSocket streams) whose client certificate has fingerprint fp, or, with
 * fp NULL, every one whose certificate the trust store no longer trusts
 * (after a revoke by name).  Handed to the lws thread via the pool: done
 * within one loop iteration. */
void srv_conns_close_fingerprint(struct srv_server *srv, const char *fp);
/* SIGHUP: reload TLS material into every TCP listener. */
void srv_reload_tls(struct srv_server *srv);
/* Unix-socket preparation: refuse a live socket, remove a stale one. */
int srv_unix_prepare(const char *path, struct bh_err *err);
int srv_unix_peer_identity(int fd, struct srv_identity *id);
/* "1.2.3.4:5", "[::1]:5", "unix" or "?" for a connected socket (tls.c). */
void srv_peer_address(int fd, char *out, size_t size);
/* Graceful stop: every listening socket of the process stops accepting;
 * new connections are refused while accepted ones carry on. */
void srv_stop_accepting(void);
/* After a failed listen: is host:port taken by someone else? */
bool srv_tcp_in_use(const char *host, int port);

/* berthd's main() minus the argv plumbing; returns the exit status. */
int srv_main(int argc, char **argv);

/* ---- exec and attach streams (h_exec.c, execs.c, stream*.c) ---------------
 * Data path: container ⇄ berth-monitor ⇄ attach.sock ⇄ berthd (srv_bridge,
 * independent of the transport) ⇄ transport (WebSocket framing in
 * stream-ws.c, docs/streams.md).  Every buffer on the way is bounded; a full
 * transport pauses the attach socket, a full monitor queue pauses the
 * transport's receive side. */

/* -- stream-frame.c: the WebSocket framing of docs/streams.md (pure) -- */
#define SRV_SF_HDR         9            /* channel + u64 offset */
#define SRV_SF_DATA_MAX    (256 * 1024) /* largest data payload accepted */
#define SRV_SF_CTL_MAX     4096         /* largest control message */
#define SRV_SF_OUT_PAYLOAD (256 * 1024) /* payload of the frames berthd sends */
#define SRV_SF_TTY_MAX     10000        /* rows and cols 1..10000 */
/* Largest single socket write lws may make for a connection (its protocol's
 * tx_packet_size): a whole frame of the largest payload plus headers. */
#define SRV_WS_TX_PACKET (SRV_SF_DATA_MAX + 1024)

enum srv_sf_channel { SRV_SF_STDIN = 0, SRV_SF_STDOUT = 1, SRV_SF_STDERR = 2, SRV_SF_CONTROL = 3 };
enum srv_sf_ctl_type { SRV_SF_CTL_UNKNOWN, SRV_SF_CTL_RESIZE, SRV_SF_CTL_SIGNAL, SRV_SF_CTL_EOF };

struct srv_sf_ctl {
	enum srv_sf_ctl_type type;
	unsigned rows, cols; /* resize */
	int signal;          /* signal: 1..64 */
};

/* Parses one control message from a client.  Errors: EPROTO (not JSON, no
 * type, bad fields, absurd sizes), EMSGSIZE (over SRV_SF_CTL_MAX). */
int srv_sf_control_parse(const void *data, size_t len, struct srv_sf_ctl *out, struct bh_err *err);
/* "SIGINT", "INT", "2" -> 2; -1 if unknown. */
int srv_sf_signal_parse(const char *s);

struct srv_sf_rx_ops {
	/* stdin bytes, overlap with what was already delivered removed */
	int (*on_stdin)(void *arg, const void *data, size_t len, struct bh_err *err);
	int (*on_control)(void *arg, const struct srv_sf_ctl *ctl, struct bh_err *err);
};
/* Incremental decoder of the client's messages: one frame per message,
 * which lws may hand over in several pieces. */
struct srv_sf_rx {
	bool in_msg;
	uint8_t hdr[SRV_SF_HDR];
	size_t hdr_got, hdr_need;
	size_t payload;      /* payload bytes of this message so far */
	uint64_t offset;     /* of the next payload byte of this message */
	uint64_t stdin_next; /* stdin offset already delivered */
	char ctl[SRV_SF_CTL_MAX];
	size_t ctl_len;
};
void srv_sf_rx_init(struct srv_sf_rx *rx);
/* Feeds a piece of a message; final: the message ends with it.  Errors
 * (the session must close): ENOTSUP text message, EPROTO short frame or
 * unknown channel or bad control, EMSGSIZE oversized frame. */
int srv_sf_rx_feed(struct srv_sf_rx *rx, const void *data, size_t len, bool binary, bool final,
                   const struct srv_sf_rx_ops *ops, void *arg, struct bh_err *err);
/* The WebSocket close code for an srv_sf_rx_feed error. */
int srv_sf_close_code(int code);
/* Writes the 9-byte data header. */
void srv_sf_header(uint8_t out[SRV_SF_HDR], enum srv_sf_channel ch, uint64_t offset);

/* -- stream.c: the bridge to a monitor's attach socket (transport-free) -- */
struct rt_monitor_state;
struct srv_bridge;
struct srv_bridge_ops {
	void (*on_hello)(void *arg, uint64_t offset, bool tty, bool stdin_open);
	/* Output of channel 1/2 at offset; returns how many bytes the transport
	 * took.  Fewer than len: the bridge stops reading the monitor until
	 * srv_bridge_resume(). */
	size_t (*on_output)(void *arg, int channel, uint64_t offset, const void *data, size_t len);
	/* The exit frame (or exit.json after a monitor that hung up without
	 * one; then st is RT_MONITOR_LOST when nothing is known, or
	 * RT_MONITOR_RUNNING when the monitor lives on and only dropped this
	 * connection).  Called once, last. */
	void (*on_exit)(void *arg, const struct rt_monitor_state *st);
	/* The queue towards the monitor has room again (resume the transport). */
	void (*on_drain)(void *arg);
};
/* Takes fd (a connected attach socket); dir is the monitor dir (for
 * exit.json if the monitor vanishes). */
struct srv_bridge *srv_bridge_new(struct lws_vhost *vh, int fd, const char *dir,
                                  const struct srv_bridge_ops *ops, void *arg,
                                  struct bh_err *err);
/* Queues a frame for the monitor (stdin payloads are split as needed).
 * EMSGSIZE if the queue's hard bound is exceeded.  */
int srv_bridge_send(struct srv_bridge *b, int type, const void *data, size_t len,
                    struct bh_err *err);
/* Is the queue towards the monitor above its soft bound (stop reading the
 * transport until on_drain)? */
bool srv_bridge_full(const struct srv_bridge *b);
/* The transport has room again: deliver what is held, read on. */
void srv_bridge_resume(struct srv_bridge *b);
/* The transport is gone: closes the attach socket, frees everything. */
void srv_bridge_free(struct srv_bridge *b);
/* protocol "berth-stream" (srv_lws.c): the adopted attach sockets. */
int srv_bridge_lws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

/* -- execs.c: the exec registry -- */
enum srv_exec_state { SRV_EXEC_CREATED, SRV_EXEC_STARTING, SRV_EXEC_RUNNING, SRV_EXEC_EXITED };
struct srv_exec_info {
	char id[65], ctr_id[65];
	enum srv_exec_state state;
	bool tty, open_stdin, attach_stdout, attach_stderr;
	unsigned rows, cols;
	pid_t pid;
	int exit_code;
	char dir[4096]; /* EXEC_ROOT/containers/CID/exec/EID */
};
#define SRV_EXEC_MAX 4096 /* exec records kept per daemon */
/* Validates a Docker exec create body for running container ref. */
int srv_exec_create(struct ctr_mgr *m, const char *ref, json_t *body, char id[65],
                    struct bh_err *err);
/* The body checks of srv_exec_create alone (nothing registered): fills
 * out's tty/attach flags and console size (fuzz_api_bodies). */
int srv_exec_body_check(json_t *body, struct srv_exec_info *out, struct bh_err *err);
/* A snapshot of exec id (refreshed from the monitor dir when running).
 * ENOENT "No such exec instance: ID". */
int srv_exec_lookup(struct ctr_mgr *m, const char *id, struct srv_exec_info *out,
                    struct bh_err *err);
json_t *srv_exec_inspect_json(struct ctr_mgr *m, const char *id, struct bh_err *err);
/* Pool thread: starts exec id's monitor (created → running).  EBUSY if it
 * was started before, or its container is not running.  A command that
 * cannot run leaves the exec exited with 126/127 and returns that error. */
int srv_exec_spawn(struct ctr_mgr *m, const char *id, bool detached, struct bh_err *err);
/* The stream saw the exit. */
void srv_exec_set_exited(const char *id, int code);
/* Who starts exec id (before srv_exec_spawn): its audit event names them. */
void srv_exec_note_caller(const char *id, const struct srv_identity *who);
/* Is container cid running?  EBUSY "Container cid is not running". */
int srv_exec_ctr_running(struct ctr_mgr *m, const char *ref, char cid[65], struct bh_err *err);
/* Frees every record (berthd's exit). */
void srv_exec_free_all(void);

/* -- h_exec.c -- */
int srv_h_exec_create(struct srv_req *req, struct bh_err *err);
int srv_h_exec_start(struct srv_req *req, struct bh_err *err);
int srv_h_exec_inspect(struct srv_req *req, struct bh_err *err);
int srv_h_exec_resize(struct srv_req *req, struct bh_err *err);
int srv_h_exec_kill(struct srv_req *req, struct bh_err *err);

/* -- stream-ws.c: WebSocket routes /exec/{id}/ws, /containers/{id}/attach/ws -- */
int srv_stream_exec_check(struct srv_server *srv, const struct srv_params *params,
                          struct bh_err *err);
int srv_stream_attach_check(struct srv_server *srv, const struct srv_params *params,
                            struct bh_err *err);
int srv_stream_exec_open(struct srv_ws *ws, struct bh_err *err);
int srv_stream_attach_open(struct srv_ws *ws, struct bh_err *err);
int srv_stream_ws_rx(struct srv_ws *ws, const void *data, size_t len, bool binary, bool final);
int srv_stream_ws_writeable(struct srv_ws *ws);
void srv_stream_ws_close(struct srv_ws *ws);
/* Any thread: a container with waiting attach sessions was started (or its
 * start failed) or removed; they look again on the lws thread. */
void srv_stream_attach_wake(struct srv_server *srv);
/* Any thread: lets the monitor in dir (a container's exec dir) release the
 * output it holds for an attach that will not come: on the pool, attaches
 * as an output client (fd, or a new connection when fd < 0) until the
 * monitor's hello shows it counted us, then leaves. */
void srv_stream_release_hold(struct srv_server *srv, const char *dir, int fd);

/* ---- events (events.c, events-filter.c, h_events.c; docs/events.md) --------
 * Docker-shaped container and image events and berth's audit events, each
 * with a cursor that only grows (also across restarts).  The newest are kept
 * in a ring, all are appended to DATA_ROOT/events/events.jsonl (rotated:
 * 2 files of SRV_EVENTS_FILE_MAX).  Emitting never waits for a reader. */
#define SRV_EVENTS_RING     10000
#define SRV_EVENTS_FILE_MAX (8 * 1024 * 1024)
#define SRV_EVENTS_LINE_MAX (16 * 1024) /* longer: the attributes are dropped */

/* The ring (pure; the caller locks).  Cursors grow along it. */
struct srv_evring_entry {
	uint64_t cursor;
	int64_t time_ns;
	char *line; /* the JSON event and its '\n' */
};
struct srv_evring {
	struct srv_evring_entry *e;
	size_t cap, n, head; /* head: the oldest */
};
void srv_evring_init(struct srv_evring *r, size_t cap);
void srv_evring_free(struct srv_evring *r);
/* Takes line; a full ring drops its oldest entry. */
void srv_evring_push(struct srv_evring *r, uint64_t cursor, int64_t time_ns, char *line);
uint64_t srv_evring_oldest(const struct srv_evring *r); /* 0 when empty */
/* The entry with the smallest cursor above after; NULL if none. */
const struct srv_evring_entry *srv_evring_after(const struct srv_evring *r, uint64_t after);

/* Which events a reader wants. */
struct srv_evfilter {
	json_t *filters;  /* parsed filters (srv_evfilter_parse) or NULL */
	int64_t since_ns; /* 0 = no bound */
	int64_t until_ns; /* 0 = no bound */
};
/* Docker's filters JSON ({"type":["container"],"event":["start"]}, or the old
 * {"type":{"container":true}}); keys type, event, container, image, label,
 * scope and berth's identity.  *out NULL for an empty text.  EINVAL names
 * the bad key. */
int srv_evfilter_parse(const char *text, json_t **out, struct bh_err *err);
bool srv_evfilter_time_ok(const struct srv_evfilter *f, int64_t time_ns);
bool srv_evfilter_match(const struct srv_evfilter *f, json_t *ev);
/* "1700000000" or "1700000000.25" -> nanoseconds.  EINVAL. */
int srv_evtime_parse(const char *s, int64_t *ns, struct bh_err *err);
/* {"cursor":N ... "timeNano":T}: the two keys of a stored line; -1 if damaged. */
int srv_event_line_keys(const char *line, size_t len, uint64_t *cursor, int64_t *time_ns);

/* The store: one per process, opened once at start. */
int srv_events_open(const char *data_root, struct bh_err *err);
void srv_events_close(void);
/* Any thread: records an event.  attrs (stolen, may be NULL) becomes
 * Actor.Attributes; only its string values are kept.  No-op when closed. */
void srv_events_emit(const char *type, const char *action, const char *actor, json_t *attrs);
/* Any thread: an audit event (Type "audit") by identity who. */
void srv_events_audit(const char *action, const struct srv_identity *who, json_t *attrs);
/* Any thread: Docker image events (pull, push, load, tag: name is the
 * reference), and untag/delete from an image removal's report. */
void srv_events_image(const char *action, const char *id, const char *name);
void srv_events_image_removed(const char *id, json_t *report);
/* http.c, lws thread: req ended; an audit event if it could change something. */
void srv_events_request_done(const struct srv_req *req);
/* ws.c: a WebSocket upgrade to a route of role (operator and up are audited)
 * was answered with status (101 = accepted). */
void srv_events_upgrade(const struct srv_identity *id, const char *uri, enum srv_role role,
                        int status);
uint64_t srv_events_last(void); /* the newest cursor, 0 = none yet */
/* fn(arg) runs (under the store's lock: be quick, emit nothing) after each new event. */
void srv_events_watch(void (*fn)(void *arg), void *arg);
void srv_events_unwatch(void (*fn)(void *arg), void *arg);
/* A reader's position. */
struct srv_evread {
	uint64_t after;   /* the last cursor looked at */
	uint64_t head;    /* newest cursor at the last collect */
	uint64_t oldest;  /* the ring's oldest at the last collect */
	bool need_file;   /* after is older than the ring: read the files */
	bool past_until;  /* an event after until_ns was seen: the end */
};
/* Appends matching lines newer than r->after from the ring to out (up to
 * budget bytes), advancing r->after. */
int srv_events_collect(struct srv_evread *r, const struct srv_evfilter *f, struct bh_buf *out,
                       size_t budget);
/* Worker thread: the same from the files, for cursors below r->oldest. */
int srv_events_read_files(struct srv_evread *r, const struct srv_evfilter *f, struct bh_buf *out,
                          size_t budget, struct bh_err *err);
/* GET /events (h_events.c) and graceful stop: every live stream ends. */
int srv_h_events(struct srv_req *req, struct bh_err *err);
void srv_events_end_streams(void);

#endif
