/* client: the stream client's connection.  tcp:// is TLS on OpenSSL with the
 * target's CA only (never the system store), its client cert and key, the
 * host name or IP checked against the server cert, ALPN http/1.1; unix:// is
 * the socket as is.  Then the WebSocket upgrade (RFC 6455 section 4) by hand
 * and frames through ws_frame.c: see the comment there for why this is not
 * the lws client.  Sockets are POSIX (BSD sockets exist on macOS; a Windows
 * port swaps in Winsock here).  The server is untrusted: the reply head is
 * bounded and its key checked. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/client-internal.h"

#define HEAD_MAX        (16 * 1024) /* the upgrade reply's status line and headers */
#define ERR_BODY_MAX    (64 * 1024) /* an error reply's body */
#define CONNECT_TIMEOUT 15000
#ifdef MSG_NOSIGNAL
#define CLI_MSG_NOSIGNAL MSG_NOSIGNAL
#else /* macOS: SIGPIPE is ignored by main() */
#define CLI_MSG_NOSIGNAL 0
#endif
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct cli_ws {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	struct cli_ws_rx rx;
	uint8_t *out; /* framed and masked bytes not yet written */
	size_t out_len, out_off, out_cap;
	bool want_write_on_read; /* TLS: SSL_read asked for POLLOUT */
	bool read_blocked;       /* the last read wanted the socket: poll() */
	bool eof;
	cli_ws_msg_fn user_fn; /* binary messages and the close go here */
	void *user_arg;
};

/* ---- transport ----------------------------------------------------------- */

static int ssl_fail(struct bh_err *err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return bh_err_set(err, EPROTO, "%s: %s", what, buf[0] ? buf : "TLS failure");
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline, struct bh_err *err)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = (int64_t)(deadline - bh_now_ms());
	int r;

	if (left <= 0)
		return bh_err_set(err, ETIMEDOUT, "timed out");
	do
		r = poll(&p, 1, (int)left);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return bh_err_set(err, ETIMEDOUT, "timed out");
	return r < 0 ? bh_err_sys(err, errno, "poll") : 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int connect_unix(const char *path, struct bh_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (bh_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
		return bh_err_set(err, ENAMETOOLONG, "socket path too long: %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return bh_err_sys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return bh_err_sys(err, e, "cannot connect to %s", path);
	}
	return fd;
}

/* A non-blocking connect to one address, bounded by the deadline. */
static int connect_addr(const struct addrinfo *ai, uint64_t deadline, struct bh_err *err)
{
	int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return bh_err_sys(err, errno, "socket");
	if (set_nonblock(fd) < 0 ||
	    (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
		bh_err_sys(err, errno, "connect");
		close(fd);
		return -1;
	}
	if (wait_fd(fd, POLLOUT, deadline, err) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
		if (soerr != 0)
			bh_err_sys(err, soerr, "connect");
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *host, const char *port, uint64_t deadline, struct bh_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	int fd = -1, r;

	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return bh_err_set(err, EHOSTUNREACH, "cannot resolve %s: %s", host,
		                  gai_strerror(r));
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = connect_addr(ai, deadline, err);
	freeaddrinfo(res);
	return fd;
}

/* tcp://HOST:PORT or tcp://[V6]:PORT into host and port. */
static int split_host(const char *url, char *host, size_t hl, char *port, size_t pl,
                      struct bh_err *err)
{
	const char *h = url + strlen("tcp://"), *colon, *end;

	if (h[0] == '[') {
		end = strchr(h, ']');
		if (end == NULL || end[1] != ':')
			return bh_err_set(err, EINVAL, "bad host %s", url);
		colon = end + 1;
		h++;
	} else {
		colon = strrchr(h, ':');
		end = colon;
	}
	if (colon == NULL || (size_t)(end - h) >= hl || strlen(colon + 1) >= pl)
		return bh_err_set(err, EINVAL, "bad host %s", url);
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	bh_strlcpy(port, colon + 1, pl);
	return 0;
}

/* ---- TLS material from memory (t->pem): no file names, no prompts ---- */

/* An encrypted key must fail, not ask on the terminal (CI has none). */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

static BIO *mem_bio(const char *data, size_t len)
{
	return len > INT32_MAX ? NULL : BIO_new_mem_buf(data, (int)len);
}

/* Every certificate of the CA PEM becomes a trust anchor; none of the
 * system's. */
static int load_ca(SSL_CTX *ctx, const struct ctx_tls_pem *pem, struct bh_err *err)
{
	BIO *b = mem_bio(pem->ca, pem->ca_len);
	STACK_OF(X509_INFO) *infos = b ? PEM_X509_INFO_read_bio(b, NULL, no_passphrase, NULL) : NULL;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int added = 0;

	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);
		if (xi->x509 != NULL && X509_STORE_add_cert(store, xi->x509) == 1)
			added++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(b);
	if (added == 0)
		return ssl_fail(err, "the context's CA certificate");
	return 0;
}

/* The client cert, then any intermediates after it in the same PEM. */
static int load_cert(SSL_CTX *ctx, const struct ctx_tls_pem *pem, struct bh_err *err)
{
	BIO *b = mem_bio(pem->cert, pem->cert_len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
	int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;

	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			ok = 0;
		}
	BIO_free(b);
	if (!ok)
		return ssl_fail(err, "the context's client certificate");
	ERR_clear_error(); /* the end of the PEM reads as an error */
	return 0;
}

static int load_key(SSL_CTX *ctx, const struct ctx_tls_pem *pem, struct bh_err *err)
{
	BIO *b = mem_bio(pem->key, pem->key_len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
	int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;

	EVP_PKEY_free(k);
	BIO_free(b);
	if (!ok)
		return ssl_fail(err, "the context's key (not PEM, or encrypted)");
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ssl_fail(err, "the context's key does not match its certificate");
	return 0;
}

static int tls_context(struct cli_ws *ws, const struct ctx_target *t, struct bh_err *err)
{
	static const unsigned char alpn[] = "\x08http/1.1";

	ws->ctx = SSL_CTX_new(TLS_client_method());
	if (ws->ctx == NULL)
		return ssl_fail(err, "TLS context");
	SSL_CTX_set_min_proto_version(ws->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ws->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ws->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (load_ca(ws->ctx, &t->pem, err) < 0 || load_cert(ws->ctx, &t->pem, err) < 0 ||
	    load_key(ws->ctx, &t->pem, err) < 0)
		return -1;
	SSL_CTX_set_alpn_protos(ws->ctx, alpn, sizeof(alpn) - 1);
	return 0;
}

/* The server cert must name the host we dialled: a DNS name or an IP SAN. */
static int tls_peer_name(struct cli_ws *ws, const char *host, struct bh_err *err)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(ws->ssl);
	unsigned char ip[16];

	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
			return ssl_fail(err, "TLS peer address");
		return 0;
	}
	if (SSL_set_tlsext_host_name(ws->ssl, host) != 1 || SSL_set1_host(ws->ssl, host) != 1)
		return ssl_fail(err, "TLS peer name");
	return 0;
}

static int tls_handshake(struct cli_ws *ws, uint64_t deadline, struct bh_err *err)
{
	int r, e;

	/* A stream's output arrives as 16 KiB records back to back: with read
	 * ahead one read() takes up to CLI_WS_TLS_READ of them instead of two
	 * read()s per record (header, body).  Records OpenSSL then holds are
	 * invisible to poll(): cli_ws_read drains them (SSL_has_pending). */
	SSL_set_read_ahead(ws->ssl, 1);
	SSL_set_default_read_buffer_len(ws->ssl, CLI_WS_TLS_READ);
	while ((r = SSL_connect(ws->ssl)) != 1) {
		e = SSL_get_error(ws->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (wait_fd(ws->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline,
			            err) < 0)
				return bh_err_wrap(err, "TLS handshake");
			continue;
		}
		if (SSL_get_verify_result(ws->ssl) != X509_V_OK)
			return bh_err_set(
			    err, EPERM, "TLS handshake: the server certificate is not trusted: %s",
			    X509_verify_cert_error_string(SSL_get_verify_result(ws->ssl)));
		return ssl_fail(err, "TLS handshake (the daemon may have refused our certificate)");
	}
	return 0;
}

static int open_transport(struct cli_ws *ws, const struct ctx_target *t, uint64_t deadline,
                          struct bh_err *err)
{
	char host[256], port[16];

	if (bh_str_has_prefix(t->host, "unix://")) {
		ws->fd = connect_unix(t->host + strlen("unix://"), err);
		return ws->fd < 0 || set_nonblock(ws->fd) < 0 ? -1 : 0;
	}
	if (split_host(t->host, host, sizeof(host), port, sizeof(port), err) < 0)
		return -1;
	if (t->pem.ca == NULL || t->pem.cert == NULL || t->pem.key == NULL)
		return bh_err_set(err, EINVAL, "%s needs TLS material (ca, cert, key)", t->host);
	ws->fd = connect_tcp(host, port, deadline, err);
	if (ws->fd < 0 || tls_context(ws, t, err) < 0)
		return -1;
	ws->ssl = SSL_new(ws->ctx);
	if (ws->ssl == NULL || SSL_set_fd(ws->ssl, ws->fd) != 1)
		return ssl_fail(err, "TLS");
	if (tls_peer_name(ws, host, err) < 0)
		return -1;
	return tls_handshake(ws, deadline, err);
}

/* > 0 bytes, 0 at end of stream, CLI_WS_AGAIN when nothing is ready, < 0. */
static ssize_t io_read(struct cli_ws *ws, void *buf, size_t len, struct bh_err *err)
{
	ssize_t n;
	int r, e;

	if (ws->ssl == NULL) {
		n = read(ws->fd, buf, len);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return CLI_WS_AGAIN;
		return n < 0 ? bh_err_sys(err, errno, "read from the daemon") : n;
	}
	ws->want_write_on_read = false;
	ws->read_blocked = false;
	r = SSL_read(ws->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (r > 0)
		return r;
	e = SSL_get_error(ws->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ws->read_blocked = true; /* what OpenSSL holds is a partial record */
		return CLI_WS_AGAIN;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		ws->want_write_on_read = true;
		return CLI_WS_AGAIN;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return errno == 0 ? 0 : bh_err_sys(err, errno, "read from the daemon");
	return ssl_fail(err, "read from the daemon");
}

static ssize_t io_write(struct cli_ws *ws, const void *buf, size_t len, struct bh_err *err)
{
	ssize_t n;
	int r, e;

	if (ws->ssl == NULL) {
		n = send(ws->fd, buf, len, CLI_MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return CLI_WS_AGAIN;
		return n < 0 ? bh_err_sys(err, errno, "write to the daemon") : n;
	}
	r = SSL_write(ws->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (r > 0)
		return r;
	e = SSL_get_error(ws->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return CLI_WS_AGAIN;
	return ssl_fail(err, "write to the daemon");
}

/* ---- frames out ---------------------------------------------------------- */

static int out_reserve(struct cli_ws *ws, size_t more, struct bh_err *err)
{
	if (ws->out_off > 0 && ws->out_off == ws->out_len)
		ws->out_off = ws->out_len = 0;
	if (ws->out_len + more <= ws->out_cap)
		return 0;
	if (ws->out_len - ws->out_off + more > CLI_WS_OUT_MAX)
		return bh_err_set(err, ENOBUFS, "websocket: output queue over %d bytes",
		                  CLI_WS_OUT_MAX);
	if (ws->out_off > 0) {
		memmove(ws->out, ws->out + ws->out_off, ws->out_len - ws->out_off);
		ws->out_len -= ws->out_off;
		ws->out_off = 0;
	}
	if (ws->out_len + more > ws->out_cap) {
		size_t cap = ws->out_cap * 2;
		ws->out_cap = cap > ws->out_len + more ? cap : ws->out_len + more;
		ws->out = bh_realloc(ws->out, ws->out_cap);
	}
	return 0;
}

/* One masked frame of opcode with prefix and data as its payload, queued. */
static int queue_frame(struct cli_ws *ws, int opcode, const void *prefix, size_t plen,
                       const void *data, size_t len, struct bh_err *err)
{
	uint8_t mask[4], hdr[CLI_WS_HDR_MAX], *p;
	size_t hl;

	if (RAND_bytes(mask, sizeof(mask)) != 1)
		return ssl_fail(err, "websocket mask");
	hl = cli_ws_header(hdr, opcode, true, plen + len, mask);
	if (out_reserve(ws, hl + plen + len, err) < 0)
		return -1;
	p = ws->out + ws->out_len;
	memcpy(p, hdr, hl);
	if (plen > 0)
		memcpy(p + hl, prefix, plen);
	if (len > 0)
		memcpy(p + hl + plen, data, len);
	cli_ws_mask(p + hl, plen + len, mask, 0);
	ws->out_len += hl + plen + len;
	return 0;
}

int cli_ws_send(struct cli_ws *ws, const void *prefix, size_t plen, const void *data, size_t len,
                struct bh_err *err)
{
	return queue_frame(ws, CLI_WS_OP_BINARY, prefix, plen, data, len, err);
}

size_t cli_ws_pending(const struct cli_ws *ws)
{
	return ws->out_len - ws->out_off;
}

int cli_ws_flush(struct cli_ws *ws, struct bh_err *err)
{
	ssize_t n;

	while (ws->out_off < ws->out_len) {
		n = io_write(ws, ws->out + ws->out_off, ws->out_len - ws->out_off, err);
		if (n == CLI_WS_AGAIN)
			return 0;
		if (n < 0)
			return -1;
		ws->out_off += (size_t)n;
	}
	return 0;
}

/* Writes everything queued, waiting at most until deadline. */
static int flush_all(struct cli_ws *ws, uint64_t deadline, struct bh_err *err)
{
	while (cli_ws_pending(ws) > 0) {
		if (cli_ws_flush(ws, err) < 0)
			return -1;
		if (cli_ws_pending(ws) > 0 && wait_fd(ws->fd, POLLOUT, deadline, err) < 0)
			return -1;
	}
	return 0;
}

int cli_ws_fd(const struct cli_ws *ws)
{
	return ws->fd;
}

bool cli_ws_wants_write(const struct cli_ws *ws)
{
	return cli_ws_pending(ws) > 0 || ws->want_write_on_read;
}

/* ---- frames in ----------------------------------------------------------- */

/* Pings are answered, a close is echoed; binary messages go to the user. */
static int on_frame(void *arg, int opcode, uint8_t *data, size_t len, struct bh_err *err)
{
	struct cli_ws *ws = arg;

	switch (opcode) {
	case CLI_WS_OP_PING:
		return queue_frame(ws, CLI_WS_OP_PONG, NULL, 0, data, len, err);
	case CLI_WS_OP_PONG:
		return 0;
	case CLI_WS_OP_CLOSE:
		ws->rx.stopped = true;
		ws->eof = true;
		return ws->user_fn(ws->user_arg, CLI_WS_OP_CLOSE, data, len, err);
	case CLI_WS_OP_BINARY:
		return ws->user_fn(ws->user_arg, opcode, data, len, err);
	default:
		return bh_err_set(err, EPROTO, "websocket: text message (the protocol is binary)");
	}
}

/* Reads what is ready (a bounded number of reads, so writes get their turn) and
 * dispatches complete messages.  1 at end of stream or after a close frame. */
int cli_ws_read(struct cli_ws *ws, struct bh_err *err)
{
	uint8_t *at;
	size_t space;
	ssize_t n;

	/* TLS hands out one record per read; bytes OpenSSL holds already
	 * (decrypted or read ahead) would not wake poll(), so those are
	 * always taken. */
	for (int round = 0; !ws->eof && (round < 32 || (ws->ssl && SSL_has_pending(ws->ssl)));
	     round++) {
		space = cli_ws_rx_space(&ws->rx, &at);
		n = io_read(ws, at, space, err);
		if (n == CLI_WS_AGAIN)
			return 0;
		if (n < 0)
			return -1;
		if (n == 0) {
			ws->eof = true;
			break;
		}
		if (cli_ws_rx_commit(&ws->rx, (size_t)n, err) < 0)
			return -1;
	}
	return ws->eof ? 1 : 0;
}

bool cli_ws_buffered(const struct cli_ws *ws)
{
	return ws->ssl != NULL && !ws->read_blocked && !ws->eof && SSL_has_pending(ws->ssl);
}

/* Sends a close frame (code, e.g. 1000) and waits briefly for it to leave. */
void cli_ws_close(struct cli_ws *ws, int code)
{
	uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	struct bh_err err = {0};

	if (ws == NULL || ws->fd < 0)
		return;
	if (queue_frame(ws, CLI_WS_OP_CLOSE, NULL, 0, c, sizeof(c), &err) == 0)
		flush_all(ws, bh_now_ms() + 2000, &err);
	if (ws->ssl != NULL)
		SSL_shutdown(ws->ssl);
}

void cli_ws_free(struct cli_ws *ws)
{
	if (ws == NULL)
		return;
	if (ws->ssl != NULL)
		SSL_free(ws->ssl);
	if (ws->ctx != NULL)
		SSL_CTX_free(ws->ctx);
	if (ws->fd >= 0)
		close(ws->fd);
	cli_ws_rx_free(&ws->rx);
	free(ws->out);
	free(ws);
}

/* ---- the upgrade --------------------------------------------------------- */

static void make_key(char key[32], char accept[32])
{
	uint8_t raw[16], sha[20];
	char cat[64];

	RAND_bytes(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
	EVP_Digest(cat, strlen(cat), sha, NULL, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)accept, sha, sizeof(sha));
}

/* No Sec-WebSocket-Protocol: streams.md makes it optional, and berthd's lws
 * drops an upgrade that offers one it does not list. */
static int send_upgrade(struct cli_ws *ws, const struct ctx_target *t, const char *path,
                        const char *key, uint64_t deadline, struct bh_err *err)
{
	const char *host = bh_str_has_prefix(t->host, "tcp://") ? t->host + 6 : "localhost";
	cleanup_free char *req = bh_asprintf("GET /v%s%s HTTP/1.1\r\n"
	                                     "Host: %s\r\n"
	                                     "Upgrade: websocket\r\n"
	                                     "Connection: Upgrade\r\n"
	                                     "Sec-WebSocket-Key: %s\r\n"
	                                     "Sec-WebSocket-Version: 13\r\n"
	                                     "User-Agent: berth/" BERTH_VERSION "\r\n\r\n",
	                                     BERTH_API_VERSION, path, host, key);
	size_t len = strlen(req);

	if (out_reserve(ws, len, err) < 0)
		return -1;
	memcpy(ws->out + ws->out_len, req, len);
	ws->out_len += len;
	return flush_all(ws, deadline, err);
}

/* Reads until the end of the reply head; returns its length (with the blank
 * line).  Bytes after it stay in the frame buffer. */
static int read_head(struct cli_ws *ws, uint64_t deadline, struct bh_err *err)
{
	const char *end;
	ssize_t n;

	for (;;) {
		end = ws->rx.len >= 4 ? memmem(ws->rx.buf, ws->rx.len, "\r\n\r\n", 4) : NULL;
		if (end != NULL)
			return (int)((const uint8_t *)end - ws->rx.buf) + 4;
		if (ws->rx.len >= HEAD_MAX)
			return bh_err_set(err, EPROTO, "the daemon's reply head is over %d bytes",
			                  HEAD_MAX);
		n = io_read(ws, ws->rx.buf + ws->rx.len, HEAD_MAX - ws->rx.len, err);
		if (n == 0)
			return bh_err_set(err, ECONNRESET, "the daemon closed the connection");
		if (n == CLI_WS_AGAIN) {
			if (wait_fd(ws->fd, ws->want_write_on_read ? POLLOUT : POLLIN, deadline,
			            err) < 0)
				return bh_err_wrap(err, "waiting for the upgrade reply");
			continue;
		}
		if (n < 0)
			return -1;
		ws->rx.len += (size_t)n;
	}
}

/* The value of header name in head (case-insensitive), copied into out. */
static bool head_value(const char *head, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), i = 0;
	const char *p = strstr(head, "\r\n");

	while (p != NULL && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ' || *v == '\t')
				v++;
			for (; v < e && i + 1 < outlen; v++)
				out[i++] = *v;
			while (i > 0 && (out[i - 1] == ' ' || out[i - 1] == '\t'))
				i--;
			out[i] = '\0';
			return true;
		}
		p = strstr(p, "\r\n");
	}
	return false;
}

/* A refused upgrade: the JSON error body, for the caller's message. */
static int read_error_body(struct cli_ws *ws, const char *head, size_t hlen, uint64_t deadline,
                           struct bh_buf *body, struct bh_err *err)
{
	char v[32];
	long want = 0;
	ssize_t n;

	if (head_value(head, "Content-Length", v, sizeof(v)))
		bh_parse_long(v, 0, ERR_BODY_MAX, &want);
	bh_buf_append(body, ws->rx.buf + hlen, ws->rx.len - hlen);
	while ((long)body->len < want) {
		uint8_t tmp[4096];
		n = io_read(ws, tmp, sizeof(tmp), err);
		if (n == CLI_WS_AGAIN) {
			if (wait_fd(ws->fd, POLLIN, deadline, err) < 0)
				return 0;
			continue;
		}
		if (n <= 0 || bh_buf_append(body, tmp, (size_t)n) < 0)
			break;
	}
	return 0;
}

static int check_upgrade(const char *head, const char *accept, struct bh_err *err)
{
	char v[128];

	if (!head_value(head, "Upgrade", v, sizeof(v)) || strcasecmp(v, "websocket") != 0)
		return bh_err_set(err, EPROTO, "the daemon's 101 reply is not a websocket upgrade");
	if (!head_value(head, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, accept) != 0)
		return bh_err_set(err, EPROTO, "the daemon's websocket accept key is wrong");
	return 0;
}

static int upgrade(struct cli_ws *ws, const struct ctx_target *t, const char *path,
                   uint64_t deadline, struct bh_buf *body, struct bh_err *err)
{
	char key[32], accept[32];
	cleanup_free char *head = NULL;
	int hlen, status = 0;

	make_key(key, accept);
	if (send_upgrade(ws, t, path, key, deadline, err) < 0)
		return bh_err_wrap(err, "sending the upgrade");
	hlen = read_head(ws, deadline, err);
	if (hlen < 0)
		return -1;
	head = bh_strndup((const char *)ws->rx.buf, (size_t)hlen);
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599)
		return bh_err_set(err, EPROTO, "the daemon's reply has no HTTP status");
	if (status != 101)
		return read_error_body(ws, head, (size_t)hlen, deadline, body, err) < 0 ? -1
		                                                                        : status;
	if (check_upgrade(head, accept, err) < 0)
		return -1;
	memmove(ws->rx.buf, ws->rx.buf + hlen, ws->rx.len - (size_t)hlen);
	ws->rx.len -= (size_t)hlen;
	return 101;
}

/* ---- a request before the upgrade (the prelude) ------------------------- */

static int send_prelude(struct cli_ws *ws, const struct ctx_target *t,
                        const struct cli_ws_prelude *p, uint64_t deadline, struct bh_err *err)
{
	const char *host = bh_str_has_prefix(t->host, "tcp://") ? t->host + 6 : "localhost";
	cleanup_free char *head =
	    bh_asprintf("%s /v%s%s HTTP/1.1\r\n"
	                "Host: %s\r\n"
	                "Content-Type: application/json\r\n"
	                "Content-Length: %zu\r\n"
	                "User-Agent: berth/" BERTH_VERSION "\r\n\r\n",
	                p->method, BERTH_API_VERSION, p->path, host, p->body_len);
	size_t hl = strlen(head);

	if (out_reserve(ws, hl + p->body_len, err) < 0)
		return -1;
	memcpy(ws->out + ws->out_len, head, hl);
	memcpy(ws->out + ws->out_len + hl, p->body, p->body_len);
	ws->out_len += hl + p->body_len;
	return flush_all(ws, deadline, err);
}

/* Drops the first n bytes of the frame buffer. */
static void rx_consume(struct cli_ws *ws, size_t n)
{
	memmove(ws->rx.buf, ws->rx.buf + n, ws->rx.len - n);
	ws->rx.len -= n;
}

/* The prelude's reply: its status, and its body (Content-Length, at most
 * ERR_BODY_MAX: the daemon is untrusted) into body.  The connection then
 * holds nothing of it, ready for the upgrade. */
static int read_prelude_reply(struct cli_ws *ws, uint64_t deadline, struct bh_buf *body,
                              struct bh_err *err)
{
	int hlen = read_head(ws, deadline, err), status = 0;
	cleanup_free char *head = NULL;
	char v[32];
	long want = -1;
	size_t have;

	if (hlen < 0)
		return -1;
	head = bh_strndup((const char *)ws->rx.buf, (size_t)hlen);
	rx_consume(ws, (size_t)hlen);
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599)
		return bh_err_set(err, EPROTO, "the daemon's reply has no HTTP status");
	if (!head_value(head, "Content-Length", v, sizeof(v)) ||
	    bh_parse_long(v, 0, ERR_BODY_MAX, &want) < 0)
		return bh_err_set(err, EPROTO,
		                  "the daemon's %d reply has no Content-Length up to %d", status,
		                  ERR_BODY_MAX);
	have = ws->rx.len < (size_t)want ? ws->rx.len : (size_t)want;
	bh_buf_append(body, ws->rx.buf, have);
	rx_consume(ws, have);
	while ((long)body->len < want) {
		uint8_t tmp[4096];
		size_t room = (size_t)want - body->len;
		ssize_t n = io_read(ws, tmp, room < sizeof(tmp) ? room : sizeof(tmp), err);

		if (n == CLI_WS_AGAIN) {
			if (wait_fd(ws->fd, ws->want_write_on_read ? POLLOUT : POLLIN, deadline,
			            err) < 0)
				return bh_err_wrap(err, "waiting for the daemon's reply");
			continue;
		}
		if (n == 0)
			return bh_err_set(err, ECONNRESET, "the daemon closed the connection");
		if (n < 0 || bh_buf_append(body, tmp, (size_t)n) < 0)
			return -1;
	}
	return status;
}

/* The prelude, then the path its reply names: 0 with *path, the daemon's
 * refusing status (>= 300, its body in body), or < 0. */
static int run_prelude(struct cli_ws *ws, const struct ctx_target *t,
                       const struct cli_ws_prelude *p, uint64_t deadline, char **path,
                       struct bh_buf *body, struct bh_err *err)
{
	int status;

	if (send_prelude(ws, t, p, deadline, err) < 0)
		return bh_err_wrap(err, "sending %s %s", p->method, p->path);
	status = read_prelude_reply(ws, deadline, body, err);
	if (status < 0 || status >= 300)
		return status;
	*path = p->then(p->arg, body, err);
	bh_buf_free(body);
	bh_buf_init(body, ERR_BODY_MAX);
	return *path == NULL ? -1 : 0;
}

int cli_ws_connect(const struct ctx_target *t, const char *path, cli_ws_msg_fn fn, void *arg,
                   struct cli_ws **out, struct bh_buf *body, struct bh_err *err)
{
	return cli_ws_connect_after(t, NULL, path, fn, arg, out, body, err);
}

int cli_ws_connect_after(const struct ctx_target *t, const struct cli_ws_prelude *pre,
                         const char *path, cli_ws_msg_fn fn, void *arg, struct cli_ws **out,
                         struct bh_buf *body, struct bh_err *err)
{
	struct cli_ws *ws = bh_calloc(1, sizeof(*ws));
	uint64_t deadline = bh_now_ms() + CONNECT_TIMEOUT;
	cleanup_free char *pre_path = NULL;
	int status;

	*out = NULL;
	bh_buf_init(body, ERR_BODY_MAX);
	ws->fd = -1;
	ws->user_fn = fn;
	ws->user_arg = arg;
	cli_ws_rx_init(&ws->rx, CLI_STREAM_MSG_MAX, on_frame, ws);
	if (open_transport(ws, t, deadline, err) < 0) {
		cli_ws_free(ws);
		return bh_err_wrap(err, "cannot connect to berthd at %s", t->host);
	}
	if (pre != NULL) {
		status = run_prelude(ws, t, pre, deadline, &pre_path, body, err);
		if (status != 0) {
			cli_ws_free(ws);
			return status < 0 ? bh_err_wrap(err, "%s", t->host) : status;
		}
		path = pre_path;
	}
	status = upgrade(ws, t, path, deadline, body, err);
	if (status != 101) {
		cli_ws_free(ws);
		return status < 0 ? bh_err_wrap(err, "%s", t->host) : status;
	}
	*out = ws;
	return 101;
}

/* Frames that came with the upgrade reply are in the buffer already. */
int cli_ws_dispatch_buffered(struct cli_ws *ws, struct bh_err *err)
{
	return cli_ws_rx_commit(&ws->rx, 0, err);
}
