/* The event store: Docker-shaped container/image events and berth's audit
 * events, each stamped with a cursor that only grows (across restarts too).
 * The newest SRV_EVENTS_RING lines stay in memory; every line is appended to
 * DATA_ROOT/events/events.jsonl with one write(2) (no fsync: an event log,
 * not a ledger), rotated to events.jsonl.1 past SRV_EVENTS_FILE_MAX.
 * Emitting is any-thread and never waits for a reader: subscribers are only
 * told that something new exists and fetch it themselves (h_events.c).
 * Nothing here ever sees a request body or a header. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/server-internal.h"

#define EVENTS_DIR  "events"
#define EVENTS_FILE "events.jsonl"
#define EVENTS_OLD  "events.jsonl.1"

struct watch {
	void (*fn)(void *arg);
	void *arg;
	struct watch *next;
};

static struct {
	pthread_mutex_t mu;
	bool open;
	struct srv_evring ring;
	uint64_t next; /* the cursor of the next event */
	char *dir, *path, *old_path;
	int fd;
	int64_t size;
	bool write_failed; /* logged once */
	struct watch *watches;
} ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .next = 1};

/* ---- keys of a stored line ---------------------------------------------------- */

/* Decimal digits in [p, end) (at most 19: no uint64 overflow); the first
 * byte after them, or NULL when there is no digit. */
static const char *digits(const char *p, const char *end, uint64_t *out)
{
	const char *start = p;

	*out = 0;
	while (p < end && p - start < 19 && *p >= '0' && *p <= '9')
		*out = *out * 10 + (uint64_t)(*p++ - '0');
	return p == start ? NULL : p;
}

/* A line starts with {"cursor":N and ends with "timeNano":T} (we wrote it);
 * the LAST "timeNano": is the top-level one (label keys come before it).
 * Reads only line[0..len): the line need not be terminated. */
static int line_keys(const char *line, size_t len, uint64_t *cursor, int64_t *time_ns)
{
	static const char head[] = "{\"cursor\":", tkey[] = "\"timeNano\":";
	const char *t = NULL, *end = line + len, *p;
	uint64_t v;

	if (len < sizeof(head) || memcmp(line, head, sizeof(head) - 1) != 0 ||
	    (p = digits(line + sizeof(head) - 1, end, cursor)) == NULL || p == end || *p != ',')
		return -1;
	if (*cursor == 0 || *cursor > (UINT64_C(1) << 62)) /* room to grow, never wrap */
		return -1;
	for (p = line; (p = memmem(p, (size_t)(end - p), tkey, sizeof(tkey) - 1)) != NULL; p++)
		t = p;
	if (t == NULL || (p = digits(t + sizeof(tkey) - 1, end, &v)) == NULL || v > INT64_MAX)
		return -1;
	*time_ns = (int64_t)v;
	return p + 1 == end && *p == '}' ? 0 : -1;
}

int srv_event_line_keys(const char *line, size_t len, uint64_t *cursor, int64_t *time_ns)
{
	return line_keys(line, len, cursor, time_ns);
}

/* A stored line we may hand out: our keys and a JSON object (a damaged or
 * edited file must not send a reader anything else). */
static bool line_valid(const char *line, size_t len, uint64_t *cursor, int64_t *time_ns)
{
	json_t *o;
	bool ok;

	if (line_keys(line, len, cursor, time_ns) < 0)
		return false;
	o = json_loadb(line, len, 0, NULL);
	ok = json_is_object(o);
	json_decref(o);
	return ok;
}

/* ---- the file ----------------------------------------------------------------- */

/* Loads the lines of one file (oldest first) into the ring. */
static void load_file(const char *path)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct bh_err err;

	if (bh_read_file(path, SRV_EVENTS_FILE_MAX + SRV_EVENTS_LINE_MAX, &text, &len, &err) < 0) {
		if (err.code != ENOENT)
			bh_warn("events: %s (older events are not replayed)", err.msg);
		return;
	}
	for (char *p = text, *nl;
	     p < text + len && (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1) {
		uint64_t cursor;
		int64_t t;
		if (!line_valid(p, (size_t)(nl - p), &cursor, &t) || cursor < ev.next)
			continue; /* a damaged line, or out of order: skipped */
		srv_evring_push(&ev.ring, cursor, t, bh_strndup(p, (size_t)(nl - p + 1)));
		ev.next = cursor + 1;
	}
}

/* The size of fd up to and with its last '\n' (0 if it has none). */
static off_t complete_lines(int fd, off_t size)
{
	char buf[64 * 1024];
	off_t end = size;

	while (end > 0) {
		off_t from = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		ssize_t n = pread(fd, buf, (size_t)(end - from), from);
		char *nl = n > 0 ? memrchr(buf, '\n', (size_t)n) : NULL;
		if (n <= 0)
			return size; /* cannot tell: keep everything */
		if (nl != NULL)
			return from + (nl - buf) + 1;
		end = from;
	}
	return 0;
}

/* A crash can leave half a line at the end: cut it so the next append
 * starts on a line of its own. */
static int open_current(struct bh_err *err)
{
	struct stat st;
	off_t keep;

	ev.fd = open(ev.path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (ev.fd < 0 || fstat(ev.fd, &st) < 0)
		return bh_err_sys(err, errno, "events: open %s", ev.path);
	ev.size = st.st_size;
	keep = complete_lines(ev.fd, st.st_size);
	if (keep < st.st_size && ftruncate(ev.fd, keep) == 0)
		ev.size = keep;
	return 0;
}

int srv_events_open(const char *data_root, struct bh_err *err)
{
	pthread_mutex_lock(&ev.mu);
	ev.dir = bh_path_join(data_root, EVENTS_DIR);
	ev.path = bh_path_join(ev.dir, EVENTS_FILE);
	ev.old_path = bh_path_join(ev.dir, EVENTS_OLD);
	srv_evring_init(&ev.ring, SRV_EVENTS_RING);
	ev.next = 1;
	if (bh_mkdir_p(ev.dir, 0700, err) < 0 || open_current(err) < 0) {
		pthread_mutex_unlock(&ev.mu);
		return -1;
	}
	load_file(ev.old_path);
	load_file(ev.path);
	ev.open = true;
	pthread_mutex_unlock(&ev.mu);
	bh_debug("events: next cursor %" PRIu64, ev.next);
	return 0;
}

void srv_events_close(void)
{
	pthread_mutex_lock(&ev.mu);
	ev.open = false;
	if (ev.fd >= 0)
		close(ev.fd);
	ev.fd = -1;
	srv_evring_free(&ev.ring);
	free(ev.dir);
	free(ev.path);
	free(ev.old_path);
	ev.dir = ev.path = ev.old_path = NULL;
	while (ev.watches) {
		struct watch *w = ev.watches;
		ev.watches = w->next;
		free(w);
	}
	pthread_mutex_unlock(&ev.mu);
}

/* Under mu. */
static void rotate(void)
{
	struct bh_err err;

	close(ev.fd);
	ev.fd = -1;
	if (rename(ev.path, ev.old_path) < 0)
		bh_warn("events: rotate %s: %s", ev.path, strerror(errno));
	if (open_current(&err) < 0)
		bh_warn("%s", err.msg);
}

/* Under mu: one write(2) per line; a failure costs persistence, not the event. */
static void append(const char *line, size_t len)
{
	if (ev.fd >= 0 && ev.size > 0 && ev.size + (int64_t)len > SRV_EVENTS_FILE_MAX)
		rotate();
	if (ev.fd >= 0 && bh_write_all(ev.fd, line, len) == 0) {
		ev.size += (int64_t)len;
		ev.write_failed = false;
		return;
	}
	if (!ev.write_failed)
		bh_warn("events: append to %s: %s", ev.path, strerror(errno));
	ev.write_failed = true;
}

/* ---- emitting ------------------------------------------------------------------ */

static json_t *event_json(uint64_t cursor, int64_t now_ns, const char *type, const char *action,
                          const char *actor, json_t *attrs)
{
	json_t *o = json_object();

	json_object_set_new(o, "cursor", json_integer((json_int_t)cursor));
	/* The pre-1.22 fields Docker still sends for containers and images. */
	if (strcmp(type, "container") == 0 || strcmp(type, "image") == 0) {
		json_object_set_new(o, "status", json_string(action));
		json_object_set_new(o, "id", json_string(actor));
		if (json_is_string(json_object_get(attrs, "image")) && type[0] == 'c')
			json_object_set(o, "from", json_object_get(attrs, "image"));
	}
	json_object_set_new(o, "Type", json_string(type));
	json_object_set_new(o, "Action", json_string(action));
	json_object_set_new(o, "Actor", json_pack("{s:s, s:O}", "ID", actor, "Attributes", attrs));
	json_object_set_new(o, "scope", json_string("local"));
	json_object_set_new(o, "time", json_integer(now_ns / 1000000000));
	json_object_set_new(o, "timeNano", json_integer(now_ns));
	return o;
}

static char *event_line(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *line = text ? bh_asprintf("%s\n", text) : NULL;

	free(text);
	return line;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Only strings reach Actor.Attributes (Docker's map[string]string). */
static json_t *clean_attrs(json_t *attrs)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach(attrs, k, v)
	{
		if (json_is_string(v))
			json_object_set(out, k, v);
	}
	json_decref(attrs);
	return out;
}

void srv_events_emit(const char *type, const char *action, const char *actor, json_t *attrs)
{
	json_t *a = clean_attrs(attrs), *o;
	char *line;
	int64_t t = now_ns();

	pthread_mutex_lock(&ev.mu);
	if (!ev.open) {
		pthread_mutex_unlock(&ev.mu);
		json_decref(a);
		return;
	}
	o = event_json(ev.next, t, type, action, actor ? actor : "", a);
	line = event_line(o);
	if (line == NULL || strlen(line) > SRV_EVENTS_LINE_MAX) {
		/* Attributes are what can be long (argv, labels): drop them. */
		free(line);
		json_decref(o);
		json_decref(a);
		a = json_pack("{s:s}", "truncated", "true");
		o = event_json(ev.next, t, type, action,
		               actor != NULL && strlen(actor) < 256 ? actor : "", a);
		line = event_line(o);
	}
	append(line, strlen(line));
	srv_evring_push(&ev.ring, ev.next++, t, line);
	for (struct watch *w = ev.watches; w; w = w->next)
		w->fn(w->arg);
	pthread_mutex_unlock(&ev.mu);
	json_decref(o);
	json_decref(a);
}

/* ---- reading -------------------------------------------------------------------- */

uint64_t srv_events_last(void)
{
	uint64_t last;

	pthread_mutex_lock(&ev.mu);
	last = ev.next - 1;
	pthread_mutex_unlock(&ev.mu);
	return last;
}

void srv_events_watch(void (*fn)(void *arg), void *arg)
{
	struct watch *w = bh_calloc(1, sizeof(*w));

	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&ev.mu);
	w->next = ev.watches;
	ev.watches = w;
	pthread_mutex_unlock(&ev.mu);
}

void srv_events_unwatch(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&ev.mu);
	for (struct watch **p = &ev.watches; *p; p = &(*p)->next) {
		if ((*p)->fn == fn && (*p)->arg == arg) {
			struct watch *w = *p;
			*p = w->next;
			free(w);
			break;
		}
	}
	pthread_mutex_unlock(&ev.mu);
}

/* Does a stored line pass f?  Parses it only when f has filters. */
static bool line_passes(const struct srv_evfilter *f, const char *line, size_t len, int64_t time_ns)
{
	json_t *o;
	bool ok;

	if (!srv_evfilter_time_ok(f, time_ns))
		return false;
	if (f->filters == NULL || json_object_size(f->filters) == 0)
		return true;
	o = json_loadb(line, len, 0, NULL);
	ok = o != NULL && srv_evfilter_match(f, o);
	json_decref(o);
	return ok;
}

int srv_events_collect(struct srv_evread *r, const struct srv_evfilter *f, struct bh_buf *out,
                       size_t budget)
{
	const struct srv_evring_entry *e;

	pthread_mutex_lock(&ev.mu);
	r->head = ev.next - 1;
	r->oldest = srv_evring_oldest(&ev.ring);
	/* Older than the ring: the caller reads the files (off this thread). */
	r->need_file = r->oldest != 0 && r->after + 1 < r->oldest;
	while (!r->need_file && out->len < budget &&
	       (e = srv_evring_after(&ev.ring, r->after)) != NULL) {
		if (f->until_ns != 0 && e->time_ns > f->until_ns) {
			r->past_until = true;
			break;
		}
		if (line_passes(f, e->line, strlen(e->line), e->time_ns) &&
		    bh_buf_append(out, e->line, strlen(e->line)) < 0)
			break;
		r->after = e->cursor;
	}
	pthread_mutex_unlock(&ev.mu);
	return 0;
}

/* Reads one open file for lines with after < cursor < before. */
static void read_fd(int fd, struct srv_evread *r, uint64_t before, const struct srv_evfilter *f,
                    struct bh_buf *out, size_t budget)
{
	FILE *fp = fdopen(fd, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (fp == NULL) {
		close(fd);
		return;
	}
	while (out->len < budget && (n = getline(&line, &cap, fp)) > 0) {
		uint64_t cursor;
		int64_t t;
		if (line[n - 1] != '\n' || !line_valid(line, (size_t)n - 1, &cursor, &t) ||
		    cursor <= r->after)
			continue;
		if (cursor >= before || (f->until_ns != 0 && t > f->until_ns)) {
			r->past_until = f->until_ns != 0 && t > f->until_ns;
			break;
		}
		if (line_passes(f, line, (size_t)n, t) && bh_buf_append(out, line, (size_t)n) < 0)
			break;
		r->after = cursor;
	}
	free(line);
	fclose(fp);
}

int srv_events_read_files(struct srv_evread *r, const struct srv_evfilter *f, struct bh_buf *out,
                          size_t budget, struct bh_err *err)
{
	int fds[2];
	uint64_t before = r->oldest;

	/* Both files opened at once: a rotation meanwhile cannot hide one. */
	pthread_mutex_lock(&ev.mu);
	fds[0] = ev.old_path ? open(ev.old_path, O_RDONLY | O_CLOEXEC) : -1;
	fds[1] = ev.path ? open(ev.path, O_RDONLY | O_CLOEXEC) : -1;
	pthread_mutex_unlock(&ev.mu);
	if (fds[1] < 0 && errno != ENOENT) {
		if (fds[0] >= 0)
			close(fds[0]);
		return bh_err_sys(err, errno, "events: read the event file");
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			read_fd(fds[i], r, before, f, out, budget);
	/* The files are read to the ring's start: what they lack (damaged
	 * or rotated away) is gone; go on from the ring. */
	if (out->len < budget && !r->past_until && r->after + 1 < before)
		r->after = before - 1;
	return 0;
}

/* ---- audit ---------------------------------------------------------------------- */

static const char *who_name(const struct srv_identity *who)
{
	if (who->name[0])
		return who->name;
	if (who->cn[0])
		return who->cn;
	return who->text[0] ? who->text : "-";
}

void srv_events_audit(const char *action, const struct srv_identity *who, json_t *attrs)
{
	const char *name = who_name(who);

	if (attrs == NULL)
		attrs = json_object();
	json_object_set_new(attrs, "identity", json_string(name));
	json_object_set_new(attrs, "fingerprint", json_string(who->fingerprint));
	json_object_set_new(attrs, "addr", json_string(who->addr));
	srv_events_emit("audit", action, name, attrs);
}

/* Reads cannot change anything: only other methods, and GET routes that
 * need an operator (container export), are audited.  Requests the router
 * refused (404, 403) are audited too: attempts matter. */
static bool audited(const struct srv_req *req)
{
	if (req->route != NULL && req->route->role >= SRV_ROLE_OPERATOR)
		return true;
	return req->method != SRV_GET && req->method != SRV_HEAD;
}

/* The path without the query (no query value reaches the log), one line. */
static void clean_path(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] && in[i] != '?' && i + 1 < size; i++)
		out[i] = (in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
	out[i] = '\0';
}

void srv_events_request_done(const struct srv_req *req)
{
	char status[16], ms[24], path[256];

	if (!audited(req))
		return;
	clean_path(req->path, path, sizeof(path));
	snprintf(status, sizeof(status), "%d", req->status);
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(bh_now_ms() - req->start_ms));
	srv_events_audit("request", &req->id,
	                 json_pack("{s:s, s:s, s:s, s:s}", "method", srv_method_name(req->method),
	                           "path", path, "status", status, "durationMs", ms));
}

/* ---- images ---------------------------------------------------------------------- */

void srv_events_image(const char *action, const char *id, const char *name)
{
	srv_events_emit("image", action, id, json_pack("{s:s}", "name", name));
}

void srv_events_image_removed(const char *id, json_t *report)
{
	json_t *item;
	size_t i;

	/* Docker: one untag per name, then delete for the image (not its layers). */
	json_array_foreach(report, i, item)
	{
		const char *tag = json_string_value(json_object_get(item, "Untagged"));
		if (tag != NULL)
			srv_events_image("untag", id, tag);
	}
	json_array_foreach(report, i, item)
	{
		const char *del = json_string_value(json_object_get(item, "Deleted"));
		if (del != NULL && strcmp(del, id) == 0)
			srv_events_image("delete", id, id);
	}
}

void srv_events_upgrade(const struct srv_identity *id, const char *uri, enum srv_role role,
                        int status)
{
	char st[16], path[256];

	if (role < SRV_ROLE_OPERATOR)
		return;
	clean_path(uri, path, sizeof(path));
	snprintf(st, sizeof(st), "%d", status);
	srv_events_audit("request", id,
	                 json_pack("{s:s, s:s, s:s, s:s}", "method", "GET", "path", path, "status",
	                           st, "durationMs", "0"));
}
