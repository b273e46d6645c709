/* The per-container monitor (berth-monitor) and berthd's side of it: spawn,
 * live-restore probe, the attach-socket framing and the json-file log reader.
 * Trusts nothing it reads from the container's output, the attach socket or
 * the log files: every frame and line has a size limit.
 *
 * ---- The monitor -----------------------------------------------------------
 * berthd runs (rt_monitor_spawn builds this):
 *   berth-monitor --id ID --bundle DIR --state-root DIR --dir EXEC_ROOT/containers/ID
 *                 --log DATA_ROOT/containers/ID/ID-json.log [--log-max-size N]
 *                 [--log-max-files K] [--tty [--tty-size ROWSxCOLS]] [--stdin]
 *                 [--sighup-on-detach] [--hold-output] [--sync-fd N]
 * (--hold-output: the output waits for the first attach client, then is
 * logged as always; berthd sets it when a client attached before the start)
 * or, for an exec (a new process in the running container ID):
 *   berth-monitor --exec EXEC_ID --id ID --state-root DIR
 *                 --dir EXEC_ROOT/containers/ID/exec/EXEC_ID --exec-spec FILE
 *                 [--tty [--tty-size ROWSxCOLS]] [--stdin] [--sighup-on-detach]
 *                 [--detached] [--sync-fd N]
 * (no log; output is held until an attach client takes it; see docs/monitor.md)
 * It double-forks with setsid (so it is re-parented away from berthd and
 * outlives it), becomes a child subreaper, makes pipes (or, for --tty, a console
 * socket: the runtime makes the pty inside the container and sends the master),
 * has a short-lived sealed child (`berth-monitor --start-container ...`, see
 * runtime/monitor-starter.c) call rt_container_start() with them as stdio —
 * the init is then re-parented to the monitor — and writes ONE JSON object on
 * the sync fd, then closes it:
 *   {"pid":CONTAINER_PID,"monitor_pid":MONITOR_PID}      on success
 *   {"errno":E,"message":"..."}                         on failure (ENOENT → 127 ...)
 * Files in --dir (mode 0700):
 *   monitor.pid    decimal pid of the monitor (written before the container starts)
 *   container.pid  decimal pid of the container's init
 *   attach.sock    unix stream socket, 0600, the attach protocol below
 *   monitor.log    the monitor's own error lines (never container output)
 *   exit.json      written atomically when the container's init exited:
 *                  {"ExitCode":N,"Signal":S,"OOMKilled":bool,"FinishedAt":"RFC3339Nano"}
 *                  ExitCode is 128+S when killed by signal S (as Docker).
 * After exit.json the monitor drains the output, flushes attach clients (at most
 * a few seconds), removes attach.sock and exits.  Nothing depends on berthd.
 *
 * ---- Attach protocol (attach.sock) --------------------------------------
 * Every message is a frame: [1 byte type][4 bytes big-endian length][payload].
 * monitor → client:
 *   1 stdout, 2 stderr   raw output bytes (TTY output is all type 1)
 *   3 exit               payload = the exit.json object; the last frame sent
 *   8 hello              first frame on connect, 9 bytes: [u64 BE count of output
 *                        bytes (both streams) before this client's first one]
 *                        [u8 flags: 1 tty, 2 stdin open]
 *                        (lets a resuming client number its bytes; see docs/monitor.md)
 * client → monitor:
 *   0 stdin   data for the container's stdin (discarded if stdin is closed)
 *   4 resize  4 bytes: rows u16 BE, cols u16 BE (TTY only)
 *   5 stdin-EOF (len 0): closes the container's stdin (pipes only; ignored for a TTY)
 *   6 signal  1 byte: signal number, sent to the container's init (exec mode:
 *             to the exec'd process)
 *   7 interactive (len 0): this client is an interactive session; with
 *             --sighup-on-detach the container (TTY) gets SIGHUP when the last
 *             interactive client disconnects.
 *   9 no-output (len 0): send this client no stdout/stderr frames (only hello
 *             and exit); it then never holds the container back.  For
 *             stdin-only and control (resize, signal) connections.
 * Backpressure: each client has a bounded buffer (RT_MONITOR_CLIENT_BUF); while
 * any client's buffer is full the monitor stops reading the container's output,
 * so the producer blocks.  A client that drains nothing for RT_MONITOR_STUCK_MS
 * is dropped.  The log always gets every byte. */
#ifndef BERTH_RT_MONITOR_H
#define BERTH_RT_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

#define RT_MONITOR_CLIENT_BUF (256 * 1024)
#define RT_MONITOR_STUCK_MS   30000
#define RT_MONITOR_FRAME_HDR  5
/* Largest frame either side accepts; larger ones drop the connection. */
#define RT_MONITOR_FRAME_MAX (64 * 1024)
/* Docker splits log lines longer than this into several entries. */
#define RT_LOG_LINE_MAX (16 * 1024)

enum rt_frame_type {
	RT_FRAME_STDIN = 0,
	RT_FRAME_STDOUT = 1,
	RT_FRAME_STDERR = 2,
	RT_FRAME_EXIT = 3,
	RT_FRAME_RESIZE = 4,
	RT_FRAME_STDIN_EOF = 5,
	RT_FRAME_SIGNAL = 6,
	RT_FRAME_INTERACTIVE = 7,
	RT_FRAME_HELLO = 8,
	RT_FRAME_NO_OUTPUT = 9,
};

/* Writes a frame header for (type, len) into hdr. */
void rt_frame_header(uint8_t hdr[RT_MONITOR_FRAME_HDR], enum rt_frame_type type, uint32_t len);
/* Parses a header; -1 if len > RT_MONITOR_FRAME_MAX. */
int rt_frame_parse(const uint8_t hdr[RT_MONITOR_FRAME_HDR], uint8_t *type, uint32_t *len);

/* ---- berthd side: spawn and probe ---------------------------------------- */
struct rt_monitor_opts {
	const char *monitor_path; /* the berth-monitor binary */
	const char *id;
	const char *bundle;
	const char *state_root; /* for rt_container_start */
	const char *dir;        /* EXEC_ROOT/containers/ID */
	const char *log_path;   /* DATA_ROOT/containers/ID/ID-json.log */
	int64_t log_max_size;   /* bytes; 0: no rotation */
	int log_max_files;      /* files kept when rotating (>= 1) */
	bool tty;
	unsigned short tty_rows, tty_cols; /* 0: leave the pty's default */
	bool open_stdin;
	bool sighup_on_detach;
	int timeout_ms; /* for the sync report; 0: 30 s */
	/* Tests only: berth-monitor-hooks runs this host command (NULL-terminated)
	 * instead of a container.  The real berth-monitor refuses the option. */
	const char *const *test_host_cmd;
	/* Exec mode (all zero: container mode).  exec_id set: the monitor runs
	 * the process described by exec_spec (rt_exec_spec_write) in the running
	 * container id with rt_container_exec; dir is
	 * EXEC_ROOT/containers/ID/exec/EXEC_ID; bundle and log_path must be NULL
	 * (no log: output goes to attach clients only and waits for the first
	 * one, see docs/monitor.md), unless detached (Docker's Detach:true: no
	 * client will come, output is dropped). */
	const char *exec_id;
	const char *exec_spec;
	bool detached;
	/* Container mode: hold the output (in the pipe or pty: the container
	 * blocks when it is full) until the first attach client that takes
	 * output connects; after the exit at most RT_MONITOR_STUCK_MS.  Held
	 * output is logged once released.  For a client that attached before
	 * the start (the first bytes would otherwise reach only the log). */
	bool hold_output;
};

/* Starts a monitor (which starts the container) and waits for its report
 * (up to timeout_ms: call it from a worker thread, never the lws thread).
 * On failure err->code is the errno the container start failed with
 * (ENOENT: command not found, EACCES: not executable, ...; see
 * rt_exec_errno_status), EBUSY if a monitor already runs in o->dir,
 * ETIMEDOUT if no report came (the monitor may still start the container). */
int rt_monitor_spawn(const struct rt_monitor_opts *o, pid_t *container_pid, pid_t *monitor_pid,
                     struct bh_err *err);

enum rt_monitor_status {
	RT_MONITOR_RUNNING, /* the monitor is alive (and so presumably the container) */
	RT_MONITOR_EXITED,  /* exit.json exists; the fields below are valid */
	RT_MONITOR_LOST,    /* no exit.json and no live monitor for this dir */
};

struct rt_monitor_state {
	enum rt_monitor_status status;
	pid_t monitor_pid;   /* 0 if unknown */
	pid_t container_pid; /* 0 if unknown */
	int exit_code;
	int signal;
	bool oom_killed;
	char finished_at[40];
};

/* Live restore: what is the state of the container whose exec dir is dir?
 * "Running" means monitor.pid names a live process whose command line is a
 * berth-monitor for this very dir (so a reused pid is not mistaken for it). */
int rt_monitor_probe(const char *dir, struct rt_monitor_state *st, struct bh_err *err);

/* Parses an exit.json body into st (status EXITED). */
int rt_monitor_parse_exit(const char *json, size_t len, struct rt_monitor_state *st,
                          struct bh_err *err);

/* Connects to dir/attach.sock (long paths go through /proc/self/fd); returns
 * the connected blocking socket fd. */
int rt_monitor_attach_connect(const char *dir, struct bh_err *err);

/* Sends sig to the monitored process (the container's init, or an exec'd
 * process) through a control connection (no-output + signal frames) and
 * waits until the monitor has read it.  ECONNREFUSED/ENOENT: no monitor. */
int rt_monitor_signal(const char *dir, int sig, struct bh_err *err);

/* ---- json-file logs ------------------------------------------------------ */
struct rt_log_entry {
	int stream;       /* 1 stdout, 2 stderr */
	const char *data; /* the log text (may contain NULs); not NUL-terminated */
	size_t len;
	int64_t time_ns;  /* since the epoch */
	const char *time; /* RFC 3339 as stored */
};

struct rt_log_read_opts {
	int64_t tail;               /* < 0: all; otherwise the last N matching entries */
	int64_t since_ns, until_ns; /* 0: unbounded; since is inclusive, until exclusive */
	bool want_stdout, want_stderr;
	bool timestamps; /* prefix data with "TIME " (Docker's --timestamps) */
	int stop_fd;     /* follow only: readable → stop (an eventfd or pipe); -1: none */
};

/* Returns 0 to go on, non-zero to stop the read (then returned by the reader).
 * It may block (that is the follower's backpressure). */
typedef int (*rt_log_cb)(const struct rt_log_entry *e, void *arg);

/* Reads path's rotated files (path.K ... path.1) and then path, oldest first.
 * Returns 0, the callback's non-zero value, or < 0 on error. */
int rt_log_read(const char *path, const struct rt_log_read_opts *o, rt_log_cb cb, void *arg,
                struct bh_err *err);
/* Like rt_log_read, then waits (inotify, no busy loop) for new entries,
 * following rotations, until o->stop_fd is readable, the callback says stop,
 * or the file stop_when_exists appears (e.g. the container's exit.json; what
 * was logged before it is delivered first).  Meant for a worker thread. */
int rt_log_follow(const char *path, const struct rt_log_read_opts *o, const char *stop_when_exists,
                  rt_log_cb cb, void *arg, struct bh_err *err);

/* Parses an RFC 3339 UTC timestamp ("...Z", optional fraction) to ns. */
int rt_log_parse_time(const char *s, int64_t *ns);

/* ---- the monitor program ------------------------------------------------- */
/* main() of berth-monitor. */
int rt_monitor_main(int argc, char **argv);

#endif
