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

/* Turns a libcurl failure into one message.  Pure: tested on its own.
 * curl_code is a CURLcode, os_errno CURLINFO_OS_ERRNO, errbuf the text of
 * CURLOPT_ERRORBUFFER (may be empty), host the target's URL. */
void cli_http_describe(int curl_code, long os_errno, const char *errbuf, const char *host,
                       char *out, size_t outlen);

/* ---- api.c-like helpers in http.c, in terms of struct cli ---------------- */
/* The daemon the command talks to, resolved and connected once per run.
 * Fills cli->err (exit 1 for resolution errors) and returns < 0 on failure. */
int cli_target(struct cli *cli, const struct ctx_target **out);
/* GET path and parse the JSON reply.  On failure fills cli->err as
 * "<context> (<host>): <what>" with exit 125 (transport, 5xx) or 1 (4xx). */
int cli_api_get_json(struct cli *cli, const char *path, json_t **out);
void cli_conn_free(struct cli *cli);

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

/* Parses "[--format json]" (version, info); 0, or -2 after --help, or -1. */
int cli_parse_format(struct cli *cli, int argc, char **argv, const char *name, const char *usage,
                     bool *json);

/* Prints a JSON value followed by a newline on stdout. */
int cli_print_json(struct cli *cli, json_t *v);
/* Copies s with control characters replaced, so daemon text cannot drive the
 * terminal. */
void cli_sanitize(const char *s, char *out, size_t outlen);

int cmd_context(struct cli *cli, int argc, char **argv);
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_info(struct cli *cli, int argc, char **argv);

#endif
