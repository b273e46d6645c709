/* REST over libcurl: one easy handle (one connection, one TLS session) per
 * command.  The daemon is trusted only through the target's own CA; the
 * system trust store is never consulted (this machine exports CURL_CA_BUNDLE,
 * and libcurl's compiled-in CA path would otherwise apply). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "certs/certs.h"
#include "client/client-internal.h"

struct cli_http {
	CURL *curl;
	const struct ctx_target *t; /* borrowed: outlives the handle */
	char *base;                 /* https://H:P or http://localhost */
	char *socket_path;          /* for unix:// */
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers;
	const char *extra_header; /* cli_http_set_extra_header(); not owned */
	/* The body sink of the request in flight. */
	struct bh_buf *body;
	cli_http_sink sink;
	void *sink_arg;
	struct bh_err sink_err;
	bool sink_failed;
	/* A request begun with cli_http_begin and not yet finished. */
	CURLM *multi;
	struct bh_buf async_body;
	bool async_headers;
	bool async_done; /* the transfer is over, with async_rc */
	CURLcode async_rc;
	/* Called while a request is in flight (cli_http_on_tick). */
	cli_http_tick tick;
	void *tick_arg;
};

static int curl_ready(struct bh_err *err)
{
	static bool done;

	if (done)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return bh_err_set(err, EIO, "cannot initialise libcurl");
	done = true;
	return 0;
}

int cli_http_open(const struct ctx_target *t, struct cli_http **out, struct bh_err *err)
{
	struct cli_http *h;

	if (curl_ready(err) < 0)
		return -1;
	h = bh_calloc(1, sizeof(*h));
	h->t = t;
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		free(h);
		return bh_err_set(err, EIO, "cannot create a libcurl handle");
	}
	if (ctx_host_is_tcp(t->host)) {
		h->base = bh_asprintf("https://%s", t->host + strlen("tcp://"));
	} else {
		h->base = bh_strdup("http://localhost");
		h->socket_path = bh_strdup(t->host + strlen("unix://"));
	}
	*out = h;
	return 0;
}

void cli_http_close(struct cli_http *h)
{
	if (h == NULL)
		return;
	if (h->multi != NULL) {
		curl_multi_remove_handle(h->multi, h->curl);
		curl_multi_cleanup(h->multi);
		bh_buf_free(&h->async_body);
	}
	curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	free(h->base);
	free(h->socket_path);
	free(h);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct cli_http *h = arg;
	size_t len = size * n;

	if (h->sink != NULL) {
		if (h->sink(h->sink_arg, data, len, &h->sink_err) < 0) {
			h->sink_failed = true;
			return 0; /* makes curl stop with CURLE_WRITE_ERROR */
		}
		return len;
	}
	if (bh_buf_append(h->body, data, len) < 0) {
		bh_err_set(&h->sink_err, EFBIG, "response larger than %zu bytes", h->body->max);
		h->sink_failed = true;
		return 0;
	}
	return len;
}

/* The material goes in as blobs from the target's memory, never as file
 * names: the same path for stored contexts and BERTH_CONTEXT_BUNDLE (which
 * has no files).  NOCOPY: the target outlives the handle, and libcurl keeps
 * no unwiped copy of the key.  A CA blob replaces CURLOPT_CAINFO. */
void cli_http_set_tls_blobs(void *curl, const struct ctx_target *t)
{
	CURL *c = curl;
	struct curl_blob ca = {t->pem.ca, t->pem.ca_len, CURL_BLOB_NOCOPY};
	struct curl_blob cert = {t->pem.cert, t->pem.cert_len, CURL_BLOB_NOCOPY};
	struct curl_blob key = {t->pem.key, t->pem.key_len, CURL_BLOB_NOCOPY};

	curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL); /* no compiled-in /etc/ssl/certs */
	curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	/* Never a prompt, and no NULL pass phrase for libcurl to strlen(). */
	curl_easy_setopt(c, CURLOPT_KEYPASSWD, "");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
}

static void set_tls(struct cli_http *h)
{
	cli_http_set_tls_blobs(h->curl, h->t);
}

/* libcurl calls this about once a second, and more often while data flows. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct cli_http *h = arg;

	return h->tick(h->tick_arg) < 0 ? 1 : 0; /* non-zero aborts the transfer */
}

void cli_http_on_tick(struct cli_http *h, cli_http_tick fn, void *arg)
{
	h->tick = fn;
	h->tick_arg = arg;
}

/* The options of every request.  curl_easy_reset() keeps the connection
 * and the TLS session cache, so the handle stays one connection. */
static void set_common(struct cli_http *h, const char *url)
{
	CURL *c = h->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 0L);
	if (h->socket_path != NULL)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->socket_path);
	else
		set_tls(h);
	if (h->tick != NULL) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	}
}

/* A body of known length read from a file (an image tar). */
static size_t on_upload(char *buf, size_t size, size_t n, void *arg)
{
	FILE *f = arg;
	size_t got = fread(buf, 1, size * n, f);

	if (got == 0 && ferror(f))
		return CURL_READFUNC_ABORT;
	return got;
}

void cli_http_set_extra_header(struct cli_http *h, const char *line)
{
	h->extra_header = line;
}

static void set_method(struct cli_http *h, const struct cli_http_req *rq)
{
	CURL *c = h->curl;
	const char *ctype = rq->content_type ? rq->content_type : "application/json";
	char line[160];

	curl_slist_free_all(h->headers);
	/* No "Expect: 100-continue": bodies go out at once, with their length. */
	h->headers = curl_slist_append(NULL, "Expect:");
	if (rq->upload != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		h->headers = curl_slist_append(h->headers, line);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
		curl_easy_setopt(c, CURLOPT_READDATA, rq->upload);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->upload_len);
	} else if (rq->body != NULL || strcmp(rq->method, "POST") == 0 ||
	           strcmp(rq->method, "PUT") == 0) {
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		h->headers = curl_slist_append(h->headers, line);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(rq->body ? rq->body_len : 0));
	}
	if (h->extra_header != NULL)
		h->headers = curl_slist_append(h->headers, h->extra_header);
	if (strcmp(rq->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
}

/* A refused client certificate is often reported only as "dropped after the
 * handshake" (TLS 1.3 loses the server's alert), so when the transport failed
 * and our own cert.pem is outside its validity, say that instead. */
void cli_http_note_cert(const struct ctx_target *t, int rc, struct bh_err *err)
{
	struct pki_cert_info info;
	struct bh_err ignored = {0};
	int64_t now = (int64_t)time(NULL);
	char when[40];
	bool expired;

	if ((rc != CURLE_SSL_CONNECT_ERROR && rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR &&
	     rc != CURLE_GOT_NOTHING) ||
	    t->pem.cert == NULL || !ctx_host_is_tcp(t->host))
		return;
	if (pki_cert_info_from_pem(t->pem.cert, t->pem.cert_len, &info, &ignored) < 0)
		return;
	expired = now > info.not_after;
	if (expired || now < info.not_before) {
		bh_rfc3339(when, expired ? info.not_after : info.not_before, 0);
		snprintf(err->msg, sizeof(err->msg),
		         "our client certificate (CN=%s) %s %s, so berthd at %s refuses it: "
		         "renew it (berth context renew) or get a new one",
		         info.common_name, expired ? "expired at" : "is not valid before", when,
		         t->host);
	}
	pki_cert_info_free(&info);
}

static int perform(struct cli_http *h, const struct cli_http_req *rq, struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("%s/v%s%s", h->base, BERTH_API_VERSION, rq->path);
	long status = 0, os_errno = 0;
	CURLcode rc;

	h->errbuf[0] = '\0';
	h->sink_failed = false;
	bh_err_clear(&h->sink_err);
	set_common(h, url);
	set_method(h, rq);
	rc = curl_easy_perform(h->curl);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	bh_debug("%s %s -> %d %ld", rq->method, url, (int)rc, status);
	if (rc == CURLE_OK)
		return (int)status;
	if (h->sink_failed) {
		*err = h->sink_err;
		return -1;
	}
	curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
	bh_debug("curl error %d (%s), errno %ld", (int)rc, h->errbuf, os_errno);
	cli_http_describe((int)rc, os_errno, h->errbuf, h->t->host, err->msg, sizeof(err->msg));
	cli_http_note_cert(h->t, (int)rc, err);
	err->code = EIO;
	return -1;
}

int cli_http_do(struct cli_http *h, const struct cli_http_req *rq, struct bh_buf *body,
                struct bh_err *err)
{
	int r;

	bh_buf_init(body, CLI_BODY_MAX);
	h->body = body;
	h->sink = NULL;
	r = perform(h, rq, err);
	h->body = NULL;
	if (r < 0)
		bh_buf_free(body);
	else if (body->data == NULL)
		bh_buf_append(body, "", 0);
	return r;
}

int cli_http_stream(struct cli_http *h, const struct cli_http_req *rq, cli_http_sink sink,
                    void *arg, struct bh_err *err)
{
	int r;

	h->body = NULL;
	h->sink = sink;
	h->sink_arg = arg;
	r = perform(h, rq, err);
	h->sink = NULL;
	h->sink_arg = NULL;
	return r;
}

int cli_http_status(struct cli_http *h)
{
	long status = 0;

	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	return (int)status;
}

/* ---- a request answered later (wait before start) ------------------------ */

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct cli_http *h = arg;
	size_t len = size * n;

	/* The empty line ends the headers; an interim 1xx has its own. */
	if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n'))
		h->async_headers = cli_http_status(h) >= 200;
	return len;
}

static int async_fail(struct cli_http *h, CURLcode rc, struct bh_err *err)
{
	long os_errno = 0;

	if (h->sink_failed) {
		*err = h->sink_err;
		return -1;
	}
	curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
	cli_http_describe((int)rc, os_errno, h->errbuf, h->t->host, err->msg, sizeof(err->msg));
	cli_http_note_cert(h->t, (int)rc, err);
	err->code = EIO;
	return -1;
}

/* Drives the transfer until it is done (1, with *rc) or, with want_headers,
 * until the headers are in (0); -1 after deadline_ms (0 = none).  libcurl
 * reports "done" once: it is kept for a later call. */
static int async_step(struct cli_http *h, bool want_headers, uint64_t deadline_ms, CURLcode *rc)
{
	int running = 0, left;
	CURLMsg *m;

	for (;;) {
		if (h->async_done) {
			*rc = h->async_rc;
			return 1;
		}
		curl_multi_perform(h->multi, &running);
		while ((m = curl_multi_info_read(h->multi, &left)) != NULL)
			if (m->msg == CURLMSG_DONE) {
				h->async_done = true;
				h->async_rc = m->data.result;
			}
		if (h->async_done)
			continue;
		if (want_headers && h->async_headers)
			return 0;
		if (deadline_ms != 0 && bh_now_ms() > deadline_ms)
			return -1;
		curl_multi_poll(h->multi, NULL, 0, 200, NULL);
	}
}

int cli_http_begin(struct cli_http *h, const struct cli_http_req *rq, int timeout_ms,
                   struct bh_err *err)
{
	cleanup_free char *url = bh_asprintf("%s/v%s%s", h->base, BERTH_API_VERSION, rq->path);
	CURLcode rc = CURLE_OK;
	int r;

	h->errbuf[0] = '\0';
	h->sink_failed = false;
	h->async_headers = false;
	h->async_done = false;
	bh_err_clear(&h->sink_err);
	set_common(h, url);
	set_method(h, rq);
	bh_buf_init(&h->async_body, CLI_BODY_MAX);
	h->body = &h->async_body;
	h->sink = NULL;
	curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
	h->multi = curl_multi_init();
	curl_multi_add_handle(h->multi, h->curl);
	bh_debug("%s %s (answer later)", rq->method, url);
	r = async_step(h, true, bh_now_ms() + (uint64_t)timeout_ms, &rc);
	if (r == 1 && rc != CURLE_OK)
		return async_fail(h, rc, err);
	if (r < 0)
		return bh_err_set(err, ETIMEDOUT, "%s %s: no answer from berthd at %s", rq->method,
		                  rq->path, h->t->host);
	return 0;
}

int cli_http_finish(struct cli_http *h, struct bh_buf *body, struct bh_err *err)
{
	CURLcode rc = CURLE_OK;
	int r = async_step(h, false, 0, &rc);
	int status = cli_http_status(h);

	if (r == 1 && rc != CURLE_OK)
		r = async_fail(h, rc, err);
	else
		r = status;
	curl_multi_remove_handle(h->multi, h->curl);
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	h->body = NULL;
	*body = h->async_body;
	bh_buf_init(&h->async_body, CLI_BODY_MAX);
	if (r < 0)
		bh_buf_free(body);
	else if (body->data == NULL)
		bh_buf_append(body, "", 0);
	return r;
}

char *cli_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), j = 0;
	char *out = bh_malloc(3 * n + 1);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[j++] = (char)c;
			continue;
		}
		out[j++] = '%';
		out[j++] = hex[c >> 4];
		out[j++] = hex[c & 15];
	}
	out[j] = '\0';
	return out;
}

/* ---- turning libcurl failures into one line ------------------------------ */

static bool has(const char *lower, const char *needle)
{
	return strstr(lower, needle) != NULL;
}

static const char *errno_text(long e)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ENOENT:
		return "no such socket";
	case EACCES:
		return "permission denied (the local socket is for root only)";
	case ETIMEDOUT:
		return "timed out";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	default:
		return NULL;
	}
}

/* CURLE_PEER_FAILED_VERIFICATION: our check of the daemon's certificate. */
static void describe_peer(const char *lower, const char *errbuf, const char *host, char *out,
                          size_t n)
{
	if (has(lower, "expired"))
		snprintf(out, n, "the daemon's certificate has expired (renew it on the host)");
	else if (has(lower, "not yet valid"))
		snprintf(out, n, "the daemon's certificate is not valid yet (check the clocks)");
	else if (has(lower, "subject name") || has(lower, "does not match") ||
	         has(lower, "hostname mismatch"))
		snprintf(out, n,
		         "the daemon's certificate does not name the host in %s (wrong host "
		         "name; reissue it with that name)",
		         host);
	else if (has(lower, "issuer") || has(lower, "self-signed") || has(lower, "self signed") ||
	         has(lower, "first certificate"))
		snprintf(out, n,
		         "server certificate not signed by the context's CA (is ca.pem the CA "
		         "of this daemon?)");
	else
		snprintf(out, n, "cannot verify the daemon's certificate: %s", errbuf);
}

/* The handshake alerts by which a server refuses our client certificate,
 * with what each says about it.  NULL if errbuf holds none of them. */
static const char *client_cert_refusal(const char *lower)
{
	static const struct {
		const char *alert;
		const char *why;
	} alerts[] = {
	    {"alert unknown ca", "not signed by a CA the daemon trusts"},
	    {"alert certificate expired", "it has expired"},
	    {"certificate required", "the daemon wants one and none was sent"},
	    {"alert bad certificate", "rejected"},
	    {"alert certificate unknown", "rejected"},
	    {"alert unsupported certificate", "not a client certificate"},
	    {"alert certificate revoked", "revoked"},
	    {"alert access denied", "access denied"},
	};

	for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (has(lower, alerts[i].alert))
			return alerts[i].why;
	return NULL;
}

static void describe_tls(int code, const char *lower, const char *errbuf, const char *host,
                         char *out, size_t n)
{
	const char *why = client_cert_refusal(lower);

	if (!ctx_host_is_tcp(host))
		snprintf(out, n, "berthd at %s closed the connection: %s", host, errbuf);
	else if (why != NULL)
		snprintf(out, n,
		         "the daemon at %s refused our client certificate (%s): is cert.pem "
		         "issued by the daemon's CA and still valid?",
		         host, why);
	else if (code == CURLE_SSL_CONNECT_ERROR)
		snprintf(out, n, "TLS handshake with berthd at %s failed: %s", host, errbuf);
	else
		/* With TLS 1.3 the server checks our certificate after the client
		 * has finished its handshake; its alert is often lost when our
		 * request meets the closed connection (curl then reports a send
		 * or getpeername error that says nothing useful). */
		snprintf(out, n,
		         "berthd at %s dropped the connection after the TLS handshake: it most "
		         "likely refused our client certificate (is cert.pem issued by the "
		         "daemon's CA and still valid?)",
		         host);
}

static void describe_connect(long os_errno, const char *errbuf, const char *host, char *out,
                             size_t n)
{
	const char *why = errno_text(os_errno);

	if (why != NULL)
		snprintf(out, n, "cannot connect to berthd at %s: %s (is the daemon running?)",
		         host, why);
	else
		snprintf(out, n, "cannot connect to berthd at %s: %s (is the daemon running?)",
		         host, errbuf[0] ? errbuf : "connection failed");
}

void cli_http_describe(int code, long os_errno, const char *errbuf, const char *host, char *out,
                       size_t n)
{
	char lower[CURL_ERROR_SIZE + 1];
	size_t i;

	for (i = 0; errbuf[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] =
		    (char)((errbuf[i] >= 'A' && errbuf[i] <= 'Z') ? errbuf[i] + 32 : errbuf[i]);
	lower[i] = '\0';
	if (errbuf[0] == '\0')
		errbuf = curl_easy_strerror((CURLcode)code);
	switch (code) {
	case CURLE_COULDNT_CONNECT:
		describe_connect(os_errno, errbuf, host, out, n);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(out, n, "cannot connect to berthd at %s: cannot resolve the host name",
		         host);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(out, n, "timed out talking to berthd at %s", host);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		describe_peer(lower, errbuf, host, out, n);
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		describe_tls(code, lower, errbuf, host, out, n);
		break;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(out, n, "cannot use the client certificate or key: %s", errbuf);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(out, n, "cannot use the context's CA certificate: %s", errbuf);
		break;
	default:
		snprintf(out, n, "request to berthd at %s failed: %s", host, errbuf);
		break;
	}
}

/* ---- the command's connection -------------------------------------------- */

struct cli_conn {
	struct ctx_target t;
	struct cli_http *http;
};

void cli_conn_free(struct cli *cli)
{
	if (cli->conn == NULL)
		return;
	cli_http_close(cli->conn->http);
	ctx_target_free(&cli->conn->t);
	free(cli->conn);
	cli->conn = NULL;
}

int cli_target(struct cli *cli, const struct ctx_target **out)
{
	struct ctx_flags fl = {.host = cli->host, .tls_dir = cli->tls_dir, .context = cli->context};
	struct ctx_env env;
	struct cli_conn *c;

	if (cli->conn == NULL) {
		c = bh_calloc(1, sizeof(*c));
		ctx_env_from_process(&env);
		if (ctx_resolve(cli->config_dir, &fl, &env, &c->t, &cli->err) < 0) {
			free(c);
			cli->exit_code = CLI_EXIT_CMD;
			return -1;
		}
		cli->conn = c;
	}
	*out = &cli->conn->t;
	return 0;
}

void cli_target_label(const struct ctx_target *t, char *out, size_t n)
{
	if (t->source == CTX_SRC_FLAG_HOST || t->source == CTX_SRC_ENV_HOST)
		snprintf(out, n, "%s (from %s)", t->host, t->name);
	else
		snprintf(out, n, "context %s (host %s)", t->name, t->host);
}

void cli_error_name_daemon(struct cli *cli)
{
	const struct ctx_target *t = cli->conn ? &cli->conn->t : NULL;
	size_t len = strlen(cli->err.msg);
	char tail[400];

	/* -H: the host is on the command line, and docker's wording stays. */
	if (t == NULL || t->host == NULL || t->source == CTX_SRC_FLAG_HOST)
		return;
	if (cli->exit_code != CLI_EXIT_DAEMON &&
	    !bh_str_has_prefix(cli->err.msg, "Error response from daemon"))
		return; /* not about the daemon: bad flags and the like */
	if (strstr(cli->err.msg, t->host) != NULL)
		return; /* named already */
	snprintf(tail, sizeof(tail), " (context %s, host %s)", t->name, t->host);
	if (len + strlen(tail) >= sizeof(cli->err.msg))
		len = sizeof(cli->err.msg) - strlen(tail) - 1;
	memcpy(cli->err.msg + len, tail, strlen(tail) + 1);
}

static int api_fail(struct cli *cli, int exit_code, const char *what)
{
	char label[400];

	cli_target_label(&cli->conn->t, label, sizeof(label));
	return cli_fail(cli, exit_code, "%s: %s", label, what);
}

static int conn_http(struct cli *cli, struct cli_http **out)
{
	const struct ctx_target *t;
	struct bh_err err = {0};

	if (cli_target(cli, &t) < 0)
		return -1;
	if (cli->conn->http == NULL && cli_http_open(t, &cli->conn->http, &err) < 0)
		return api_fail(cli, CLI_EXIT_DAEMON, err.msg);
	*out = cli->conn->http;
	return 0;
}

/* The daemon's {"message": ...} for an HTTP error, else the status. */
static int http_error(struct cli *cli, int status, const struct bh_buf *body)
{
	json_t *doc = json_loadb(body->data, body->len, 0, NULL);
	json_t *msg = json_object_get(doc, "message");
	char text[600];

	if (json_is_string(msg))
		cli_sanitize(json_string_value(msg), text, sizeof(text));
	else
		snprintf(text, sizeof(text), "the daemon answered HTTP %d", status);
	json_decref(doc);
	return api_fail(cli, status >= 500 ? CLI_EXIT_DAEMON : CLI_EXIT_CMD, text);
}

int cli_api_http(struct cli *cli, struct cli_http **out)
{
	return conn_http(cli, out);
}

int cli_api_do(struct cli *cli, const struct cli_http_req *rq, struct bh_buf *body)
{
	struct cli_http *h = NULL;
	struct bh_err err = {0};
	int status;

	if (conn_http(cli, &h) < 0)
		return -1;
	status = cli_http_do(h, rq, body, &err);
	if (status < 0)
		return api_fail(cli, CLI_EXIT_DAEMON, err.msg);
	return status;
}

void cli_daemon_message(int status, const struct bh_buf *body, char *out, size_t outlen)
{
	json_t *doc = body->data ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	json_t *msg = json_object_get(doc, "message");

	if (json_is_string(msg))
		cli_sanitize(json_string_value(msg), out, outlen);
	else
		snprintf(out, outlen, "HTTP %d", status);
	json_decref(doc);
}

int cli_api_error(struct cli *cli, int exit_code, int status, const struct bh_buf *body)
{
	char text[800];

	cli_daemon_message(status, body, text, sizeof(text));
	return cli_fail(cli, exit_code, "Error response from daemon: %s", text);
}

int cli_api_ok(struct cli *cli, const struct cli_http_req *rq)
{
	struct bh_buf body;
	int status = cli_api_do(cli, rq, &body);

	if (status < 0)
		return -1;
	if (status >= 300)
		cli_api_error(cli, CLI_EXIT_CMD, status, &body);
	bh_buf_free(&body);
	return status >= 300 ? -1 : 0;
}

int cli_api_json(struct cli *cli, const struct cli_http_req *rq, json_t **out)
{
	struct bh_buf body;
	int status = cli_api_do(cli, rq, &body);

	if (status < 0)
		return -1;
	if (status >= 300) {
		cli_api_error(cli, CLI_EXIT_CMD, status, &body);
		bh_buf_free(&body);
		return -1;
	}
	*out = json_loadb(body.data, body.len, 0, NULL);
	bh_buf_free(&body);
	if (*out == NULL)
		return cli_fail(cli, CLI_EXIT_DAEMON, "%s %s: the daemon's reply is not JSON",
		                rq->method, rq->path);
	return 0;
}

int cli_api_get_json(struct cli *cli, const char *path, json_t **out)
{
	struct cli_http_req rq = {.method = "GET", .path = path};
	struct cli_http *h = NULL;
	struct bh_buf body;
	struct bh_err err = {0};
	json_error_t jerr;
	char what[300];
	int status;

	if (conn_http(cli, &h) < 0)
		return -1;
	status = cli_http_do(h, &rq, &body, &err);
	if (status < 0)
		return api_fail(cli, CLI_EXIT_DAEMON, err.msg);
	if (status >= 400) {
		http_error(cli, status, &body);
		bh_buf_free(&body);
		return -1;
	}
	*out = json_loadb(body.data, body.len, 0, &jerr);
	bh_buf_free(&body);
	if (*out != NULL)
		return 0;
	snprintf(what, sizeof(what), "GET %s: the daemon's reply is not JSON: %s", path, jerr.text);
	return api_fail(cli, CLI_EXIT_DAEMON, what);
}
