/* client: fan-out internals (one command over several contexts).  fanout.c
 * plans and refuses, fanout_run.c schedules the children and prints, and the
 * child processes sit behind the small interface below: platform_spawn_posix.c
 * today, a Windows file later (CreateProcess and overlapped pipes). */
#ifndef BERTH_CLIENT_FANOUT_H
#define BERTH_CLIENT_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client-internal.h"

/* The private marker a fan-out child finds in its environment: such a child
 * never fans out again (its -c is one exact name anyway). */
#define CLI_FANOUT_ENV "BERTH_FANOUT_CHILD"

/* ---- platform_spawn_posix.c ---------------------------------------------- */
struct cli_child;

/* The berth binary running now (for re-running itself); caller frees. */
char *cli_child_self_exe(const char *argv0);
/* Starts exe with argv (argv[0] included) and the parent's environment plus
 * env_add ("K=V"): stdin from the null device, stdout and stderr to pipes. */
int cli_child_start(const char *exe, char *const argv[], const char *env_add,
                    struct cli_child **out, struct bh_err *err);
/* The same, but the child is a copy of this process running fn(arg) (its
 * return value is the exit status): no exec and no library loading, which
 * is most of a berth start.  POSIX fork; a platform without it fails with
 * ENOSYS and the caller uses cli_child_start. */
int cli_child_fork(int (*fn)(void *), void *arg, struct cli_child **out, struct bh_err *err);
/* stream 1 (stdout) or 2 (stderr); len 0 means that stream ended. */
typedef void (*cli_child_out_fn)(void *arg, size_t index, int stream, const char *data, size_t len);
/* Waits at most timeout_ms (-1: no limit) until one of kids has output or an
 * ended stream, and hands everything readable to fn (index into kids).
 * Entries may be NULL.  Returns 0, also when the time ran out. */
int cli_child_wait(struct cli_child *const *kids, size_t n, int timeout_ms, cli_child_out_fn fn,
                   void *arg, struct bh_err *err);
/* on: INT, TERM and HUP no longer end this process but wake cli_child_wait
 * and are reported by cli_child_signal_taken (the signal, 0 if none), so the
 * children can be ended first.  off: the previous handlers again. */
int cli_child_signals(bool on, struct bh_err *err);
int cli_child_signal_taken(void);
/* true while stdout or stderr of c is still open. */
bool cli_child_streams_open(const struct cli_child *c);
struct cli_child_status {
	int code;   /* exit status, or -1 when a signal ended it */
	int signal; /* that signal, else 0 */
};
/* 1 with *st once the process has ended (reaped), 0 while it runs. */
int cli_child_try_reap(struct cli_child *c, struct cli_child_status *st);
/* Ends it at once (timeout); it is reaped by cli_child_try_reap or free. */
void cli_child_kill(struct cli_child *c);
/* Kills and reaps a child still running; closes the pipes. */
void cli_child_free(struct cli_child *c);

#define CLI_FAN_OUT_MAX      (16 * 1024 * 1024) /* one host's captured stdout */
#define CLI_FAN_EXIT_TIMEOUT 124                /* ExitCode of a timed-out host, as timeout(1) */

/* ---- fanout_run.c ---------------------------------------------------------- */
enum cli_fan_mode {
	CLI_FAN_LINES,       /* "NAME | line" as lines complete */
	CLI_FAN_TABLE,       /* ps/images: children print JSON lines, one merged table */
	CLI_FAN_JSON,        /* one {"Context","Host","ExitCode","Result","Error"} per host */
	CLI_FAN_JSON_STREAM, /* events: each JSON line with "Context" as it comes,
	                        then the per-host object with "Result": null */
};
enum cli_fan_result {
	CLI_FAN_RESULT_TEXT,  /* Result: the output lines as strings */
	CLI_FAN_RESULT_LINES, /* Result: each line parsed as JSON (ps, images) */
	CLI_FAN_RESULT_WHOLE, /* Result: the whole output as one JSON value */
};
struct cli_fan_host {
	const char *name; /* the context */
	const char *host; /* its URL */
};
struct cli_fan_plan {
	const char *exe;
	char **argv; /* the child's argv with "-c" "" placeholder at ctx_index */
	int ctx_index;
	const char *cmd; /* "ps", ... */
	enum cli_fan_mode mode;
	enum cli_fan_result result;
	long parallel;
	long timeout_s; /* 0: none */
	const struct cli_fan_host *hosts;
	size_t nhosts;
	const char *marker; /* CLI_FANOUT_ENV=... */
	/* set: children are forks running entry(argv) (see cli_fanout_entry) */
	int (*entry)(int argc, char **argv);
	/* set: no children; this process GETs fast_path on every host at once
	 * (ps, images: fanout_fast.c) and renders what the children would */
	const char *fast_path;
	bool fast_no_trunc;
	const char *config_dir;
};
/* Runs every host, prints as the mode says; the exit status (0 only if every
 * host succeeded, else 1) or < 0 with cli->err when nothing could run. */
int cli_fan_run(struct cli *cli, const struct cli_fan_plan *p);

/* The merged table of ps/images from each host's JSON lines (pure, tested). */
struct cli_table;
void cli_fan_table_head(const char *cmd, struct cli_table *t);
/* Adds one row per JSON line of out (a host's stdout); lines that are not
 * JSON objects are skipped and counted in *bad. */
void cli_fan_table_rows(const char *cmd, const char *ctx, const char *out, size_t len,
                        struct cli_table *t, size_t *bad);

/* ---- fanout_fast.c --------------------------------------------------------- */
/* The API path of a ps or images whose every flag the in-process path knows
 * (ps: -a, --no-trunc, --format json, --filter K=V; images: --no-trunc,
 * --format json), of info and version with only --format json when json_mode
 * (one JSON object per host), else NULL (children then); caller frees. */
char *cli_fan_fast_path(const char *cmd, int argc, char **argv, bool json_mode, bool *no_trunc);
/* One host's end as its child would have ended: exit status, its stderr
 * line without "berth: " ("" if none), its stdout (JSON lines); overflow:
 * the output did not fit CLI_FAN_OUT_MAX. */
typedef void (*cli_fan_fast_done)(void *arg, size_t index, int code, bool timed_out, bool overflow,
                                  const char *err, const struct bh_buf *out);
/* GETs p->fast_path on every host (at most p->parallel at once, each bounded
 * by p->timeout_s) and calls fn for each as it ends.  < 0: nothing ran. */
int cli_fan_fast_run(const struct cli_fan_plan *p, cli_fan_fast_done fn, void *arg,
                     struct bh_err *err);

/* ps and images --format json's lines for list (the daemon's reply) into out;
 * -1 when out is full (cmd_ps.c, cmd_image.c). */
int cli_ps_json_lines(json_t *list, bool no_trunc, struct bh_buf *out);
int cli_images_json_lines(json_t *list, bool no_trunc, struct bh_buf *out);
/* version's "Client" object (cmd_version.c). */
json_t *cli_version_client_json(const char *context);

#endif
