/* Container records without side effects: create-body validation, the
 * image-config merge, names, ids, status strings and the record file's JSON.
 * The create body is hostile: every field is type-checked and bounded. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/containers-internal.h"

#define MAX_STRV     4096 /* entries in Cmd, Env, ... */
#define MAX_STR      (64 * 1024)
#define MAX_LABELS   1024
#define NAME_MAX_LEN 253

bool ctr_name_valid(const char *name)
{
	size_t n;

	if (name[0] == '/')
		name++;
	n = strlen(name);
	if (n < 2 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		             (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

/* A string array (or a single string when one_string_ok, Entrypoint's
 * shorthand) becomes a new array of strings; absent/null -> *out NULL. */
static int strv_field(json_t *obj, const char *key, bool one_string_ok, json_t **out,
                      struct bh_err *err)
{
	json_t *v = json_object_get(obj, key), *item;
	size_t i;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (one_string_ok && json_is_string(v)) {
		*out = json_string_length(v) ? json_pack("[O]", v) : json_array();
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > MAX_STRV)
		return bh_err_set(err, EINVAL, "%s must be an array of strings", key);
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item) || json_string_length(item) > MAX_STR)
			return bh_err_set(err, EINVAL, "%s[%zu] must be a string", key, i);
	}
	*out = json_deep_copy(v);
	return 0;
}

static int str_field(json_t *obj, const char *key, const char **out, struct bh_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = "";
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > MAX_STR)
		return bh_err_set(err, EINVAL, "%s must be a string", key);
	*out = json_string_value(v);
	return 0;
}

static int bool_field(json_t *obj, const char *key, bool *out, struct bh_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bh_err_set(err, EINVAL, "%s must be a boolean", key);
	*out = json_is_true(v);
	return 0;
}

static int int_field(json_t *obj, const char *key, int64_t *out, struct bh_err *err)
{
	json_t *v = json_object_get(obj, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return bh_err_set(err, EINVAL, "%s must be an integer", key);
	*out = json_integer_value(v);
	return 0;
}

static int labels_field(json_t *obj, json_t **out, struct bh_err *err)
{
	json_t *v = json_object_get(obj, "Labels"), *val;
	const char *k;

	*out = json_object();
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v) || json_object_size(v) > MAX_LABELS)
		return bh_err_set(err, EINVAL, "Labels must be an object of strings");
	json_object_foreach(v, k, val)
	{
		if (!json_is_string(val) || json_string_length(val) > MAX_STR)
			return bh_err_set(err, EINVAL, "Labels[%s] must be a string", k);
		json_object_set(*out, k, val);
	}
	return 0;
}

static int env_check(json_t *env, struct bh_err *err)
{
	json_t *item;
	size_t i;

	json_array_foreach(env, i, item)
	{
		const char *s = json_string_value(item);
		if (s[0] == '=' || s[0] == '\0')
			return bh_err_set(err, EINVAL, "invalid environment variable: %s", s);
	}
	return 0;
}

static int config_strings(json_t *body, json_t *cfg, struct bh_err *err)
{
	static const char *const keys[] = {"Image",    "WorkingDir", "User",
	                                   "Hostname", "Domainname", "StopSignal"};
	const char *s;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (str_field(body, keys[i], &s, err) < 0)
			return -1;
		json_object_set_new(cfg, keys[i], json_string(s));
	}
	s = json_string_value(json_object_get(cfg, "StopSignal"));
	if (s[0] != '\0' && ctr_signal_parse(s) < 0)
		return bh_err_set(err, EINVAL, "Invalid signal: %s", s);
	s = json_string_value(json_object_get(cfg, "WorkingDir"));
	if (s[0] != '\0' && s[0] != '/')
		return bh_err_set(err, EINVAL,
		                  "the working directory '%s' is invalid, it needs to be an "
		                  "absolute path",
		                  s);
	return 0;
}

static int config_lists(json_t *body, json_t *cfg, struct bh_err *err)
{
	json_t *cmd, *ep, *env, *labels;

	if (strv_field(body, "Cmd", true, &cmd, err) < 0 ||
	    strv_field(body, "Entrypoint", true, &ep, err) < 0)
		return -1;
	/* --entrypoint "" arrives as [""]: Docker's "reset the image's". */
	if (json_array_size(ep) == 1 && json_string_length(json_array_get(ep, 0)) == 0)
		json_array_clear(ep);
	json_object_set_new(cfg, "Cmd", cmd ? cmd : json_null());
	json_object_set_new(cfg, "Entrypoint", ep ? ep : json_null());
	if (strv_field(body, "Env", false, &env, err) < 0)
		return -1;
	json_object_set_new(cfg, "Env", env ? env : json_array());
	if (env_check(json_object_get(cfg, "Env"), err) < 0)
		return -1;
	if (labels_field(body, &labels, err) < 0) {
		json_decref(labels);
		return -1;
	}
	json_object_set_new(cfg, "Labels", labels);
	return 0;
}

static int config_bools(json_t *body, json_t *cfg, struct bh_err *err)
{
	static const char *const keys[] = {"Tty",         "OpenStdin",    "StdinOnce",
	                                   "AttachStdin", "AttachStdout", "AttachStderr"};
	bool b;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (bool_field(body, keys[i], &b, err) < 0)
			return -1;
		json_object_set_new(cfg, keys[i], json_boolean(b));
	}
	return 0;
}

static int parse_config(json_t *body, json_t **out, struct bh_err *err)
{
	json_t *cfg = json_object();

	if (config_strings(body, cfg, err) < 0 || config_lists(body, cfg, err) < 0 ||
	    config_bools(body, cfg, err) < 0) {
		json_decref(cfg);
		return -1;
	}
	if (json_string_length(json_object_get(cfg, "Image")) == 0) {
		json_decref(cfg);
		return bh_err_set(err, EINVAL, "Config.Image must be set");
	}
	*out = cfg;
	return 0;
}

static int restart_policy(json_t *hc_in, json_t *hc, bool auto_remove, struct bh_err *err)
{
	json_t *rp = json_object_get(hc_in, "RestartPolicy");
	const char *name = "no";
	int64_t max = 0;

	if (rp != NULL && !json_is_null(rp)) {
		if (!json_is_object(rp) || str_field(rp, "Name", &name, err) < 0 ||
		    int_field(rp, "MaximumRetryCount", &max, err) < 0)
			return err->msg[0]
			           ? -1
			           : bh_err_set(err, EINVAL, "RestartPolicy must be an object");
	}
	if (name[0] == '\0')
		name = "no";
	if (strcmp(name, "no") && strcmp(name, "on-failure") && strcmp(name, "always") &&
	    strcmp(name, "unless-stopped"))
		return bh_err_set(err, EINVAL, "invalid restart policy '%s'", name);
	if (max < 0)
		return bh_err_set(err, EINVAL, "invalid value for maximum retry count: %lld",
		                  (long long)max);
	if (max > 0 && strcmp(name, "on-failure") != 0)
		return bh_err_set(err, EINVAL,
		                  "maximum retry count cannot be used with restart policy '%s'",
		                  name);
	if (auto_remove && strcmp(name, "no") != 0)
		return bh_err_set(err, EINVAL,
		                  "can't create 'AutoRemove' container with restart policy");
	json_object_set_new(
	    hc, "RestartPolicy",
	    json_pack("{s:s, s:I}", "Name", name, "MaximumRetryCount", (json_int_t)max));
	return 0;
}

static int resources(json_t *in, json_t *hc, long ncpu, struct bh_err *err)
{
	static const char *const keys[] = {"Memory", "MemorySwap", "NanoCpus", "CpuShares",
	                                   "PidsLimit"};
	int64_t v[5];

	for (size_t i = 0; i < 5; i++) {
		if (int_field(in, keys[i], &v[i], err) < 0)
			return -1;
		json_object_set_new(hc, keys[i], json_integer(v[i]));
	}
	if (v[0] != 0 && v[0] < CTR_MIN_MEMORY)
		return bh_err_set(err, EINVAL, "Minimum memory limit allowed is 6MB");
	if (v[0] < 0)
		return bh_err_set(err, EINVAL, "invalid Memory %lld", (long long)v[0]);
	if (v[2] < 0 || v[2] > (int64_t)ncpu * 1000000000LL)
		return bh_err_set(err, EINVAL,
		                  "range of CPUs is from 0.01 to %ld.00, as there are "
		                  "only %ld CPUs available",
		                  ncpu, ncpu);
	if (v[3] < 0)
		return bh_err_set(err, EINVAL, "invalid CpuShares %lld", (long long)v[3]);
	return 0;
}

static int network_mode(json_t *in, json_t *hc, struct bh_err *err)
{
	const char *mode;

	if (str_field(in, "NetworkMode", &mode, err) < 0)
		return -1;
	if (mode[0] == '\0' || strcmp(mode, "default") == 0)
		mode = "none";
	if (strcmp(mode, "none") != 0 && strcmp(mode, "host") != 0)
		return bh_err_set(err, EINVAL,
		                  "network %s not found (berth supports none and host)", mode);
	json_object_set_new(hc, "NetworkMode", json_string(mode));
	return 0;
}

static bool is_set(json_t *v)
{
	return (json_is_array(v) && json_array_size(v) > 0) ||
	       (json_is_object(v) && json_object_size(v) > 0) || json_is_true(v) ||
	       (json_is_string(v) && json_string_length(v) > 0);
}

/* Asked for but not implemented yet: refused rather than silently dropped
 * (a bind mount or a published port that is not there is a surprise). */
static int unsupported(json_t *in, struct bh_err *err)
{
	static const char *const keys[] = {
	    "Binds",       "Mounts", "PortBindings", "Privileged", "CapAdd",     "Devices", "Tmpfs",
	    "VolumesFrom", "Links",  "PidMode",      "IpcMode",    "UsernsMode", "Runtime", "Init"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (is_set(json_object_get(in, keys[i])))
			return bh_err_set(err, EINVAL,
			                  "HostConfig.%s is not supported by berth yet", keys[i]);
	return 0;
}

static int parse_host_config(json_t *body, long ncpu, json_t **out, struct bh_err *err)
{
	json_t *in = json_object_get(body, "HostConfig");
	json_t *hc = json_object();
	bool ro, ar;

	if (in != NULL && !json_is_null(in) && !json_is_object(in)) {
		json_decref(hc);
		return bh_err_set(err, EINVAL, "HostConfig must be an object");
	}
	if (unsupported(in, err) < 0 || bool_field(in, "ReadonlyRootfs", &ro, err) < 0 ||
	    bool_field(in, "AutoRemove", &ar, err) < 0 || resources(in, hc, ncpu, err) < 0 ||
	    network_mode(in, hc, err) < 0 || restart_policy(in, hc, ar, err) < 0) {
		json_decref(hc);
		return -1;
	}
	json_object_set_new(hc, "ReadonlyRootfs", json_boolean(ro));
	json_object_set_new(hc, "AutoRemove", json_boolean(ar));
	json_object_set_new(hc, "LogConfig",
	                    json_pack("{s:s, s:{s:s, s:s}}", "Type", "json-file", "Config",
	                              "max-size", "20m", "max-file", "3"));
	json_object_set_new(hc, "Binds", json_array());
	json_object_set_new(hc, "PortBindings", json_object());
	*out = hc;
	return 0;
}

int ctr_parse_create(json_t *body, long ncpu, json_t **config, json_t **host_config,
                     struct bh_err *err)
{
	*config = *host_config = NULL;
	if (parse_config(body, config, err) < 0)
		return -1;
	if (parse_host_config(body, ncpu, host_config, err) < 0) {
		json_decref(steal_pointer(config));
		return -1;
	}
	return 0;
}

/* ---- image merge ------------------------------------------------------------- */

static bool env_has(json_t *env, const char *kv)
{
	size_t klen = strcspn(kv, "="), i;
	json_t *item;

	json_array_foreach(env, i, item)
	{
		const char *s = json_string_value(item);
		if (s && strncmp(s, kv, klen) == 0 && (s[klen] == '=' || s[klen] == '\0'))
			return true;
	}
	return false;
}

static void merge_env(json_t *cfg, json_t *img)
{
	json_t *env = json_object_get(cfg, "Env"), *ienv = json_object_get(img, "Env"), *item;
	json_t *out = json_array();
	size_t i;

	/* Image variables first (Docker's order), the request's override. */
	json_array_foreach(ienv, i, item)
	{
		if (json_is_string(item) && !env_has(env, json_string_value(item)))
			json_array_append(out, item);
	}
	json_array_extend(out, env);
	json_object_set_new(cfg, "Env", out);
}

static void merge_string(json_t *cfg, json_t *img, const char *key)
{
	json_t *v = json_object_get(img, key);

	if (json_string_length(json_object_get(cfg, key)) == 0 && json_is_string(v))
		json_object_set(cfg, key, v);
}

static bool nonempty_array(json_t *v)
{
	return json_is_array(v) && json_array_size(v) > 0;
}

int ctr_merge_image(json_t *cfg, json_t *img, struct bh_err *err)
{
	json_t *ep = json_object_get(cfg, "Entrypoint"), *labels, *v;
	const char *k;

	if (!json_is_object(img))
		img = NULL;
	merge_env(cfg, img);
	merge_string(cfg, img, "WorkingDir");
	merge_string(cfg, img, "User");
	/* A given Entrypoint resets the image's Cmd; a given Cmd replaces it. */
	if (ep == NULL || json_is_null(ep)) {
		if (json_is_array(json_object_get(img, "Entrypoint")))
			json_object_set(cfg, "Entrypoint", json_object_get(img, "Entrypoint"));
		if (!json_is_array(json_object_get(cfg, "Cmd")) &&
		    json_is_array(json_object_get(img, "Cmd")))
			json_object_set(cfg, "Cmd", json_object_get(img, "Cmd"));
	}
	labels = json_object_get(cfg, "Labels");
	json_object_foreach(json_object_get(img, "Labels"), k, v)
	{
		if (json_object_get(labels, k) == NULL && json_is_string(v))
			json_object_set(labels, k, v);
	}
	if (!nonempty_array(json_object_get(cfg, "Entrypoint")) &&
	    !nonempty_array(json_object_get(cfg, "Cmd")))
		return bh_err_set(err, EINVAL, "no command specified");
	if (!json_is_array(json_object_get(cfg, "Cmd")))
		json_object_set_new(cfg, "Cmd", json_null());
	if (!json_is_array(json_object_get(cfg, "Entrypoint")))
		json_object_set_new(cfg, "Entrypoint", json_null());
	return 0;
}

json_t *ctr_argv(json_t *cfg)
{
	json_t *all = json_array(), *ep = json_object_get(cfg, "Entrypoint");

	if (json_is_array(ep))
		json_array_extend(all, ep);
	if (json_is_array(json_object_get(cfg, "Cmd")))
		json_array_extend(all, json_object_get(cfg, "Cmd"));
	return all;
}

/* ---- status strings ------------------------------------------------------------ */

void ctr_human_duration(int64_t s, char *out, size_t size)
{
	int64_t m = s / 60, h = m / 60;

	if (s < 1)
		snprintf(out, size, "Less than a second");
	else if (s == 1)
		snprintf(out, size, "1 second");
	else if (s < 60)
		snprintf(out, size, "%lld seconds", (long long)s);
	else if (m == 1)
		snprintf(out, size, "About a minute");
	else if (m < 60)
		snprintf(out, size, "%lld minutes", (long long)m);
	else if (h == 1)
		snprintf(out, size, "About an hour");
	else if (h < 48)
		snprintf(out, size, "%lld hours", (long long)h);
	else if (h < 24 * 7 * 2)
		snprintf(out, size, "%lld days", (long long)(h / 24));
	else if (h < 24 * 30 * 2)
		snprintf(out, size, "%lld weeks", (long long)(h / 24 / 7));
	else if (h < 24 * 365 * 2)
		snprintf(out, size, "%lld months", (long long)(h / 24 / 30));
	else
		snprintf(out, size, "%lld years", (long long)(h / 24 / 365));
}

static int64_t secs_since(const char *rfc3339, time_t now)
{
	int64_t ns;

	if (rfc3339[0] == '\0' || rt_log_parse_time(rfc3339, &ns) < 0)
		return 0;
	return (int64_t)now - ns / 1000000000LL;
}

const char *ctr_state_name(enum ctr_status s)
{
	switch (s) {
	case CTR_CREATED:
		return "created";
	case CTR_RUNNING:
		return "running";
	case CTR_RESTARTING:
		return "restarting";
	case CTR_EXITED:
		return "exited";
	case CTR_REMOVING:
		return "removing";
	case CTR_DEAD:
		return "dead";
	}
	return "dead";
}

void ctr_status_text(const struct ctr *c, time_t now, char *out, size_t size)
{
	char d[64];

	switch (c->status) {
	case CTR_RUNNING:
		ctr_human_duration(secs_since(c->started_at, now), d, sizeof(d));
		snprintf(out, size, "Up %s", d);
		return;
	case CTR_RESTARTING:
		ctr_human_duration(secs_since(c->finished_at, now), d, sizeof(d));
		snprintf(out, size, "Restarting (%d) %s ago", c->exit_code, d);
		return;
	case CTR_EXITED:
		ctr_human_duration(secs_since(c->finished_at, now), d, sizeof(d));
		snprintf(out, size, "Exited (%d) %s ago", c->exit_code, d);
		return;
	case CTR_REMOVING:
		snprintf(out, size, "Removal In Progress");
		return;
	case CTR_DEAD:
		snprintf(out, size, "Dead");
		return;
	case CTR_CREATED:
		break;
	}
	snprintf(out, size, "Created");
}

/* ---- the record file ---------------------------------------------------------- */

json_t *ctr_record_json(const struct ctr *c)
{
	json_t *st = json_pack("{s:s, s:i, s:i, s:i, s:b, s:s, s:s, s:s, s:b, s:b}", "Status",
	                       ctr_state_name(c->status), "Pid", (int)c->pid, "MonitorPid",
	                       (int)c->monitor_pid, "ExitCode", c->exit_code, "OOMKilled",
	                       c->oom_killed, "Error", c->error, "StartedAt", c->started_at,
	                       "FinishedAt", c->finished_at, "ManuallyStopped", c->manually_stopped,
	                       "HasBeenStarted", c->has_been_started);

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:o, s:i}", "ID", c->id, "Name",
	                 c->name, "Created", c->created, "ImageRef", c->image_ref, "Image",
	                 c->image_id, "Config", c->config, "HostConfig", c->host_config, "State",
	                 st, "RestartCount", c->restart_count);
}

static enum ctr_status status_parse(const char *s)
{
	for (int i = CTR_CREATED; i <= CTR_DEAD; i++)
		if (strcmp(s, ctr_state_name((enum ctr_status)i)) == 0)
			return (enum ctr_status)i;
	return CTR_DEAD;
}

static int copy_str(json_t *o, const char *key, char *dst, size_t size)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL)
		return -1;
	return bh_strlcpy(dst, s, size);
}

static int parse_state(json_t *st, struct ctr *c)
{
	const char *status = json_string_value(json_object_get(st, "Status"));

	if (status == NULL)
		return -1;
	c->status = status_parse(status);
	c->pid = (pid_t)json_integer_value(json_object_get(st, "Pid"));
	c->monitor_pid = (pid_t)json_integer_value(json_object_get(st, "MonitorPid"));
	c->exit_code = (int)json_integer_value(json_object_get(st, "ExitCode"));
	c->oom_killed = json_is_true(json_object_get(st, "OOMKilled"));
	c->manually_stopped = json_is_true(json_object_get(st, "ManuallyStopped"));
	c->has_been_started = json_is_true(json_object_get(st, "HasBeenStarted"));
	if (copy_str(st, "Error", c->error, sizeof(c->error)) < 0 ||
	    copy_str(st, "StartedAt", c->started_at, sizeof(c->started_at)) < 0 ||
	    copy_str(st, "FinishedAt", c->finished_at, sizeof(c->finished_at)) < 0)
		return -1;
	return 0;
}

int ctr_record_parse(json_t *j, struct ctr *c, struct bh_err *err)
{
	json_t *cfg = json_object_get(j, "Config"), *hc = json_object_get(j, "HostConfig");

	if (copy_str(j, "ID", c->id, sizeof(c->id)) < 0 || strlen(c->id) != 64 ||
	    copy_str(j, "Name", c->name, sizeof(c->name)) < 0 ||
	    copy_str(j, "Created", c->created, sizeof(c->created)) < 0 ||
	    copy_str(j, "ImageRef", c->image_ref, sizeof(c->image_ref)) < 0 ||
	    copy_str(j, "Image", c->image_id, sizeof(c->image_id)) < 0 || !json_is_object(cfg) ||
	    !json_is_object(hc) || parse_state(json_object_get(j, "State"), c) < 0)
		return bh_err_set(err, EINVAL, "container record: missing or bad fields");
	c->restart_count = (int)json_integer_value(json_object_get(j, "RestartCount"));
	json_decref(c->config);
	json_decref(c->host_config);
	c->config = json_incref(cfg);
	c->host_config = json_incref(hc);
	return 0;
}

/* ---- lookup, ids, lifetime ------------------------------------------------------- */

int ctr_lookup(struct ctr *list, const char *ref, struct ctr **out, struct bh_err *err)
{
	const char *name = ref[0] == '/' ? ref + 1 : ref;
	size_t n = strlen(ref);
	struct ctr *hit = NULL;
	int hits = 0;

	*out = NULL;
	for (struct ctr *c = list; c && n > 0; c = c->next) {
		if (strcmp(c->id, ref) == 0 || strcmp(c->name, name) == 0) {
			*out = c;
			return 0;
		}
	}
	for (struct ctr *c = list; c && n > 0 && n < 64; c = c->next)
		if (strncmp(c->id, ref, n) == 0) {
			hit = c;
			hits++;
		}
	if (hits == 1) {
		*out = hit;
		return 0;
	}
	if (hits > 1)
		return bh_err_set(err, EINVAL, "multiple containers match prefix %s", ref);
	return bh_err_set(err, ENOENT, "No such container: %s", ref);
}

int ctr_new_id(char out[65], struct bh_err *err)
{
	uint8_t raw[32];
	cleanup_close int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw))
		return bh_err_sys(err, errno, "read /dev/urandom");
	bh_hex(raw, sizeof(raw), out);
	return 0;
}

struct ctr *ctr_alloc(void)
{
	struct ctr *c = bh_calloc(1, sizeof(*c));

	c->pidfd = -1;
	c->refs = 1;
	bh_strlcpy(c->started_at, CTR_ZERO_TIME, sizeof(c->started_at));
	bh_strlcpy(c->finished_at, CTR_ZERO_TIME, sizeof(c->finished_at));
	return c;
}

void ctr_free(struct ctr *c)
{
	if (c == NULL)
		return;
	json_decref(c->config);
	json_decref(c->host_config);
	free(c);
}

int ctr_signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"KILL", SIGKILL}, {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
	            {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP},
	            {"CONT", SIGCONT}, {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}};
	long n;

	if (s == NULL || s[0] == '\0')
		return SIGKILL;
	if (bh_parse_long(s, 1, 64, &n) == 0)
		return (int)n;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(s, sigs[i].name) == 0)
			return sigs[i].sig;
	return -1;
}
