/* client: private interfaces shared by main.c, http.c and the cmd_*.c files. */
#ifndef BERTH_CLIENT_INTERNAL_H
#define BERTH_CLIENT_INTERNAL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "client/client.h"
#include "contexts/contexts.h"

#define CLI_BODY_MAX (64u * 1024 * 1024) /* a buffered response body */

/* ---- http.c: REST over libcurl ------------------------------------------
 * One handle, hence one connection (and TLS session), per command; every
 * path is sent as /v1.43<path>.  tcp:// means https with the target's CA
 * (never the system store), client cert and key; unix:// means the socket. */
struct cli_http;

int cli_http_open(const struct ctx_target *t, struct cli_http **out, struct bh_err *err);
void cli_http_close(struct cli_http *h);

struct cli_http_req {
	const char *method;       /* "GET", "POST", "DELETE", ... */
	const char *path;         /* "/version?x=1", without the /v1.43 prefix */
	const char *content_type; /* for body; NULL = application/json */
	const void *body;         /* sent with Content-Length; NULL = none */
	size_t body_len;
	FILE *upload; /* instead of body: upload_len bytes read from it */
	int64_t upload_len;
};

/* Returns >= 0 with the HTTP status and the body in *body (at most
 * CLI_BODY_MAX; caller frees with bh_buf_free), or < 0 on a transport
 * failure with err holding one line ("cannot connect to berthd at ...").
 * Any HTTP status, 4xx and 5xx included, is a success here. */
int cli_http_do(struct cli_http *h, const struct cli_http_req *rq, struct bh_buf *body,
                struct bh_err *err);

/* Streaming: sink gets the body piece by piece as it arrives (return < 0 to
 * stop; the request then fails with sink_err's message).  Returns the status. */
typedef int (*cli_http_sink)(void *arg, const void *data, size_t len, struct bh_err *sink_err);
int cli_http_stream(struct cli_http *h, const struct cli_http_req *rq, cli_http_sink sink,
                    void *arg, struct bh_err *err);

/* fn runs on the calling thread about once a second while a request on h
 * is in flight, even when nothing arrives (signal forwarding); < 0 aborts
 * the request.  NULL turns it off. */
typedef int (*cli_http_tick)(void *arg);
void cli_http_on_tick(struct cli_http *h, cli_http_tick fn, void *arg);

/* The status of the response being received (0 before its headers): lets a
 * sink tell an error body from the stream it asked for. */
int cli_http_status(struct cli_http *h);

/* A request whose reply comes later (POST .../wait before .../start): begin
 * sends rq and returns once the response headers have arrived (at most
 * timeout_ms); finish collects the body (at most CLI_BODY_MAX) and returns
 * the status like cli_http_do.  While it is pending the handle serves no
 * other request: use a second handle (a second connection) for those. */
int cli_http_begin(struct cli_http *h, const struct cli_http_req *rq, int timeout_ms,
                   struct bh_err *err);
int cli_http_finish(struct cli_http *h, struct bh_buf *body, struct bh_err *err);

/* One more request header line ("X-Registry-Auth: ...") sent with every
 * request on h until set to NULL; the caller keeps line alive meanwhile. */
void cli_http_set_extra_header(struct cli_http *h, const char *line);

/* Percent-encodes everything but RFC 3986's unreserved characters, for a
 * name or a value inside a path or query.  Caller frees. */
char *cli_url_escape(const char *s);

/* The target's in-memory CA, cert and key (t->pem) on a libcurl easy
 * handle, with peer and host verification on; t must outlive the handle. */
void cli_http_set_tls_blobs(void *curl, const struct ctx_target *t);

/* Turns a libcurl failure into one message.  Pure: tested on its own.
 * curl_code is a CURLcode, os_errno CURLINFO_OS_ERRNO, errbuf the text of
 * CURLOPT_ERRORBUFFER (may be empty), host the target's URL. */
void cli_http_describe(int curl_code, long os_errno, const char *errbuf, const char *host,
                       char *out, size_t outlen);
/* A transport failure (curl code rc) while our client certificate is outside
 * its validity: err says that instead (a refused cert is often only "dropped"). */
void cli_http_note_cert(const struct ctx_target *t, int rc, struct bh_err *err);

/* ---- api.c-like helpers in http.c, in terms of struct cli ---------------- */
/* The daemon the command talks to, resolved and connected once per run.
 * Fills cli->err (exit 1 for resolution errors) and returns < 0 on failure. */
int cli_target(struct cli *cli, const struct ctx_target **out);
/* "context NAME (host URL)", or "URL (from -H)" for a bare host: how every
 * error about a daemon names it. */
void cli_target_label(const struct ctx_target *t, char *out, size_t n);
/* main(), before printing cli->err: a daemon's error ("Error response from
 * daemon: ...", or any exit-125 failure) that does not name the daemon yet
 * gets " (context NAME, host URL)" appended; not after -H. */
void cli_error_name_daemon(struct cli *cli);
/* GET path and parse the JSON reply.  On failure fills cli->err as
 * "<context> (<host>): <what>" with exit 125 (transport, 5xx) or 1 (4xx). */
int cli_api_get_json(struct cli *cli, const char *path, json_t **out);
void cli_conn_free(struct cli *cli);
/* The command's connection, opened on first use (cli->err, exit 125 on failure). */
int cli_api_http(struct cli *cli, struct cli_http **out);
/* rq on the command's connection: the HTTP status (any) with the body in
 * *body (caller frees), or < 0 after a transport failure (exit 125). */
int cli_api_do(struct cli *cli, const struct cli_http_req *rq, struct bh_buf *body);
/* The daemon's error as docker's CLI words it, "Error response from daemon:
 * <message>", into cli->err with exit_code.  Returns -1. */
int cli_api_error(struct cli *cli, int exit_code, int status, const struct bh_buf *body);
/* rq on the command's connection, its body dropped: 0 on < 300, else the
 * daemon's error as above (exit 1), or a transport failure (125). */
int cli_api_ok(struct cli *cli, const struct cli_http_req *rq);
/* rq on the command's connection and its JSON reply; a >= 300 status fails
 * with the daemon's error as above (exit 1), a transport failure with 125. */
int cli_api_json(struct cli *cli, const struct cli_http_req *rq, json_t **out);
/* The {"message": ...} of an error body, sanitised; else "HTTP <status>". */
void cli_daemon_message(int status, const struct bh_buf *body, char *out, size_t outlen);

/* ---- options (main.c) ---------------------------------------------------- */
/* Parses options anywhere among the arguments, without relying on GNU
 * getopt's argument permutation (macOS and Windows lack it).  -h/--help
 * prints usage and makes the command exit 0.  Returns the number of
 * positional arguments (stored in pos, which must hold argc entries), -2
 * after --help, or -1 after cli_fail. */
struct cli_opts {
	const char *name;      /* "context create", for error messages */
	const char *usage;     /* printed for --help */
	const char *shortopts; /* without leading '+' or ':' */
	const struct option *longopts;
	int (*fn)(struct cli *cli, int c, const char *arg, void *data); /* < 0 after cli_fail */
	void *data;
};
int cli_getopt(struct cli *cli, int argc, char **argv, const struct cli_opts *o, char **pos);
/* The same, but the first positional ends the options, as docker's run,
 * create and exec: in "run IMAGE ls -l", "-l" is the command's, and pos gets
 * IMAGE and everything after it. */
int cli_getopt_until_positional(struct cli *cli, int argc, char **argv, const struct cli_opts *o,
                                char **pos);

/* Parses "[--format json]" (version, info); 0, or -2 after --help, or -1. */
int cli_parse_format(struct cli *cli, int argc, char **argv, const char *name, const char *usage,
                     bool *json);

/* Prints a JSON value followed by a newline on stdout. */
int cli_print_json(struct cli *cli, json_t *v);
/* Copies s with control characters replaced, so daemon text cannot drive the
 * terminal. */
void cli_sanitize(const char *s, char *out, size_t outlen);

/* ---- guard.c: protected contexts ---------------------------------------- */
/* Is argv (the command and its arguments) a destructive verb: rm, rmi,
 * stop, kill, restart, prune, image rm/prune, trust revoke, volume rm, ...? */
bool cli_guard_is_destructive(int argc, char **argv);
/* Called by main() before every command: a destructive verb whose target
 * is a protected context that was not named exactly with -c fails (exit 1)
 * before anything is sent. */
int cli_guard(struct cli *cli, int argc, char **argv);
/* --protected[=true|false] (NULL arg = true). */
int cli_guard_parse_protected(struct cli *cli, const char *arg, enum ctx_protect *out);

/* ---- fanout.c: -c with several contexts (internals in client/fanout.h) --- */
/* Called by main() before the command runs (argv[cmd_index] is the command).
 * Returns 1 when it runs here as usual (a selection matching one context has
 * narrowed cli->context to it), else the fan-out's status: 0 when every
 * context succeeded, or < 0 with cli->err (exit 1) naming those that failed. */
int cli_fanout(struct cli *cli, int argc, char **argv, int cmd_index);
/* The global --parallel N ('P'), --timeout S ('W'), --format json ('F'):
 * 0, or -1 with cli->err on a bad value. */
int cli_fanout_flag(struct cli *cli, int c, const char *arg);
/* main() sets this to itself: on POSIX fan-out children are forks that run
 * it again with "-c NAME COMMAND ...".  NULL: they re-execute the binary. */
extern int (*cli_fanout_entry)(int argc, char **argv);

/* ---- cmd_trust.c: trust add NAME --cert FILE / ls / revoke (admin) -------- */
int cmd_trust(struct cli *cli, int argc, char **argv);

/* ---- cmd_enroll.c: enrollment tokens, context create --token, renew ------ */
/* berth trust add NAME without --cert: asks the daemon for a token (admin)
 * and prints it alone on stdout. */
int cli_trust_token(struct cli *cli, const char *name, const char *role, long expires_s,
                    int cert_days);
/* context create NAME --token TOKEN: o carries the name and the other flags
 * (host and TLS must be unset: the token brings them). */
int cli_context_create_token(struct cli *cli, const struct ctx_create_opts *o, const char *token);
/* context renew [NAME] [--cert-days N] (argv[0] is "renew"). */
int cli_context_renew(struct cli *cli, int argc, char **argv);
/* Fails (exit 125, a message that says "expired") when t's client
 * certificate has expired; 0 otherwise, also when it cannot be read. */
int cli_cert_check_expiry(struct cli *cli, const struct ctx_target *t);

/* ---- ctx_check.c: context ls --check, certificate expiry ----------------- */
struct pki_cert_info;
/* One stderr line per context whose client cert expires within 7 days
 * ("expires in N days") or has expired ("EXPIRED"). */
void cli_context_expiry_warnings(const struct ctx_meta *l, size_t n);
/* Probes the n contexts at once (GET /version, each within timeout_ms) and
 * prints NAME HOST REACHABLE RTT VERSION CERT-EXPIRES ERROR, or JSON. */
int cli_context_check(struct cli *cli, const struct ctx_meta *l, size_t n, long timeout_ms,
                      bool json);

int cmd_context(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_info(struct cli *cli, int argc, char **argv);

/* ---- stream.c: Docker's 8-byte multiplexed frames ------------------------ */
enum cli_stream_id {
	CLI_STREAM_STDIN = 0,
	CLI_STREAM_STDOUT = 1,
	CLI_STREAM_STDERR = 2,
	CLI_STREAM_SYSTEMERR = 3,
};
/* Gets each payload piece with its stream id; < 0 (err filled) stops. */
typedef int (*cli_demux_fn)(void *arg, int stream, const void *data, size_t len,
                            struct bh_err *err);
struct cli_demux {
	uint8_t hdr[8];
	size_t hdr_len;
	uint32_t left; /* payload bytes still to come in this frame */
	bool in_frame;
	int stream;
	cli_demux_fn fn;
	void *arg;
};
void cli_demux_init(struct cli_demux *d, cli_demux_fn fn, void *arg);
/* Feeds len bytes (any split); < 0 on a bad header or when fn fails. */
int cli_demux_feed(struct cli_demux *d, const void *data, size_t len, struct bh_err *err);
/* < 0 if the stream stopped inside a frame. */
int cli_demux_finish(struct cli_demux *d, struct bh_err *err);
/* A cli_demux_fn: stdout frames to stdout, stderr to stderr (binary-safe,
 * flushed); a system-error frame fails with its text. */
int cli_stream_write_std(void *arg, int stream, const void *data, size_t len, struct bh_err *err);

/* A cli_http_sink for logs/run: a 2xx body goes demuxed (raw with a TTY) to
 * stdout/stderr; any other reply's body is kept in error_body (bounded). */
struct cli_stdio_sink {
	struct cli_http *h;
	bool raw;
	int status;
	struct cli_demux demux;
	struct bh_buf error_body;
};
void cli_stdio_sink_init(struct cli_stdio_sink *s, struct cli_http *h, bool raw);
int cli_stdio_sink(void *arg, const void *data, size_t len, struct bh_err *err);
/* After a 2xx stream: < 0 if it was cut inside a frame. */
int cli_stdio_sink_end(struct cli_stdio_sink *s, struct bh_err *err);
void cli_stdio_sink_free(struct cli_stdio_sink *s);

/* ---- cmd_units.c: pure parsing and formatting for the container commands - */
/* "0.5" -> 500000000; at most 9 decimals; -1 on junk or a negative value. */
int cli_parse_cpus(const char *s, int64_t *nanos);
/* no | always | unless-stopped | on-failure[:N]; *name is a static string. */
int cli_parse_restart(const char *s, const char **name, long *max_retry);
/* Docker's "5 seconds", "About a minute", "3 weeks" (add " ago" yourself). */
void cli_human_duration(int64_t seconds, char *out, size_t outlen);
/* Docker's image sizes: 3 significant digits, powers of 1000 ("1.23MB"). */
void cli_human_size(double bytes, char *out, size_t outlen);
/* ps's COMMAND column: quoted like Go's %q, cut to 20 characters with "…"
 * unless full. */
void cli_quote_command(const char *cmd, bool full, char *out, size_t outlen);
/* logs --since: "10m"/"2h"/"30s" before now, RFC 3339, or Unix seconds ->
 * Unix seconds as text.  -1 if it is none of these. */
int cli_parse_since(const char *s, int64_t now, char *out, size_t outlen);
/* run's status when start failed: the recorded exit code if 126 or 127,
 * else 127 (not found) or 126 (cannot invoke) from the daemon's message,
 * else 125 (docker's convention). */
int cli_start_error_code(const char *msg, long recorded);
/* "busybox" -> "busybox:latest"; keeps a tag or a digest.  Caller frees. */
char *cli_image_ref_tagged(const char *ref);

/* Docker's table layout (tabwriter, padding 3, minimum width 10); cells are
 * copied and sanitised. */
struct cli_table {
	size_t ncols, nrows, cap;
	char **cells;
};
void cli_table_init(struct cli_table *t, size_t ncols);
void cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* ---- cmd_run_opts.c, cmd_run.c: run and create ---------------------------- */
#define CLI_EXIT_RUN 125 /* docker's status for run's own failures and bad flags */
struct cli_run {
	const char *cmd; /* "run" or "create", for messages */
	bool detach, rm, tty, interactive;
	const char *name;  /* --name, or NULL */
	const char *image; /* the IMAGE positional */
	enum { CLI_PULL_MISSING, CLI_PULL_ALWAYS, CLI_PULL_NEVER } pull; /* --pull */
	json_t *body;      /* the POST /containers/create body, owned */
};
/* Maps the flags and positionals to the create body.  Returns 0, -2 after
 * --help, or -1 with cli->err set and exit code 125 (nothing was sent). */
int cli_run_parse(struct cli *cli, const char *cmd, int argc, char **argv, struct cli_run *out);
void cli_run_free(struct cli_run *r);

/* Multi-target commands (rm, stop, ...) go on after a failure, like docker:
 * each failure but the last is printed at once, the last becomes the
 * command's error (exit 1). */
struct cli_multi {
	int failed;
	struct bh_err last;
};
void cli_multi_failed(struct cli *cli, struct cli_multi *m);
int cli_multi_end(struct cli *cli, struct cli_multi *m);

int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_create(struct cli *cli, int argc, char **argv);
int cmd_start(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_kill(struct cli *cli, int argc, char **argv);
int cmd_restart(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_wait(struct cli *cli, int argc, char **argv);
int cmd_inspect(struct cli *cli, int argc, char **argv);
int cmd_ps(struct cli *cli, int argc, char **argv);
int cmd_logs(struct cli *cli, int argc, char **argv);
/* cmd_events.c; cli_event_format: docker's "TIME TYPE ACTION ID (k=v, ...)" line
 * of one event object into out (no newline); -1 without Type or Action. */
int cmd_events(struct cli *cli, int argc, char **argv);
int cli_event_format(json_t *ev, struct bh_buf *out);
int cmd_load(struct cli *cli, int argc, char **argv);
int cmd_images(struct cli *cli, int argc, char **argv);

/* ---- registries: cmd_pull.c, cmd_push.c, cmd_tag.c, cmd_login.c, creds.c ---- */
int cmd_pull(struct cli *cli, int argc, char **argv);
int cmd_push(struct cli *cli, int argc, char **argv);
int cmd_tag(struct cli *cli, int argc, char **argv);
int cmd_login(struct cli *cli, int argc, char **argv);
int cmd_logout(struct cli *cli, int argc, char **argv);
/* The registry of a reference as Docker sees it: "127.0.0.1:5000/x" ->
 * "127.0.0.1:5000", "busybox" -> "docker.io".  Caller frees. */
char *cli_ref_registry(const char *ref);
/* Credentials of `berth login`, kept 0600 in CONFIG_DIR/auth.json as
 * {"auths": {REGISTRY: {"auth": base64("user:password")}}}.  get: ENOENT
 * when there are none; the caller wipes and frees both strings. */
int cli_creds_get(struct cli *cli, const char *registry, char **user, char **pass,
                  struct bh_err *err);
int cli_creds_set(struct cli *cli, const char *registry, const char *user, const char *pass,
                  struct bh_err *err);
int cli_creds_del(struct cli *cli, const char *registry, struct bh_err *err);
/* "X-Registry-Auth: <base64url JSON>" for registry (empty credentials when
 * none are stored); caller wipes and frees. */
char *cli_registry_auth_header(struct cli *cli, const char *registry);
/* Streams a pull/push reply (JSON progress lines) to out: per-layer bars on a
 * TTY, plain lines otherwise, nothing but errors when out is NULL; auth is the
 * X-Registry-Auth line sent with it.  Returns 0, or -1
 * with cli->err set from the daemon's error (line or status). */
int cli_progress_request(struct cli *cli, const struct cli_http_req *rq, const char *auth,
                         FILE *out);
/* Pulls IMAGE (NAME[:TAG|@DIGEST]) with the stored registry credentials;
 * progress to out (NULL: quiet).  berth pull, and run/create for a missing image. */
int cli_pull_image(struct cli *cli, const char *image, const char *platform, FILE *out);

/* ---- image archives: cmd_save.c, cmd_export.c, cmd_import.c, cmd_commit.c,
 * cmd_image_extra.c ---------------------------------------------------------- */
int cmd_save(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_commit(struct cli *cli, int argc, char **argv);
int cmd_rmi(struct cli *cli, int argc, char **argv);
int cmd_history(struct cli *cli, int argc, char **argv);
int cmd_image_prune(struct cli *cli, int argc, char **argv);
int cmd_image(struct cli *cli, int argc, char **argv);
/* GET path, the tar body to file (via FILE.part, renamed when complete) or
 * to stdout for NULL or "-" (refused on a terminal).  what names the command. */
int cli_download(struct cli *cli, const char *what, const char *path, const char *file);
/* "repo:tag" -> "&repo=..&tag=.." (escaped); "" for NULL.  Caller frees. */
char *cli_repo_tag_query(const char *ref);
/* Appends "&name=<escaped value>" (nothing for a NULL value); -1 when full. */
int cli_query_add(struct bh_buf *b, const char *name, const char *value);

/* ---- ws_frame.c: RFC 6455 frames (pure) ----------------------------------- */
#define CLI_WS_HDR_MAX  14
#define CLI_WS_RX_BUF   (1024 * 1024) /* the read buffer: large reads, whole frames */
#define CLI_WS_OUT_MAX  (4 * 1024 * 1024) /* queued outgoing bytes */
#define CLI_WS_TLS_READ (256 * 1024) /* OpenSSL's read-ahead buffer */
#define CLI_WS_AGAIN    (-1000) /* transport: nothing ready now */
enum cli_ws_opcode {
	CLI_WS_OP_CONT = 0,
	CLI_WS_OP_TEXT = 1,
	CLI_WS_OP_BINARY = 2,
	CLI_WS_OP_CLOSE = 8,
	CLI_WS_OP_PING = 9,
	CLI_WS_OP_PONG = 10,
};
/* Writes a frame header (masked when mask is not NULL); returns its length. */
size_t cli_ws_header(uint8_t out[CLI_WS_HDR_MAX], int opcode, bool fin, uint64_t len,
                     const uint8_t *mask);
/* XORs data with the 4-byte key, data[0] being key position pos. */
void cli_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], size_t pos);
struct cli_ws_hdr {
	bool fin, masked;
	int opcode;
	uint8_t mask[4];
	uint64_t len;
};
/* The header length, 0 when avail is too short, < 0 on a malformed header. */
int cli_ws_parse_header(const uint8_t *p, size_t avail, struct cli_ws_hdr *h, struct bh_err *err);

/* Gets each complete message (fragments joined) and each control frame;
 * data points into the receiver's buffer, valid during the call. */
typedef int (*cli_ws_msg_fn)(void *arg, int opcode, uint8_t *data, size_t len,
                             struct bh_err *err);
/* The receiver of a server's frames: a CLI_WS_RX_BUF buffer the caller reads
 * into (space, then commit).  Refuses masked frames, unknown opcodes, bad
 * control frames, bad fragmentation and messages over max_msg (which must be
 * below CLI_WS_RX_BUF - CLI_WS_HDR_MAX). */
struct cli_ws_rx {
	uint8_t *buf;
	size_t len;
	size_t max_msg;
	uint8_t *frag; /* a fragmented message being joined (max_msg bytes) */
	size_t frag_len;
	int frag_op; /* its opcode, -1 when none */
	bool stopped; /* set by the owner (after a close): no more dispatch */
	cli_ws_msg_fn fn;
	void *arg;
};
void cli_ws_rx_init(struct cli_ws_rx *rx, size_t max_msg, cli_ws_msg_fn fn, void *arg);
void cli_ws_rx_free(struct cli_ws_rx *rx);
size_t cli_ws_rx_space(struct cli_ws_rx *rx, uint8_t **at);
/* n bytes were read into the space: dispatches every complete message. */
int cli_ws_rx_commit(struct cli_ws_rx *rx, size_t n, struct bh_err *err);

/* ---- ws_stream.c: docs/streams.md messages (pure) ---------------------- */
enum cli_stream_chan {
	CLI_CHAN_STDIN = 0,
	CLI_CHAN_STDOUT = 1,
	CLI_CHAN_STDERR = 2,
	CLI_CHAN_CONTROL = 3,
};
#define CLI_STREAM_DATA_MAX    (256 * 1024) /* payload bytes of one data frame */
#define CLI_STREAM_CONTROL_MAX 4096
#define CLI_STREAM_MSG_MAX     (9 + CLI_STREAM_DATA_MAX)
struct cli_stream_msg {
	unsigned channel;
	uint64_t offset; /* data channels */
	const uint8_t *data;
	size_t len;
};
/* Splits a server message; < 0 on a short frame or an unknown channel. */
int cli_stream_parse(const uint8_t *data, size_t len, struct cli_stream_msg *m, struct bh_err *err);
enum cli_ctl_type { CLI_CTL_UNKNOWN, CLI_CTL_HELLO, CLI_CTL_EXIT, CLI_CTL_ERROR };
struct cli_stream_control {
	enum cli_ctl_type type;
	uint64_t offset;       /* hello */
	bool tty, stdin_open;  /* hello */
	int code, signal;      /* exit */
	bool oom;              /* exit */
	char message[512];     /* error, sanitised */
};
int cli_stream_control_parse(const uint8_t *data, size_t len, struct cli_stream_control *c,
                             struct bh_err *err);
/* Whole client messages (channel byte included) into out; 0 if out is short. */
size_t cli_stream_control_resize(uint8_t *out, size_t outlen, int rows, int cols);
size_t cli_stream_control_signal(uint8_t *out, size_t outlen, const char *name);
size_t cli_stream_control_eof(uint8_t *out, size_t outlen);
void cli_stream_stdin_header(uint8_t out[9], uint64_t offset);
void cli_stream_put_be64(uint8_t *p, uint64_t v);

/* ---- ws_conn.c: the stream connection (TLS or unix socket) -------------- */
struct cli_ws;
/* Connects to t and upgrades GET /v1.43<path>.  Returns 101 with *out, or
 * the refusing HTTP status with its body in *body (caller frees), or < 0 on
 * a transport/TLS failure.  fn gets binary messages and the close frame. */
int cli_ws_connect(const struct ctx_target *t, const char *path, cli_ws_msg_fn fn, void *arg,
                   struct cli_ws **out, struct bh_buf *body, struct bh_err *err);
/* A JSON request sent on the stream's connection before its upgrade (berth
 * exec's create: one TLS handshake instead of two).  then() gets the 2xx
 * reply's body and returns the path to upgrade (caller frees), or NULL with
 * err set.  A reply >= 300 is returned like a refused upgrade. */
struct cli_ws_prelude {
	const char *method, *path; /* path without the /v1.NN prefix */
	const char *body;
	size_t body_len;
	char *(*then)(void *arg, const struct bh_buf *body, struct bh_err *err);
	void *arg;
};
/* cli_ws_connect after pre (NULL: none; path is then ignored when pre is set). */
int cli_ws_connect_after(const struct ctx_target *t, const struct cli_ws_prelude *pre,
                         const char *path, cli_ws_msg_fn fn, void *arg, struct cli_ws **out,
                         struct bh_buf *body, struct bh_err *err);
int cli_ws_dispatch_buffered(struct cli_ws *ws, struct bh_err *err);
/* Queues one masked binary message: prefix then data. */
int cli_ws_send(struct cli_ws *ws, const void *prefix, size_t plen, const void *data, size_t len,
                struct bh_err *err);
size_t cli_ws_pending(const struct cli_ws *ws);
int cli_ws_flush(struct cli_ws *ws, struct bh_err *err);
int cli_ws_fd(const struct cli_ws *ws);
bool cli_ws_wants_write(const struct cli_ws *ws);
/* Reads what is ready and dispatches; 1 at end of stream or after a close. */
int cli_ws_read(struct cli_ws *ws, struct bh_err *err);
/* OpenSSL holds records read ahead that poll() cannot see (after the
 * upgrade, or a read loop that stopped early): read before waiting. */
bool cli_ws_buffered(const struct cli_ws *ws);
void cli_ws_close(struct cli_ws *ws, int code);
void cli_ws_free(struct cli_ws *ws);

/* ---- term_keys.c: detach keys (docker's syntax, pure) ------------------- */
#define CLI_DETACH_MAX     16
#define CLI_DETACH_DEFAULT "ctrl-p,ctrl-q"
struct cli_detach {
	uint8_t seq[CLI_DETACH_MAX];
	size_t len; /* 0: detaching is off */
	size_t matched;
};
/* "ctrl-p,ctrl-q", "ctrl-a,d", "" (off).  < 0 with err on junk. */
int cli_detach_parse(const char *s, struct cli_detach *d, struct bh_err *err);
/* Feeds n input bytes; out (room for n + CLI_DETACH_MAX) gets what to
 * forward: a partial match is held back across calls and released when the
 * sequence breaks.  Returns 1 when the sequence is complete (the rest of in
 * is dropped), else 0. */
int cli_detach_feed(struct cli_detach *d, const uint8_t *in, size_t n, uint8_t *out,
                    size_t *out_n);

/* ---- term_posix.c: the terminal and signals (one file per platform) ---- */
bool cli_term_isatty(int fd);
/* fd is a pipe: make it large (a fast stream's reader wakes less often). */
void cli_out_pipe_grow(int fd);
/* < 0 when fd is not a terminal. */
int cli_term_size(int fd, int *rows, int *cols);
/* Raw mode on fd; restored by cli_term_restore, at exit and on a fatal
 * signal (SIGTERM, SIGHUP, SIGINT, SIGQUIT while not proxied). */
int cli_term_raw(int fd, struct bh_err *err);
void cli_term_restore(void);
enum {
	CLI_SIG_WINCH = 1,
	CLI_SIG_INT = 2,
	CLI_SIG_TERM = 4,
	CLI_SIG_HUP = 8,
	CLI_SIG_QUIT = 16,
};
/* Signals as events on a pollable fd (returned).  proxy: INT/TERM/HUP/QUIT
 * become events (a second one ends berth); else they end berth after the
 * terminal is restored.  WINCH is always an event. */
int cli_term_signals_start(bool proxy, struct bh_err *err);
/* The CLI_SIG_* that arrived since the last call (drains the fd). */
unsigned cli_term_signals_take(void);
/* A signal arrived that cli_term_signals_take() has not returned yet (no
 * syscall: cheap enough before every stdin frame). */
bool cli_term_signals_pending(void);
void cli_term_signals_stop(void);

/* ---- ws_session.c: one exec/attach session over a cli_ws ---------------- */
struct cli_session_opts {
	bool tty;       /* raw terminal: resize on SIGWINCH, detach keys */
	bool stdin_on;  /* forward in_fd, then the control eof */
	bool sig_proxy; /* forward SIGINT/SIGTERM/... as the control signal */
	const struct cli_detach *keys; /* NULL or len 0: no detaching */
	int in_fd, out_fd, err_fd;
	const struct cli_ws_prelude *prelude; /* NULL, or the request that names the path */
	/* NULL, or called once the upgrade returned 101, before the session
	 * runs (run -it starts the container there: attach before start, so no
	 * first byte is lost).  < 0: cli->err is set, the session is dropped. */
	int (*upgraded)(void *arg);
	void *upgraded_arg;
};
struct cli_session_result {
	bool exited, detached;
	int code; /* exit.code */
	uint64_t out_offset; /* server -> client bytes, for a later resume */
	uint64_t in_offset;  /* client -> server stdin bytes sent */
	char error[512];     /* the server's error message, if any */
};
/* Connects to path on the command's daemon and runs the session (raw mode
 * and signals included when o->tty).  Returns the exit code (0 after a
 * detach), or < 0 with cli->err: the daemon's refusal as docker words it
 * (exit 1), a transport failure or a stream without exit (exit 125). */
int cli_stream_session(struct cli *cli, const char *path, const struct cli_session_opts *o,
                       bool *detached);

/* cmd_attach.c, also for run -it: the attach stream of a container whose
 * name is URL-escaped already; the exit code or < 0 with cli->err.
 * upgraded (NULL: none) runs once attached: run -it starts the container
 * there (the daemon holds a created container's output for us). */
int cli_attach_stream(struct cli *cli, const char *esc, bool tty, bool in, bool sig_proxy,
                      const char *detach_keys, int (*upgraded)(void *), void *arg,
                      bool *detached);

/* exec's options (cmd_exec.c), also read by the fan-out to spot -i/-t/-d. */
#define CLI_EXEC_SHORTOPTS "itde:w:u:"
extern const struct option cli_exec_longopts[];
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_exec_kill(struct cli *cli, int argc, char **argv);
int cmd_attach(struct cli *cli, int argc, char **argv);

#endif
