/* The router: ONE table of {method, pattern, handler}.  Paths arrive decoded
 * by lws and are matched segment by segment; {name} captures one segment. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

const struct srv_route srv_routes[] = {
    {SRV_GET, "/_ping", srv_h_ping, 0, SRV_ROLE_VIEWER},
    {SRV_HEAD, "/_ping", srv_h_ping, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/version", srv_h_version, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/info", srv_h_info, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/events", srv_h_events, 0, SRV_ROLE_VIEWER},
    {SRV_POST, "/containers/create", srv_h_container_create, 0, SRV_ROLE_OPERATOR},
    {SRV_GET, "/containers/json", srv_h_container_list, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/containers/{id}/json", srv_h_container_inspect, 0, SRV_ROLE_VIEWER},
    {SRV_POST, "/containers/{id}/start", srv_h_container_start, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/containers/{id}/stop", srv_h_container_stop, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/containers/{id}/restart", srv_h_container_restart, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/containers/{id}/kill", srv_h_container_kill, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/containers/{id}/wait", srv_h_container_wait, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/containers/{id}/logs", srv_h_container_logs, 0, SRV_ROLE_VIEWER},
    {SRV_DELETE, "/containers/{id}", srv_h_container_delete, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/containers/{id}/exec", srv_h_exec_create, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/exec/{id}/start", srv_h_exec_start, 0, SRV_ROLE_OPERATOR},
    {SRV_GET, "/exec/{id}/json", srv_h_exec_inspect, 0, SRV_ROLE_VIEWER},
    {SRV_POST, "/exec/{id}/resize", srv_h_exec_resize, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/exec/{id}/kill", srv_h_exec_kill, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/load", srv_h_image_load, SRV_BODY_SPOOL | SRV_IMAGE_LOAD_MAX,
     SRV_ROLE_OPERATOR},
    {SRV_GET, "/images/json", srv_h_image_list, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{name}/json", srv_h_image_inspect, 0, SRV_ROLE_VIEWER},
    {SRV_DELETE, "/images/{name}", srv_h_image_delete, 0, SRV_ROLE_OPERATOR},
    /* archives (h_images_archive.c) */
    {SRV_GET, "/images/get", srv_h_image_get, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{name}/get", srv_h_image_get_one, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{name}/history", srv_h_image_history, 0, SRV_ROLE_VIEWER},
    {SRV_POST, "/images/prune", srv_h_image_prune, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/commit", srv_h_commit, 0, SRV_ROLE_OPERATOR},
    {SRV_GET, "/containers/{id}/export", srv_h_container_export, 0, SRV_ROLE_OPERATOR},
    {SRV_GET, "/_berth/store/check", srv_h_store_check, 0, SRV_ROLE_VIEWER},
    /* trust management (h_trust.c) */
    {SRV_GET, "/_berth/trust", srv_h_trust_list, 0, SRV_ROLE_ADMIN},
    {SRV_POST, "/_berth/trust", srv_h_trust_add, 0, SRV_ROLE_ADMIN},
    {SRV_DELETE, "/_berth/trust/{name_or_fp}", srv_h_trust_revoke, 0, SRV_ROLE_ADMIN},
    /* enrollment (h_enroll.c): tokens, CSR -> certificate, renewal */
    {SRV_POST, "/_berth/trust/tokens", srv_h_trust_token, 64 * 1024, SRV_ROLE_ADMIN},
    {SRV_POST, "/_berth/enroll", srv_h_enroll, 64 * 1024, SRV_ROLE_ENROLL},
    {SRV_POST, "/_berth/renew", srv_h_renew, 64 * 1024, SRV_ROLE_VIEWER},
    /* image names with '/' (registry/repo:tag): joined into {name} (h_images_archive.c) */
    {SRV_GET, "/images/{n1}/{n2}/json", srv_h_image_inspect_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/json", srv_h_image_inspect_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/{n4}/json", srv_h_image_inspect_path, 0, SRV_ROLE_VIEWER},
    {SRV_DELETE, "/images/{n1}/{n2}", srv_h_image_delete_path, 0, SRV_ROLE_OPERATOR},
    {SRV_DELETE, "/images/{n1}/{n2}/{n3}", srv_h_image_delete_path, 0, SRV_ROLE_OPERATOR},
    {SRV_DELETE, "/images/{n1}/{n2}/{n3}/{n4}", srv_h_image_delete_path, 0, SRV_ROLE_OPERATOR},
    {SRV_GET, "/images/{n1}/{n2}/history", srv_h_image_history_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/history", srv_h_image_history_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/{n4}/history", srv_h_image_history_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/get", srv_h_image_get_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/get", srv_h_image_get_path, 0, SRV_ROLE_VIEWER},
    {SRV_GET, "/images/{n1}/{n2}/{n3}/{n4}/get", srv_h_image_get_path, 0, SRV_ROLE_VIEWER},
    /* registry (h_registry.c); a name may hold up to four '/'-separated parts */
    /* spooled: import (fromSrc=-) sends the tar as the body; pull sends none */
    {SRV_POST, "/images/create", srv_h_image_create, SRV_BODY_SPOOL | SRV_IMAGE_LOAD_MAX,
     SRV_ROLE_OPERATOR},
    {SRV_POST, "/auth", srv_h_auth, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/push", srv_h_image_push, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/push", srv_h_image_push, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/{n3}/push", srv_h_image_push, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/{n3}/{n4}/push", srv_h_image_push, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/tag", srv_h_image_tag, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/tag", srv_h_image_tag, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/{n3}/tag", srv_h_image_tag, 0, SRV_ROLE_OPERATOR},
    {SRV_POST, "/images/{n1}/{n2}/{n3}/{n4}/tag", srv_h_image_tag, 0, SRV_ROLE_OPERATOR},
};
const size_t srv_n_routes = sizeof(srv_routes) / sizeof(srv_routes[0]);

/* "1.43" -> 143-style comparable pair; -1 on junk. */
static int parse_version(const char *s, size_t len, long *major, long *minor)
{
	char buf[16];
	char *dot;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	dot = strchr(buf, '.');
	if (dot == NULL)
		return -1;
	*dot = '\0';
	if (bh_parse_long(buf, 0, 1000, major) < 0 || bh_parse_long(dot + 1, 0, 1000, minor) < 0)
		return -1;
	return 0;
}

static int version_cmp(long amaj, long amin, const char *b)
{
	long bmaj, bmin;

	if (parse_version(b, strlen(b), &bmaj, &bmin) < 0)
		return 0;
	if (amaj != bmaj)
		return amaj < bmaj ? -1 : 1;
	return amin < bmin ? -1 : (amin > bmin ? 1 : 0);
}

int srv_api_version_strip(const char *path, const char **rest, struct bh_err *err)
{
	const char *v = path + 2;
	size_t len;
	long major, minor;

	*rest = path;
	if (!bh_str_has_prefix(path, "/v") || *v < '0' || *v > '9')
		return 0;
	len = strcspn(v, "/");
	if (parse_version(v, len, &major, &minor) < 0)
		return 0; /* not a version: an ordinary path such as /v2x */
	if (version_cmp(major, minor, BERTH_API_VERSION) > 0)
		return bh_err_set(err, EINVAL,
		                  "client version %.*s is too new. Maximum supported API version "
		                  "is %s",
		                  (int)len, v, BERTH_API_VERSION);
	if (version_cmp(major, minor, BERTH_MIN_API_VERSION) < 0)
		return bh_err_set(err, EINVAL,
		                  "client version %.*s is too old. Minimum supported API version "
		                  "is %s, please upgrade your client to a newer version",
		                  (int)len, v, BERTH_MIN_API_VERSION);
	*rest = v[len] ? v + len : "/";
	return 0;
}

/* Compares one segment; captures {name} into params. */
static bool segment_match(const char *pat, size_t plen, const char *seg, size_t slen,
                          struct srv_params *params)
{
	size_t i;

	if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
		if (slen == 0 || slen >= SRV_PARAM_MAX || params->n >= SRV_MAX_PARAMS ||
		    plen - 2 >= sizeof(params->p[0].name))
			return false;
		i = params->n++;
		memcpy(params->p[i].name, pat + 1, plen - 2);
		params->p[i].name[plen - 2] = '\0';
		memcpy(params->p[i].value, seg, slen);
		params->p[i].value[slen] = '\0';
		return true;
	}
	return plen == slen && memcmp(pat, seg, slen) == 0;
}

static bool path_match(const char *pattern, const char *path, struct srv_params *params)
{
	params->n = 0;
	while (*pattern == '/' && *path == '/') {
		size_t plen = strcspn(pattern + 1, "/");
		size_t slen = strcspn(path + 1, "/");
		if (!segment_match(pattern + 1, plen, path + 1, slen, params))
			return false;
		pattern += 1 + plen;
		path += 1 + slen;
	}
	return *pattern == '\0' && *path == '\0';
}

enum srv_match srv_route_match(const struct srv_route *table, size_t n, enum srv_method m,
                               const char *path, const struct srv_route **out,
                               struct srv_params *params)
{
	struct srv_params scratch;
	bool path_known = false;

	for (size_t i = 0; i < n; i++) {
		if (!path_match(table[i].pattern, path, &scratch))
			continue;
		path_known = true;
		if (table[i].method != m)
			continue;
		*params = scratch;
		*out = &table[i];
		return SRV_MATCH_FOUND;
	}
	return path_known ? SRV_MATCH_BAD_METHOD : SRV_MATCH_NOT_FOUND;
}

static const struct srv_route *table_of(const struct srv_req *req, size_t *n)
{
	if (req->srv != NULL && req->srv->routes != NULL) {
		*n = req->srv->n_routes;
		return req->srv->routes;
	}
	*n = srv_n_routes;
	return srv_routes;
}

static void reply_bad_method(struct srv_req *req)
{
	struct srv_params scratch;
	char allow[64] = "";
	size_t used = 0, n;
	const struct srv_route *table = table_of(req, &n);

	for (size_t i = 0; i < n; i++) {
		if (!path_match(table[i].pattern, req->path, &scratch))
			continue;
		int w = snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
		                 srv_method_name(table[i].method));
		if (w < 0 || (size_t)w >= sizeof(allow) - used)
			break;
		used += (size_t)w;
	}
	srv_resp_header(req, "Allow", allow);
	srv_reply_json(req, 405, json_pack("{s:s}", "message", "method not allowed"));
}

/* THE role check of REST routes, before the body is read or a handler runs. */
static int gate(struct srv_req *req, const struct srv_route *route)
{
	char what[128];
	struct bh_err err;

	bh_err_clear(&err);
	snprintf(what, sizeof(what), "%s %s", srv_method_name(req->method), req->path);
	if (srv_authorize(req->srv, &req->id, route->role, what, &err) == 0)
		return 0;
	bh_info("%s (%s): %s", req->id.text, req->id.addr, err.msg);
	srv_reply_error(req, &err);
	return -1;
}

int srv_route_resolve(struct srv_req *req)
{
	const struct srv_route *route = NULL, *table;
	const char *rest;
	struct bh_err err;
	size_t n;

	bh_err_clear(&err);
	if (srv_api_version_strip(req->path, &rest, &err) < 0) {
		srv_reply_error(req, &err);
		return -1;
	}
	memmove(req->path, rest, strlen(rest) + 1);
	table = table_of(req, &n);
	switch (srv_route_match(table, n, req->method, req->path, &route, &req->params)) {
	case SRV_MATCH_NOT_FOUND:
		srv_reply_errorf(req, ENOENT, "page not found");
		return -1;
	case SRV_MATCH_BAD_METHOD:
		reply_bad_method(req);
		return -1;
	case SRV_MATCH_FOUND:
		break;
	}
	req->route = route;
	if (gate(req, route) < 0)
		return -1;
	req->body.max = route->body_max & ~SRV_BODY_SPOOL;
	if (req->body.max == 0)
		req->body.max = SRV_BODY_MAX_DEFAULT;
	return 0;
}

void srv_handle(struct srv_req *req)
{
	struct bh_err err;

	bh_err_clear(&err);
	if (req->route->fn(req, &err) < 0)
		srv_reply_error(req, &err);
}

void srv_dispatch(struct srv_req *req)
{
	if (srv_route_resolve(req) == 0)
		srv_handle(req);
}
