/* The registry transport: one curl easy handle per session (per thread),
 * the https-or-http probe, the Bearer token / Basic flow of
 * WWW-Authenticate, bounded response capture.  Secrets (passwords, tokens,
 * Authorization lines) are wiped on release and never logged. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "runtime/registry-internal.h"

#define DEFAULT_CERTS_D "/etc/berth/certs.d"
#define SYSTEM_CA_DIR   "/etc/ssl/certs"
#define ACCEPT_ALL                                                                                 \
	RT_MT_OCI_INDEX ", " RT_MT_OCI_MANIFEST ", " RT_MT_DOCKER_LIST ", " RT_MT_DOCKER_MANIFEST

static void wipe_free(char **p)
{
	if (*p) {
		bh_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void reg_rq_free(struct reg_rq *rq)
{
	bh_buf_free(&rq->errbody);
}

int reg_sess_open(struct reg_sess *s, const char *host, const char *repo, bool push,
                  const struct rt_reg_opts *o, struct bh_err *err)
{
	cleanup_free char *ca = NULL;

	memset(s, 0, sizeof(*s));
	if (strchr(host, '/') || strchr(host, '@') || strlen(host) > 255)
		return bh_err_set(err, EINVAL, "invalid registry host %s", host);
	s->curl = curl_easy_init();
	if (s->curl == NULL)
		abort();
	s->host = bh_strdup(host);
	s->repo = repo ? bh_strdup(repo) : NULL;
	s->push = push;
	s->auth = o->auth;
	s->cancel = o->cancel;
	s->insecure_ok = rt_reg_plain_http_allowed(host, o->insecure);
	ca = bh_asprintf("%s/%s/ca.crt", o->certs_d ? o->certs_d : DEFAULT_CERTS_D, host);
	if (bh_path_exists(ca))
		s->ca_file = steal_pointer(&ca);
	return 0;
}

void reg_sess_close(struct reg_sess *s)
{
	if (s->curl)
		curl_easy_cleanup(s->curl);
	free(s->host);
	free(s->base);
	free(s->ca_file);
	free(s->repo);
	wipe_free(&s->authz);
	memset(s, 0, sizeof(*s));
}

int reg_sess_clone(const struct reg_sess *from, struct reg_sess *to, struct bh_err *err)
{
	*to = *from;
	to->curl = curl_easy_init();
	if (to->curl == NULL)
		abort();
	to->host = bh_strdup(from->host);
	to->base = from->base ? bh_strdup(from->base) : NULL;
	to->ca_file = from->ca_file ? bh_strdup(from->ca_file) : NULL;
	to->repo = from->repo ? bh_strdup(from->repo) : NULL;
	to->authz = from->authz ? bh_strdup(from->authz) : NULL;
	return 0;
}

/* ---- one transfer ------------------------------------------------------------ */

struct xfer {
	struct reg_sess *s;
	struct reg_rq *rq;
	struct bh_err *err;
	bool sink_failed;
	size_t up_off;
};

static void capture(char *dst, size_t cap, const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n > 0 && *v == ' ') {
		v++;
		n--;
	}
	if (n >= cap)
		n = cap - 1; /* longer than any sane value: cut, checked later */
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool hdr_is(const char *line, size_t n, const char *name, const char **val)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	*val = line + k + 1;
	return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct reg_rq *rq = x->rq;
	size_t n = size * nmemb;
	const char *v;

	if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', n);
		rq->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		rq->location[0] = rq->ctype[0] = rq->digest[0] = rq->www_auth[0] = '\0';
		rq->clen = -1;
	} else if (hdr_is(line, n, "location", &v)) {
		capture(rq->location, sizeof(rq->location), v, n - (size_t)(v - line));
	} else if (hdr_is(line, n, "content-type", &v)) {
		capture(rq->ctype, sizeof(rq->ctype), v, n - (size_t)(v - line));
	} else if (hdr_is(line, n, "docker-content-digest", &v)) {
		capture(rq->digest, sizeof(rq->digest), v, n - (size_t)(v - line));
	} else if (hdr_is(line, n, "www-authenticate", &v)) {
		capture(rq->www_auth, sizeof(rq->www_auth), v, n - (size_t)(v - line));
	} else if (hdr_is(line, n, "content-length", &v)) {
		rq->clen = strtoll(v, NULL, 10);
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct reg_rq *rq = x->rq;
	size_t n = size * nmemb;

	if (rq->status >= 300 && rq->status < 400)
		return n; /* a redirect's body */
	if (rq->status < 200 || rq->status >= 300) {
		bh_buf_append(&rq->errbody, data, n); /* full: the rest is dropped */
		return n;
	}
	if (rq->sink && rq->sink(rq->sink_arg, data, n, x->err) < 0) {
		x->sink_failed = true;
		return 0;
	}
	if (rq->body && bh_buf_append(rq->body, data, n) < 0) {
		bh_err_set(x->err, EFBIG, "%s: reply larger than %zu bytes", rq->url,
		           rq->body->max);
		x->sink_failed = true;
		return 0;
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct reg_rq *rq = x->rq;
	size_t want = size * nmemb, left = rq->len - x->up_off;

	if (want > left)
		want = left;
	if (rq->file) {
		want = fread(buf, 1, want, rq->file);
		if (want == 0 && left > 0)
			return CURL_READFUNC_ABORT;
	} else {
		memcpy(buf, (const char *)rq->data + x->up_off, want);
	}
	x->up_off += want;
	return want;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct xfer *x = arg;

	return x->s->cancel && *x->s->cancel ? 1 : 0;
}

static struct curl_slist *req_headers(struct reg_sess *s, struct reg_rq *rq, const char *authz)
{
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	char line[512];

	snprintf(line, sizeof(line), "Accept: %s", rq->accept ? rq->accept : ACCEPT_ALL);
	h = curl_slist_append(h, line);
	if (rq->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", rq->content_type);
		h = curl_slist_append(h, line);
	}
	if (rq->range_from > 0) {
		snprintf(line, sizeof(line), "Range: bytes=%lld-", (long long)rq->range_from);
		h = curl_slist_append(h, line);
	}
	/* curl drops custom Authorization headers on a redirect to another host
	 * (CURLOPT_UNRESTRICTED_AUTH stays off): tokens never leak to a CDN. */
	if (authz)
		h = curl_slist_append(h, authz);
	return h;
}

static void set_tls(struct reg_sess *s, CURL *c)
{
	/* The system store plus the registry's own CA (certs.d): both at once. */
	if (s->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, SYSTEM_CA_DIR);
	}
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
}

static void set_method(CURL *c, struct reg_rq *rq)
{
	bool up = rq->data || rq->file;

	if (strcmp(rq->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(rq->method, "PUT") == 0 || (strcmp(rq->method, "POST") == 0 && up))
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	else if (strcmp(rq->method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POST, 1L),
		    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	if (strcmp(rq->method, "POST") == 0 && up)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
	if (up || strcmp(rq->method, "PUT") == 0)
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->len);
}

static char *full_url(struct reg_sess *s, const char *url)
{
	if (bh_str_has_prefix(url, "http://") || bh_str_has_prefix(url, "https://"))
		return bh_strdup(url);
	return bh_asprintf("%s%s", s->base, url);
}

static int transport_err(struct reg_sess *s, CURLcode rc, const char *url, const char *eb,
                         struct bh_err *err)
{
	const char *what = eb && *eb ? eb : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return bh_err_set(err, EIO, "%s: TLS handshake with registry %s failed: %s", url,
		                  s->host, what);
	case CURLE_ABORTED_BY_CALLBACK:
		return bh_err_set(err, ECANCELED, "%s: cancelled", url);
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		return bh_err_set(err, EIO, "%s: cannot reach registry %s: %s", url, s->host, what);
	default:
		return bh_err_set(err, EIO, "%s: transfer from registry %s failed: %s", url,
		                  s->host, what);
	}
}

static void setup_handle(struct reg_sess *s, struct reg_rq *rq, struct xfer *x,
                         struct curl_slist *h, const char *url, char *eb)
{
	CURL *c = s->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* only http(s), also after redirects, and a few of those at most */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, rq->follow ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)RT_REG_MAX_REDIRS);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c, CURLOPT_READDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	set_tls(s, c);
	set_method(c, rq);
}

/* The transfer itself; rc is the CURLcode (for the probe's fallback). */
static int perform(struct reg_sess *s, struct reg_rq *rq, const char *authz, int *rc_out,
                   struct bh_err *err)
{
	struct xfer x = {.s = s, .rq = rq, .err = err};
	cleanup_free char *url = full_url(s, rq->url);
	struct curl_slist *h = req_headers(s, rq, authz);
	char eb[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	rq->status = 0;
	bh_buf_free(&rq->errbody);
	bh_buf_init(&rq->errbody, REG_ERR_BODY);
	setup_handle(s, rq, &x, h, url, eb);
	rc = curl_easy_perform(s->curl);
	/* the handle outlives these: no dangling pointers into this frame */
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (rc_out)
		*rc_out = (int)rc;
	if (x.sink_failed)
		return -1;
	if (rc != CURLE_OK)
		return transport_err(s, rc, url, eb, err);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &rq->status);
	return 0;
}

/* ---- authentication ------------------------------------------------------------ */

static char *basic_line(const struct rt_reg_auth *a)
{
	cleanup_free char *up =
	    bh_asprintf("%s:%s", a->username ? a->username : "", a->password ? a->password : "");
	cleanup_free char *b64 = bh_base64_encode(up, strlen(up), false);
	char *line = bh_asprintf("Authorization: Basic %s", b64);

	bh_wipe(up, strlen(up));
	bh_wipe(b64, strlen(b64));
	return line;
}

static bool have_creds(const struct reg_sess *s)
{
	return s->auth && s->auth->username && s->auth->password;
}

static char *token_url(struct reg_sess *s)
{
	const struct rt_reg_challenge *ch = &s->ch;
	char *svc = curl_easy_escape(s->curl, ch->service, 0);
	cleanup_free char *scope =
	    s->repo ? bh_asprintf("repository:%s:%s", s->repo, s->push ? "pull,push" : "pull")
	            : NULL;
	char *sc = scope ? curl_easy_escape(s->curl, scope, 0) : NULL;
	char *url = bh_asprintf("%s%sservice=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
	                        svc ? svc : "", sc ? "&scope=" : "", sc ? sc : "");

	curl_free(svc);
	curl_free(sc);
	return url;
}

static int token_parse(struct bh_buf *b, char **line, struct bh_err *err)
{
	json_t *o = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
	const char *t = json_string_value(json_object_get(o, "token"));

	if (t == NULL || *t == '\0')
		t = json_string_value(json_object_get(o, "access_token"));
	if (t == NULL || *t == '\0' || strpbrk(t, "\r\n") != NULL) {
		json_decref(o);
		return bh_err_set(err, EIO, "token server: no token in the reply");
	}
	*line = bh_asprintf("Authorization: Bearer %s", t);
	json_decref(o);
	bh_wipe(b->data, b->len);
	return 0;
}

static int fetch_token(struct reg_sess *s, struct bh_err *err)
{
	cleanup_free char *url = token_url(s);
	cleanup_free char *basic = have_creds(s) ? basic_line(s->auth) : NULL;
	struct bh_buf body;
	struct reg_rq rq = {
	    .method = "GET", .url = url, .accept = "application/json", .body = &body};
	int r;

	if (!bh_str_has_prefix(url, "https://") && !bh_str_has_prefix(url, "http://"))
		return bh_err_set(err, EIO, "registry %s: token realm is not an http(s) URL",
		                  s->host);
	bh_buf_init(&body, RT_REG_MAX_TOKEN);
	r = perform(s, &rq, basic, NULL, err);
	if (basic)
		bh_wipe(basic, strlen(basic));
	if (r == 0 && (rq.status == 401 || rq.status == 403))
		r = bh_err_set(err, EACCES, "unauthorized: authentication required for %s",
		               s->host);
	else if (r == 0 && rq.status != 200)
		r = reg_status_err(&rq, err, "token server for %s", s->host);
	if (r == 0) {
		wipe_free(&s->authz);
		r = token_parse(&body, &s->authz, err);
	}
	bh_buf_free(&body);
	reg_rq_free(&rq);
	return r;
}

/* After a 401: a new Authorization line from its challenge. */
static int authenticate(struct reg_sess *s, const char *www_auth, struct bh_err *err)
{
	if (rt_reg_challenge_parse(www_auth, &s->ch) < 0)
		return bh_err_set(err, EIO, "registry %s: malformed WWW-Authenticate", s->host);
	s->have_ch = true;
	if (strcasecmp(s->ch.scheme, "bearer") == 0)
		return fetch_token(s, err);
	if (strcasecmp(s->ch.scheme, "basic") != 0)
		return bh_err_set(err, ENOTSUP, "registry %s: unsupported auth scheme %s", s->host,
		                  s->ch.scheme);
	if (!have_creds(s))
		return bh_err_set(err, EACCES, "unauthorized: authentication required for %s",
		                  s->host);
	wipe_free(&s->authz);
	s->authz = basic_line(s->auth);
	return 0;
}

int reg_do(struct reg_sess *s, struct reg_rq *rq, struct bh_err *err)
{
	if (perform(s, rq, s->authz, NULL, err) < 0)
		return -1;
	if (rq->status != 401 || rq->www_auth[0] == '\0')
		return 0;
	if (authenticate(s, rq->www_auth, err) < 0)
		return -1;
	if (rq->file && fseek(rq->file, 0, SEEK_SET) != 0)
		return bh_err_sys(err, errno, "rewind upload");
	if (rq->body)
		bh_buf_reset(rq->body);
	return perform(s, rq, s->authz, NULL, err);
}

int reg_sess_connect(struct reg_sess *s, struct bh_err *err)
{
	struct reg_rq rq = {.method = "GET", .url = "/v2/"};
	int rc = 0, r;

	free(s->base);
	s->base = bh_asprintf("https://%s", s->host);
	r = perform(s, &rq, NULL, &rc, err);
	/* A registry that speaks no TLS at all answers the handshake with plain
	 * HTTP ("wrong version number"); certificate problems never fall back. */
	if (r < 0 && rc == CURLE_SSL_CONNECT_ERROR && s->insecure_ok &&
	    strstr(err->msg, "wrong version number")) {
		free(s->base);
		s->base = bh_asprintf("http://%s", s->host);
		r = perform(s, &rq, NULL, NULL, err);
	}
	if (r == 0 && rq.status == 401 && rq.www_auth[0])
		r = authenticate(s, rq.www_auth, err);
	else if (r == 0 && rq.status != 200)
		r = reg_status_err(&rq, err, "registry %s: GET /v2/", s->host);
	reg_rq_free(&rq);
	return r;
}

/* ---- errors ---------------------------------------------------------------------- */

void reg_error_text(const struct reg_rq *rq, char *out, size_t outlen)
{
	json_t *o = rq->errbody.len ? json_loadb(rq->errbody.data, rq->errbody.len, 0, NULL) : NULL;
	json_t *e = json_array_get(json_object_get(o, "errors"), 0);
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (msg != NULL)
		snprintf(out, outlen, "%s", msg);
	else if (code != NULL)
		snprintf(out, outlen, "%s", code);
	else
		snprintf(out, outlen, "HTTP %ld", rq->status);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	json_decref(o);
}

int reg_status_err(const struct reg_rq *rq, struct bh_err *err, const char *fmt, ...)
{
	char what[512], text[512];
	va_list ap;
	int code = rq->status == 404                          ? ENOENT
	           : (rq->status == 401 || rq->status == 403) ? EACCES
	                                                      : EIO;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	reg_error_text(rq, text, sizeof(text));
	if (code == EACCES && strstr(text, "unauthorized") == NULL &&
	    strstr(text, "denied") == NULL)
		return bh_err_set(err, code, "%s: unauthorized: %s", what, text);
	return bh_err_set(err, code, "%s: %s", what, text);
}
