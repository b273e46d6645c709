/* Docker's JSON views of a container: inspect (GET /containers/{id}/json),
 * the list entry (GET /containers/json) and the list filters.  Called
 * under the manager's lock: no I/O here. */
#include <errno.h>
#include <string.h>

#include "server/containers-internal.h"

static json_t *state_json(const struct ctr *c)
{
	return json_pack("{s:s, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:s, s:s}", "Status",
	                 ctr_state_name(c->status), "Running", c->status == CTR_RUNNING, "Paused",
	                 0, "Restarting", c->status == CTR_RESTARTING, "OOMKilled", c->oom_killed,
	                 "Dead", c->status == CTR_DEAD, "Pid", (int)c->pid, "ExitCode",
	                 c->exit_code, "Error", c->error, "StartedAt", c->started_at, "FinishedAt",
	                 c->finished_at);
}

static json_t *graph_driver(const struct ctr_mgr *m, const struct ctr *c)
{
	cleanup_free char *upper = bh_asprintf("%s/%s/upper", m->ctr_dir, c->id);
	cleanup_free char *work = bh_asprintf("%s/%s/work", m->ctr_dir, c->id);
	cleanup_free char *merged = bh_asprintf("%s/%s/merged", m->ctr_dir, c->id);

	return json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "Name", "overlay2", "Data", "LowerDir",
	                 "", "UpperDir", upper, "WorkDir", work, "MergedDir", merged);
}

static json_t *config_view(const struct ctr *c)
{
	json_t *cfg = json_deep_copy(c->config);
	const char *hn = json_string_value(json_object_get(cfg, "Hostname"));

	if (hn == NULL || hn[0] == '\0')
		json_object_set_new(cfg, "Hostname", json_stringn(c->id, 12));
	return cfg;
}

json_t *ctr_inspect_json(const struct ctr_mgr *m, const struct ctr *c)
{
	json_t *argv = ctr_argv(c->config);
	json_t *path = json_incref(json_array_get(argv, 0));
	cleanup_free char *log = bh_asprintf("%s/%s/%s-json.log", m->ctr_dir, c->id, c->id);
	cleanup_free char *name = bh_asprintf("/%s", c->name);
	json_t *v;

	json_array_remove(argv, 0);
	v = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}",
	              "Id", c->id, "Created", c->created, "Path", path ? path : json_string(""),
	              "Args", argv, "State", state_json(c), "Image", c->image_id, "ResolvConfPath",
	              "", "HostnamePath", "", "HostsPath", "", "LogPath", log, "Name", name,
	              "RestartCount", c->restart_count, "Driver", "overlay2", "Platform", "linux");
	json_object_set_new(v, "MountLabel", json_string(""));
	json_object_set_new(v, "ProcessLabel", json_string(""));
	json_object_set_new(v, "AppArmorProfile", json_string(""));
	json_object_set_new(v, "HostConfig", json_deep_copy(c->host_config));
	json_object_set_new(v, "GraphDriver", graph_driver(m, c));
	json_object_set_new(v, "Mounts", json_array());
	json_object_set_new(v, "Config", config_view(c));
	json_object_set_new(v, "NetworkSettings", json_pack("{s:{}, s:{}}", "Networks", "Ports"));
	return v;
}

static json_t *command_string(const struct ctr *c)
{
	json_t *argv = ctr_argv(c->config), *item;
	struct bh_buf b;
	size_t i;
	json_t *s;

	bh_buf_init(&b, 64 * 1024);
	json_array_foreach(argv, i, item)
	{
		bh_buf_printf(&b, "%s%s", i ? " " : "", json_string_value(item));
	}
	s = json_string(b.data ? b.data : "");
	bh_buf_free(&b);
	json_decref(argv);
	return s ? s : json_string("");
}

json_t *ctr_list_json(const struct ctr *c, time_t now)
{
	char status[128];
	int64_t created_ns = 0;
	const char *mode = json_string_value(json_object_get(c->host_config, "NetworkMode"));

	rt_log_parse_time(c->created, &created_ns);
	ctr_status_text(c, now, status, sizeof(status));
	return json_pack("{s:s, s:[s+], s:s, s:s, s:o, s:I, s:s, s:s, s:[], s:O, s:{s:s}, "
	                 "s:{s:{}}, s:[]}",
	                 "Id", c->id, "Names", "/", c->name, "Image", c->image_ref, "ImageID",
	                 c->image_id, "Command", command_string(c), "Created",
	                 (json_int_t)(created_ns / 1000000000LL), "State",
	                 ctr_state_name(c->status), "Status", status, "Ports", "Labels",
	                 json_object_get(c->config, "Labels"), "HostConfig", "NetworkMode",
	                 mode ? mode : "none", "NetworkSettings", "Networks", "Mounts");
}

/* ---- filters -------------------------------------------------------------------- */

int ctr_filters_parse(const char *text, json_t **out, struct bh_err *err)
{
	json_error_t jerr;
	json_t *f, *v, *item;
	const char *k;
	size_t i;

	*out = NULL;
	if (text == NULL || text[0] == '\0')
		return 0;
	f = json_loads(text, 0, &jerr);
	if (!json_is_object(f)) {
		json_decref(f);
		return bh_err_set(err, EINVAL, "invalid filters: %s", text);
	}
	json_object_foreach(f, k, v)
	{
		if (strcmp(k, "name") && strcmp(k, "status") && strcmp(k, "id") &&
		    strcmp(k, "label"))
			goto bad;
		/* Old clients send {"name":{"x":true}}: take the keys. */
		if (json_is_object(v)) {
			json_t *arr = json_array();
			const char *kk;
			json_t *vv;
			json_object_foreach(v, kk, vv) json_array_append_new(arr, json_string(kk));
			json_object_set_new(f, k, arr);
			v = arr;
		}
		if (!json_is_array(v))
			goto bad;
		json_array_foreach(v, i, item) if (!json_is_string(item)) goto bad;
	}
	*out = f;
	return 0;
bad:
	bh_err_set(err, EINVAL, "invalid filter '%s'", k); /* k lives in f */
	json_decref(f);
	return -1;
}

static bool any_match(json_t *vals, bool (*fn)(const struct ctr *, const char *),
                      const struct ctr *c)
{
	json_t *item;
	size_t i;

	if (vals == NULL || json_array_size(vals) == 0)
		return true;
	json_array_foreach(vals, i, item)
	{
		if (fn(c, json_string_value(item)))
			return true;
	}
	return false;
}

static bool match_name(const struct ctr *c, const char *v)
{
	/* Docker matches names as a regexp; a substring is its common use. */
	return strstr(c->name, v[0] == '/' ? v + 1 : v) != NULL;
}

static bool match_status(const struct ctr *c, const char *v)
{
	return strcmp(ctr_state_name(c->status), v) == 0;
}

static bool match_id(const struct ctr *c, const char *v)
{
	return bh_str_has_prefix(c->id, v);
}

static bool match_label(const struct ctr *c, const char *v)
{
	json_t *labels = json_object_get(c->config, "Labels");
	const char *eq = strchr(v, '=');
	cleanup_free char *key = eq ? bh_strndup(v, (size_t)(eq - v)) : bh_strdup(v);
	const char *have = json_string_value(json_object_get(labels, key));

	return have != NULL && (eq == NULL || strcmp(have, eq + 1) == 0);
}

static bool all_labels(json_t *vals, const struct ctr *c)
{
	json_t *item;
	size_t i;

	json_array_foreach(vals, i, item)
	{
		if (!match_label(c, json_string_value(item)))
			return false;
	}
	return true;
}

bool ctr_filters_match(json_t *f, const struct ctr *c)
{
	if (f == NULL)
		return true;
	return any_match(json_object_get(f, "name"), match_name, c) &&
	       any_match(json_object_get(f, "status"), match_status, c) &&
	       any_match(json_object_get(f, "id"), match_id, c) &&
	       all_labels(json_object_get(f, "label"), c);
}
