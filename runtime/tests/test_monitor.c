/* berth-monitor end to end: spawned through rt_monitor_spawn, it runs host
 * commands (the test build berth-monitor-hooks) or real containers (the real
 * berth-monitor, busybox rootfs).  Checks logs, rotation, exit.json, live
 * restore, attach in both directions and bounded memory under a slow client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/rt-container.h"
#include "runtime/rt-monitor.h"
#include "runtime/tests/monitor-frames.h"

struct fx {
	char tmp[PATH_MAX];
	char dir[PATH_MAX];
	char log[PATH_MAX];
	char hooks[PATH_MAX];
	pid_t cpid, mpid;
	/* real containers */
	char bundle[PATH_MAX], state_root[PATH_MAX], id[64];
	bool real;
};

/* ---- helpers ------------------------------------------------------------- */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *bin = getenv("BERTH_BIN_DIR");

	snprintf(f->tmp, sizeof(f->tmp), "/tmp/berth-monitor-test.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->dir, sizeof(f->dir), "%s/exec/containers/c1", f->tmp);
	snprintf(f->log, sizeof(f->log), "%s/data/containers/c1/c1-json.log", f->tmp);
	snprintf(f->hooks, sizeof(f->hooks), "%s/../tests/berth-monitor-hooks",
	         bin ? bin : "build/bin");
	*state = f;
	return 0;
}

/* Alive and not a zombie (a zombie is reaped by its parent soon enough). */
static bool running(pid_t pid)
{
	char path[64], *stat = NULL;
	struct bh_err err;
	bool alive;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (bh_read_file(path, 4096, &stat, NULL, &err) < 0)
		return false;
	const char *paren = strrchr(stat, ')');
	alive = paren != NULL && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
	free(stat);
	return alive;
}

/* Every test ends with its monitor and container gone; a leftover fails it
 * (and is killed, so one failure does not leak into the next test). */
static int teardown(void **state)
{
	struct fx *f = *state;
	struct bh_err err;
	int rc = 0;

	if (running(f->mpid) || running(f->cpid)) {
		fprintf(stderr, "test_monitor: monitor %d or container %d left running\n",
		        (int)f->mpid, (int)f->cpid);
		kill(f->cpid, SIGKILL);
		kill(f->mpid, SIGKILL);
		rc = -1;
	}
	if (f->real && rt_container_delete(f->state_root, f->id, true, &err) < 0 &&
	    err.code != ENOENT)
		fprintf(stderr, "test_monitor: clean-up %s: %s\n", f->id, err.msg);
	bh_rm_rf(f->tmp, &err);
	free(f);
	return rc;
}

static void opts_for(struct fx *f, struct rt_monitor_opts *o, const char *const *cmd)
{
	memset(o, 0, sizeof(*o));
	o->monitor_path = f->hooks;
	o->id = "c1";
	o->bundle = "/nonexistent";
	o->state_root = "/nonexistent";
	o->dir = f->dir;
	o->log_path = f->log;
	o->test_host_cmd = cmd;
	o->timeout_ms = 10000;
}

static void spawn(struct fx *f, const struct rt_monitor_opts *o)
{
	struct bh_err err;

	if (rt_monitor_spawn(o, &f->cpid, &f->mpid, &err) < 0)
		fail_msg("spawn: %s", err.msg);
	assert_true(f->cpid > 0);
	assert_true(f->mpid > 0);
}

/* Waits (no polling loop: a pidfd) until pid is gone; fails after 30 s. */



/* Reads one frame; returns its payload length (payload in buf, NUL-ended). */

struct session {
	struct bh_buf out, err;
	char exit_json[512];
	uint64_t hello_offset;
	uint8_t hello_flags;
};

/* Reads frames until the exit frame; collects the streams. */
static void read_session(int fd, struct session *s)
{
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	uint8_t type;
	size_t n;

	bh_buf_init(&s->out, 1 << 20);
	bh_buf_init(&s->err, 1 << 20);
	s->exit_json[0] = '\0';
	n = read_frame(fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	assert_int_equal(n, 9);
	s->hello_offset = 0;
	for (int i = 0; i < 8; i++)
		s->hello_offset = s->hello_offset << 8 | (uint8_t)buf[i];
	s->hello_flags = (uint8_t)buf[8];
	for (;;) {
		n = read_frame(fd, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT) {
			bh_strlcpy(s->exit_json, buf, sizeof(s->exit_json));
			return;
		}
		assert_true(type == RT_FRAME_STDOUT || type == RT_FRAME_STDERR);
		assert_int_equal(bh_buf_append(type == 1 ? &s->out : &s->err, buf, n), 0);
	}
}

static void session_free(struct session *s)
{
	bh_buf_free(&s->out);
	bh_buf_free(&s->err);
}

static int attach(struct fx *f)
{
	struct bh_err err;
	int fd = rt_monitor_attach_connect(f->dir, &err);

	if (fd < 0)
		fail_msg("attach: %s", err.msg);
	return fd;
}

static void probe_exited(struct fx *f, int code, int sig)
{
	struct rt_monitor_state st;
	struct bh_err err;

	wait_gone(f->mpid);
	assert_int_equal(rt_monitor_probe(f->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_EXITED);
	assert_int_equal(st.exit_code, code);
	assert_int_equal(st.signal, sig);
	assert_false(st.oom_killed);
	assert_true(strlen(st.finished_at) > 20);
	assert_int_equal(st.monitor_pid, f->mpid);
	assert_int_equal(st.container_pid, f->cpid);
}

/* Runs cmd to its end; returns with the monitor gone. */
static void run_to_end(struct fx *f, const char *const *cmd, struct rt_monitor_opts *o)
{
	struct rt_monitor_opts def;

	if (o == NULL) {
		opts_for(f, &def, cmd);
		o = &def;
	}
	spawn(f, o);
	wait_gone(f->mpid);
}

struct collected {
	int n;
	int64_t last_ns;
	bool increasing;
	struct bh_buf out, err;
};

static int collect_cb(const struct rt_log_entry *e, void *arg)
{
	struct collected *c = arg;

	c->n++;
	if (e->time_ns <= c->last_ns)
		c->increasing = false;
	c->last_ns = e->time_ns;
	bh_buf_append(e->stream == 2 ? &c->err : &c->out, e->data, e->len);
	return 0;
}

static void collected_init(struct collected *c)
{
	memset(c, 0, sizeof(*c));
	c->increasing = true;
	bh_buf_init(&c->out, 64 << 20);
	bh_buf_init(&c->err, 64 << 20);
}

static void collected_free(struct collected *c)
{
	bh_buf_free(&c->out);
	bh_buf_free(&c->err);
}

static const struct rt_log_read_opts all_logs = {
    .tail = -1, .want_stdout = true, .want_stderr = true, .stop_fd = -1};

/* Every line of the file is one valid JSON object in Docker's shape, with
 * strictly increasing times. */
static int check_log_file(const char *path)
{
	char *data = NULL, *line, *nl;
	size_t len;
	struct bh_err err;
	int64_t last = 0;
	int n = 0;

	assert_int_equal(bh_read_file(path, 256 << 20, &data, &len, &err), 0);
	assert_true(len == 0 || data[len - 1] == '\n');
	for (line = data; (nl = memchr(line, '\n', len - (size_t)(line - data))); line = nl + 1) {
		json_error_t jerr;
		json_t *j = json_loadb(line, (size_t)(nl - line), JSON_ALLOW_NUL, &jerr);
		int64_t t;
		if (j == NULL)
			fail_msg("%s: bad JSON line: %s (%s)", path, line, jerr.text);
		assert_int_equal(json_object_size(j), 3);
		assert_true(json_is_string(json_object_get(j, "log")));
		const char *s = json_string_value(json_object_get(j, "stream"));
		assert_true(strcmp(s, "stdout") == 0 || strcmp(s, "stderr") == 0);
		assert_int_equal(
		    rt_log_parse_time(json_string_value(json_object_get(j, "time")), &t), 0);
		assert_true(t > last);
		last = t;
		json_decref(j);
		n++;
	}
	free(data);
	return n;
}

/* ---- tests: host commands through berth-monitor-hooks -------------------- */
static void test_logs_json_lines(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c",
	                     "echo out1; echo 'err \"q\" <tag> & \\ back' >&2; echo out2; "
	                     "printf 'bin\\001\\377\\342\\202 end'",
	                     NULL};
	struct collected c;
	struct bh_err err;

	run_to_end(f, cmd, NULL);
	assert_int_equal(check_log_file(f->log), 4);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 4);
	assert_true(c.increasing);
	/* invalid UTF-8 became U+FFFD, the control byte survived as \u0001 */
	assert_string_equal(c.out.data,
	                    "out1\nout2\nbin\001\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
	assert_string_equal(c.err.data, "err \"q\" <tag> & \\ back\n");
	collected_free(&c);
	probe_exited(f, 0, 0);
}

static void test_logs_tail_and_streams(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done",
	                     NULL};
	struct rt_log_read_opts o = all_logs;
	struct collected c;
	struct bh_err err;

	run_to_end(f, cmd, NULL);
	collected_init(&c);
	o.tail = 2;
	o.want_stderr = false;
	assert_int_equal(rt_log_read(f->log, &o, collect_cb, &c, &err), 0);
	assert_string_equal(c.out.data, "o4\no5\n");
	assert_int_equal(c.err.len, 0);
	collected_free(&c);

	collected_init(&c);
	o = all_logs;
	o.timestamps = true;
	o.tail = 1;
	o.want_stdout = false; /* the order between two pipes is not defined */
	assert_int_equal(rt_log_read(f->log, &o, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_true(bh_str_has_prefix(c.err.data, "20"));
	assert_non_null(strstr(c.err.data, "Z e5\n"));
	collected_free(&c);
}

struct times {
	int n;
	int64_t t[16];
};

static int times_cb(const struct rt_log_entry *e, void *arg)
{
	struct times *t = arg;

	if (t->n < 16)
		t->t[t->n] = e->time_ns;
	t->n++;
	return 0;
}

static int stop_after_two(const struct rt_log_entry *e, void *arg)
{
	return ++*(int *)arg == 2 ? 42 : 0;
}

static void test_logs_since_until_and_stop(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "for i in 1 2 3 4 5 6; do echo $i; done", NULL};
	struct rt_log_read_opts o = all_logs;
	struct times all = {0}, part = {0};
	struct bh_err err;
	int calls = 0;

	run_to_end(f, cmd, NULL);
	assert_int_equal(rt_log_read(f->log, &o, times_cb, &all, &err), 0);
	assert_int_equal(all.n, 6);
	o.since_ns = all.t[2]; /* inclusive */
	assert_int_equal(rt_log_read(f->log, &o, times_cb, &part, &err), 0);
	assert_int_equal(part.n, 4);
	assert_true(part.t[0] == all.t[2]);
	part.n = 0;
	o.until_ns = all.t[4]; /* exclusive */
	assert_int_equal(rt_log_read(f->log, &o, times_cb, &part, &err), 0);
	assert_int_equal(part.n, 2);
	o = all_logs;
	assert_int_equal(rt_log_read(f->log, &o, stop_after_two, &calls, &err), 42);
	assert_int_equal(calls, 2);
}

static void test_long_line_split_16k(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo", NULL};
	struct collected c;
	struct bh_err err;

	run_to_end(f, cmd, NULL);
	assert_int_equal(check_log_file(f->log), 3);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 3); /* 16384 + 16384 + 7232 with the newline */
	assert_int_equal(c.out.len, 40001);
	collected_free(&c);
}

static void test_rotation_keeps_k_files(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "seq 1 20000", NULL};
	struct rt_monitor_opts o;
	char name[PATH_MAX + 8];
	struct stat st;
	struct collected c;
	struct bh_err err;
	int lines = 0;

	opts_for(f, &o, cmd);
	o.log_max_size = 8192;
	o.log_max_files = 3;
	run_to_end(f, cmd, &o);
	for (int i = 0; i <= 3; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s", f->log);
		else
			snprintf(name, sizeof(name), "%s.%d", f->log, i);
		if (i == 3) {
			assert_int_equal(stat(name, &st), -1);
			continue;
		}
		assert_int_equal(stat(name, &st), 0);
		assert_true(st.st_size <= 8192);
		lines += check_log_file(name);
	}
	assert_true(lines > 100 && lines < 20000);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, lines);
	assert_true(c.increasing);
	assert_true(bh_str_has_prefix(strstr(c.out.data, "\n19999\n"), "\n19999\n20000\n"));
	collected_free(&c);
}

static void test_exit_codes(void **state)
{
	struct fx *f = *state;
	const char *ok[] = {"/bin/true", NULL};
	const char *three[] = {"/bin/sh", "-c", "exit 3", NULL};
	const char *killed[] = {"/bin/sh", "-c", "kill -9 $$", NULL};

	run_to_end(f, ok, NULL);
	probe_exited(f, 0, 0);
	run_to_end(f, three, NULL);
	probe_exited(f, 3, 0);
	run_to_end(f, killed, NULL);
	probe_exited(f, 137, 9);
}

static void test_exec_failure_reports_errno(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/nonexistent/prog", NULL};
	struct rt_monitor_opts o;
	struct bh_err err;
	pid_t c, m;

	opts_for(f, &o, cmd);
	assert_true(rt_monitor_spawn(&o, &c, &m, &err) < 0);
	assert_int_equal(err.code, ENOENT);
	o.monitor_path = "/nonexistent/berth-monitor";
	assert_true(rt_monitor_spawn(&o, &c, &m, &err) < 0);
	assert_int_equal(err.code, ENOENT);
}

/* The test hook must not exist in the real binary. */
static void test_real_binary_refuses_host_cmd(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/true", NULL};
	const char *bin = getenv("BERTH_BIN_DIR");
	char monitor[PATH_MAX];
	struct rt_monitor_opts o;
	struct bh_err err;
	pid_t c, m;

	snprintf(monitor, sizeof(monitor), "%s/berth-monitor", bin ? bin : "build/bin");
	opts_for(f, &o, cmd);
	o.monitor_path = monitor;
	assert_true(rt_monitor_spawn(&o, &c, &m, &err) < 0);
	assert_int_equal(err.code, EINVAL);
	assert_false(bh_path_exists(f->dir));
}

/* Any bytes at all: every log line is still valid JSON (jansson checks UTF-8). */
static void test_logs_binary_garbage(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "head -c 300000 /dev/urandom", NULL};

	run_to_end(f, cmd, NULL);
	assert_true(check_log_file(f->log) > 0);
	probe_exited(f, 0, 0);
}

static void test_attach_stdin_and_eof(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "cat; echo done >&2", NULL};
	struct rt_monitor_opts o;
	struct session s;
	int fd;

	opts_for(f, &o, cmd);
	o.open_stdin = true;
	spawn(f, &o);
	fd = attach(f);
	send_frame(fd, RT_FRAME_STDIN, "hello ", 6);
	send_frame(fd, RT_FRAME_STDIN, "world\n", 6);
	send_frame(fd, RT_FRAME_STDIN_EOF, NULL, 0);
	read_session(fd, &s);
	close(fd);
	assert_int_equal(s.hello_offset, 0);
	assert_int_equal(s.hello_flags, 2); /* stdin open, no tty */
	assert_string_equal(s.out.data, "hello world\n");
	assert_string_equal(s.err.data, "done\n");
	assert_non_null(strstr(s.exit_json, "\"ExitCode\":0"));
	session_free(&s);
	probe_exited(f, 0, 0);
}

static void test_attach_fanout_and_signal(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "echo ready; exec cat", NULL};
	struct rt_monitor_opts o;
	struct session s1;
	uint8_t sig = SIGKILL, type;
	char buf[512];
	int a, b;

	opts_for(f, &o, cmd);
	o.open_stdin = true;
	spawn(f, &o);
	a = attach(f);
	read_frame(a, &type, buf, sizeof(buf)); /* hello: "ready\n" may be before it */
	assert_int_equal(type, RT_FRAME_HELLO);
	size_t got = (uint8_t)buf[7];
	send_frame(a, RT_FRAME_STDIN, "x\n", 2);
	/* "ready\n" and "x\n": wait for both so b's hello offset is known. */
	while (got < 8) {
		size_t n = read_frame(a, &type, buf, sizeof(buf));
		assert_int_equal(type, RT_FRAME_STDOUT);
		got += n;
	}
	b = attach(f);
	read_frame(b, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	assert_int_equal(buf[7], 8); /* offset: "ready\n" + "x\n" */
	send_frame(b, RT_FRAME_STDIN, "y\n", 2);
	assert_int_equal(read_frame(b, &type, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "y\n");
	send_frame(b, RT_FRAME_SIGNAL, &sig, 1);
	read_frame(b, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_EXIT);
	assert_non_null(strstr(buf, "\"ExitCode\":137"));
	/* a sees y (fan-out) and the same exit */
	bh_buf_init(&s1.out, 4096);
	for (;;) {
		size_t n = read_frame(a, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT)
			break;
		bh_buf_append(&s1.out, buf, n);
	}
	assert_string_equal(s1.out.data, "y\n");
	assert_non_null(strstr(buf, "\"Signal\":9"));
	bh_buf_free(&s1.out);
	close(a);
	close(b);
	probe_exited(f, 137, 9);
}

/* --hold-output (attach before start): the command has written a prompt
 * (no newline) and a line before the first client connects (the fifo says
 * so); the client still gets all of it from offset 0, and the log has it in
 * order once released.  Without the hold the monitor would have read it
 * already: hello offset 16 and nothing for the client. */
static void test_hold_output_until_first_client(void **state)
{
	struct fx *f = *state;
	char fifo[PATH_MAX + 16], script[2 * PATH_MAX], line[8];
	const char *cmd[] = {"/bin/sh", "-c", script, NULL};
	struct rt_monitor_opts o;
	struct collected c;
	struct session s;
	struct bh_err err;
	int ff, fd;

	snprintf(fifo, sizeof(fifo), "%s/written", f->tmp);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(script, sizeof(script),
	         "printf PROMPT; echo ' line'; echo more >&2; echo w > %s; exec cat", fifo);
	opts_for(f, &o, cmd);
	o.open_stdin = true;
	o.hold_output = true;
	spawn(f, &o);
	ff = open(fifo, O_RDONLY); /* returns once the command wrote its output */
	assert_true(ff >= 0);
	assert_int_equal(read(ff, line, sizeof(line)), 2);
	close(ff);
	fd = attach(f);
	send_frame(fd, RT_FRAME_STDIN, "in\n", 3);
	send_frame(fd, RT_FRAME_STDIN_EOF, NULL, 0);
	read_session(fd, &s);
	close(fd);
	assert_int_equal(s.hello_offset, 0);
	assert_string_equal(s.out.data, "PROMPT line\nin\n");
	assert_string_equal(s.err.data, "more\n");
	session_free(&s);
	probe_exited(f, 0, 0);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.out.data, "PROMPT line\nin\n");
	assert_string_equal(c.err.data, "more\n");
	collected_free(&c);
}

/* Reads frames until the stream so far contains want. */
static void read_until(int fd, struct bh_buf *seen, const char *want)
{
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	uint8_t type;

	while (seen->data == NULL || strstr(seen->data, want) == NULL) {
		size_t n = read_frame(fd, &type, buf, sizeof(buf));
		assert_true(type == RT_FRAME_STDOUT || type == RT_FRAME_HELLO);
		if (type == RT_FRAME_STDOUT)
			assert_int_equal(bh_buf_append(seen, buf, n), 0);
	}
}

static void test_tty_size_and_sighup_on_detach(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "read x; stty size; read y; stty size; exec cat",
	                     NULL};
	struct rt_monitor_opts o;
	struct session s;
	uint8_t type;
	char buf[256];
	int watcher, user;
	uint8_t rs[4] = {0, 40, 0, 120};
	struct bh_buf seen;

	opts_for(f, &o, cmd);
	o.tty = true;
	o.tty_rows = 30;
	o.tty_cols = 100;
	o.open_stdin = true;
	o.sighup_on_detach = true;
	spawn(f, &o);
	watcher = attach(f);
	user = attach(f);
	read_frame(user, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	assert_int_equal(buf[8], 3); /* tty + stdin */
	send_frame(user, RT_FRAME_INTERACTIVE, NULL, 0);
	bh_buf_init(&seen, 1 << 16);
	send_frame(user, RT_FRAME_STDIN, "go\n", 3);
	read_until(user, &seen, "30 100\r\n");
	send_frame(user, RT_FRAME_RESIZE, rs, sizeof(rs));
	send_frame(user, RT_FRAME_STDIN, "go\n", 3);
	read_until(user, &seen, "40 120\r\n");
	bh_buf_free(&seen);
	close(user); /* the interactive client goes away: SIGHUP */
	read_session(watcher, &s);
	close(watcher);
	assert_non_null(strstr(s.exit_json, "\"Signal\":1"));
	session_free(&s);
	probe_exited(f, 129, 1);
}

/* A client whose output side broke (a send failed: here it shut its reading
 * side, as a client killed between our poll and our send looks) is still
 * read to its end: its interactive frame, sent after that, still counts and
 * its leaving still hangs up the terminal.  The monitor once dropped such a
 * client on the failed send with its last frames unread: no SIGHUP, and a
 * `cat` in a TTY exec ran on for good (e2e test_exec_api, under load). */
static void test_hung_up_client_is_read_to_its_end(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "read x; echo one; exec cat", NULL};
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	struct rt_monitor_opts o;
	struct bh_buf seen;
	uint8_t type;
	int watcher, user;

	opts_for(f, &o, cmd);
	o.tty = true;
	o.open_stdin = true;
	o.sighup_on_detach = true;
	spawn(f, &o);
	watcher = attach(f);
	user = attach(f); /* the newest client is flushed first */
	read_frame(user, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	assert_int_equal(shutdown(user, SHUT_RD), 0);
	bh_buf_init(&seen, 1 << 16);
	send_frame(watcher, RT_FRAME_STDIN, "go\n", 3);
	/* the same output went to user first: that send failed */
	read_until(watcher, &seen, "one\r\n");
	bh_buf_free(&seen);
	send_frame(user, RT_FRAME_INTERACTIVE, NULL, 0);
	close(user);
	do
		read_frame(watcher, &type, buf, sizeof(buf));
	while (type != RT_FRAME_EXIT);
	close(watcher);
	assert_non_null(strstr(buf, "\"Signal\":1"));
	probe_exited(f, 129, 1);
}

struct stdin_pump {
	int fd;
	size_t total;
};

static void *pump_stdin(void *arg)
{
	struct stdin_pump *sp = arg;
	static char chunk[32768];

	memset(chunk, 'a', sizeof(chunk));
	for (size_t sent = 0; sent < sp->total; sent += sizeof(chunk))
		send_frame(sp->fd, RT_FRAME_STDIN, chunk, sizeof(chunk));
	send_frame(sp->fd, RT_FRAME_STDIN_EOF, NULL, 0);
	return NULL;
}

/* 4 MB of stdin into a container that reads it late: the monitor blocks on
 * the pipe, holds the sender back, and a second client that writes and hangs
 * up meanwhile neither loses nor reorders anyone's bytes. */
static void test_stdin_backpressure(void **state)
{
	struct fx *f = *state;
	/* the sleep only makes the pipe fill up first; the result does not
	 * depend on it */
	const char *cmd[] = {"/bin/sh", "-c", "sleep 1; wc -c", NULL};
	struct rt_monitor_opts o;
	struct stdin_pump sp = {.total = 4 << 20};
	uint8_t rs[4] = {0, 1, 0, 1};
	struct session s;
	pthread_t th;
	int b;

	opts_for(f, &o, cmd);
	o.open_stdin = true;
	spawn(f, &o);
	sp.fd = attach(f);
	b = attach(f);
	assert_int_equal(pthread_create(&th, NULL, pump_stdin, &sp), 0);
	send_frame(b, RT_FRAME_NO_OUTPUT, NULL, 0);
	send_frame(b, RT_FRAME_RESIZE, rs, sizeof(rs)); /* no tty: ignored */
	send_frame(b, RT_FRAME_STDIN, "go\n", 3);
	close(b);
	assert_int_equal(pthread_join(th, NULL), 0);
	read_session(sp.fd, &s);
	close(sp.fd);
	/* b's 3 bytes land at some frame boundary; nothing is lost */
	assert_string_equal(s.out.data, "4194307\n");
	session_free(&s);
	probe_exited(f, 0, 0);
}

/* berthd dies right after the spawn: the monitor (and container) live on. */
static void test_outlives_parent_and_probe(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c", "exec cat", NULL};
	struct rt_monitor_opts o;
	struct rt_monitor_state st;
	struct bh_err err;
	uint8_t sig = SIGTERM;
	pid_t pids[2], child;
	int p[2], status, fd;
	struct session s;

	opts_for(f, &o, cmd);
	o.open_stdin = true;
	assert_int_equal(pipe(p), 0);
	child = fork();
	if (child == 0) {
		if (rt_monitor_spawn(&o, &pids[0], &pids[1], &err) < 0)
			_exit(1);
		_exit(write(p[1], pids, sizeof(pids)) == sizeof(pids) ? 0 : 1);
	}
	close(p[1]);
	read_exact(p[0], pids, sizeof(pids));
	close(p[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f->cpid = pids[0];
	f->mpid = pids[1];
	assert_int_equal(rt_monitor_probe(f->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_RUNNING);
	/* a second monitor for the same dir is refused and touches nothing */
	assert_true(rt_monitor_spawn(&o, &pids[0], &pids[1], &err) < 0);
	assert_int_equal(err.code, EBUSY);
	assert_int_equal(rt_monitor_probe(f->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_RUNNING);
	assert_int_equal(st.monitor_pid, f->mpid);
	assert_int_equal(st.monitor_pid, f->mpid);
	assert_int_equal(kill(f->cpid, 0), 0);
	fd = attach(f);
	send_frame(fd, RT_FRAME_SIGNAL, &sig, 1);
	read_session(fd, &s);
	close(fd);
	session_free(&s);
	probe_exited(f, 143, 15);
}

static void test_probe_lost(void **state)
{
	struct fx *f = *state;
	struct rt_monitor_state st;
	struct bh_err err;
	char pid[32];

	assert_int_equal(bh_mkdir_p(f->dir, 0700, &err), 0);
	/* our own pid is alive but is not a monitor for this dir */
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	char *path = bh_path_join(f->dir, "monitor.pid");
	assert_int_equal(bh_write_file_atomic(path, pid, strlen(pid), 0644, &err), 0);
	free(path);
	assert_int_equal(rt_monitor_probe(f->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_LOST);
}

/* The goal is an idle monitor under 1 MB; sanitizers add their own runtime. */
#if defined(__SANITIZE_ADDRESS__)
#define IDLE_RSS_MAX_KB 16384
#else
#define IDLE_RSS_MAX_KB 1024
#endif

static long vm_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

static off_t log_bytes(struct fx *f)
{
	char name[PATH_MAX + 8];
	struct stat st;
	off_t total = 0;

	for (int i = 0; i < 3; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "%s", f->log);
		else
			snprintf(name, sizeof(name), "%s.%d", f->log, i);
		if (stat(name, &st) == 0)
			total += st.st_size;
	}
	return total;
}

/* 200 MB through a client that first does not read at all, then reads: the
 * container is held back (not our memory), and the monitor's RSS stays
 * bounded throughout. */
static void test_slow_client_bounds_memory(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/sh", "-c",
	                     "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 200000000", NULL};
	struct rt_monitor_opts o;
	static char buf[RT_MONITOR_FRAME_MAX + 1];
	uint64_t total;
	long idle_rss, max_rss = 0, rss, start_rss;
	uint8_t type;
	int fd, stable = 0;
	off_t prev = -1, cur;

	opts_for(f, &o, (const char *const[]){"/bin/sh", "-c", "exec cat", NULL});
	o.open_stdin = true;
	spawn(f, &o); /* a first monitor, idle, to measure the idle RSS */
	idle_rss = vm_rss_kb(f->mpid);
	fd = attach(f);
	send_frame(fd, RT_FRAME_STDIN_EOF, NULL, 0);
	read_session(fd, &(struct session){0});
	close(fd);
	wait_gone(f->mpid);
	print_message("monitor idle VmRSS %ld kB\n", idle_rss);

	opts_for(f, &o, cmd);
	o.log_max_size = 10 << 20;
	o.log_max_files = 2;
	spawn(f, &o);
	start_rss = vm_rss_kb(f->mpid);
	fd = attach(f);
	read_frame(fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	total = 0; /* the bytes before we attached are counted by the hello */
	for (int i = 0; i < 8; i++)
		total = total << 8 | (uint8_t)buf[i];
	/* Not reading: the output must stop well short of 200 MB.  Poll the log
	 * size until it stops moving (a measurement with a deadline). */
	for (int i = 0; i < 300 && stable < 5; i++) {
		struct pollfd none = {.fd = -1};
		poll(&none, 0, 20);
		cur = log_bytes(f);
		stable = cur == prev ? stable + 1 : 0;
		prev = cur;
	}
	assert_int_equal(stable, 5);
	rss = vm_rss_kb(f->mpid);
	print_message("held back after %lld log bytes, VmRSS %ld kB\n", (long long)prev, rss);
	assert_true(prev < 4 << 20);
	for (;;) {
		size_t n = read_frame(fd, &type, buf, sizeof(buf));
		if (type == RT_FRAME_EXIT)
			break;
		total += n;
		if ((total & ((8 << 20) - 1)) < n) {
			rss = vm_rss_kb(f->mpid);
			if (rss > max_rss)
				max_rss = rss;
		}
	}
	close(fd);
	print_message("200 MB streamed, max monitor VmRSS %ld kB\n", max_rss);
	assert_int_equal(total, 200000000);
	assert_true(strstr(buf, "\"ExitCode\":0") != NULL);
	/* bounded: the 256 KiB ring, the 16 KiB line and 64 KiB log buffers */
	assert_true(max_rss > 0 && max_rss - start_rss < 1024);
	assert_true(idle_rss > 0 && idle_rss <= IDLE_RSS_MAX_KB);
	wait_gone(f->mpid);
}

struct follow_ctx {
	const char *log;
	const char *exit_file;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct collected c;
	int rc;
};

static int follow_cb(const struct rt_log_entry *e, void *arg)
{
	struct follow_ctx *x = arg;

	pthread_mutex_lock(&x->mu);
	collect_cb(e, &x->c);
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return 0;
}

static void *follow_thread(void *arg)
{
	struct follow_ctx *x = arg;
	struct bh_err err;

	x->rc = rt_log_follow(x->log, &all_logs, x->exit_file, follow_cb, x, &err);
	return NULL;
}

/* Blocks until the follower has seen n entries (fails after 10 s). */
static void wait_followed(struct follow_ctx *x, int n)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&x->mu);
	while (x->c.n < n)
		if (pthread_cond_timedwait(&x->cv, &x->mu, &dl) != 0)
			break;
	int got = x->c.n;
	pthread_mutex_unlock(&x->mu);
	assert_int_equal(got, n);
}

/* Batches of 70 entries (~12.3 KB, ~176 bytes each) against 8 KB files (3
 * kept): every batch rotates once or twice, and the follower must walk
 * path.2 → path.1 → path without losing a line.  A batch must stay under two
 * files' worth: a third rotation deletes the file the follower was reading,
 * and what was only in the file after it is gone before it can be opened (as
 * with Docker) — 100-entry batches did that when the follower ran late. */
#define FOLLOW_BATCH 70
#define FOLLOW_BATCHES 60
static void test_follow_across_rotation(void **state)
{
	struct fx *f = *state;
	const char *cmd[] = {"/bin/cat", NULL};
	struct rt_monitor_opts o;
	struct follow_ctx x = {.log = f->log};
	pthread_t th;
	char *exit_file = bh_path_join(f->dir, "exit.json"), line[128];
	int fd, n = 0;
	struct session s;

	opts_for(f, &o, cmd);
	o.open_stdin = true;
	o.log_max_size = 8192;
	o.log_max_files = 3;
	spawn(f, &o);
	x.exit_file = exit_file;
	pthread_mutex_init(&x.mu, NULL);
	pthread_cond_init(&x.cv, NULL);
	collected_init(&x.c);
	assert_int_equal(pthread_create(&th, NULL, follow_thread, &x), 0);
	fd = attach(f);
	/* this client never reads output: without no-output it would (rightly)
	 * hold the container back once its buffer is full */
	send_frame(fd, RT_FRAME_NO_OUTPUT, NULL, 0);
	for (int b = 0; b < FOLLOW_BATCHES; b++) {
		for (int i = 0; i < FOLLOW_BATCH; i++) {
			int len = snprintf(line, sizeof(line), "%d %0100d\n", b * FOLLOW_BATCH + i + 1, 0);
			send_frame(fd, RT_FRAME_STDIN, line, (size_t)len);
		}
		wait_followed(&x, (b + 1) * FOLLOW_BATCH);
	}
	send_frame(fd, RT_FRAME_STDIN_EOF, NULL, 0);
	read_session(fd, &s);
	close(fd);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(x.rc, 0);
	assert_int_equal(s.out.len, 0); /* no-output: only hello and exit */
	for (char *p = x.c.out.data; p && *p; p = strchr(p, '\n') + 1) {
		n++;
		assert_int_equal(atoi(p), n);
	}
	assert_int_equal(n, FOLLOW_BATCH * FOLLOW_BATCHES);
	assert_true(x.c.increasing);
	collected_free(&x.c);
	session_free(&s);
	free(exit_file);
	wait_gone(f->mpid);
}

/* ---- tests: real containers through berth-monitor ----------------------- */
static int copy_file(const char *src, const char *dst)
{
	char *data = NULL;
	size_t len;
	struct bh_err err;
	int r;

	if (bh_read_file(src, 64 << 20, &data, &len, &err) < 0)
		return -1;
	r = bh_write_file_atomic(dst, data, len, 0755, &err);
	free(data);
	return r;
}

static int make_rootfs(const char *root)
{
	static const char *const dirs[] = {"bin", "tmp", "etc", "proc", "sys", "dev", NULL};
	char buf[PATH_MAX];
	FILE *list;
	int r = 0;

	for (const char *const *d = dirs; *d; d++) {
		snprintf(buf, sizeof(buf), "%s/%s", root, *d);
		if (mkdir(buf, 0755) < 0)
			return -1;
	}
	snprintf(buf, sizeof(buf), "%s/bin/busybox", root);
	if (copy_file("/bin/busybox", buf) < 0)
		return -1;
	list = popen("/bin/busybox --list", "r");
	while (list && fgets(buf, sizeof(buf), list)) {
		char link[PATH_MAX + 256];
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(link, sizeof(link), "%s/bin/%s", root, buf);
		if (strcmp(buf, "busybox") != 0 && symlink("busybox", link) < 0)
			r = -1;
	}
	return list && pclose(list) == 0 ? r : -1;
}

static int real_setup(void **state)
{
	static int n;
	struct fx *f;
	char rootfs[PATH_MAX + 8];
	struct bh_err err;

	setup(state);
	f = *state;
	f->real = true;
	snprintf(f->bundle, sizeof(f->bundle), "%s/bundle", f->tmp);
	snprintf(f->state_root, sizeof(f->state_root), "%s/state", f->tmp);
	/* unique: other build directories may run this test at the same time */
	snprintf(f->id, sizeof(f->id), "mon-%d-%d", (int)getpid(), n++);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", f->bundle);
	if (geteuid() != 0)
		return 0; /* the test skips itself */
	if (bh_mkdir_p(rootfs, 0755, &err) < 0 || make_rootfs(rootfs) < 0)
		return -1;
	return 0;
}

static void real_opts_mem(struct fx *f, struct rt_monitor_opts *o, const char *const *args,
                          bool tty, int64_t mem_limit)
{
	json_t *spec = rt_spec_default(args);
	char *cfg = bh_path_join(f->bundle, "config.json"), *text;
	const char *bin = getenv("BERTH_BIN_DIR");
	static char monitor[PATH_MAX];
	struct bh_err err;

	if (geteuid() != 0) {
		print_message("SKIP: real containers need root\n");
		skip();
	}
	if (tty)
		json_object_set_new(json_object_get(spec, "process"), "terminal", json_true());
	if (mem_limit > 0)
		json_object_set_new(json_object_get(json_object_get(spec, "linux"), "resources"),
		                    "memory",
		                    json_pack("{s:I, s:I}", "limit", (json_int_t)mem_limit, "swap",
		                              (json_int_t)mem_limit));
	text = json_dumps(spec, JSON_INDENT(1));
	assert_int_equal(bh_write_file_atomic(cfg, text, strlen(text), 0644, &err), 0);
	free(text);
	free(cfg);
	json_decref(spec);
	snprintf(monitor, sizeof(monitor), "%s/berth-monitor", bin ? bin : "build/bin");
	opts_for(f, o, NULL);
	o->monitor_path = monitor;
	o->id = f->id;
	o->bundle = f->bundle;
	o->state_root = f->state_root;
	o->tty = tty;
}

static void real_opts(struct fx *f, struct rt_monitor_opts *o, const char *const *args, bool tty)
{
	real_opts_mem(f, o, args, tty, 0);
}

static void real_delete(struct fx *f)
{
	struct bh_err err;

	if (rt_container_delete(f->state_root, f->id, false, &err) < 0)
		fail_msg("delete: %s", err.msg);
}

static void test_real_logs_and_exit(void **state)
{
	struct fx *f = *state;
	const char *const args[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	struct rt_monitor_opts o;
	struct collected c;
	struct bh_err err;

	real_opts(f, &o, args, false);
	spawn(f, &o);
	probe_exited(f, 3, 0);
	real_delete(f);
	assert_int_equal(check_log_file(f->log), 2);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	assert_string_equal(c.out.data, "out\n");
	assert_string_equal(c.err.data, "err\n");
	collected_free(&c);
}

static void test_real_attach_kill_and_rss(void **state)
{
	struct fx *f = *state;
	const char *const args[] = {"sh", "-c", "read x; echo got $x; exec cat", NULL};
	struct rt_monitor_opts o;
	uint8_t type, sig = SIGKILL;
	char buf[512];
	long rss;
	int fd;

	real_opts(f, &o, args, false);
	o.open_stdin = true;
	spawn(f, &o);
	rss = vm_rss_kb(f->mpid);
	print_message("idle berth-monitor (real container) VmRSS %ld kB\n", rss);
	fd = attach(f);
	read_frame(fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_HELLO);
	send_frame(fd, RT_FRAME_STDIN, "hi\n", 3);
	assert_int_equal(read_frame(fd, &type, buf, sizeof(buf)), 7);
	assert_int_equal(type, RT_FRAME_STDOUT);
	assert_string_equal(buf, "got hi\n");
	send_frame(fd, RT_FRAME_SIGNAL, &sig, 1);
	read_frame(fd, &type, buf, sizeof(buf));
	assert_int_equal(type, RT_FRAME_EXIT);
	close(fd);
	probe_exited(f, 137, 9);
	real_delete(f);
	assert_true(rss > 0 && rss <= IDLE_RSS_MAX_KB);
}

static void test_real_tty(void **state)
{
	struct fx *f = *state;
	const char *const args[] = {"sh", "-c", "stty size; echo x >&2", NULL};
	struct rt_monitor_opts o;
	struct collected c;
	struct bh_err err;

	real_opts(f, &o, args, true);
	o.tty_rows = 30;
	o.tty_cols = 100;
	spawn(f, &o);
	wait_gone(f->mpid);
	collected_init(&c);
	assert_int_equal(rt_log_read(f->log, &all_logs, collect_cb, &c, &err), 0);
	probe_exited(f, 0, 0);
	real_delete(f);
	/* one stream on a TTY: stderr arrives as stdout */
	assert_string_equal(c.out.data, "30 100\r\nx\r\n");
	assert_int_equal(c.err.len, 0);
	collected_free(&c);
}

/* The monitor reads the OOM flag from the cgroup before it writes exit.json. */
static void test_real_oom_killed(void **state)
{
	struct fx *f = *state;
	const char *const args[] = {"sh", "-c", "x=0123456789; while :; do x=$x$x; done", NULL};
	struct rt_monitor_opts o;
	struct rt_monitor_state st;
	struct bh_err err;

	real_opts_mem(f, &o, args, false, 32 << 20);
	spawn(f, &o);
	wait_gone(f->mpid);
	assert_int_equal(rt_monitor_probe(f->dir, &st, &err), 0);
	assert_int_equal(st.status, RT_MONITOR_EXITED);
	assert_int_equal(st.exit_code, 137);
	assert_true(st.oom_killed);
	real_delete(f);
}

static void test_real_exec_failure(void **state)
{
	struct fx *f = *state;
	const char *const args[] = {"/nonexistent", NULL};
	struct rt_monitor_opts o;
	struct bh_err err;
	pid_t c, m;

	real_opts(f, &o, args, false);
	assert_true(rt_monitor_spawn(&o, &c, &m, &err) < 0);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(rt_exec_errno_status(err.code), 127);
}

static void test_frame_limits(void **state)
{
	uint8_t hdr[RT_MONITOR_FRAME_HDR], type;
	uint32_t len;

	rt_frame_header(hdr, RT_FRAME_STDERR, 70000);
	assert_int_equal(hdr[0], 2);
	assert_int_equal(rt_frame_parse(hdr, &type, &len), -1);
	rt_frame_header(hdr, RT_FRAME_STDOUT, 0xa0b);
	assert_int_equal(rt_frame_parse(hdr, &type, &len), 0);
	assert_int_equal(len, 0xa0b);
	assert_int_equal(hdr[3], 0xa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_limits),
	    cmocka_unit_test_setup_teardown(test_logs_json_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logs_tail_and_streams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logs_binary_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logs_since_until_and_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_binary_refuses_host_cmd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_split_16k, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_keeps_k_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exec_failure_reports_errno, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attach_stdin_and_eof, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attach_fanout_and_signal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hold_output_until_first_client, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdin_backpressure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tty_size_and_sighup_on_detach, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hung_up_client_is_read_to_its_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outlives_parent_and_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_client_bounds_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_follow_across_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_logs_and_exit, real_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_attach_kill_and_rss, real_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_tty, real_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_oom_killed, real_setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_exec_failure, real_setup, teardown),
	};

	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
