/* OCI config.json: the subset Docker uses, parsed with jansson into a
 * struct rt_spec whose strings all point into the json it owns. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "runtime/rt-container-internal.h"

static const char **str_array(json_t *arr, const char *what, struct bh_err *err, int *rc)
{
	const char **out;
	size_t i;
	json_t *v;

	if (arr == NULL || json_is_null(arr))
		return bh_calloc(1, sizeof(char *));
	if (!json_is_array(arr)) {
		*rc = bh_err_set(err, EINVAL, "%s: not an array", what);
		return NULL;
	}
	out = bh_calloc(json_array_size(arr) + 1, sizeof(char *));
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v)) {
			free(out);
			*rc = bh_err_set(err, EINVAL, "%s[%zu]: not a string", what, i);
			return NULL;
		}
		out[i] = json_string_value(v);
	}
	return out;
}

static const char *get_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int64_t get_int(json_t *obj, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static int parse_user(json_t *user, struct rt_spec *s, struct bh_err *err)
{
	json_t *add = json_object_get(user, "additionalGids");
	size_t i;
	json_t *v;

	s->uid = (uid_t)get_int(user, "uid", 0);
	s->gid = (gid_t)get_int(user, "gid", 0);
	if (!json_is_array(add))
		return 0;
	s->n_gids = json_array_size(add);
	s->gids = bh_calloc(s->n_gids + 1, sizeof(gid_t));
	json_array_foreach(add, i, v)
	{
		if (!json_is_integer(v))
			return bh_err_set(err, EINVAL, "process.user.additionalGids: not a number");
		s->gids[i] = (gid_t)json_integer_value(v);
	}
	return 0;
}

static int parse_caps(json_t *caps, struct rt_spec *s, struct bh_err *err)
{
	static const char *const sets[RT_CAP_NSETS] = {"bounding", "effective", "inheritable",
	                                               "permitted", "ambient"};

	if (!json_is_object(caps))
		return 0;
	s->has_caps = true;
	for (int k = 0; k < RT_CAP_NSETS; k++) {
		json_t *arr = json_object_get(caps, sets[k]), *v;
		size_t i;

		json_array_foreach(arr, i, v)
		{
			int c = rt_cap_from_name(json_string_value(v));
			if (c < 0)
				return bh_err_set(err, EINVAL,
				                  "process.capabilities.%s: unknown %s", sets[k],
				                  json_string_value(v) ?: "(not a string)");
			s->caps[k] |= 1ULL << c;
		}
	}
	return 0;
}

static int rlimit_from_name(const char *name)
{
	static const struct {
		const char *name;
		int res;
	} map[] = {
	    {"RLIMIT_AS", RLIMIT_AS},
	    {"RLIMIT_CORE", RLIMIT_CORE},
	    {"RLIMIT_CPU", RLIMIT_CPU},
	    {"RLIMIT_DATA", RLIMIT_DATA},
	    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
	    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
	    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	    {"RLIMIT_NICE", RLIMIT_NICE},
	    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
	    {"RLIMIT_NPROC", RLIMIT_NPROC},
	    {"RLIMIT_RSS", RLIMIT_RSS},
	    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
	    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	    {"RLIMIT_STACK", RLIMIT_STACK},
	};

	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(name, map[i].name) == 0)
			return map[i].res;
	return -1;
}

static int parse_rlimits(json_t *arr, struct rt_spec *s, struct bh_err *err)
{
	size_t i;
	json_t *v;

	s->rlimits = bh_calloc(json_array_size(arr) + 1, sizeof(*s->rlimits));
	json_array_foreach(arr, i, v)
	{
		int r = rlimit_from_name(get_str(v, "type"));
		if (r < 0)
			return bh_err_set(err, EINVAL, "process.rlimits[%zu]: unknown type", i);
		s->rlimits[i].resource = r;
		s->rlimits[i].soft = (uint64_t)get_int(v, "soft", 0);
		s->rlimits[i].hard = (uint64_t)get_int(v, "hard", 0);
		s->n_rlimits++;
	}
	return 0;
}

static int parse_process(json_t *p, struct rt_spec *s, struct bh_err *err)
{
	int rc = 0;

	if (!json_is_object(p))
		return bh_err_set(err, EINVAL, "process: missing");
	s->args = str_array(json_object_get(p, "args"), "process.args", err, &rc);
	if (rc < 0)
		return rc;
	if (s->args[0] == NULL)
		return bh_err_set(err, EINVAL, "process.args: empty");
	s->env = str_array(json_object_get(p, "env"), "process.env", err, &rc);
	if (rc < 0)
		return rc;
	s->cwd = get_str(p, "cwd") ?: "/";
	if (s->cwd[0] != '/')
		return bh_err_set(err, EINVAL, "process.cwd: %s is not absolute", s->cwd);
	s->terminal = json_is_true(json_object_get(p, "terminal"));
	s->has_oom_score_adj = json_is_integer(json_object_get(p, "oomScoreAdj"));
	s->oom_score_adj = (int)get_int(p, "oomScoreAdj", 0);
	if (s->oom_score_adj < -1000 || s->oom_score_adj > 1000)
		return bh_err_set(err, EINVAL, "process.oomScoreAdj: out of range");
	s->no_new_privs = json_is_true(json_object_get(p, "noNewPrivileges"));
	if (parse_user(json_object_get(p, "user"), s, err) < 0)
		return -1;
	if (parse_caps(json_object_get(p, "capabilities"), s, err) < 0)
		return -1;
	return parse_rlimits(json_object_get(p, "rlimits"), s, err);
}

struct mount_opt {
	const char *name;
	unsigned long set, clear, prop;
};

static const struct mount_opt mount_opts[] = {
    {"ro", MS_RDONLY, 0, 0},
    {"rw", 0, MS_RDONLY, 0},
    {"nosuid", MS_NOSUID, 0, 0},
    {"suid", 0, MS_NOSUID, 0},
    {"nodev", MS_NODEV, 0, 0},
    {"dev", 0, MS_NODEV, 0},
    {"noexec", MS_NOEXEC, 0, 0},
    {"exec", 0, MS_NOEXEC, 0},
    {"sync", MS_SYNCHRONOUS, 0, 0},
    {"async", 0, MS_SYNCHRONOUS, 0},
    {"noatime", MS_NOATIME, 0, 0},
    {"atime", 0, MS_NOATIME, 0},
    {"relatime", MS_RELATIME, 0, 0},
    {"norelatime", 0, MS_RELATIME, 0},
    {"strictatime", MS_STRICTATIME, 0, 0},
    {"nodiratime", MS_NODIRATIME, 0, 0},
    {"bind", MS_BIND, 0, 0},
    {"rbind", MS_BIND | MS_REC, 0, 0},
    {"private", 0, 0, MS_PRIVATE},
    {"rprivate", 0, 0, MS_PRIVATE | MS_REC},
    {"slave", 0, 0, MS_SLAVE},
    {"rslave", 0, 0, MS_SLAVE | MS_REC},
    {"shared", 0, 0, MS_SHARED},
    {"rshared", 0, 0, MS_SHARED | MS_REC},
    {"unbindable", 0, 0, MS_UNBINDABLE},
    {"runbindable", 0, 0, MS_UNBINDABLE | MS_REC},
};

static void parse_mount_option(struct rt_mount *m, const char *o, struct bh_buf *data)
{
	for (size_t i = 0; i < sizeof(mount_opts) / sizeof(mount_opts[0]); i++) {
		if (strcmp(o, mount_opts[i].name) != 0)
			continue;
		m->flags = (m->flags | mount_opts[i].set) & ~mount_opts[i].clear;
		m->propagation |= mount_opts[i].prop;
		return;
	}
	if (data->len > 0)
		bh_buf_append(data, ",", 1);
	bh_buf_append(data, o, strlen(o));
}

static int parse_mount(json_t *j, struct rt_mount *m, size_t idx, struct bh_err *err)
{
	json_t *opts = json_object_get(j, "options"), *v;
	struct bh_buf data;
	size_t i;

	m->dest = (char *)get_str(j, "destination");
	if (m->dest == NULL || m->dest[0] != '/')
		return bh_err_set(err, EINVAL, "mounts[%zu]: destination missing or relative", idx);
	m->type = (char *)(get_str(j, "type") ?: "bind");
	m->source = (char *)(get_str(j, "source") ?: "none");
	bh_buf_init(&data, 4096);
	json_array_foreach(opts, i, v) if (json_is_string(v))
	    parse_mount_option(m, json_string_value(v), &data);
	m->data = data.data ? data.data : bh_strdup("");
	m->bind = (m->flags & MS_BIND) || strcmp(m->type, "bind") == 0;
	if (m->bind)
		m->flags |= MS_BIND;
	m->readonly = m->flags & MS_RDONLY;
	return 0;
}

static int parse_mounts(json_t *arr, struct rt_spec *s, struct bh_err *err)
{
	size_t i;
	json_t *v;

	s->mounts = bh_calloc(json_array_size(arr) + 1, sizeof(*s->mounts));
	json_array_foreach(arr, i, v)
	{
		if (parse_mount(v, &s->mounts[i], i, err) < 0)
			return -1;
		s->n_mounts++;
	}
	return 0;
}

static int parse_namespaces(json_t *arr, struct rt_spec *s, struct bh_err *err)
{
	size_t i, k;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		const char *type = get_str(v, "type"), *path = get_str(v, "path");

		for (k = 0; k < 8; k++)
			if (type && strcmp(type, rt_ns_types[k].name) == 0)
				break;
		if (k == 8)
			return bh_err_set(err, EINVAL, "linux.namespaces[%zu]: unsupported type %s",
			                  i, type ?: "(none)");
		if (rt_ns_types[k].flag == 0 || strcmp(type, "user") == 0)
			return bh_err_set(err, ENOTSUP, "linux.namespaces: %s is not supported",
			                  type);
		if (path && strcmp(type, "pid") == 0)
			return bh_err_set(err, ENOTSUP,
			                  "linux.namespaces: joining a pid namespace");
		if (path)
			s->ns_path[k] = path;
		else
			s->clone_flags |= rt_ns_types[k].flag;
	}
	return 0;
}

static int parse_access(const char *a, unsigned *out)
{
	*out = 0;
	for (; a && *a; a++) {
		if (*a == 'r')
			*out |= 2;
		else if (*a == 'w')
			*out |= 4;
		else if (*a == 'm')
			*out |= 1;
		else
			return -1;
	}
	return 0;
}

static int parse_devices(json_t *arr, struct rt_spec *s, struct bh_err *err)
{
	size_t i;
	json_t *v;

	s->dev_rules = bh_calloc(json_array_size(arr) + 1, sizeof(*s->dev_rules));
	json_array_foreach(arr, i, v)
	{
		struct rt_dev_rule *r = &s->dev_rules[i];
		const char *type = get_str(v, "type") ?: "a";

		r->allow = json_is_true(json_object_get(v, "allow"));
		r->type = type[0];
		r->major = get_int(v, "major", -1);
		r->minor = get_int(v, "minor", -1);
		if ((r->type != 'a' && r->type != 'c' && r->type != 'b') || type[1] != '\0' ||
		    parse_access(get_str(v, "access") ?: "rwm", &r->access) < 0)
			return bh_err_set(err, EINVAL, "linux.resources.devices[%zu]: bad rule", i);
		s->n_dev_rules++;
	}
	return 0;
}

static void parse_resources(json_t *r, struct rt_spec *s)
{
	json_t *mem = json_object_get(r, "memory"), *cpu = json_object_get(r, "cpu");

	s->mem_limit = get_int(mem, "limit", -1);
	s->mem_swap = get_int(mem, "swap", -1);
	s->cpu_shares = get_int(cpu, "shares", -1);
	s->cpu_quota = get_int(cpu, "quota", -1);
	s->cpu_period = get_int(cpu, "period", -1);
	s->pids_limit = get_int(json_object_get(r, "pids"), "limit", -1);
}

static int parse_sysctl(json_t *obj, struct rt_spec *s, struct bh_err *err)
{
	size_t n = json_object_size(obj), i = 0;
	const char *key;
	json_t *v;

	s->sysctl_keys = bh_calloc(n + 1, sizeof(char *));
	s->sysctl_vals = bh_calloc(n + 1, sizeof(char *));
	json_object_foreach(obj, key, v)
	{
		if (!json_is_string(v) || strstr(key, "..") || strchr(key, '/'))
			return bh_err_set(err, EINVAL, "linux.sysctl: bad entry %s", key);
		s->sysctl_keys[i] = key;
		s->sysctl_vals[i++] = json_string_value(v);
	}
	return 0;
}

static int parse_linux(json_t *l, struct rt_spec *s, struct bh_err *err)
{
	int rc = 0;

	if (parse_namespaces(json_object_get(l, "namespaces"), s, err) < 0)
		return -1;
	parse_resources(json_object_get(l, "resources"), s);
	if (parse_devices(json_object_get(json_object_get(l, "resources"), "devices"), s, err) < 0)
		return -1;
	s->seccomp = json_object_get(l, "seccomp");
	if (json_is_null(s->seccomp))
		s->seccomp = NULL;
	s->masked = str_array(json_object_get(l, "maskedPaths"), "linux.maskedPaths", err, &rc);
	if (rc < 0)
		return rc;
	s->readonly =
	    str_array(json_object_get(l, "readonlyPaths"), "linux.readonlyPaths", err, &rc);
	if (rc < 0)
		return rc;
	s->cgroups_path = get_str(l, "cgroupsPath");
	return parse_sysctl(json_object_get(l, "sysctl"), s, err);
}

static int parse_root(json_t *root, const char *bundle, struct rt_spec *s, struct bh_err *err)
{
	const char *path = get_str(root, "path");
	char buf[PATH_MAX];
	cleanup_free char *joined = NULL;

	if (path == NULL)
		return bh_err_set(err, EINVAL, "root.path: missing");
	joined = path[0] == '/' ? bh_strdup(path) : bh_path_join(bundle, path);
	if (realpath(joined, buf) == NULL)
		return bh_err_sys(err, errno, "root.path %s", joined);
	s->root = bh_strdup(buf);
	s->root_readonly = json_is_true(json_object_get(root, "readonly"));
	return 0;
}

int rt_spec_parse(json_t *json, const char *bundle, struct rt_spec *s, struct bh_err *err)
{
	memset(s, 0, sizeof(*s));
	s->json = json_incref(json);
	if (parse_root(json_object_get(json, "root"), bundle, s, err) < 0 ||
	    parse_process(json_object_get(json, "process"), s, err) < 0 ||
	    parse_mounts(json_object_get(json, "mounts"), s, err) < 0 ||
	    parse_linux(json_object_get(json, "linux"), s, err) < 0) {
		rt_spec_free(s);
		return -1;
	}
	s->hostname = get_str(json, "hostname");
	return 0;
}

int rt_spec_load(const char *bundle, struct rt_spec *s, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(bundle, "config.json");
	cleanup_free char *text = NULL;
	json_error_t jerr;
	json_t *json;
	size_t len;
	int rc;

	if (bh_read_file(path, RT_SPEC_MAX, &text, &len, err) < 0)
		return -1;
	json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (json == NULL)
		return bh_err_set(err, EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
	if (!json_is_object(json)) {
		json_decref(json);
		return bh_err_set(err, EINVAL, "%s: not an object", path);
	}
	rc = rt_spec_parse(json, bundle, s, err);
	json_decref(json);
	if (rc < 0)
		return bh_err_wrap(err, "%s", path);
	return 0;
}

void rt_spec_free(struct rt_spec *s)
{
	for (size_t i = 0; s->mounts && i < s->n_mounts; i++)
		free(s->mounts[i].data);
	free(s->mounts);
	free(s->args);
	free(s->env);
	free(s->gids);
	free(s->rlimits);
	free(s->dev_rules);
	free(s->masked);
	free(s->readonly);
	free(s->sysctl_keys);
	free(s->sysctl_vals);
	free(s->root);
	json_decref(s->json);
	memset(s, 0, sizeof(*s));
}
