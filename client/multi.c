/* client: several GETs at once on one libcurl multi handle (see multi.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/multi.h"

#define MULTI_POLL_MS 100

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct cli_multi_get *g = arg;

	return bh_buf_append(&g->body, data, size * n) < 0 ? 0 : size * n;
}

static void get_setup(struct cli_multi_get *g, CURL *c)
{
	const char *host = g->t->host;
	cleanup_free char *url = NULL;

	if (ctx_host_is_tcp(host)) {
		url = bh_asprintf("https://%s/v%s%s", host + strlen("tcp://"), BERTH_API_VERSION,
		                  g->path);
		cli_http_set_tls_blobs(c, g->t);
	} else {
		url = bh_asprintf("http://localhost/v%s%s", BERTH_API_VERSION, g->path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, host + strlen("unix://"));
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, g->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, g->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(c, CURLOPT_PRIVATE, g);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
}

static void get_start(CURLM *multi, struct cli_multi_get *g)
{
	CURL *c = curl_easy_init();

	if (c == NULL)
		abort(); /* allocation failure */
	g->curl = c;
	g->started = true;
	g->started_ms = bh_now_ms();
	bh_buf_init(&g->body, g->body_max);
	get_setup(g, c);
	curl_multi_add_handle(multi, c);
}

/* Starts the next ones while fewer than parallel run; returns how many run. */
static size_t fill(CURLM *multi, struct cli_multi_get *gs, size_t n, size_t *next, size_t running,
                   size_t parallel)
{
	while (*next < n && (parallel == 0 || running < parallel)) {
		struct cli_multi_get *g = &gs[(*next)++];
		if (g->t == NULL)
			continue;
		get_start(multi, g);
		running++;
	}
	return running;
}

static size_t reap(CURLM *multi, cli_multi_done_fn done, void *arg)
{
	struct cli_multi_get *g;
	size_t ended = 0;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&g);
		g->rc = m->data.result;
		curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &g->status);
		curl_multi_remove_handle(multi, g->curl);
		g->done = true;
		ended++;
		done(arg, g);
	}
	return ended;
}

int cli_multi_run(struct cli_multi_get *gs, size_t n, size_t parallel, uint64_t deadline_ms,
                  cli_multi_done_fn done, void *arg, struct bh_err *err)
{
	size_t next = 0, running = 0;
	int still = 0;
	CURLM *multi;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return bh_err_set(err, EIO, "cannot initialise libcurl");
	multi = curl_multi_init();
	if (multi == NULL)
		return bh_err_set(err, EIO, "cannot create a libcurl multi handle");
	running = fill(multi, gs, n, &next, running, parallel);
	while (running > 0 && (deadline_ms == 0 || bh_now_ms() < deadline_ms)) {
		curl_multi_perform(multi, &still);
		running -= reap(multi, done, arg);
		running = fill(multi, gs, n, &next, running, parallel);
		if (running > 0 && still > 0)
			curl_multi_poll(multi, NULL, 0, MULTI_POLL_MS, NULL);
	}
	for (size_t i = 0; i < n; i++)
		if (gs[i].started && !gs[i].done)
			curl_multi_remove_handle(multi, gs[i].curl);
	curl_multi_cleanup(multi);
	return 0;
}

void cli_multi_describe(const struct cli_multi_get *g, char *out, size_t n)
{
	struct bh_err e = {0};
	long os_errno = 0;

	if (g->rc == CURLE_WRITE_ERROR) {
		snprintf(out, n, "response larger than %zu bytes", g->body.max);
		return;
	}
	curl_easy_getinfo(g->curl, CURLINFO_OS_ERRNO, &os_errno);
	cli_http_describe((int)g->rc, os_errno, g->errbuf, g->t->host, e.msg, sizeof(e.msg));
	cli_http_note_cert(g->t, (int)g->rc, &e);
	snprintf(out, n, "%s", e.msg);
}

void cli_multi_get_free(struct cli_multi_get *g)
{
	if (g->curl != NULL)
		curl_easy_cleanup(g->curl);
	g->curl = NULL;
	bh_buf_free(&g->body);
}
