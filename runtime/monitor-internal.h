/* Private to the berth-monitor program (runtime/monitor-*.c that are compiled
 * into the binary, not into the runtime library).  Static buffers, no threads,
 * no JSON library in the loop: the idle monitor must stay under 1 MB RSS. */
#ifndef BERTH_MONITOR_INTERNAL_H
#define BERTH_MONITOR_INTERNAL_H

#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "runtime/rt-monitor.h"

struct mon_opts {
	const char *id, *bundle, *state_root, *dir, *log_path;
	int64_t log_max_size;
	int log_max_files;
	bool tty, open_stdin, sighup_on_detach;
	unsigned short rows, cols;
	int sync_fd;
	char **host_cmd; /* test builds only: run this host command instead */
	/* exec mode (--exec): a process in the running container --id */
	const char *exec_id, *exec_spec;
	bool detached; /* exec: no client will come; output is discarded */
	/* container mode: output waits (in the pipe/pty) for the first client
	 * that takes it, then goes to the log as always (attach before start) */
	bool hold_output;
};

int mon_parse_args(int argc, char **argv, struct mon_opts *o, struct bh_err *err);

/* monitor-starter.c: rt_container_start() (or, in exec mode,
 * rt_container_exec()) in a sealed, short-lived child; the process ends up
 * as our child (we are its subreaper).  console >= 0: the console socket the
 * pty master comes back on (the pty is made inside the container). */
int mon_start_container(const struct mon_opts *o, const int stdio[3], int console, pid_t *pid,
                        struct bh_err *err);
/* main() of `berth-monitor --start-container ID BUNDLE STATE_ROOT MASK [RxC]`
 * and `berth-monitor --start-exec ID STATE_ROOT SPEC MASK [RxC]`. */
int mon_starter_main(int argc, char **argv);

/* ---- json-file log writer (monitor-logwrite.c) --------------------------- */
#define MON_LOG_OUT_BUF (64 * 1024)

struct mon_logw {
	int fd;
	const char *path;
	int64_t size, max_size;
	int max_files;
	int64_t last_ns;
	bool failed; /* a write failed: said once in monitor.log */
	size_t out_len;
	char out[MON_LOG_OUT_BUF];
};

int mon_logw_open(struct mon_logw *w, const char *path, int64_t max_size, int max_files,
                  struct bh_err *err);
/* Appends one entry {"log":...,"stream":...,"time":...}; rotates first if the
 * entry would take the file over max_size. */
void mon_logw_entry(struct mon_logw *w, int stream, const char *data, size_t len);
void mon_logw_flush(struct mon_logw *w);
void mon_logw_close(struct mon_logw *w);
/* JSON string escaping as Go's encoding/json does it (invalid UTF-8 becomes
 * U+FFFD, <>& and U+2028/9 escaped).  Returns the escaped length; writes at
 * most cap bytes to out when out is not NULL. */
size_t mon_json_escaped_len(const char *s, size_t len);

/* Line assembly for one output stream: complete lines (and 16 KiB pieces of
 * longer ones, cut on a UTF-8 boundary) go to the log. */
struct mon_lines {
	size_t len;
	char buf[RT_LOG_LINE_MAX];
};
void mon_lines_feed(struct mon_lines *l, struct mon_logw *w, int stream);
void mon_lines_flush(struct mon_lines *l, struct mon_logw *w, int stream);

/* ---- the event loop (monitor-loop.c) ------------------------------------- */
struct mon_client;

struct mon_out {
	int fd;     /* -1 once at EOF */
	int stream; /* 1 stdout, 2 stderr */
	struct mon_lines lines;
};

struct mon {
	struct mon_opts *o;
	pid_t cpid;
	int pidfd; /* of the container's init, for signals */
	int sigfd; /* SIGCHLD */
	int listen_fd;
	int stdin_fd; /* our end of the container's stdin; -1 if closed/none */
	int master;   /* pty master (tty), also out[0].fd; -1 otherwise */
	struct mon_out out[2];
	int nout;
	struct mon_client *clients;
	struct mon_client *stdin_owner; /* client whose stdin data is pending */
	int n_interactive;
	uint64_t offset; /* output bytes so far, both streams */
	bool exited;
	uint64_t exited_ms;
	bool output_taken; /* a client that takes output has been attached */
	int wstatus;
	char finished_at[40];
	uint64_t last_progress_ms;
	struct mon_logw log;
	size_t read_max; /* bytes per read of the output (mon_loop sets it) */
};

int mon_loop(struct mon *m);

/* ---- attach clients (monitor-attach.c) ----------------------------------- */
#define MON_EXIT_RESERVE 256 /* ring room kept for the final exit frame */
void mon_attach_accept(struct mon *m);
/* Queues a frame to every client; the caller checked mon_attach_room(). */
void mon_attach_broadcast(struct mon *m, int type, const void *data, size_t len);
/* When exactly one client takes output: queues a frame of what pipe fd
 * holds now (at most RT_MONITOR_FRAME_MAX) whose payload splice() moves from
 * the pipe to that client's socket, never through our memory.  Returns the
 * payload length, 0 when it cannot (then read() as usual).  Until it is
 * sent, mon_attach_room() is false: the pipe is not read meanwhile. */
ssize_t mon_attach_splice(struct mon *m, int fd, int type);
/* True when every client can take a frame of len payload bytes. */
bool mon_attach_room(struct mon *m, size_t len);
/* Fills pollfds for the clients; returns how many. */
int mon_attach_pollfds(struct mon *m, struct pollfd *p, int max);
void mon_attach_events(struct mon *m, struct pollfd *p, int n);
void mon_attach_stdin_writable(struct mon *m);
/* Drops clients stuck longer than RT_MONITOR_STUCK_MS; returns ms until the
 * next such deadline (-1: none). */
int mon_attach_reap_stuck(struct mon *m, uint64_t now);
bool mon_attach_pending(struct mon *m);
/* Live clients that take output (not no-output ones). */
int mon_attach_output_clients(struct mon *m);
void mon_attach_close_all(struct mon *m);
int mon_attach_count(struct mon *m);

void mon_close_stdin(struct mon *m);

#endif
