/* Exits and restart policies: one watcher thread polls every monitor's pidfd
 * (plus an eventfd for new ones) and runs the exit handling; restart
 * deadlines (Docker's 100 ms doubling back-off) are the poll timeout and
 * the restart itself runs on the worker pool.  Also live restore at start. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   60000
#define BACKOFF_RESET_MS 10000 /* a container that ran this long starts over at 100 ms */

void ctr_watch(struct ctr_mgr *m, struct ctr *c, int pidfd)
{
	c->pidfd = pidfd;
	ctr_mgr_kick(m);
}

/* ---- exit handling --------------------------------------------------------------- */

static bool should_restart(const struct ctr *c)
{
	json_t *rp = json_object_get(c->host_config, "RestartPolicy");
	const char *name = json_string_value(json_object_get(rp, "Name"));
	json_int_t max = json_integer_value(json_object_get(rp, "MaximumRetryCount"));

	if (name == NULL || c->manually_stopped || c->removed)
		return false;
	if (strcmp(name, "always") == 0 || strcmp(name, "unless-stopped") == 0)
		return true;
	if (strcmp(name, "on-failure") == 0)
		return c->exit_code != 0 && (max == 0 || c->restart_count < max);
	return false;
}

static void schedule_restart(struct ctr_mgr *m, struct ctr *c)
{
	uint64_t ran = c->started_mono_ms ? bh_now_ms() - c->started_mono_ms : 0;

	if (c->restart_delay_ms == 0 || ran >= BACKOFF_RESET_MS)
		c->restart_delay_ms = BACKOFF_MIN_MS;
	else if (c->restart_delay_ms < BACKOFF_MAX_MS)
		c->restart_delay_ms *= 2;
	c->status = CTR_RESTARTING;
	c->restart_at_ms = bh_now_ms() + (uint64_t)c->restart_delay_ms;
	ctr_mgr_kick(m);
}

static void read_exit(struct ctr_mgr *m, struct ctr *c, struct rt_monitor_state *st)
{
	cleanup_free char *dir = ctr_exec_path(m, c);
	struct bh_err e;

	if (rt_monitor_probe(dir, st, &e) < 0) {
		bh_warn("container %.12s: %s", c->id, e.msg);
		st->status = RT_MONITOR_LOST;
	}
	if (st->status != RT_MONITOR_EXITED) {
		/* The monitor died without an exit status (killed, crashed): the
		 * container is taken down with it below.  255 like a lost task. */
		st->exit_code = CTR_LOST_EXIT;
		st->oom_killed = false;
		bh_rfc3339_now(st->finished_at);
		bh_warn("container %.12s: berth-monitor gone without an exit status", c->id);
	}
}

static void cleanup_runtime(struct ctr_mgr *m, struct ctr *c)
{
	cleanup_free char *merged = ctr_data_path(m, c, "merged");
	struct bh_err e;

	/* force: after a lost monitor, processes may still run in the cgroup. */
	if (rt_container_delete(m->state_root, c->id, true, &e) < 0 && e.code != ENOENT)
		bh_warn("container %.12s: %s", c->id, e.msg);
	if (rt_container_rootfs_teardown(merged, false, &e) < 0)
		bh_warn("container %.12s: %s", c->id, e.msg);
}

static void record_exit(struct ctr *c, const struct rt_monitor_state *st)
{
	c->status = CTR_EXITED;
	c->pid = 0;
	c->monitor_pid = 0;
	c->exit_code = st->exit_code;
	c->oom_killed = st->oom_killed;
	if (st->status != RT_MONITOR_EXITED)
		bh_strlcpy(c->error, "berth-monitor exited without an exit status",
		           sizeof(c->error));
	bh_strlcpy(c->finished_at, st->finished_at[0] ? st->finished_at : CTR_ZERO_TIME,
	           sizeof(c->finished_at));
}

void ctr_handle_exit(struct ctr_mgr *m, struct ctr *c)
{
	struct rt_monitor_state st;
	struct bh_err e;

	pthread_mutex_lock(&m->mu);
	ctr_own(m, c);
	pthread_mutex_unlock(&m->mu);
	read_exit(m, c, &st);
	cleanup_runtime(m, c);
	pthread_mutex_lock(&m->mu);
	record_exit(c, &st);
	bh_info("container %.12s exited with %d%s", c->id, c->exit_code,
	        c->oom_killed ? " (OOM killed)" : "");
	ctr_event(c, "die", "exitCode", c->exit_code);
	ctr_fire_waiters(c, CTR_WAIT_NEXT_EXIT, c->exit_code);
	if (should_restart(c))
		schedule_restart(m, c);
	if (c->status == CTR_EXITED &&
	    json_is_true(json_object_get(c->host_config, "AutoRemove"))) {
		ctr_remove_owned(m, c);
	} else {
		if (ctr_save(m, c, &e) < 0)
			bh_warn("%s", e.msg);
		ctr_release(m, c);
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- restarts on the pool --------------------------------------------------------- */

struct restart_job {
	struct ctr_mgr *m;
	char id[65];
};

static int restart_work(void *arg, struct bh_err *err)
{
	struct restart_job *j = arg;
	struct ctr *c;
	int r;

	if (ctr_find(j->m, j->id, &c, err) < 0)
		return 0; /* removed meanwhile */
	r = ctr_start_ref(j->m, c, true, err);
	if (r < 0)
		bh_warn("container %.12s: restart: %s", j->id, err->msg);
	pthread_mutex_lock(&j->m->mu);
	ctr_put(j->m, c);
	pthread_mutex_unlock(&j->m->mu);
	return 0;
}

static void restart_done(void *arg, int rc, const struct bh_err *err)
{
	free(arg);
}

/* Under mu: submits due restarts; returns the poll timeout (-1: none). */
static int due_restarts(struct ctr_mgr *m)
{
	uint64_t now = bh_now_ms(), next = 0;

	for (struct ctr *c = m->list; c; c = c->next) {
		if (c->restart_at_ms == 0 || c->status != CTR_RESTARTING)
			continue;
		if (c->restart_at_ms > now) {
			if (next == 0 || c->restart_at_ms < next)
				next = c->restart_at_ms;
			continue;
		}
		c->restart_at_ms = 0;
		struct restart_job *j = bh_calloc(1, sizeof(*j));
		j->m = m;
		bh_strlcpy(j->id, c->id, sizeof(j->id));
		srv_pool_submit(m->srv->pool, restart_work, restart_done, j);
	}
	return next ? (int)(next - now) : -1;
}

/* ---- the watcher thread -------------------------------------------------------------- */

struct watch_set {
	struct pollfd *pfd;
	struct ctr **cs;
	size_t n;
};

/* Under mu: every registered pidfd, each container referenced. */
static void watch_set_build(struct ctr_mgr *m, struct watch_set *w)
{
	size_t n = 1;

	for (struct ctr *c = m->list; c; c = c->next)
		n += c->pidfd >= 0;
	w->pfd = bh_calloc(n, sizeof(*w->pfd));
	w->cs = bh_calloc(n, sizeof(*w->cs));
	w->pfd[0].fd = m->evfd;
	w->pfd[0].events = POLLIN;
	w->n = 1;
	for (struct ctr *c = m->list; c; c = c->next) {
		if (c->pidfd < 0)
			continue;
		ctr_get(c);
		w->cs[w->n] = c;
		w->pfd[w->n].fd = c->pidfd;
		w->pfd[w->n].events = POLLIN;
		w->n++;
	}
}

static void watch_set_exits(struct ctr_mgr *m, struct watch_set *w)
{
	for (size_t i = 1; i < w->n; i++) {
		struct ctr *c = w->cs[i];
		bool exited = false;

		if (w->pfd[i].revents == 0)
			continue;
		pthread_mutex_lock(&m->mu);
		if (c->pidfd == w->pfd[i].fd) {
			close(c->pidfd);
			c->pidfd = -1;
			exited = true;
		}
		pthread_mutex_unlock(&m->mu);
		if (exited)
			ctr_handle_exit(m, c);
	}
}

static void watch_set_free(struct ctr_mgr *m, struct watch_set *w)
{
	pthread_mutex_lock(&m->mu);
	for (size_t i = 1; i < w->n; i++)
		ctr_put(m, w->cs[i]);
	pthread_mutex_unlock(&m->mu);
	free(w->pfd);
	free(w->cs);
}

static void *watcher_main(void *arg)
{
	struct ctr_mgr *m = arg;
	struct watch_set w;
	uint64_t junk;
	int timeout;

	for (;;) {
		pthread_mutex_lock(&m->mu);
		if (m->stopping) {
			pthread_mutex_unlock(&m->mu);
			return NULL;
		}
		watch_set_build(m, &w);
		timeout = due_restarts(m);
		pthread_mutex_unlock(&m->mu);
		if (poll(w.pfd, w.n, timeout) > 0) {
			if (w.pfd[0].revents && read(m->evfd, &junk, sizeof(junk)) < 0)
				bh_debug("container watcher: %s", strerror(errno));
			watch_set_exits(m, &w);
		}
		watch_set_free(m, &w);
	}
}

/* ---- live restore ----------------------------------------------------------------------- */

static int load_one(struct ctr_mgr *m, const char *id, struct bh_err *err)
{
	cleanup_free char *path = bh_asprintf("%s/%s/%s", m->ctr_dir, id, CTR_RECORD);
	cleanup_free char *text = NULL;
	json_error_t jerr;
	json_t *j;
	struct ctr *c;
	int r;

	if (bh_read_file(path, CTR_RECORD_MAX, &text, NULL, err) < 0)
		return -1;
	j = json_loads(text, 0, &jerr);
	if (j == NULL)
		return bh_err_set(err, EINVAL, "%s: %s", path, jerr.text);
	c = ctr_alloc();
	r = ctr_record_parse(j, c, err);
	json_decref(j);
	if (r < 0 || strcmp(c->id, id) != 0) {
		ctr_free(c);
		return r < 0 ? bh_err_wrap(err, "%s", path)
		             : bh_err_set(err, EINVAL, "%s: id mismatch", path);
	}
	c->next = m->list;
	m->list = c;
	return 0;
}

static void load_all(struct ctr_mgr *m)
{
	DIR *d = opendir(m->ctr_dir);
	struct dirent *de;
	struct bh_err err;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (load_one(m, de->d_name, &err) == 0)
			continue;
		if (err.code == ENOENT) {
			/* A create that died before its record: nothing refers to it. */
			cleanup_free char *dir = bh_path_join(m->ctr_dir, de->d_name);
			bh_warn("containers: removing %s (no record)", dir);
			bh_rm_rf(dir, &err);
		} else {
			bh_error("containers: skipping %s: %s", de->d_name, err.msg);
		}
	}
	if (d != NULL)
		closedir(d);
}

/* A container recorded running: is its monitor still there? */
static void restore_running(struct ctr_mgr *m, struct ctr *c)
{
	cleanup_free char *dir = ctr_exec_path(m, c);
	struct rt_monitor_state st;
	struct bh_err e;
	int pidfd = -1;

	if (rt_monitor_probe(dir, &st, &e) == 0 && st.status == RT_MONITOR_RUNNING)
		pidfd = pidfd_open(st.monitor_pid, 0);
	if (pidfd >= 0) {
		c->pid = st.container_pid ? st.container_pid : c->pid;
		c->monitor_pid = st.monitor_pid;
		c->pidfd = pidfd;
		bh_info("container %.12s restored: running, pid %d", c->id, (int)c->pid);
		return;
	}
	ctr_handle_exit(m, c); /* records the exit that happened while we were away */
}

static const char *policy_name(const struct ctr *c)
{
	const char *n = json_string_value(
	    json_object_get(json_object_get(c->host_config, "RestartPolicy"), "Name"));

	return n ? n : "no";
}

/* Docker's daemon start: "always" brings a stopped container back even after
 * a user's stop; "unless-stopped" does not. */
static void restore_stopped(struct ctr_mgr *m, struct ctr *c)
{
	if (!c->has_been_started || strcmp(policy_name(c), "always") != 0)
		return;
	c->manually_stopped = false;
	c->status = CTR_RESTARTING;
	c->restart_at_ms = bh_now_ms();
}

/* A crash between spawning a monitor and saving "running" leaves a record
 * that says created/exited/restarting while a container runs: adopt it. */
static bool adopt_orphan(struct ctr_mgr *m, struct ctr *c)
{
	cleanup_free char *dir = ctr_exec_path(m, c);
	struct rt_monitor_state st;
	struct bh_err e;

	if (c->status == CTR_RUNNING || c->status == CTR_REMOVING ||
	    rt_monitor_probe(dir, &st, &e) < 0 || st.status != RT_MONITOR_RUNNING)
		return false;
	bh_warn("container %.12s: recorded %s but its monitor runs: adopting it", c->id,
	        ctr_state_name(c->status));
	c->status = CTR_RUNNING;
	c->has_been_started = true;
	c->restart_at_ms = 0;
	return true;
}

static void restore_one(struct ctr_mgr *m, struct ctr *c)
{
	adopt_orphan(m, c);
	switch (c->status) {
	case CTR_RUNNING:
		restore_running(m, c);
		break;
	case CTR_RESTARTING:
		if (c->manually_stopped)
			c->status = CTR_EXITED;
		else
			c->restart_at_ms = bh_now_ms();
		break;
	case CTR_REMOVING:
		pthread_mutex_lock(&m->mu);
		ctr_own(m, c);
		ctr_remove_owned(m, c);
		pthread_mutex_unlock(&m->mu);
		break;
	case CTR_EXITED:
		restore_stopped(m, c);
		break;
	case CTR_CREATED:
	case CTR_DEAD:
		break;
	}
}

int ctr_mgr_start(struct ctr_mgr *m, struct bh_err *err)
{
	struct ctr *c, *next;
	int r;

	load_all(m);
	for (c = m->list; c; c = next) {
		next = c->next;
		ctr_get(c);
		restore_one(m, c);
		ctr_put(m, c);
	}
	r = pthread_create(&m->watcher, NULL, watcher_main, m);
	if (r != 0)
		return bh_err_sys(err, r, "containers: watcher thread");
	m->watcher_started = true;
	return 0;
}

void ctr_mgr_stop(struct ctr_mgr *m)
{
	ctr_logs_stop_all(5000);
	if (!m->watcher_started)
		return;
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_mutex_unlock(&m->mu);
	ctr_mgr_kick(m);
	pthread_join(m->watcher, NULL);
	m->watcher_started = false;
}
