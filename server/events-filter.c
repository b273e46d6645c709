/* Pure parts of the event store: the ring of the newest event lines and
 * Docker's event filters (plus berth's: type=audit, identity).  The filter
 * text comes from the query string: hostile, checked key by key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

/* ---- ring --------------------------------------------------------------------------- */

void srv_evring_init(struct srv_evring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->e = bh_calloc(cap, sizeof(*r->e));
	r->cap = cap;
}

void srv_evring_free(struct srv_evring *r)
{
	for (size_t i = 0; r->e != NULL && i < r->cap; i++)
		free(r->e[i].line);
	free(r->e);
	memset(r, 0, sizeof(*r));
}

static struct srv_evring_entry *at(const struct srv_evring *r, size_t i)
{
	return &r->e[(r->head + i) % r->cap];
}

void srv_evring_push(struct srv_evring *r, uint64_t cursor, int64_t time_ns, char *line)
{
	struct srv_evring_entry *slot;

	if (r->n == r->cap) { /* full: the oldest goes */
		slot = at(r, 0);
		free(slot->line);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	slot = at(r, r->n++);
	slot->cursor = cursor;
	slot->time_ns = time_ns;
	slot->line = line;
}

uint64_t srv_evring_oldest(const struct srv_evring *r)
{
	return r->n ? at(r, 0)->cursor : 0;
}

const struct srv_evring_entry *srv_evring_after(const struct srv_evring *r, uint64_t after)
{
	size_t lo = 0, hi = r->n;

	/* Cursors grow along the ring: the first one above after. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (at(r, mid)->cursor <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n ? at(r, lo) : NULL;
}

/* ---- filters -------------------------------------------------------------------------- */

static const char *const filter_keys[] = {"type",  "event", "container", "image",
                                          "label", "scope", "identity"};

static bool known_key(const char *k)
{
	for (size_t i = 0; i < sizeof(filter_keys) / sizeof(filter_keys[0]); i++)
		if (strcmp(k, filter_keys[i]) == 0)
			return true;
	return false;
}

/* Old clients send {"type":{"container":true}}: the keys are the values. */
static json_t *as_array(json_t *v)
{
	json_t *arr, *vv;
	const char *kk;

	if (!json_is_object(v))
		return json_incref(v);
	arr = json_array();
	json_object_foreach(v, kk, vv) json_array_append_new(arr, json_string(kk));
	return arr;
}

static int check_values(const char *k, json_t *arr, struct bh_err *err)
{
	json_t *item;
	size_t i;

	if (!json_is_array(arr))
		return bh_err_set(err, EINVAL, "invalid filter '%s': values must be a list", k);
	json_array_foreach(arr, i, item)
	{
		if (!json_is_string(item))
			return bh_err_set(err, EINVAL,
			                  "invalid filter '%s': values must be strings", k);
	}
	return 0;
}

int srv_evfilter_parse(const char *text, json_t **out, struct bh_err *err)
{
	json_error_t jerr;
	json_t *in, *v, *f;
	const char *k;

	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return 0;
	in = json_loads(text, 0, &jerr);
	if (!json_is_object(in)) {
		json_decref(in);
		return bh_err_set(err, EINVAL, "invalid filters: not a JSON object");
	}
	f = json_object();
	json_object_foreach(in, k, v)
	{
		json_t *arr = as_array(v);
		if (!known_key(k) || check_values(k, arr, err) < 0) {
			if (!known_key(k))
				bh_err_set(err, EINVAL, "invalid filter '%.64s'", k);
			json_decref(arr);
			json_decref(in);
			json_decref(f);
			return -1;
		}
		json_object_set_new(f, k, arr);
	}
	json_decref(in);
	*out = f;
	return 0;
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : "";
}

static const char *attr(json_t *ev, const char *name)
{
	return str_at(json_object_get(ev, "Actor"), "Attributes", name);
}

/* Docker's FuzzyMatch: equal, or the value is a prefix (short ids). */
static bool fuzzy(const char *have, const char *want)
{
	return have[0] != '\0' && bh_str_has_prefix(have, want);
}

/* "exec_start: sh -c x" matches event=exec_start. */
static bool action_is(const char *action, const char *want)
{
	size_t n = strcspn(action, ":");

	return strcmp(action, want) == 0 || (strlen(want) == n && strncmp(action, want, n) == 0);
}

static bool one(json_t *ev, const char *key, const char *want)
{
	const char *type = str_at(ev, "Type", NULL), *id = str_at(ev, "Actor", "ID");

	if (strcmp(key, "type") == 0)
		return strcmp(type, want) == 0;
	if (strcmp(key, "event") == 0)
		return action_is(str_at(ev, "Action", NULL), want);
	if (strcmp(key, "scope") == 0)
		return strcmp(want, "local") == 0;
	if (strcmp(key, "identity") == 0)
		return strcmp(attr(ev, "identity"), want) == 0;
	if (strcmp(key, "container") == 0) {
		if (strcmp(type, "container") == 0)
			return fuzzy(id, want) || strcmp(attr(ev, "name"), want) == 0;
		return fuzzy(attr(ev, "container"), want);
	}
	if (strcmp(key, "image") == 0) {
		if (strcmp(type, "image") == 0)
			return fuzzy(id, want) || strcmp(attr(ev, "name"), want) == 0;
		return strcmp(attr(ev, "image"), want) == 0;
	}
	if (strcmp(key, "label") == 0) {
		const char *eq = strchr(want, '=');
		cleanup_free char *k = eq ? bh_strndup(want, (size_t)(eq - want)) : bh_strdup(want);
		json_t *attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
		json_t *v = json_object_get(attrs, k);
		return json_is_string(v) &&
		       (eq == NULL || strcmp(json_string_value(v), eq + 1) == 0);
	}
	return false;
}

bool srv_evfilter_time_ok(const struct srv_evfilter *f, int64_t time_ns)
{
	return (f->since_ns == 0 || time_ns >= f->since_ns) &&
	       (f->until_ns == 0 || time_ns <= f->until_ns);
}

bool srv_evfilter_match(const struct srv_evfilter *f, json_t *ev)
{
	json_t *vals, *item;
	const char *key;
	size_t i;

	if (!srv_evfilter_time_ok(f, json_integer_value(json_object_get(ev, "timeNano"))))
		return false;
	/* Keys AND, values of one key OR; every label must match (Docker). */
	json_object_foreach(f->filters, key, vals)
	{
		bool all = strcmp(key, "label") == 0, hit = all;
		if (json_array_size(vals) == 0)
			continue;
		json_array_foreach(vals, i, item)
		{
			bool m = one(ev, key, json_string_value(item));
			hit = all ? (hit && m) : (hit || m);
		}
		if (!hit)
			return false;
	}
	return true;
}

/* Docker's since/until: unix seconds, fractional allowed ("1700000000.5"). */
int srv_evtime_parse(const char *s, int64_t *ns, struct bh_err *err)
{
	char *end;
	long long sec;
	int64_t frac = 0, scale = 100000000;
	const char *p;

	errno = 0;
	sec = strtoll(s, &end, 10);
	if (end == s || errno != 0 || sec < 0 ||
	    sec > 9000000000LL) /* year 2255: the ns still fit */
		return bh_err_set(err, EINVAL, "invalid time '%.64s': want unix seconds", s);
	p = end;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0')
		return bh_err_set(err, EINVAL, "invalid time '%.64s': want unix seconds", s);
	*ns = (int64_t)sec * 1000000000 + frac;
	return 0;
}
