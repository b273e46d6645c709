/* cgroups: v2 when /sys/fs/cgroup is cgroup2, otherwise every v1 hierarchy
 * found in /proc/self/mountinfo (a hybrid host's cgroup2 at
 * /sys/fs/cgroup/unified is then ignored: there it carries no controller we
 * set).  A container's cgroups are <hierarchy>/<cgroupsPath>, by default
 * <hierarchy>/berth/<id>. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "runtime/rt-container-internal.h"

static const char *cg_root = "/sys/fs/cgroup";

void rt_cgroup_use_root(const char *root)
{
	cg_root = root ? root : "/sys/fs/cgroup";
}

int rt_cgroup_version(struct bh_err *err)
{
	struct statfs sfs;

	if (statfs(cg_root, &sfs) < 0)
		return bh_err_sys(err, errno, "statfs %s", cg_root);
	return sfs.f_type == CGROUP2_SUPER_MAGIC ? 2 : 1;
}

static int cg_write(const char *dir, const char *file, const char *val, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(dir, file);
	FILE *f = fopen(path, "we");
	int rc;

	if (f == NULL)
		return bh_err_sys(err, errno, "cgroup: open %s", path);
	rc = fputs(val, f);
	if (fclose(f) != 0 || rc < 0)
		return bh_err_sys(err, errno, "cgroup: write %s to %s", val, path);
	return 0;
}

static int cg_write_int(const char *dir, const char *file, int64_t v, struct bh_err *err)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cg_write(dir, file, buf, err);
}

static int cg_read(const char *dir, const char *file, char **out, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(dir, file);

	return bh_read_file(path, RT_STATE_MAX, out, NULL, err);
}

/* Reads "key N" from a flat-keyed file such as memory.events. */
static long cg_read_key(const char *dir, const char *file, const char *key)
{
	cleanup_free char *text = NULL;
	struct bh_err e;
	size_t klen = strlen(key);

	if (cg_read(dir, file, &text, &e) < 0)
		return -1;
	for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
			return strtol(l + klen + 1, NULL, 10);
	return 0;
}

static int cg_relpath(const struct rt_spec *s, const char *id, char **out, struct bh_err *err)
{
	const char *p = s->cgroups_path;

	if (p == NULL || p[0] == '\0') {
		*out = bh_asprintf("berth/%s", id);
		return 0;
	}
	while (*p == '/')
		p++;
	if (*p == '\0' || strstr(p, "..") || strchr(p, ':'))
		return bh_err_set(err, EINVAL, "linux.cgroupsPath %s: unsupported",
		                  s->cgroups_path);
	*out = bh_strdup(p);
	return 0;
}

/* ---- v1 ---------------------------------------------------------------- */
static void add_v1_hierarchy(struct rt_cgroup *cg, const char *mnt, const char *opts,
                             const char *rel)
{
	char ctrl[128] = "";
	size_t used = 0;

	for (const char *o = opts; *o;) {
		size_t n = strcspn(o, ",");
		bool skip = n == 2 && (strncmp(o, "rw", 2) == 0 || strncmp(o, "ro", 2) == 0);

		if (!skip && used < sizeof(ctrl))
			used += (size_t)snprintf(ctrl + used, sizeof(ctrl) - used, "%s%.*s",
			                         used ? "," : "", (int)n, o);
		o += n + (o[n] ? 1 : 0);
	}
	if (cg->n == RT_MAX_CGROUPS || ctrl[0] == '\0' || used >= sizeof(ctrl))
		return;
	cg->dirs[cg->n] = bh_path_join(mnt, rel);
	cg->ctrl[cg->n++] = bh_strdup(ctrl);
}

/* Calls fn for each v1 cgroup mount: mount point and super options. */
int rt_cgroup_v1_mounts(void (*fn)(const char *mnt, const char *opts, void *arg), void *arg,
                        struct bh_err *err)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (f == NULL)
		return bh_err_sys(err, errno, "open /proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		char mnt[1024], fstype[64], opts[512];
		const char *sep = strstr(line, " - ");

		if (sep == NULL || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (strcmp(fstype, "cgroup") == 0)
			fn(mnt, opts, arg);
	}
	return 0;
}

struct v1_collect {
	struct rt_cgroup *cg;
	const char *rel;
};

static void v1_collect_fn(const char *mnt, const char *opts, void *arg)
{
	struct v1_collect *c = arg;

	add_v1_hierarchy(c->cg, mnt, opts, c->rel);
}

/* A new cpuset cgroup is empty: give each empty level its parent's cpus and
 * mems, from the top (the hierarchy's root is never empty). */
static int v1_cpuset_fill(const char *dir, struct bh_err *err)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	cleanup_free char *parent = bh_strdup(dir);

	*strrchr(parent, '/') = '\0';
	for (int i = 0; i < 2; i++) {
		cleanup_free char *mine = NULL, *theirs = NULL;
		if (cg_read(dir, files[i], &mine, err) < 0)
			return -1;
		if (mine[0] != '\n' && mine[0] != '\0')
			continue;
		if (cg_read(parent, files[i], &theirs, err) < 0)
			return -1;
		if ((theirs[0] == '\n' || theirs[0] == '\0') && v1_cpuset_fill(parent, err) < 0)
			return -1;
		free(theirs);
		theirs = NULL;
		if (cg_read(parent, files[i], &theirs, err) < 0 ||
		    cg_write(dir, files[i], theirs, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_limits(const struct rt_spec *s, const char *dir, const char *ctrl, struct bh_err *err)
{
	bool has_cpu = strstr(ctrl, "cpu") && (strcmp(ctrl, "cpu") == 0 || strstr(ctrl, "cpu,"));

	if (strcmp(ctrl, "cpuset") == 0)
		return v1_cpuset_fill(dir, err);
	if (strcmp(ctrl, "devices") == 0)
		return rt_devices_v1_apply(s, dir, err);
	if (strcmp(ctrl, "memory") == 0) {
		if (s->mem_limit > 0 &&
		    cg_write_int(dir, "memory.limit_in_bytes", s->mem_limit, err) < 0)
			return -1;
		if (s->mem_swap > 0 &&
		    cg_write_int(dir, "memory.memsw.limit_in_bytes", s->mem_swap, err) < 0)
			return -1;
	}
	if (has_cpu) {
		if (s->cpu_shares > 0 && cg_write_int(dir, "cpu.shares", s->cpu_shares, err) < 0)
			return -1;
		if (s->cpu_period > 0 &&
		    cg_write_int(dir, "cpu.cfs_period_us", s->cpu_period, err) < 0)
			return -1;
		if (s->cpu_quota > 0 &&
		    cg_write_int(dir, "cpu.cfs_quota_us", s->cpu_quota, err) < 0)
			return -1;
	}
	if (strcmp(ctrl, "pids") == 0 && s->pids_limit != -1)
		return s->pids_limit > 0 ? cg_write_int(dir, "pids.max", s->pids_limit, err)
		                         : cg_write(dir, "pids.max", "max", err);
	return 0;
}

static int v1_create(const struct rt_spec *s, const char *rel, struct rt_cgroup *cg,
                     struct bh_err *err)
{
	struct v1_collect c = {cg, rel};

	cg->version = 1;
	if (rt_cgroup_v1_mounts(v1_collect_fn, &c, err) < 0)
		return -1;
	if (cg->n == 0)
		return bh_err_set(err, ENOENT, "cgroup: no v1 hierarchy mounted");
	for (size_t i = 0; i < cg->n; i++) {
		if (mkdir(cg->dirs[i], 0755) < 0 && errno == EEXIST) {
			/* Not ours: keep it out of the clean-up. */
			bh_err_set(err, EEXIST, "cgroup %s: exists", cg->dirs[i]);
			for (size_t j = i; j < cg->n; j++) {
				free(cg->dirs[j]);
				free(cg->ctrl[j]);
			}
			cg->n = i;
			return -1;
		}
		if (bh_mkdir_p(cg->dirs[i], 0755, err) < 0 ||
		    v1_limits(s, cg->dirs[i], cg->ctrl[i], err) < 0)
			return bh_err_wrap(err, "cgroup %s", cg->ctrl[i]);
	}
	return 0;
}

/* ---- v2 ---------------------------------------------------------------- */
static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = strstr(list, w); p; p = strstr(p + 1, w))
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

/* One controller per write: one that cannot be enabled (cpuset busy, io
 * missing) must not keep the others off.  A limit whose controller stayed
 * off fails later, naming its file. */
static int v2_enable_controllers(const char *dir, struct bh_err *err)
{
	static const char *const want[] = {"cpu", "memory", "pids", "cpuset", "io", NULL};
	cleanup_free char *avail = NULL;

	if (cg_read(dir, "cgroup.controllers", &avail, err) < 0)
		return -1;
	for (const char *const *w = want; *w; w++) {
		char buf[32];
		struct bh_err ignored;

		if (!has_word(avail, *w))
			continue;
		snprintf(buf, sizeof(buf), "+%s", *w);
		if (cg_write(dir, "cgroup.subtree_control", buf, &ignored) < 0)
			bh_debug("cgroup %s: enable %s: %s", dir, *w, ignored.msg);
	}
	return 0;
}

static int v2_limits(const struct rt_spec *s, const char *dir, struct bh_err *err)
{
	char buf[64];

	if (s->mem_limit > 0 && cg_write_int(dir, "memory.max", s->mem_limit, err) < 0)
		return -1;
	if (s->mem_limit > 0 && s->mem_swap >= s->mem_limit &&
	    cg_write_int(dir, "memory.swap.max", s->mem_swap - s->mem_limit, err) < 0)
		return -1;
	if (s->cpu_quota > 0 || s->cpu_period > 0) {
		snprintf(buf, sizeof(buf), "%s%lld %lld", "", (long long)s->cpu_quota,
		         (long long)(s->cpu_period > 0 ? s->cpu_period : 100000));
		if (s->cpu_quota <= 0)
			snprintf(buf, sizeof(buf), "max %lld",
			         (long long)(s->cpu_period > 0 ? s->cpu_period : 100000));
		if (cg_write(dir, "cpu.max", buf, err) < 0)
			return -1;
	}
	/* The usual conversion of v1 shares [2, 262144] to v2 weight [1, 10000]. */
	if (s->cpu_shares > 0 &&
	    cg_write_int(dir, "cpu.weight", 1 + ((s->cpu_shares - 2) * 9999) / 262142, err) < 0)
		return -1;
	if (s->pids_limit != -1)
		return s->pids_limit > 0 ? cg_write_int(dir, "pids.max", s->pids_limit, err)
		                         : cg_write(dir, "pids.max", "max", err);
	return 0;
}

static int v2_devices(const struct rt_spec *s, const char *dir, struct bh_err *err)
{
	cleanup_close int fd = -1;

	if (s->n_dev_rules == 0)
		return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bh_err_sys(err, errno, "cgroup: open %s", dir);
	return rt_devices_bpf_attach(s->dev_rules, s->n_dev_rules, fd, err);
}

static int v2_create(const struct rt_spec *s, const char *rel, struct rt_cgroup *cg,
                     struct bh_err *err)
{
	cleanup_free char *dir = bh_path_join(cg_root, rel);
	char *slash = strrchr(dir, '/');

	cg->version = 2;
	*slash = '\0';
	if (bh_mkdir_p(dir, 0755, err) < 0)
		return -1;
	*slash = '/';
	if (mkdir(dir, 0755) < 0)
		return bh_err_sys(err, errno, "cgroup %s", dir); /* EEXIST: not ours */
	cg->dirs[0] = bh_strdup(dir);
	cg->ctrl[0] = bh_strdup("");
	cg->n = 1;
	/* Enable the controllers on every level above the container's cgroup. */
	for (slash = dir + strlen(cg_root); slash; slash = strchr(slash + 1, '/')) {
		int rc;

		*slash = '\0';
		rc = v2_enable_controllers(dir, err);
		*slash = '/';
		if (rc < 0)
			return -1;
	}
	if (v2_limits(s, cg->dirs[0], err) < 0)
		return -1;
	return v2_devices(s, cg->dirs[0], err);
}

int rt_cgroup_create(const struct rt_spec *s, const char *id, struct rt_cgroup *cg,
                     struct bh_err *err)
{
	cleanup_free char *rel = NULL;
	struct bh_err ignored;
	int rc, version;

	memset(cg, 0, sizeof(*cg));
	if (cg_relpath(s, id, &rel, err) < 0)
		return -1;
	version = rt_cgroup_version(err);
	if (version < 0)
		return -1;
	if (version == 2)
		rc = v2_create(s, rel, cg, err);
	else
		rc = v1_create(s, rel, cg, err);
	if (rc < 0) {
		rt_cgroup_destroy(cg, &ignored);
		rt_cgroup_free(cg);
	}
	return rc;
}

int rt_cgroup_enter(const struct rt_cgroup *cg, pid_t pid, struct bh_err *err)
{
	for (size_t i = 0; i < cg->n; i++)
		if (cg_write_int(cg->dirs[i], "cgroup.procs", pid, err) < 0)
			return -1;
	return 0;
}

static void kill_procs(const char *dir)
{
	cleanup_free char *text = NULL;
	struct bh_err e;
	char *p, *end;

	if (cg_read(dir, "cgroup.procs", &text, &e) < 0)
		return;
	for (p = text; *p; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
	}
}

/* rmdir fails with EBUSY until the killed tasks are gone: bounded retry. */
static int remove_dir(const char *dir, struct bh_err *err)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	for (int tries = 0; tries < 300; tries++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		kill_procs(dir);
		nanosleep(&ts, NULL);
	}
	return bh_err_sys(err, errno, "cgroup: remove %s", dir);
}

int rt_cgroup_destroy(const struct rt_cgroup *cg, struct bh_err *err)
{
	int rc = 0;

	for (size_t i = 0; i < cg->n; i++) {
		if (cg->version == 2 && bh_path_exists(cg->dirs[i])) {
			struct bh_err e;
			cg_write(cg->dirs[i], "cgroup.kill", "1", &e);
		}
		kill_procs(cg->dirs[i]);
	}
	for (size_t i = 0; i < cg->n; i++)
		if (remove_dir(cg->dirs[i], err) < 0)
			rc = -1;
	return rc;
}

static long max_l(long a, long b)
{
	return a > b ? a : b;
}

int rt_cgroup_oom_count(const struct rt_cgroup *cg, long *count, struct bh_err *err)
{
	for (size_t i = 0; i < cg->n; i++) {
		long n;
		/* v2 without the memory controller: no memory.events and no
		 * cgroup OOM kill either */
		if (cg->version == 2)
			n = bh_path_exists(cg->dirs[i])
			        ? max_l(0, cg_read_key(cg->dirs[i], "memory.events", "oom_kill"))
			        : -1;
		else if (strcmp(cg->ctrl[i], "memory") == 0)
			n = cg_read_key(cg->dirs[i], "memory.oom_control", "oom_kill");
		else
			continue;
		if (n < 0)
			return bh_err_set(err, ENOENT, "cgroup %s: no OOM counter", cg->dirs[i]);
		*count = n;
		return 0;
	}
	return bh_err_set(err, ENOENT, "cgroup: no memory controller");
}

void rt_cgroup_free(struct rt_cgroup *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		free(cg->dirs[i]);
		free(cg->ctrl[i]);
	}
	memset(cg, 0, sizeof(*cg));
}

json_t *rt_cgroup_to_json(const struct rt_cgroup *cg)
{
	json_t *dirs = json_array(), *ctrl = json_array();

	for (size_t i = 0; i < cg->n; i++) {
		json_array_append_new(dirs, json_string(cg->dirs[i]));
		json_array_append_new(ctrl, json_string(cg->ctrl[i]));
	}
	return json_pack("{s:i, s:o, s:o}", "version", cg->version, "dirs", dirs, "controllers",
	                 ctrl);
}

int rt_cgroup_from_json(json_t *j, struct rt_cgroup *cg, struct bh_err *err)
{
	json_t *dirs = json_object_get(j, "dirs"), *ctrl = json_object_get(j, "controllers");

	memset(cg, 0, sizeof(*cg));
	cg->version = (int)json_integer_value(json_object_get(j, "version"));
	if (json_array_size(dirs) > RT_MAX_CGROUPS ||
	    json_array_size(dirs) != json_array_size(ctrl))
		return bh_err_set(err, EINVAL, "state: bad cgroups");
	for (size_t i = 0; i < json_array_size(dirs); i++) {
		const char *d = json_string_value(json_array_get(dirs, i));
		const char *c = json_string_value(json_array_get(ctrl, i));
		/* the state file names directories that delete will rmdir */
		if (d == NULL || c == NULL || strstr(d, "/..") ||
		    (!bh_str_has_prefix(d, "/sys/fs/cgroup/") && !bh_str_has_prefix(d, cg_root))) {
			rt_cgroup_free(cg);
			return bh_err_set(err, EINVAL, "state: bad cgroup entry");
		}
		cg->dirs[i] = bh_strdup(d);
		cg->ctrl[i] = bh_strdup(c);
		cg->n++;
	}
	return 0;
}
