/* The exec registry: exec instances made by POST /containers/{id}/exec, their
 * validated configuration and state, kept after the process exits (like
 * Docker) until their container is removed (checked on each lookup) and
 * bounded by SRV_EXEC_MAX.  The create body is hostile: every field is type-
 * and range-checked before it is stored.  One mutex guards the list; it is
 * never held while the container manager's mutex is taken the other way. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt-container.h"
#include "runtime/rt-monitor.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

struct exec {
	struct srv_exec_info info;
	json_t *cmd, *env; /* arrays of strings */
	char *workdir, *user, *detach_keys;
	bool privileged;
	/* audit: who started it, when; the event is written once, at the end */
	struct srv_identity caller;
	uint64_t started_ms;
	bool audited;
	struct exec *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct exec *execs;
static size_t n_execs;

static void exec_free(struct exec *e)
{
	json_decref(e->cmd);
	json_decref(e->env);
	free(e->workdir);
	free(e->user);
	free(e->detach_keys);
	free(e);
}

void srv_exec_free_all(void)
{
	pthread_mutex_lock(&mu);
	while (execs != NULL) {
		struct exec *e = execs;
		execs = e->next;
		exec_free(e);
	}
	n_execs = 0;
	pthread_mutex_unlock(&mu);
}

/* ---- the create body --------------------------------------------------------- */

static int strv_field(json_t *body, const char *key, bool required, json_t **out,
                      struct bh_err *err)
{
	json_t *v = json_object_get(body, key), *item;
	size_t i;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return bh_err_set(err, EINVAL, "No exec command specified");
		return 0;
	}
	if (!json_is_array(v) || (required && json_array_size(v) == 0))
		return bh_err_set(err, EINVAL, "%s must be a non-empty array of strings", key);
	json_array_foreach(
	    v, i,
	    item) if (!json_is_string(item) ||
	              strlen(json_string_value(item)) !=
	                  json_string_length(
	                      item)) return bh_err_set(err, EINVAL,
	                                               "%s[%zu] must be a string without NUL bytes",
	                                               key, i);
	*out = json_incref(v);
	return 0;
}

static int str_field(json_t *body, const char *key, char **out, struct bh_err *err)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return bh_err_set(err, EINVAL, "%s must be a string", key);
	*out = bh_strdup(json_string_value(v));
	return 0;
}

static int bool_field(json_t *body, const char *key, bool *out, struct bh_err *err)
{
	json_t *v = json_object_get(body, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bh_err_set(err, EINVAL, "%s must be a boolean", key);
	*out = json_is_true(v);
	return 0;
}

/* ConsoleSize [rows, cols]: absent, null or [0,0] = none; else 1..10000. */
static int console_size(json_t *body, struct srv_exec_info *in, struct bh_err *err)
{
	json_t *v = json_object_get(body, "ConsoleSize");
	json_int_t h, w;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) != 2 ||
	    !json_is_integer(json_array_get(v, 0)) || !json_is_integer(json_array_get(v, 1)))
		return bh_err_set(err, EINVAL, "ConsoleSize must be [height, width]");
	h = json_integer_value(json_array_get(v, 0));
	w = json_integer_value(json_array_get(v, 1));
	if (h == 0 && w == 0)
		return 0;
	if (h < 1 || h > SRV_SF_TTY_MAX || w < 1 || w > SRV_SF_TTY_MAX)
		return bh_err_set(err, EINVAL, "ConsoleSize %lldx%lld out of range 1..%d",
		                  (long long)h, (long long)w, SRV_SF_TTY_MAX);
	in->rows = (unsigned)h;
	in->cols = (unsigned)w;
	return 0;
}

static int parse_body(json_t *body, struct exec *e, struct bh_err *err)
{
	struct srv_exec_info *in = &e->info;

	if (!json_is_object(body))
		return bh_err_set(err, EINVAL, "the exec config must be a JSON object");
	if (strv_field(body, "Cmd", true, &e->cmd, err) < 0 ||
	    strv_field(body, "Env", false, &e->env, err) < 0 ||
	    str_field(body, "WorkingDir", &e->workdir, err) < 0 ||
	    str_field(body, "User", &e->user, err) < 0 ||
	    str_field(body, "DetachKeys", &e->detach_keys, err) < 0 ||
	    bool_field(body, "Tty", &in->tty, err) < 0 ||
	    bool_field(body, "AttachStdin", &in->open_stdin, err) < 0 ||
	    bool_field(body, "AttachStdout", &in->attach_stdout, err) < 0 ||
	    bool_field(body, "AttachStderr", &in->attach_stderr, err) < 0 ||
	    bool_field(body, "Privileged", &e->privileged, err) < 0 ||
	    console_size(body, in, err) < 0)
		return -1;
	if (e->privileged)
		return bh_err_set(err, EINVAL, "privileged exec is not supported");
	if (e->workdir != NULL && e->workdir[0] != '\0' && e->workdir[0] != '/')
		return bh_err_set(
		    err, EINVAL,
		    "the working directory '%s' is invalid, it needs to be an absolute "
		    "path",
		    e->workdir);
	for (size_t i = 0; i < json_array_size(e->env); i++)
		if (strchr(json_string_value(json_array_get(e->env, i)), '=') == NULL)
			return bh_err_set(err, EINVAL, "Env[%zu] must be KEY=VALUE", i);
	return 0;
}

int srv_exec_body_check(json_t *body, struct srv_exec_info *out, struct bh_err *err)
{
	struct exec *e = bh_calloc(1, sizeof(*e));
	int r = parse_body(body, e, err);

	if (r == 0)
		*out = e->info;
	exec_free(e);
	return r;
}

/* ---- the registry ------------------------------------------------------------- */

int srv_exec_ctr_running(struct ctr_mgr *m, const char *ref, char cid[65], struct bh_err *err)
{
	struct ctr *c;
	int r = 0;

	pthread_mutex_lock(&m->mu);
	if (ctr_lookup(m->list, ref, &c, err) < 0) {
		pthread_mutex_unlock(&m->mu);
		return -1;
	}
	bh_strlcpy(cid, c->id, 65);
	if (c->status != CTR_RUNNING || c->removed)
		r = bh_err_set(err, EBUSY, "Container %s is not running", c->id);
	pthread_mutex_unlock(&m->mu);
	return r;
}

static bool ctr_exists(struct ctr_mgr *m, const char *cid)
{
	struct ctr *c;
	struct bh_err ignore;
	bool found;

	pthread_mutex_lock(&m->mu);
	found = ctr_lookup(m->list, cid, &c, &ignore) == 0 && strcmp(c->id, cid) == 0;
	pthread_mutex_unlock(&m->mu);
	return found;
}

/* Under mu: drops the records of containers that are gone. */
static void purge_removed(struct ctr_mgr *m)
{
	struct exec **p = &execs;

	while (*p != NULL) {
		struct exec *e = *p;
		if (e->info.state != SRV_EXEC_STARTING && !ctr_exists(m, e->info.ctr_id)) {
			*p = e->next;
			n_execs--;
			exec_free(e);
		} else {
			p = &e->next;
		}
	}
}

static struct exec *find(const char *id)
{
	for (struct exec *e = execs; e; e = e->next)
		if (strcmp(e->info.id, id) == 0)
			return e;
	return NULL;
}

int srv_exec_create(struct ctr_mgr *m, const char *ref, json_t *body, char id[65],
                    struct bh_err *err)
{
	struct exec *e = bh_calloc(1, sizeof(*e));
	cleanup_free char *cdir = NULL;

	if (parse_body(body, e, err) < 0 || srv_exec_ctr_running(m, ref, e->info.ctr_id, err) < 0 ||
	    ctr_new_id(e->info.id, err) < 0) {
		exec_free(e);
		return -1;
	}
	snprintf(e->info.dir, sizeof(e->info.dir), "%s/%s/exec/%s", m->exec_dir, e->info.ctr_id,
	         e->info.id);
	pthread_mutex_lock(&mu);
	if (n_execs >= SRV_EXEC_MAX)
		purge_removed(m);
	if (n_execs >= SRV_EXEC_MAX) {
		pthread_mutex_unlock(&mu);
		exec_free(e);
		return bh_err_set(err, EBUSY, "too many exec instances (%d)", SRV_EXEC_MAX);
	}
	e->next = execs;
	execs = e;
	n_execs++;
	bh_strlcpy(id, e->info.id, 65);
	pthread_mutex_unlock(&mu);
	return 0;
}

/* Under mu: the audit attributes every exec event carries; argv is cut so
 * that the event stays bounded. */
static json_t *exec_attrs(const struct exec *e)
{
	char *argv = json_dumps(e->cmd, JSON_COMPACT);
	json_t *attrs;

	if (argv != NULL && strlen(argv) > SRV_EVENTS_LINE_MAX / 4)
		argv[SRV_EVENTS_LINE_MAX / 4] = '\0';
	attrs = json_pack("{s:s, s:s, s:s, s:s}", "container", e->info.ctr_id, "execID", e->info.id,
	                  "argv", argv ? argv : "[]", "tty", e->info.tty ? "true" : "false");
	free(argv);
	return attrs;
}

/* Under mu: the exec ended (or could not run): state, and its audit event
 * (once).  A detached exec's end is seen when someone looks (inspect,
 * resize, kill): its exec_start event is there from the start anyway. */
static void exited_locked(struct exec *e, int code)
{
	char exit_code[16], ms[24];
	json_t *attrs;

	e->info.state = SRV_EXEC_EXITED;
	e->info.exit_code = code;
	if (e->audited)
		return;
	e->audited = true;
	snprintf(exit_code, sizeof(exit_code), "%d", code);
	snprintf(ms, sizeof(ms), "%llu",
	         (unsigned long long)(e->started_ms ? bh_now_ms() - e->started_ms : 0));
	attrs = exec_attrs(e);
	json_object_set_new(attrs, "exitCode", json_string(exit_code));
	json_object_set_new(attrs, "durationMs", json_string(ms));
	srv_events_audit("exec", &e->caller, attrs);
}

void srv_exec_note_caller(const char *id, const struct srv_identity *who)
{
	struct exec *e;

	pthread_mutex_lock(&mu);
	e = find(id);
	if (e != NULL && e->info.state == SRV_EXEC_CREATED)
		e->caller = *who;
	pthread_mutex_unlock(&mu);
}

/* Under mu: a running exec whose monitor has written exit.json is done. */
static void refresh(struct exec *e)
{
	struct rt_monitor_state st;
	struct bh_err err;

	if (e->info.state != SRV_EXEC_RUNNING || rt_monitor_probe(e->info.dir, &st, &err) < 0)
		return;
	if (st.status == RT_MONITOR_EXITED)
		exited_locked(e, st.exit_code);
	else if (st.status == RT_MONITOR_LOST)
		exited_locked(e, CTR_LOST_EXIT);
}

static struct exec *lookup_locked(struct ctr_mgr *m, const char *id, struct bh_err *err)
{
	struct exec *e = find(id);

	if (e != NULL && e->info.state != SRV_EXEC_STARTING && !ctr_exists(m, e->info.ctr_id)) {
		for (struct exec **p = &execs; *p; p = &(*p)->next) {
			if (*p == e) {
				*p = e->next;
				break;
			}
		}
		n_execs--;
		exec_free(e);
		e = NULL;
	}
	if (e == NULL && err != NULL)
		bh_err_set(err, ENOENT, "No such exec instance: %s", id);
	if (e != NULL)
		refresh(e);
	return e;
}

int srv_exec_lookup(struct ctr_mgr *m, const char *id, struct srv_exec_info *out,
                    struct bh_err *err)
{
	struct exec *e;

	pthread_mutex_lock(&mu);
	e = lookup_locked(m, id, err);
	if (e != NULL)
		*out = e->info;
	pthread_mutex_unlock(&mu);
	return e != NULL ? 0 : -1;
}

void srv_exec_set_exited(const char *id, int code)
{
	struct exec *e;

	pthread_mutex_lock(&mu);
	e = find(id);
	if (e != NULL)
		exited_locked(e, code);
	pthread_mutex_unlock(&mu);
}

static json_t *process_config(const struct exec *e)
{
	json_t *args = json_array();

	for (size_t i = 1; i < json_array_size(e->cmd); i++)
		json_array_append(args, json_array_get(e->cmd, i));
	return json_pack("{s:O, s:o, s:b, s:s, s:b}", "entrypoint", json_array_get(e->cmd, 0),
	                 "arguments", args, "tty", e->info.tty, "user", e->user ? e->user : "",
	                 "privileged", 0);
}

json_t *srv_exec_inspect_json(struct ctr_mgr *m, const char *id, struct bh_err *err)
{
	struct exec *e;
	json_t *j = NULL;

	pthread_mutex_lock(&mu);
	e = lookup_locked(m, id, err);
	if (e != NULL) {
		bool running =
		    e->info.state == SRV_EXEC_RUNNING || e->info.state == SRV_EXEC_STARTING;
		j = json_pack("{s:s, s:b, s:o, s:i, s:s, s:o, s:b, s:b, s:b, s:b, s:s}", "ID",
		              e->info.id, "Running", running, "ExitCode",
		              e->info.state == SRV_EXEC_EXITED ? json_integer(e->info.exit_code)
		                                               : json_null(),
		              "Pid", running ? (int)e->info.pid : 0, "ContainerID", e->info.ctr_id,
		              "ProcessConfig", process_config(e), "OpenStdin", e->info.open_stdin,
		              "OpenStdout", e->info.attach_stdout, "OpenStderr",
		              e->info.attach_stderr, "CanRemove", 0, "DetachKeys",
		              e->detach_keys ? e->detach_keys : "");
	}
	pthread_mutex_unlock(&mu);
	return j;
}

/* ---- start ------------------------------------------------------------------------ */

struct spawn_args {
	char id[65], ctr_id[65], dir[4096];
	char **args, **env;
	char *cwd, *user;
	bool tty, open_stdin;
	unsigned rows, cols;
};

static char **strv_copy(json_t *a)
{
	char **v = bh_calloc(json_array_size(a) + 1, sizeof(*v));

	for (size_t i = 0; i < json_array_size(a); i++)
		v[i] = bh_strdup(json_string_value(json_array_get(a, i)));
	return v;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void spawn_args_free(struct spawn_args *a)
{
	strv_free(a->args);
	strv_free(a->env);
	free(a->cwd);
	free(a->user);
}

/* Claims exec id for a start (created → starting) and copies what it needs. */
static int claim(struct ctr_mgr *m, const char *id, struct spawn_args *a, struct bh_err *err)
{
	struct exec *e;

	pthread_mutex_lock(&mu);
	e = lookup_locked(m, id, err);
	if (e != NULL && e->info.state != SRV_EXEC_CREATED) {
		bh_err_set(err, EBUSY, "Exec %s has already been started", id);
		e = NULL;
	}
	if (e != NULL) {
		e->info.state = SRV_EXEC_STARTING;
		e->started_ms = bh_now_ms();
		memset(a, 0, sizeof(*a));
		bh_strlcpy(a->id, e->info.id, sizeof(a->id));
		bh_strlcpy(a->ctr_id, e->info.ctr_id, sizeof(a->ctr_id));
		bh_strlcpy(a->dir, e->info.dir, sizeof(a->dir));
		a->args = strv_copy(e->cmd);
		a->env = e->env ? strv_copy(e->env) : NULL;
		a->cwd = e->workdir && e->workdir[0] ? bh_strdup(e->workdir) : NULL;
		a->user = e->user && e->user[0] ? bh_strdup(e->user) : NULL;
		a->tty = e->info.tty;
		a->open_stdin = e->info.open_stdin;
		a->rows = e->info.rows;
		a->cols = e->info.cols;
	}
	pthread_mutex_unlock(&mu);
	return e != NULL ? 0 : -1;
}

static void settle(const char *id, enum srv_exec_state st, pid_t pid, int code)
{
	struct exec *e;

	pthread_mutex_lock(&mu);
	e = find(id);
	if (e != NULL) {
		e->info.state = st;
		e->info.pid = pid;
		e->info.exit_code = code;
		if (st == SRV_EXEC_EXITED)
			exited_locked(e, code);
		else if (st == SRV_EXEC_RUNNING)
			srv_events_audit("exec_start", &e->caller, exec_attrs(e));
	}
	pthread_mutex_unlock(&mu);
}

static int run_monitor(struct ctr_mgr *m, struct spawn_args *a, bool detached, pid_t *pid,
                       struct bh_err *err)
{
	cleanup_free char *spec = bh_asprintf("%s.spec.json", a->dir);
	cleanup_free char *parent = bh_asprintf("%s/%s/exec", m->exec_dir, a->ctr_id);
	struct rt_monitor_opts o;
	pid_t mpid;
	int r;

	if (bh_mkdir_p(parent, 0700, err) < 0 ||
	    rt_exec_spec_write(spec, (const char *const *)a->args, (const char *const *)a->env,
	                       a->cwd, a->user, err) < 0)
		return -1;
	memset(&o, 0, sizeof(o));
	o.monitor_path = m->monitor_path;
	o.id = a->ctr_id;
	o.state_root = m->state_root;
	o.dir = a->dir;
	o.exec_id = a->id;
	o.exec_spec = spec;
	o.tty = a->tty;
	o.tty_rows = (unsigned short)a->rows;
	o.tty_cols = (unsigned short)a->cols;
	o.open_stdin = a->open_stdin;
	o.sighup_on_detach = a->tty;
	o.detached = detached;
	r = rt_monitor_spawn(&o, pid, &mpid, err);
	unlink(spec);
	return r;
}

static int spawn_error(const struct spawn_args *a, int code, struct bh_err *err)
{
	if (code == ENOENT)
		return bh_err_set(
		    err, ENOENT,
		    "OCI runtime exec failed: exec: \"%s\": executable file not found in "
		    "$PATH",
		    a->args[0]);
	if (code == EACCES)
		return bh_err_set(err, EACCES,
		                  "OCI runtime exec failed: exec: \"%s\": permission denied",
		                  a->args[0]);
	return bh_err_wrap(err, "OCI runtime exec failed");
}

int srv_exec_spawn(struct ctr_mgr *m, const char *id, bool detached, struct bh_err *err)
{
	struct spawn_args a;
	pid_t pid = 0;
	int code;
	char cid[65];

	if (claim(m, id, &a, err) < 0)
		return -1;
	if (srv_exec_ctr_running(m, a.ctr_id, cid, err) < 0) {
		settle(a.id, SRV_EXEC_CREATED, 0, 0);
		spawn_args_free(&a);
		return -1;
	}
	if (run_monitor(m, &a, detached, &pid, err) == 0) {
		settle(a.id, SRV_EXEC_RUNNING, pid, 0);
		bh_info("exec %.12s in %.12s started, pid %d", a.id, a.ctr_id, (int)pid);
		spawn_args_free(&a);
		return 0;
	}
	code = err->code;
	if (code == ESRCH) {
		settle(a.id, SRV_EXEC_CREATED, 0, 0);
		bh_err_set(err, EBUSY, "Container %s is not running", a.ctr_id);
	} else {
		settle(a.id, SRV_EXEC_EXITED, 0, rt_exec_errno_status(code));
		spawn_error(&a, code, err);
	}
	spawn_args_free(&a);
	return -1;
}
