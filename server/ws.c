/* WebSocket routes on the same port as the REST API.  An upgrade without a
 * subprotocol reaches protocols[0]; its URI is looked up in this table (the
 * place where attach, exec and unknown-size uploads will go).  Frames from
 * the peer are hostile: handlers get them with their length and must bound
 * what they keep. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "server/server-internal.h"

#define FRAME_HDR 5 /* queued frame: [binary flag][u32 length] */

/* /_ws/echo: proves the upgrade path end to end; echoes each frame. */
static int echo_rx(struct srv_ws *ws, const void *data, size_t len, bool binary, bool final)
{
	return srv_ws_send(ws, data, len, binary);
}

static const struct srv_ws_route ws_routes[] = {
    {.pattern = "/_ws/echo", .role = SRV_ROLE_VIEWER, .on_rx = echo_rx},
    /* docs/streams.md */
    {.pattern = "/exec/{id}/ws",
     .role = SRV_ROLE_OPERATOR,
     .check = srv_stream_exec_check,
     .on_open = srv_stream_exec_open,
     .on_rx = srv_stream_ws_rx,
     .on_close = srv_stream_ws_close,
     .on_writeable = srv_stream_ws_writeable},
    {.pattern = "/containers/{id}/attach/ws",
     .role = SRV_ROLE_OPERATOR,
     .check = srv_stream_attach_check,
     .on_open = srv_stream_attach_open,
     .on_rx = srv_stream_ws_rx,
     .on_close = srv_stream_ws_close,
     .on_writeable = srv_stream_ws_writeable},
};

static bool ws_path_match(const char *pattern, const char *path, struct srv_params *params)
{
	struct srv_route one = {SRV_GET, pattern, NULL, 0, SRV_ROLE_ENROLL};
	const struct srv_route *out;

	return srv_route_match(&one, 1, SRV_GET, path, &out, params) == SRV_MATCH_FOUND;
}

int srv_ws_open(struct srv_ws *ws, const char *uri, struct bh_err *err)
{
	const char *path;
	char clean[SRV_PATH_MAX];

	if (bh_strlcpy(clean, uri, sizeof(clean)) < 0)
		return bh_err_set(err, EINVAL, "websocket path too long");
	clean[strcspn(clean, "?")] = '\0';
	if (srv_api_version_strip(clean, &path, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ws_routes) / sizeof(ws_routes[0]); i++) {
		if (!ws_path_match(ws_routes[i].pattern, path, &ws->params))
			continue;
		ws->route = &ws_routes[i];
		if (ws->wsi == NULL || ws->route->on_open == NULL)
			return 0; /* only probing, or nothing to set up */
		return ws->route->on_open(ws, err);
	}
	return bh_err_set(err, ENOENT, "no websocket endpoint %s", path);
}

int srv_ws_send(struct srv_ws *ws, const void *data, size_t len, bool binary)
{
	unsigned char hdr[FRAME_HDR];
	size_t before = ws->out.len;

	if (len > UINT32_MAX)
		return -1;
	hdr[0] = binary;
	hdr[1] = (unsigned char)(len >> 24);
	hdr[2] = (unsigned char)(len >> 16);
	hdr[3] = (unsigned char)(len >> 8);
	hdr[4] = (unsigned char)len;
	if (bh_buf_append(&ws->out, hdr, sizeof(hdr)) < 0 ||
	    bh_buf_append(&ws->out, data, len) < 0) {
		ws->out.len = before; /* a peer that does not read: drop it */
		return -1;
	}
	lws_callback_on_writable(ws->wsi);
	return 0;
}

/* Writes one queued frame per WRITEABLE callback. */
int srv_ws_writeable(struct srv_ws *ws)
{
	const unsigned char *f = (const unsigned char *)ws->out.data + ws->out_off;
	size_t len;
	unsigned char *buf;
	int r;

	if (ws->route != NULL && ws->route->on_writeable != NULL)
		return ws->route->on_writeable(ws);
	if (ws->out.len - ws->out_off < FRAME_HDR)
		return 0;
	len = (size_t)f[1] << 24 | (size_t)f[2] << 16 | (size_t)f[3] << 8 | f[4];
	buf = bh_malloc(LWS_PRE + len + 1);
	memcpy(buf + LWS_PRE, f + FRAME_HDR, len);
	r = lws_write(ws->wsi, buf + LWS_PRE, len, f[0] ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	free(buf);
	if (r < (int)len)
		return -1;
	ws->out_off += FRAME_HDR + len;
	if (ws->out_off == ws->out.len) {
		ws->out.len = 0;
		ws->out_off = 0;
	} else {
		lws_callback_on_writable(ws->wsi);
	}
	return 0;
}

/* Answers a refused upgrade with the HTTP error (JSON), as any route. */
static void filter_reply(struct lws *wsi, const struct bh_err *err)
{
	uint8_t buf[LWS_PRE + 2048];
	uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	json_t *j = json_pack("{s:s}", "message", err->msg);
	char *body = json_dumps(j, JSON_COMPACT);
	size_t len = body ? strlen(body) : 0;

	json_decref(j);
	if (body != NULL &&
	    lws_add_http_common_headers(wsi, (unsigned int)srv_err_status(err->code),
	                                "application/json", len + 1, &p, end) == 0 &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
	                                 5, &p, end) == 0 &&
	    lws_finalize_write_http_header(wsi, start, &p, end) == 0) {
		body[len] = '\n';
		lws_write(wsi, (unsigned char *)body, len + 1, LWS_WRITE_HTTP);
	}
	free(body);
}

int srv_ws_filter(struct lws *wsi, struct srv_server *srv, struct srv_identity *id,
                  const char *uri)
{
	struct srv_ws probe;
	struct bh_err err;
	char what[128];

	memset(&probe, 0, sizeof(probe));
	bh_err_clear(&err);
	if (srv_ws_open(&probe, uri, &err) < 0) {
		bh_err_set(&err, ENOENT, "page not found");
		filter_reply(wsi, &err);
		return 1;
	}
	/* THE role check (srv_authorize), before the upgrade: a viewer's
	 * handcrafted upgrade to an exec stream gets 403, not a stream. */
	snprintf(what, sizeof(what), "websocket %s", probe.route->pattern);
	if (srv_authorize(srv, id, probe.route->role, what, &err) < 0) {
		bh_info("%s (%s): %s", id->text, id->addr, err.msg);
		srv_events_upgrade(id, uri, probe.route->role, srv_err_status(err.code));
		filter_reply(wsi, &err);
		return 1;
	}
	if (probe.route->check != NULL && probe.route->check(srv, &probe.params, &err) < 0) {
		bh_info("websocket %s refused: %s", uri, err.msg);
		srv_events_upgrade(id, uri, probe.route->role, srv_err_status(err.code));
		filter_reply(wsi, &err);
		return 1;
	}
	srv_events_upgrade(id, uri, probe.route->role, 101);
	return 0;
}

void srv_ws_closed(struct srv_ws *ws)
{
	if (ws->route && ws->route->on_close)
		ws->route->on_close(ws);
}
