/* Reading the monitor's json-file logs for berthd: tail/since/until/stream
 * filters across rotated files, and a follower that waits on inotify and
 * survives rotation.  The files are written by the monitor from untrusted
 * container output: lines are length-capped and parsed strictly. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"

/* A 16 KiB piece escaped as \u00XX is 96 KiB; anything longer is not ours. */
#define LINE_MAX_BYTES (256 * 1024)
#define READ_CHUNK     (64 * 1024)
#define MAX_ROTATED    1000

struct reader {
	const struct rt_log_read_opts *o;
	rt_log_cb cb;
	void *arg;
	bool counting;
	int64_t count; /* entries that pass the filters (counting pass) */
	int64_t skip;  /* entries still to skip (tail) */
	int stop;      /* the callback's non-zero value */
	bool overlong; /* dropping the rest of a line that was too long */
	struct bh_buf line;
	char chunk[READ_CHUNK];
};

int rt_log_parse_time(const char *s, int64_t *ns)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	int64_t frac = 0, scale = 100000000, sec;

	if (p == NULL)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			if (scale > 0)
				frac += (*p - '0') * scale;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	sec = (int64_t)timegm(&tm);
	/* Nanoseconds since the epoch fit int64 only for years 1678..2261; a
	 * hostile log line with "9999-..." must not overflow (UB). */
	if (sec < -9223372035LL || sec > 9223372035LL)
		return -1;
	*ns = sec * 1000000000 + frac;
	return 0;
}

static bool wanted(const struct rt_log_read_opts *o, int stream, int64_t t)
{
	if ((stream == 1 && !o->want_stdout) || (stream == 2 && !o->want_stderr))
		return false;
	if (o->since_ns > 0 && t < o->since_ns)
		return false;
	if (o->until_ns > 0 && t >= o->until_ns)
		return false;
	return true;
}

static void deliver(struct reader *r, struct rt_log_entry *e)
{
	char *buf;

	if (!r->o->timestamps) {
		r->stop = r->cb(e, r->arg);
		return;
	}
	size_t tl = strlen(e->time);
	buf = bh_malloc(tl + 1 + e->len);
	memcpy(buf, e->time, tl);
	buf[tl] = ' ';
	memcpy(buf + tl + 1, e->data, e->len);
	e->data = buf;
	e->len += tl + 1;
	r->stop = r->cb(e, r->arg);
	free(buf);
}

static void handle_line(struct reader *r, const char *s, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, &jerr);
	json_t *log = json_object_get(j, "log");
	const char *stream = json_string_value(json_object_get(j, "stream"));
	struct rt_log_entry e = {0};

	e.time = json_string_value(json_object_get(j, "time"));
	if (!json_is_string(log) || !stream || !e.time || rt_log_parse_time(e.time, &e.time_ns) < 0)
		goto out; /* not one of ours: skipped, as Docker does */
	e.stream = strcmp(stream, "stderr") == 0 ? 2 : 1;
	if (!wanted(r->o, e.stream, e.time_ns))
		goto out;
	if (r->counting) {
		r->count++;
	} else if (r->skip > 0) {
		r->skip--;
	} else {
		e.data = json_string_value(log);
		e.len = json_string_length(log);
		deliver(r, &e);
	}
out:
	json_decref(j);
}

/* Splits what was read into lines; a partial last line stays in r->line. */
static void feed(struct reader *r, const char *p, size_t n)
{
	while (n > 0 && r->stop == 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (!r->overlong && bh_buf_append(&r->line, p, take) < 0) {
			r->overlong = true;
			bh_buf_reset(&r->line);
		}
		if (nl == NULL)
			return;
		if (!r->overlong && r->line.len > 0)
			handle_line(r, r->line.data, r->line.len);
		r->overlong = false;
		bh_buf_reset(&r->line);
		p = nl + 1;
		n -= take + 1;
	}
}

/* Reads fd from its current offset to EOF. */
static int read_fd(struct reader *r, int fd, struct bh_err *err)
{
	for (;;) {
		ssize_t n = read(fd, r->chunk, sizeof(r->chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bh_err_sys(err, errno, "read log");
		if (n == 0 || r->stop)
			return 0;
		feed(r, r->chunk, (size_t)n);
	}
}

/* Opens path.K ... path.1, path (oldest first); fds[n-1] is path itself or -1. */
static int open_all(const char *path, int *fds, int *n)
{
	char name[PATH_MAX];
	int k = 0;

	for (int i = 1; i <= MAX_ROTATED; i++) {
		snprintf(name, sizeof(name), "%s.%d", path, i);
		if (access(name, F_OK) < 0)
			break;
		k = i;
	}
	*n = 0;
	for (int i = k; i >= 1; i--) {
		snprintf(name, sizeof(name), "%s.%d", path, i);
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			fds[(*n)++] = fd;
	}
	fds[(*n)++] = open(path, O_RDONLY | O_CLOEXEC);
	return 0;
}

static int pass(struct reader *r, int *fds, int n, struct bh_err *err)
{
	for (int i = 0; i < n && r->stop == 0; i++) {
		if (fds[i] < 0)
			continue;
		if (lseek(fds[i], 0, SEEK_SET) < 0)
			return bh_err_sys(err, errno, "seek log");
		bh_buf_reset(&r->line);
		r->overlong = false;
		if (read_fd(r, fds[i], err) < 0)
			return -1;
	}
	return 0;
}

/* Reads everything there is now; leaves fds open for the follower. */
static int read_existing(struct reader *r, int *fds, int n, struct bh_err *err)
{
	if (r->o->tail >= 0) {
		r->counting = true;
		r->count = 0;
		if (pass(r, fds, n, err) < 0)
			return -1;
		r->counting = false;
		r->skip = r->count > r->o->tail ? r->count - r->o->tail : 0;
	}
	return pass(r, fds, n, err);
}

static void reader_init(struct reader *r, const struct rt_log_read_opts *o, rt_log_cb cb, void *arg)
{
	memset(r, 0, offsetof(struct reader, chunk));
	r->o = o;
	r->cb = cb;
	r->arg = arg;
	bh_buf_init(&r->line, LINE_MAX_BYTES);
}

static int read_all(const char *path, const struct rt_log_read_opts *o, rt_log_cb cb, void *arg,
                    int *cur_fd, struct bh_err *err)
{
	int fds[MAX_ROTATED + 1], n = 0, rc;
	struct reader *r = bh_malloc(sizeof(*r));

	reader_init(r, o, cb, arg);
	open_all(path, fds, &n); /* no file yet: no entries */
	rc = read_existing(r, fds, n, err);
	if (rc == 0)
		rc = r->stop;
	/* The follower re-reads a torn last line once it is complete. */
	if (rc == 0 && cur_fd != NULL && fds[n - 1] >= 0 && !r->overlong && r->line.len > 0)
		lseek(fds[n - 1], -(off_t)r->line.len, SEEK_CUR);
	for (int i = 0; i < n - 1; i++)
		close(fds[i]);
	if (cur_fd != NULL)
		*cur_fd = fds[n - 1];
	else if (fds[n - 1] >= 0)
		close(fds[n - 1]);
	bh_buf_free(&r->line);
	free(r);
	return rc;
}

int rt_log_read(const char *path, const struct rt_log_read_opts *o, rt_log_cb cb, void *arg,
                struct bh_err *err)
{
	int rc = read_all(path, o, cb, arg, NULL, err);

	return rc < 0 ? bh_err_wrap(err, "logs") : rc;
}

/* ---- follow -------------------------------------------------------------- */
struct follower {
	const char *path;
	const char *stop_file;
	int ino; /* inotify */
	int fd;  /* the file we read; -1 until path exists */
	struct reader *r;
};

static int watch_dir_of(int ino, const char *file, uint32_t mask)
{
	const char *slash = strrchr(file, '/');
	char *dir =
	    slash ? bh_strndup(file, slash == file ? 1 : (size_t)(slash - file)) : bh_strdup(".");
	int w = inotify_add_watch(ino, dir, mask);

	free(dir);
	return w;
}

static bool same_file(const char *name, const struct stat *a)
{
	struct stat b;

	return stat(name, &b) == 0 && b.st_ino == a->st_ino && b.st_dev == a->st_dev;
}

/* The file written after the one we finished (a): if a is now path.i, that
 * is path.(i-1) (or path).  If a is gone, the oldest one left (what was
 * rotated out in between is lost, as with Docker). */
static int open_successor(struct follower *f, const struct stat *a)
{
	char name[PATH_MAX];
	int last = 0;

	for (int i = 1; i <= MAX_ROTATED; i++) {
		snprintf(name, sizeof(name), "%s.%d", f->path, i);
		if (access(name, F_OK) < 0)
			break;
		last = i;
		if (!same_file(name, a))
			continue;
		if (i == 1)
			return open(f->path, O_RDONLY | O_CLOEXEC);
		snprintf(name, sizeof(name), "%s.%d", f->path, i - 1);
		return open(name, O_RDONLY | O_CLOEXEC);
	}
	if (last == 0)
		return open(f->path, O_RDONLY | O_CLOEXEC);
	snprintf(name, sizeof(name), "%s.%d", f->path, last);
	return open(name, O_RDONLY | O_CLOEXEC);
}

/* Reads to the end; when path names another file now (rotation), finishes
 * the old one and walks through its successors up to the current file. */
static int catch_up(struct follower *f, struct bh_err *err)
{
	struct stat a;

	for (;;) {
		if (f->fd < 0) {
			f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
			if (f->fd < 0)
				return 0; /* not created yet */
		}
		if (read_fd(f->r, f->fd, err) < 0)
			return -1;
		if (f->r->stop || fstat(f->fd, &a) < 0 || same_file(f->path, &a))
			return 0;
		if (access(f->path, F_OK) < 0)
			return 0; /* between rename and create: the next event */
		int next = open_successor(f, &a);
		if (next < 0)
			return 0;
		close(f->fd);
		f->fd = next;
		bh_buf_reset(&f->r->line); /* a torn line does not continue elsewhere */
	}
}

static int wait_events(struct follower *f, int stop_fd, struct bh_err *err)
{
	struct pollfd p[2] = {{.fd = f->ino, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0)
		if (errno != EINTR)
			return bh_err_sys(err, errno, "follow: poll");
	if (p[1].revents)
		return 1;
	while (read(f->ino, buf, sizeof(buf)) > 0)
		;
	return 0;
}

static int follow_loop(struct follower *f, int stop_fd, struct bh_err *err)
{
	for (;;) {
		/* Look for the stop file first, then read: nothing logged before
		 * it appeared can be missed. */
		bool last = f->stop_file && access(f->stop_file, F_OK) == 0;
		if (catch_up(f, err) < 0)
			return -1;
		if (f->r->stop || last)
			return f->r->stop;
		int w = wait_events(f, stop_fd, err);
		if (w != 0)
			return w < 0 ? -1 : 0;
	}
}

int rt_log_follow(const char *path, const struct rt_log_read_opts *o, const char *stop_when_exists,
                  rt_log_cb cb, void *arg, struct bh_err *err)
{
	struct follower f = {.path = path, .stop_file = stop_when_exists, .fd = -1};
	int rc;

	f.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f.ino < 0)
		return bh_err_sys(err, errno, "logs: inotify");
	/* Watch before the first read so no write falls between the two. */
	if (watch_dir_of(f.ino, path, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM) < 0 ||
	    (stop_when_exists &&
	     watch_dir_of(f.ino, stop_when_exists, IN_CREATE | IN_MOVED_TO) < 0)) {
		rc = bh_err_sys(err, errno, "logs: inotify watch");
		close(f.ino);
		return rc;
	}
	rc = read_all(path, o, cb, arg, &f.fd, err);
	if (rc == 0) {
		f.r = bh_malloc(sizeof(*f.r));
		reader_init(f.r, o, cb, arg);
		rc = follow_loop(&f, o->stop_fd, err);
		bh_buf_free(&f.r->line);
		free(f.r);
	}
	if (f.fd >= 0)
		close(f.fd);
	close(f.ino);
	return rc < 0 ? bh_err_wrap(err, "logs %s", path) : rc;
}
