/* libFuzzer target: what berthd does with a request line before any handler
 * runs: the /v1.NN prefix, route matching with {param} capture (REST and
 * WebSocket tables), and query-string decoding.
 * Input: [method byte][path][?query] (the path stops at the first '?'). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_params(const struct srv_params *p)
{
	if (p->n > SRV_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < p->n; i++) {
		size_t len = strlen(p->p[i].value);
		if (len == 0 || len >= SRV_PARAM_MAX || strchr(p->p[i].value, '/'))
			abort(); /* a param is exactly one non-empty segment */
	}
}

static void fuzz_route(enum srv_method m, const char *path)
{
	const struct srv_route *route = NULL;
	const char *rest = NULL;
	struct srv_params params;
	struct bh_err err = {0};

	if (srv_api_version_strip(path, &rest, &err) < 0)
		return;
	if (rest == NULL || (strcmp(rest, "/") != 0 && (rest < path || rest > path + strlen(path))))
		abort(); /* rest is a suffix of path (or "/") */
	switch (srv_route_match(srv_routes, srv_n_routes, m, rest, &route, &params)) {
	case SRV_MATCH_FOUND:
		if (route == NULL || route->method != m)
			abort();
		check_params(&params);
		break;
	case SRV_MATCH_NOT_FOUND:
	case SRV_MATCH_BAD_METHOD:
		break;
	}
}

static void fuzz_ws(const char *uri)
{
	struct srv_ws ws;
	struct bh_err err = {0};

	memset(&ws, 0, sizeof(ws));
	if (srv_ws_open(&ws, uri, &err) == 0)
		check_params(&ws.params);
}

static void fuzz_query(const char *qs)
{
	struct srv_query q = {0}, frags = {0};
	struct bh_err err = {0};
	char *copy = bh_strdup(qs), *p = copy;

	if (srv_query_parse(&q, qs, &err) == 0) {
		if (q.n > SRV_MAX_QUERY)
			abort();
		for (size_t i = 0; i < q.n; i++)
			if (srv_query_get(&q, q.kv[i].name) == NULL)
				abort();
		srv_query_bool(&q, "all");
	}
	/* The other door: fragments as lws hands them out, already decoded. */
	while (p != NULL) {
		char *amp = strchr(p, '&');
		if (amp)
			*amp++ = '\0';
		if (srv_query_add(&frags, p, &err) < 0)
			break;
		p = amp;
	}
	srv_query_free(&q);
	srv_query_free(&frags);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[SRV_PATH_MAX];
	char *s, *qmark;

	if (size < 1 || size > 2 * SRV_PATH_MAX)
		return 0;
	s = bh_strndup((const char *)data + 1, size - 1);
	fuzz_ws(s);
	qmark = strchr(s, '?');
	if (qmark)
		*qmark = '\0';
	if (bh_strlcpy(path, s, sizeof(path)) == 0)
		fuzz_route((enum srv_method)(data[0] % (SRV_METHOD_OTHER + 1)), path);
	if (qmark)
		fuzz_query(qmark + 1);
	free(s);
	return 0;
}
