/* Container lifecycle: create, start (rootfs, bundle, berth-monitor), stop,
 * kill and remove.  Runs on pool threads; every kernel-side step goes
 * through runtime/.  A failed create or start leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt-monitor.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

/* ---- create -------------------------------------------------------------------- */

static void random_name(const char *id, char *out, size_t size)
{
	static const char *const adj[] = {"brave", "calm",  "eager", "fond", "keen",
	                                  "lucid", "quiet", "sharp", "tidy", "witty"};
	static const char *const noun[] = {"anchor", "buoy", "dock", "harbor", "keel",
	                                   "mast",   "pier", "quay", "rudder", "wharf"};

	/* The id is random: its hex digits pick the words; the suffix makes the
	 * name unique enough that a clash is a plain 409. */
	snprintf(out, size, "%s_%s_%.6s", adj[(id[0] & 0xf) % 10], noun[(id[1] & 0xf) % 10],
	         id + 2);
}

static int merge_image(struct ctr_mgr *m, struct ctr *c, json_t *cfg, struct bh_err *err)
{
	const char *ref = json_string_value(json_object_get(cfg, "Image"));
	json_t *doc = NULL;
	int r;

	if (rt_image_resolve(m->store, ref, c->image_id, err) < 0) {
		if (err->code == ENOENT || err->code == EINVAL)
			return bh_err_set(err, err->code == ENOENT ? ENOENT : EINVAL,
			                  "No such image: %s", ref);
		return -1;
	}
	if (rt_image_config(m->store, c->image_id, &doc, err) < 0)
		return -1;
	r = ctr_merge_image(cfg, json_object_get(doc, "config"), err);
	json_decref(doc);
	bh_strlcpy(c->image_ref, ref, sizeof(c->image_ref));
	return r;
}

static int reserve_name(struct ctr_mgr *m, struct ctr *c, struct bh_err *err)
{
	struct ctr *other = NULL;
	struct bh_err ignore;

	if (ctr_lookup(m->list, c->name, &other, &ignore) == 0 && strcmp(other->name, c->name) == 0)
		return bh_err_set(err, EEXIST,
		                  "Conflict. The container name \"/%s\" is already in use by "
		                  "container \"%s\". You have to remove (or rename) that container "
		                  "to be able to reuse that name.",
		                  c->name, other->id);
	c->busy = true;
	c->next = m->list;
	m->list = c;
	return 0;
}

static void unlink_ctr(struct ctr_mgr *m, struct ctr *c)
{
	for (struct ctr **p = &m->list; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			c->next = NULL;
			c->removed = true;
			return;
		}
	}
}

static int create_on_disk(struct ctr_mgr *m, struct ctr *c, struct bh_err *err)
{
	cleanup_free char *dir = ctr_data_path(m, c, NULL);
	struct bh_err ignore;

	if (mkdir(dir, 0700) < 0)
		return bh_err_sys(err, errno, "container %s: mkdir %s", c->id, dir);
	if (ctr_save(m, c, err) < 0) {
		bh_rm_rf(dir, &ignore);
		return -1;
	}
	return 0;
}

static int prepare_record(struct ctr_mgr *m, struct ctr *c, const char *name, json_t *body,
                          struct bh_err *err)
{
	json_t *cfg, *hc;

	if (name != NULL && name[0] != '\0' && !ctr_name_valid(name))
		return bh_err_set(err, EINVAL,
		                  "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
		                  "allowed",
		                  name);
	if (ctr_parse_create(body, m->ncpu, &cfg, &hc, err) < 0)
		return -1;
	c->config = cfg;
	c->host_config = hc;
	if (merge_image(m, c, cfg, err) < 0 || ctr_new_id(c->id, err) < 0)
		return -1;
	if (name != NULL && name[0] != '\0')
		bh_strlcpy(c->name, name[0] == '/' ? name + 1 : name, sizeof(c->name));
	else
		random_name(c->id, c->name, sizeof(c->name));
	bh_rfc3339_now(c->created);
	return 0;
}

int ctr_create(struct ctr_mgr *m, const char *name, json_t *body, char id[65], struct bh_err *err)
{
	struct ctr *c = ctr_alloc();
	int r;

	if (prepare_record(m, c, name, body, err) < 0) {
		ctr_free(c);
		return -1;
	}
	pthread_mutex_lock(&m->mu);
	r = reserve_name(m, c, err);
	if (r == 0 && (r = create_on_disk(m, c, err)) < 0) {
		unlink_ctr(m, c);
		ctr_put(m, c);
	} else if (r == 0) {
		bh_strlcpy(id, c->id, 65);
		bh_info("container %.12s created (/%s, %s)", c->id, c->name, c->image_ref);
		ctr_event(c, "create", NULL, 0);
		ctr_release(m, c);
	} else {
		ctr_free(c);
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* ---- the OCI bundle --------------------------------------------------------------- */

static void spec_user(json_t *spec, uid_t uid, gid_t gid, const gid_t *gids, size_t n)
{
	json_t *process = json_object_get(spec, "process"), *add = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(add, json_integer(gids[i]));
	json_object_set_new(process, "user",
	                    json_pack("{s:I, s:I, s:o}", "uid", (json_int_t)uid, "gid",
	                              (json_int_t)gid, "additionalGids", add));
}

static int resolve_user(json_t *spec, const char *merged, const char *user, struct bh_err *err)
{
	cleanup_close int rootfd = open(merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cleanup_free gid_t *gids = NULL;
	size_t n = 0;
	uid_t uid;
	gid_t gid;

	if (rootfd < 0)
		return bh_err_sys(err, errno, "open %s", merged);
	if (user[0] == '\0')
		user = "0";
	if (rt_user_resolve(rootfd, user, &uid, &gid, &gids, &n, err) < 0) {
		err->code = EINVAL; /* the create's User, not a missing container: 400 */
		return bh_err_wrap(err, "unable to find user %s", user);
	}
	spec_user(spec, uid, gid, gids, n);
	return 0;
}

static void spec_env(json_t *process, json_t *env)
{
	json_t *out = json_deep_copy(env);
	size_t i;
	json_t *item;
	bool has_path = false;

	json_array_foreach(out, i, item)
	{
		if (bh_str_has_prefix(json_string_value(item), "PATH="))
			has_path = true;
	}
	if (!has_path)
		json_array_insert_new(
		    out, 0,
		    json_string(
		        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	json_object_set_new(process, "env", out);
}

static void spec_no_netns(json_t *spec)
{
	json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");

	for (size_t i = json_array_size(nss); i-- > 0;) {
		const char *t = json_string_value(json_object_get(json_array_get(nss, i), "type"));
		if (t && strcmp(t, "network") == 0)
			json_array_remove(nss, i);
	}
}

static int64_t hc_int(json_t *hc, const char *key)
{
	return json_integer_value(json_object_get(hc, key));
}

static json_t *build_spec(const struct ctr *c, const char *merged)
{
	json_t *argv = ctr_argv(c->config), *spec, *process;
	const char **args = bh_calloc(json_array_size(argv) + 1, sizeof(*args));
	const char *wd = json_string_value(json_object_get(c->config, "WorkingDir"));
	const char *hn = json_string_value(json_object_get(c->config, "Hostname"));
	char short_id[13];
	json_t *hc = c->host_config;

	for (size_t i = 0; i < json_array_size(argv); i++)
		args[i] = json_string_value(json_array_get(argv, i));
	spec = rt_spec_default(args);
	free(args);
	json_decref(argv);
	process = json_object_get(spec, "process");
	spec_env(process, json_object_get(c->config, "Env"));
	json_object_set_new(process, "cwd", json_string(wd && wd[0] ? wd : "/"));
	json_object_set_new(process, "terminal",
	                    json_boolean(json_is_true(json_object_get(c->config, "Tty"))));
	bh_strlcpy(short_id, c->id, sizeof(short_id));
	json_object_set_new(spec, "hostname", json_string(hn && hn[0] ? hn : short_id));
	json_object_set_new(spec, "root",
	                    json_pack("{s:s, s:b}", "path", merged, "readonly",
	                              json_is_true(json_object_get(hc, "ReadonlyRootfs"))));
	rt_spec_set_resources(spec, hc_int(hc, "Memory"), hc_int(hc, "MemorySwap"),
	                      hc_int(hc, "NanoCpus"), hc_int(hc, "CpuShares"),
	                      hc_int(hc, "PidsLimit") > 0 ? hc_int(hc, "PidsLimit") : 0);
	if (strcmp(json_string_value(json_object_get(hc, "NetworkMode")), "host") == 0)
		spec_no_netns(spec);
	return spec;
}

static int write_bundle(struct ctr_mgr *m, const struct ctr *c, const char *merged,
                        struct bh_err *err)
{
	cleanup_free char *bundle = ctr_data_path(m, c, "bundle");
	cleanup_free char *path = bh_path_join(bundle, "config.json");
	const char *user = json_string_value(json_object_get(c->config, "User"));
	json_t *spec = build_spec(c, merged);
	cleanup_free char *text = NULL;
	int r;

	r = resolve_user(spec, merged, user ? user : "", err);
	if (r == 0) {
		text = json_dumps(spec, JSON_INDENT(1));
		r = bh_mkdir_p(bundle, 0700, err);
	}
	json_decref(spec);
	/* Rewritten before every start: atomic is enough, no fsync. */
	if (r == 0)
		r = bh_write_file_volatile(path, text, strlen(text), 0600, err);
	return r;
}

/* ---- start -------------------------------------------------------------------------- */

static int spawn_monitor(struct ctr_mgr *m, struct ctr *c, pid_t *cpid, pid_t *mpid,
                         struct bh_err *err)
{
	cleanup_free char *bundle = ctr_data_path(m, c, "bundle");
	cleanup_free char *log = bh_asprintf("%s/%s/%s-json.log", m->ctr_dir, c->id, c->id);
	cleanup_free char *dir = ctr_exec_path(m, c);
	struct rt_monitor_opts o;

	memset(&o, 0, sizeof(o));
	o.monitor_path = m->monitor_path;
	o.id = c->id;
	o.bundle = bundle;
	o.state_root = m->state_root;
	o.dir = dir;
	o.log_path = log;
	o.log_max_size = CTR_LOG_MAX_SIZE;
	o.log_max_files = CTR_LOG_MAX_FILES;
	o.tty = json_is_true(json_object_get(c->config, "Tty"));
	o.open_stdin = json_is_true(json_object_get(c->config, "OpenStdin"));
	o.sighup_on_detach = o.tty && o.open_stdin;
	/* A client attached before the start: its first bytes must wait for it
	 * (read late: a client that left meanwhile holds nothing). */
	pthread_mutex_lock(&m->mu);
	o.hold_output = c->attach_holds > 0;
	c->hold_open = o.hold_output;
	pthread_mutex_unlock(&m->mu);
	return rt_monitor_spawn(&o, cpid, mpid, err);
}

static void undo_start(struct ctr_mgr *m, struct ctr *c)
{
	cleanup_free char *merged = ctr_data_path(m, c, "merged");
	struct bh_err e;

	if (rt_container_delete(m->state_root, c->id, true, &e) < 0 && e.code != ENOENT)
		bh_warn("container %.12s: %s", c->id, e.msg);
	if (rt_container_rootfs_teardown(merged, false, &e) < 0)
		bh_warn("container %.12s: %s", c->id, e.msg);
}

static int exec_error(const struct ctr *c, struct bh_err *err)
{
	json_t *argv = ctr_argv(c->config);
	cleanup_free char *cmd = bh_strdup(json_string_value(json_array_get(argv, 0)) ?: "");
	int code = err->code;

	json_decref(argv);
	if (code == ENOENT)
		return bh_err_set(err, EINVAL,
		                  "failed to create task for container: exec: \"%s\": executable "
		                  "file not found in $PATH",
		                  cmd);
	if (code == EACCES)
		return bh_err_set(err, EINVAL,
		                  "failed to create task for container: exec: \"%s\": permission "
		                  "denied",
		                  cmd);
	return bh_err_wrap(err, "failed to create task for container");
}

/* c is owned; mu is not held.  On success *pidfd is the monitor's. */
static int start_owned(struct ctr_mgr *m, struct ctr *c, pid_t *cpid, pid_t *mpid, int *pidfd,
                       int *spawn_errno, struct bh_err *err)
{
	cleanup_free char *dir = ctr_data_path(m, c, NULL);
	cleanup_free char *merged = ctr_data_path(m, c, "merged");
	char **layers = NULL;
	struct bh_err e;
	int r;

	*pidfd = -1;
	if (access(m->monitor_path, X_OK) < 0)
		return bh_err_sys(err, errno, "berth-monitor %s (see --monitor-path)",
		                  m->monitor_path);
	if (rt_container_delete(m->state_root, c->id, true, &e) < 0 && e.code != ENOENT)
		bh_warn("container %.12s: stale runtime state: %s", c->id, e.msg);
	r = rt_image_layer_dirs(m->store, c->image_id, &layers, err);
	if (r == 0)
		r = rt_container_rootfs_prepare(
		    layers, dir, merged,
		    json_is_true(json_object_get(c->host_config, "AutoRemove")), err);
	rt_image_strv_free(layers);
	if (r == 0 && (r = write_bundle(m, c, merged, err)) == 0 &&
	    (r = spawn_monitor(m, c, cpid, mpid, err)) < 0) {
		*spawn_errno = err->code;
		r = exec_error(c, err);
	}
	if (r == 0) {
		*pidfd = pidfd_open(*mpid, 0);
		if (*pidfd < 0 && errno != ESRCH)
			bh_warn("container %.12s: pidfd_open: %s", c->id, strerror(errno));
		return 0;
	}
	undo_start(m, c);
	return -1;
}

static void start_failed(struct ctr *c, const struct bh_err *err, int errno_code)
{
	c->exit_code =
	    (errno_code == ENOENT || errno_code == EACCES) ? rt_exec_errno_status(errno_code) : 128;
	bh_strlcpy(c->error, err->msg, sizeof(c->error));
	if (c->status == CTR_RESTARTING)
		c->status = CTR_EXITED;
}

static void start_ok(struct ctr_mgr *m, struct ctr *c, pid_t cpid, pid_t mpid, int pidfd,
                     const char *started)
{
	c->status = CTR_RUNNING;
	c->pid = cpid;
	c->monitor_pid = mpid;
	c->exit_code = 0;
	c->oom_killed = false;
	c->error[0] = '\0';
	c->has_been_started = true;
	bh_strlcpy(c->started_at, started, sizeof(c->started_at));
	c->started_mono_ms = bh_now_ms();
	ctr_event(c, "start", NULL, 0);
	ctr_watch(m, c, pidfd);
}

/* Under mu: attach sessions waiting for c look at it again. */
static void wake_attach(struct ctr_mgr *m, const struct ctr *c)
{
	if (c->attach_waiting > 0 && m->srv != NULL && m->srv->pool != NULL)
		srv_stream_attach_wake(m->srv);
}

/* Starts c (a reference held).  policy: a restart by the restart policy,
 * which gives way to a user's stop or start meanwhile. */
int ctr_start_ref(struct ctr_mgr *m, struct ctr *c, bool policy, struct bh_err *err)
{
	pid_t cpid = 0, mpid = 0;
	int r, pidfd = -1, spawn_errno = 0;
	struct bh_err e;
	char started[40];

	pthread_mutex_lock(&m->mu);
	ctr_own(m, c);
	if (c->removed || c->status == CTR_RUNNING ||
	    (policy && (c->status != CTR_RESTARTING || c->manually_stopped))) {
		ctr_release(m, c);
		pthread_mutex_unlock(&m->mu);
		return 1;
	}
	c->restart_at_ms = 0;
	if (policy)
		c->restart_count++;
	else
		c->manually_stopped = false;
	pthread_mutex_unlock(&m->mu);

	bh_rfc3339_now(started); /* before the process can exit */
	r = start_owned(m, c, &cpid, &mpid, &pidfd, &spawn_errno, err);

	pthread_mutex_lock(&m->mu);
	if (r < 0)
		start_failed(c, err, spawn_errno);
	else
		start_ok(m, c, cpid, mpid, pidfd, started);
	if (ctr_save(m, c, &e) < 0)
		bh_warn("%s", e.msg);
	c->start_gen++;
	wake_attach(m, c);
	/* every session the hold was for left during the spawn */
	char *release = r == 0 && c->hold_open && c->attach_holds == 0 ? ctr_exec_path(m, c) : NULL;
	if (release != NULL)
		c->hold_open = false;
	ctr_release(m, c);
	pthread_mutex_unlock(&m->mu);
	if (release != NULL && m->srv != NULL && m->srv->pool != NULL)
		srv_stream_release_hold(m->srv, release, -1);
	free(release);
	if (r == 0)
		bh_info("container %.12s started, pid %d", c->id, (int)cpid);
	if (r == 0 && pidfd < 0)
		ctr_handle_exit(m, c); /* the monitor is already gone */
	return r;
}

int ctr_start(struct ctr_mgr *m, const char *ref, struct bh_err *err)
{
	struct ctr *c;
	int r;

	if (ctr_find(m, ref, &c, err) < 0)
		return -1;
	r = ctr_start_ref(m, c, false, err);
	pthread_mutex_lock(&m->mu);
	ctr_put(m, c);
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* ---- stop, kill ---------------------------------------------------------------------- */

static bool not_running(const struct ctr *c)
{
	return c->status != CTR_RUNNING || c->removed;
}

static void signal_ctr(struct ctr_mgr *m, const char *id, int sig)
{
	struct bh_err e;

	if (rt_container_kill(m->state_root, id, sig, &e) < 0)
		bh_debug("container %.12s: signal %d: %s", id, sig, e.msg);
}

/* Under mu: a restart policy never undoes what a user asked for. */
static void mark_stopped(struct ctr_mgr *m, struct ctr *c)
{
	struct bh_err e;

	c->manually_stopped = true;
	if (c->status == CTR_RESTARTING) {
		c->status = CTR_EXITED;
		c->restart_at_ms = 0;
	}
	if (ctr_save(m, c, &e) < 0)
		bh_warn("%s", e.msg);
}

/* Under mu: SIGTERM-like signal, grace, SIGKILL, bounded wait. */
static int stop_locked(struct ctr_mgr *m, struct ctr *c, int sig, int timeout_s, struct bh_err *err)
{
	char id[65];

	bh_strlcpy(id, c->id, sizeof(id));
	pthread_mutex_unlock(&m->mu);
	signal_ctr(m, id, sig);
	pthread_mutex_lock(&m->mu);
	if (sig != SIGKILL && ctr_wait_until(m, c, not_running, timeout_s * 1000))
		return 0;
	pthread_mutex_unlock(&m->mu);
	signal_ctr(m, id, SIGKILL);
	pthread_mutex_lock(&m->mu);
	if (!ctr_wait_until(m, c, not_running, CTR_KILL_WAIT_S * 1000))
		return bh_err_set(err, ETIMEDOUT, "container %s did not exit after SIGKILL", id);
	return 0;
}

int ctr_stop(struct ctr_mgr *m, const char *ref, int timeout_s, struct bh_err *err)
{
	struct ctr *c;
	int r = 1;

	if (ctr_find(m, ref, &c, err) < 0)
		return -1;
	pthread_mutex_lock(&m->mu);
	if (c->status == CTR_RESTARTING) {
		mark_stopped(m, c);
		r = 0;
	} else if (c->status == CTR_RUNNING) {
		const char *s = json_string_value(json_object_get(c->config, "StopSignal"));
		int sig = s && s[0] ? ctr_signal_parse(s) : SIGTERM;
		mark_stopped(m, c);
		r = stop_locked(m, c, sig > 0 ? sig : SIGTERM,
		                timeout_s < 0 ? CTR_STOP_DEFAULT : timeout_s, err);
	}
	if (r == 0)
		ctr_event(c, "stop", NULL, 0);
	ctr_put(m, c);
	pthread_mutex_unlock(&m->mu);
	return r;
}

/* A kill that asks the container to end counts as a user's stop (no
 * restart policy after it); SIGHUP, SIGUSR1, SIGWINCH ... do not. */
static bool is_stop_signal(const struct ctr *c, int sig)
{
	const char *s = json_string_value(json_object_get(c->config, "StopSignal"));

	return sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGQUIT ||
	       (s && s[0] && ctr_signal_parse(s) == sig);
}

int ctr_kill(struct ctr_mgr *m, const char *ref, int sig, struct bh_err *err)
{
	struct ctr *c;
	char id[65];
	int r = 0;

	if (ctr_find(m, ref, &c, err) < 0)
		return -1;
	pthread_mutex_lock(&m->mu);
	bh_strlcpy(id, c->id, sizeof(id));
	if (c->status != CTR_RUNNING)
		r = bh_err_set(err, EBUSY, "Container %s is not running", c->id);
	else if (is_stop_signal(c, sig))
		mark_stopped(m, c);
	if (r == 0)
		ctr_event(c, "kill", "signal", sig);
	ctr_put(m, c);
	pthread_mutex_unlock(&m->mu);
	if (r == 0)
		signal_ctr(m, id, sig);
	return r;
}

/* ---- remove ----------------------------------------------------------------------------- */

static int trash_work(void *arg, struct bh_err *err)
{
	if (bh_rm_rf(arg, err) < 0)
		bh_warn("%s", err->msg);
	return 0;
}

static void trash_done(void *arg, int rc, const struct bh_err *err)
{
	(void)rc;
	(void)err;
	free(arg);
}

/* The data dir leaves the store with one rename into DATA_ROOT/tmp, which
 * every daemon start wipes, so a crash half-way leaks nothing; its files
 * (the upper layer may be large) are deleted on the pool after the reply.
 * Deleting them first, behind a saved REMOVING record, kept `rm` (and so
 * `run --rm`) waiting for two fsyncs and a dozen unlinks. */
static bool trash_dir(struct ctr_mgr *m, struct ctr *c, const char *dir)
{
	char *trash;

	if (m->srv == NULL || m->srv->pool == NULL)
		return false;
	trash = bh_asprintf("%s/rm-%s", m->tmp_dir, c->id);
	if (rename(dir, trash) < 0) {
		bh_warn("container %.12s: rename to %s: %s", c->id, trash, strerror(errno));
		free(trash);
		return false;
	}
	srv_pool_submit(m->srv->pool, trash_work, trash_done, trash);
	return true;
}

static void remove_files(struct ctr_mgr *m, struct ctr *c)
{
	cleanup_free char *merged = ctr_data_path(m, c, "merged");
	cleanup_free char *exec = ctr_exec_path(m, c);
	cleanup_free char *dir = ctr_data_path(m, c, NULL);
	struct bh_err e;
	bool unmounted = true;

	if (rt_container_delete(m->state_root, c->id, true, &e) < 0 && e.code != ENOENT)
		bh_warn("container %.12s: %s", c->id, e.msg);
	if (rt_container_rootfs_teardown(merged, true, &e) < 0) {
		bh_warn("container %.12s: %s", c->id, e.msg);
		unmounted = false;
	}
	if (bh_rm_rf(exec, &e) < 0)
		bh_warn("container %.12s: %s", c->id, e.msg);
	/* Never a mount into the tmp dir that the next start wipes. */
	if (unmounted && trash_dir(m, c, dir))
		return;
	/* The record goes first: a crash mid-way leaves no half container. */
	cleanup_free char *rec = ctr_data_path(m, c, CTR_RECORD);
	unlink(rec);
	if (bh_rm_rf(dir, &e) < 0)
		bh_warn("container %.12s: %s", c->id, e.msg);
}

/* A crash before the data dir is renamed away leaves the container as it
 * was recorded (stopped: its runtime state is gone), so rm can be repeated;
 * a REMOVING record from an older daemon is still finished at start. */
void ctr_remove_owned(struct ctr_mgr *m, struct ctr *c)
{
	c->status = CTR_REMOVING;
	pthread_mutex_unlock(&m->mu);
	remove_files(m, c);
	pthread_mutex_lock(&m->mu);
	unlink_ctr(m, c);
	wake_attach(m, c);
	ctr_event(c, "destroy", NULL, 0);
	ctr_fire_waiters(c, CTR_WAIT_REMOVED, c->exit_code);
	ctr_release(m, c);
	bh_info("container %.12s removed", c->id);
	ctr_put(m, c); /* the table's reference */
}

int ctr_remove(struct ctr_mgr *m, const char *ref, bool force, struct bh_err *err)
{
	struct ctr *c;
	int r = 0;

	if (ctr_find(m, ref, &c, err) < 0)
		return -1;
	pthread_mutex_lock(&m->mu);
	if ((c->status == CTR_RUNNING || c->status == CTR_RESTARTING) && !force) {
		r = bh_err_set(err, EBUSY,
		               "You cannot remove a %s container %s. Stop the container before "
		               "attempting removal or force remove",
		               ctr_state_name(c->status), c->id);
	} else if (c->status == CTR_RUNNING || c->status == CTR_RESTARTING) {
		mark_stopped(m, c);
		if (c->status == CTR_RUNNING)
			r = stop_locked(m, c, SIGKILL, 0, err);
	}
	if (r == 0 && !c->removed) {
		ctr_own(m, c);
		if (c->removed)
			ctr_release(m, c);
		else
			ctr_remove_owned(m, c);
	}
	ctr_put(m, c);
	pthread_mutex_unlock(&m->mu);
	return r;
}
