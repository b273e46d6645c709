/* The container manager of berthd: container records (DATA_ROOT/containers/ID),
 * their lifecycle through runtime/ (rootfs, bundle, berth-monitor), exits and
 * restart policies, logs and live restore.  Create bodies come from the
 * network and are validated here before anything touches the disk.
 *
 * Threading: every field of struct ctr is guarded by ctr_mgr.mu.  Long work
 * (mounts, spawning the monitor, fsync, rm -rf) runs outside the lock while
 * c->busy marks the container as owned by that operation; mgr.cond is
 * broadcast on every state change.  One watcher thread polls the monitors'
 * pidfds and runs exit handling; the lws thread only takes mu briefly. */
#ifndef BERTH_SERVER_CONTAINERS_INTERNAL_H
#define BERTH_SERVER_CONTAINERS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "common/common.h"
#include "runtime/runtime.h"

struct srv_server;
struct srv_req;

#define CTR_RECORD        "config.v2.json"
#define CTR_RECORD_MAX    (1024 * 1024)
#define CTR_LOG_MAX_SIZE  (20 * 1024 * 1024) /* json-file rotation: 20 MiB x 3 files */
#define CTR_LOG_MAX_FILES 3
#define CTR_MIN_MEMORY    (6 * 1024 * 1024) /* Docker's "Minimum memory limit allowed is 6MB" */
#define CTR_LOST_EXIT     255               /* a running container whose monitor vanished */
#define CTR_STOP_DEFAULT  10                /* seconds between SIGTERM and SIGKILL */
#define CTR_KILL_WAIT_S   30                /* after SIGKILL: bound on waiting for the exit */
#define CTR_ZERO_TIME     "0001-01-01T00:00:00Z"

enum ctr_status {
	CTR_CREATED,
	CTR_RUNNING,
	CTR_RESTARTING, /* exited, a restart is scheduled */
	CTR_EXITED,
	CTR_REMOVING,
	CTR_DEAD,
};

enum ctr_wait_cond { CTR_WAIT_NOT_RUNNING, CTR_WAIT_NEXT_EXIT, CTR_WAIT_REMOVED };

struct ctr_mgr;
struct ctr_waiter {
	struct srv_req *req; /* a reference held until fired or the client left */
	struct ctr_mgr *m;
	char id[65];
	enum ctr_wait_cond cond;
	int status; /* the StatusCode to send */
	struct ctr_waiter *next;
};

struct ctr {
	char id[65];
	char name[256]; /* without the leading '/' */
	char created[40];
	char image_ref[512]; /* as the client named it (Config.Image) */
	char image_id[RT_IMAGE_ID_LEN];
	json_t *config;      /* Docker's Config object, image defaults merged */
	json_t *host_config; /* Docker's HostConfig, normalised */

	enum ctr_status status;
	pid_t pid, monitor_pid;
	int exit_code;
	bool oom_killed;
	char error[512];
	char started_at[40], finished_at[40];
	int restart_count;
	bool manually_stopped;
	bool has_been_started;

	/* not persisted */
	int refs;
	bool busy;    /* an operation owns the container (outside mu) */
	bool removed; /* unlinked from the manager; freed at refs == 0 */
	int pidfd;    /* the monitor's; owned by the watcher once registered */
	uint64_t restart_at_ms;
	int restart_delay_ms;
	uint64_t started_mono_ms;
	/* Attach before start (stream-ws.c): attach sessions waiting for this
	 * created container's start, and those of them that take output
	 * (attach_holds > 0 at spawn: the monitor holds the output). */
	int attach_waiting, attach_holds;
	/* The running monitor was spawned holding output and no session has
	 * taken it yet: if every holding session leaves, berthd releases it
	 * (srv_stream_release_hold), or the container would block on a full
	 * pty or pipe with nobody coming. */
	bool hold_open;
	unsigned start_gen; /* bumped when a start attempt ended (ok or not) */
	struct ctr_waiter *waiters;
	struct ctr *next;
};

/* ---- pure helpers (containers-record.c) --------------------------------- */
/* Docker's ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$ */
bool ctr_name_valid(const char *name);
/* Parses and checks a create body into a Config and a HostConfig (new
 * references).  ncpu bounds NanoCpus.  EINVAL with Docker's message. */
int ctr_parse_create(json_t *body, long ncpu, json_t **config, json_t **host_config,
                     struct bh_err *err);
/* Merges the image's config (its "config" object) into config like Docker:
 * Env appended where the request does not set the variable, Cmd and
 * Entrypoint from the image unless given (a given Entrypoint drops the
 * image's Cmd), WorkingDir, User, Labels.  EINVAL "no command specified". */
int ctr_merge_image(json_t *config, json_t *image_config, struct bh_err *err);
/* Entrypoint + Cmd of the merged config: a new array (Path is [0]). */
json_t *ctr_argv(json_t *config);
/* "Up 2 seconds", "Exited (0) 3 seconds ago", "Created", ... */
void ctr_status_text(const struct ctr *c, time_t now, char *out, size_t size);
const char *ctr_state_name(enum ctr_status s);
/* Docker's units.HumanDuration. */
void ctr_human_duration(int64_t secs, char *out, size_t size);
/* Record <-> JSON (the file CTR_RECORD). */
json_t *ctr_record_json(const struct ctr *c);
int ctr_record_parse(json_t *j, struct ctr *c, struct bh_err *err);
/* Finds a container by full id, name ("x" or "/x") or unique id prefix.
 * ENOENT "No such container: ref"; EINVAL when a prefix is ambiguous. */
int ctr_lookup(struct ctr *list, const char *ref, struct ctr **out, struct bh_err *err);
/* 64 random hex characters. */
int ctr_new_id(char out[65], struct bh_err *err);
struct ctr *ctr_alloc(void);
void ctr_free(struct ctr *c);

/* ---- the manager (containers.c) ------------------------------------------ */
struct ctr_mgr {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct ctr *list;
	struct srv_server *srv;
	struct rt_store *store;
	char *data_root, *exec_root;
	char *ctr_dir;    /* DATA_ROOT/containers */
	char *exec_dir;   /* EXEC_ROOT/containers */
	char *state_root; /* EXEC_ROOT/runtime */
	char *tmp_dir;    /* DATA_ROOT/tmp (request bodies) */
	char *monitor_path;
	long ncpu;
	pthread_t watcher;
	bool watcher_started;
	bool stopping;
	int evfd; /* wakes the watcher */
};

int ctr_mgr_open(struct ctr_mgr *m, struct srv_server *srv, const char *data_root,
                 const char *exec_root, const char *monitor_path, struct bh_err *err);
/* Live restore, then the watcher thread (needs srv->pool). */
int ctr_mgr_start(struct ctr_mgr *m, struct bh_err *err);
/* Stops the watcher; containers keep running (live restore). */
void ctr_mgr_stop(struct ctr_mgr *m);
void ctr_mgr_close(struct ctr_mgr *m);

/* Under mu: a reference the caller drops with ctr_put (also under mu). */
void ctr_get(struct ctr *c);
void ctr_put(struct ctr_mgr *m, struct ctr *c);
/* Locks mu, resolves ref, takes a reference. */
int ctr_find(struct ctr_mgr *m, const char *ref, struct ctr **out, struct bh_err *err);
/* Under mu: waits until no operation owns c, then owns it. */
void ctr_own(struct ctr_mgr *m, struct ctr *c);
void ctr_release(struct ctr_mgr *m, struct ctr *c);
/* Under mu: waits for cond (or the deadline) */
bool ctr_wait_until(struct ctr_mgr *m, struct ctr *c, bool (*pred)(const struct ctr *),
                    int timeout_ms);
/* Under mu: writes c's record atomically. */
int ctr_save(struct ctr_mgr *m, const struct ctr *c, struct bh_err *err);
char *ctr_data_path(const struct ctr_mgr *m, const struct ctr *c, const char *name);
char *ctr_exec_path(const struct ctr_mgr *m, const struct ctr *c);
/* Wakes the watcher (a new pidfd, a restart deadline). */
void ctr_mgr_kick(struct ctr_mgr *m);
/* Under mu: answers waiters whose condition holds for the new state. */
void ctr_fire_waiters(struct ctr *c, enum ctr_wait_cond what, int status);

/* Blocking operations; run on pool threads.  Return 1 for "nothing to do"
 * (304), 0 done, < 0 with err. */
int ctr_create(struct ctr_mgr *m, const char *name, json_t *body, char id[65], struct bh_err *err);
int ctr_start(struct ctr_mgr *m, const char *ref, struct bh_err *err);
/* Starts c (the caller holds a reference); policy: a restart-policy start,
 * skipped when the user stopped or started the container meanwhile. */
int ctr_start_ref(struct ctr_mgr *m, struct ctr *c, bool policy, struct bh_err *err);
int ctr_stop(struct ctr_mgr *m, const char *ref, int timeout_s, struct bh_err *err);
int ctr_kill(struct ctr_mgr *m, const char *ref, int sig, struct bh_err *err);
int ctr_remove(struct ctr_mgr *m, const char *ref, bool force, struct bh_err *err);
/* Under mu with c owned: removes everything of c and unlinks it. */
void ctr_remove_owned(struct ctr_mgr *m, struct ctr *c);
/* Exit handling of c (any thread but lws; takes mu itself). */
void ctr_handle_exit(struct ctr_mgr *m, struct ctr *c);
/* Under mu: c was just started; hands its monitor pidfd to the watcher. */
void ctr_watch(struct ctr_mgr *m, struct ctr *c, int pidfd);
/* Count for /info; images via the store. */
void ctr_mgr_counts(struct ctr_mgr *m, int *total, int *running, int *paused, int *stopped);
/* Is image id used by a container (any state)?  Copies its id. */
bool ctr_mgr_image_used(struct ctr_mgr *m, const char *image_id, char cid[65]);

/* ---- JSON views (containers-view.c) --------------------------------------- */
json_t *ctr_inspect_json(const struct ctr_mgr *m, const struct ctr *c);
json_t *ctr_list_json(const struct ctr *c, time_t now);
/* filters: Docker's {"name":[..],"status":[..],"id":[..],"label":[..]} */
int ctr_filters_parse(const char *text, json_t **out, struct bh_err *err);
bool ctr_filters_match(json_t *filters, const struct ctr *c);

/* ---- logs (containers-logs.c) --------------------------------------------- */
/* berthd's stop: ends every log reader thread and waits (bounded) until none
 * can post to the worker pool any more. */
void ctr_logs_stop_all(int timeout_ms);
/* Graceful stop (lws thread): ends every logs and wait stream. */
void ctr_mgr_end_streams(struct ctr_mgr *m);

/* ---- events (events-ctr.c) -------------------------------------------------------- */
/* Under mu: a Docker container event for c (key/val: exitCode, signal; key may be NULL). */
void ctr_event(const struct ctr *c, const char *action, const char *key, long val);
/* Takes mu: the same for the container ref names, if it still exists. */
void ctr_event_ref(struct ctr_mgr *m, const char *ref, const char *action);

/* ---- signals ------------------------------------------------------------------ */
/* "SIGKILL", "KILL", "9" -> 9; -1 if unknown. */
int ctr_signal_parse(const char *s);

#endif
