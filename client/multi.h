/* client: several GETs at once on one libcurl multi handle (non-blocking
 * sockets, no threads: portable as is), each to its own context with the
 * same TLS material and verification as every other command
 * (cli_http_set_tls_blobs).  Used by `context ls --check` (ctx_check.c) and
 * the in-process fan-out of ps and images (fanout_fast.c). */
#ifndef BERTH_CLIENT_MULTI_H
#define BERTH_CLIENT_MULTI_H

#include <curl/curl.h>

#include "client/client-internal.h"

struct cli_multi_get {
	/* in */
	const struct ctx_target *t; /* borrowed, outlives the get; NULL: skipped */
	const char *path;           /* "/version": the API prefix is added */
	long timeout_ms;            /* the whole transfer from its start; 0: none */
	long connect_timeout_ms;
	size_t body_max;
	void *user;
	/* out (curl stays valid for curl_easy_getinfo until cli_multi_get_free) */
	CURL *curl;
	struct bh_buf body;
	char errbuf[CURL_ERROR_SIZE];
	CURLcode rc;
	long status;
	uint64_t started_ms;
	bool started, done;
};

/* Called once per get as it ends (rc and status set). */
typedef void (*cli_multi_done_fn)(void *arg, struct cli_multi_get *g);

/* Runs the gets, at most parallel at once (0: all), until every one ended
 * or deadline_ms (bh_now_ms() clock; 0: none) passed; what had not ended by
 * then keeps done false.  < 0 with err only when nothing could run. */
int cli_multi_run(struct cli_multi_get *gs, size_t n, size_t parallel, uint64_t deadline_ms,
                  cli_multi_done_fn done, void *arg, struct bh_err *err);
/* A failed transfer in one line, as a single command would say it
 * (cli_http_describe, the expired-certificate note, the body bound). */
void cli_multi_describe(const struct cli_multi_get *g, char *out, size_t n);
void cli_multi_get_free(struct cli_multi_get *g);

#endif
