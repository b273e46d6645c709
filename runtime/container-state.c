/* A container's state on disk and the OCI operations that only need it:
 * state, start (of a created container), kill, delete, OOM record. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt-container-state.h"

#define RT_KILL_WAIT_MS 10000

struct loaded {
	struct rt_container_state st;
	char starttime[32];
	struct rt_cgroup cg;
	char *dir;
};

/* Field 22 of /proc/PID/stat (start time in clock ticks) and the state
 * letter: together with the pid they name one process, not a reused pid. */
static int proc_starttime(pid_t pid, char out[32], char *state)
{
	char path[64], *text = NULL, *p;
	struct bh_err e;
	int field = 3;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (bh_read_file(path, 4096, &text, NULL, &e) < 0)
		return -1;
	p = strrchr(text, ')');
	if (p == NULL || p[1] != ' ') {
		free(text);
		return -1;
	}
	p += 2;
	*state = *p;
	while (field < 22 && (p = strchr(p, ' ')) != NULL) {
		p++;
		field++;
	}
	if (p == NULL || strcspn(p, " ") >= 32) {
		free(text);
		return -1;
	}
	snprintf(out, 32, "%.*s", (int)strcspn(p, " "), p);
	free(text);
	return 0;
}

int rt_state_write(const char *dir, const char *id, pid_t pid, const char *bundle,
                   const struct rt_cgroup *cg, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(dir, RT_STATE_FILE);
	cleanup_free char *text = NULL;
	char start[32] = "", created[40], abs[PATH_MAX], st;
	json_t *j;
	int rc;

	if (proc_starttime(pid, start, &st) < 0)
		return bh_err_set(err, ESRCH, "init %d vanished", (int)pid);
	if (realpath(bundle, abs) == NULL)
		return bh_err_sys(err, errno, "bundle %s", bundle);
	bh_rfc3339_now(created);
	j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:o}", "ociVersion", "1.0.2", "id", id, "pid",
	              (int)pid, "starttime", start, "bundle", abs, "created", created, "cgroup",
	              rt_cgroup_to_json(cg));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	/* Under the exec root: gone with a reboot, so no fsync (see bh_write_file_volatile). */
	rc = bh_write_file_volatile(path, text, strlen(text), 0600, err);
	return rc < 0 ? bh_err_wrap(err, "write state") : 0;
}

static void loaded_free(struct loaded *l)
{
	rt_cgroup_free(&l->cg);
	free(l->dir);
}

static enum rt_container_status live_status(const struct loaded *l)
{
	cleanup_free char *fifo = bh_path_join(l->dir, RT_EXEC_FIFO);
	char now[32], state;

	if (proc_starttime(l->st.pid, now, &state) < 0 || strcmp(now, l->starttime) != 0 ||
	    state == 'Z' || state == 'X')
		return RT_STATUS_STOPPED;
	return bh_path_exists(fifo) ? RT_STATUS_CREATED : RT_STATUS_RUNNING;
}

static int parse_state(json_t *j, struct loaded *l, struct bh_err *err)
{
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *bundle = json_string_value(json_object_get(j, "bundle"));
	const char *start = json_string_value(json_object_get(j, "starttime"));
	const char *created = json_string_value(json_object_get(j, "created"));

	if (!id || !bundle || !start || bh_strlcpy(l->st.id, id, sizeof(l->st.id)) < 0 ||
	    bh_strlcpy(l->st.bundle, bundle, sizeof(l->st.bundle)) < 0 ||
	    bh_strlcpy(l->starttime, start, sizeof(l->starttime)) < 0)
		return bh_err_set(err, EINVAL, "bad state file");
	bh_strlcpy(l->st.created, created ? created : "", sizeof(l->st.created));
	l->st.pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	if (l->st.pid <= 0)
		return bh_err_set(err, EINVAL, "bad state file: pid");
	return rt_cgroup_from_json(json_object_get(j, "cgroup"), &l->cg, err);
}

static int state_load(const char *root, const char *id, struct loaded *l, struct bh_err *err)
{
	cleanup_free char *path = NULL, *text = NULL;
	json_error_t jerr;
	json_t *j;
	int rc;

	memset(l, 0, sizeof(*l));
	if (id == NULL || id[0] == '\0' || id[0] == '.' || strchr(id, '/'))
		return bh_err_set(err, EINVAL, "container id %s: invalid", id ? id : "(null)");
	l->dir = bh_path_join(root, id);
	path = bh_path_join(l->dir, RT_STATE_FILE);
	if (bh_read_file(path, RT_STATE_MAX, &text, NULL, err) < 0) {
		rc = err->code == ENOENT
		         ? bh_err_set(err, ENOENT, "container %s: no such container", id)
		         : bh_err_wrap(err, "container %s", id);
		loaded_free(l);
		return rc;
	}
	j = json_loads(text, 0, &jerr);
	rc = j ? parse_state(j, l, err) : bh_err_set(err, EINVAL, "%s: %s", path, jerr.text);
	json_decref(j);
	if (rc < 0) {
		loaded_free(l);
		return bh_err_wrap(err, "container %s", id);
	}
	l->st.status = live_status(l);
	return 0;
}

int rt_container_state(const char *state_root, const char *id, struct rt_container_state *st,
                       struct bh_err *err)
{
	struct loaded l;

	if (state_load(state_root, id, &l, err) < 0)
		return -1;
	*st = l.st;
	loaded_free(&l);
	return 0;
}

const char *rt_container_status_name(enum rt_container_status s)
{
	switch (s) {
	case RT_STATUS_CREATED:
		return "created";
	case RT_STATUS_RUNNING:
		return "running";
	case RT_STATUS_STOPPED:
		return "stopped";
	}
	return "unknown";
}

json_t *rt_container_state_json(const struct rt_container_state *st)
{
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", "1.0.2", "id", st->id, "status",
	              rt_container_status_name(st->status), "pid",
	              st->status == RT_STATUS_STOPPED ? 0 : (int)st->pid, "bundle", st->bundle);

	if (st->created[0])
		json_object_set_new(j, "created", json_string(st->created));
	return j;
}

/* A pidfd for the init, checked against the recorded start time after it
 * was opened so that it cannot name a process that reused the pid. */
static int init_pidfd(const struct loaded *l, struct bh_err *err)
{
	int fd = pidfd_open(l->st.pid, 0);
	char now[32], state;

	if (fd < 0)
		return bh_err_sys(err, errno, "container %s: pidfd_open", l->st.id);
	if (proc_starttime(l->st.pid, now, &state) < 0 || strcmp(now, l->starttime) != 0) {
		close(fd);
		return bh_err_set(err, ESRCH, "container %s: not running", l->st.id);
	}
	return fd;
}

int rt_container_kill(const char *state_root, const char *id, int sig, struct bh_err *err)
{
	struct loaded l;
	int fd, rc = 0;

	if (state_load(state_root, id, &l, err) < 0)
		return -1;
	if (l.st.status == RT_STATUS_STOPPED) {
		loaded_free(&l);
		return bh_err_set(err, ESRCH, "container %s: not running", id);
	}
	fd = init_pidfd(&l, err);
	if (fd >= 0 && pidfd_send_signal(fd, sig, NULL, 0) < 0)
		rc = bh_err_sys(err, errno, "container %s: signal %d", id, sig);
	if (fd >= 0)
		close(fd);
	loaded_free(&l);
	return fd < 0 ? -1 : rc;
}

static int wait_exit(int pidfd, const char *id, struct bh_err *err)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int n;

	do
		n = poll(&p, 1, RT_KILL_WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return bh_err_set(err, ETIMEDOUT, "container %s: init did not die", id);
	return n < 0 ? bh_err_sys(err, errno, "container %s: poll", id) : 0;
}

static int force_stop(struct loaded *l, struct bh_err *err)
{
	cleanup_close int fd = init_pidfd(l, err);

	if (fd < 0)
		return err->code == ESRCH || err->code == ENOENT ? 0 : -1;
	if (pidfd_send_signal(fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		return bh_err_sys(err, errno, "container %s: kill", l->st.id);
	return wait_exit(fd, l->st.id, err);
}

int rt_container_delete(const char *state_root, const char *id, bool force, struct bh_err *err)
{
	struct loaded l;
	int rc = 0;

	if (state_load(state_root, id, &l, err) < 0)
		return -1;
	if (l.st.status != RT_STATUS_STOPPED && !force)
		rc = bh_err_set(err, EBUSY, "container %s: is %s (use force)", id,
		                rt_container_status_name(l.st.status));
	else if (l.st.status != RT_STATUS_STOPPED)
		rc = force_stop(&l, err);
	if (rc == 0 && rt_cgroup_destroy(&l.cg, err) < 0)
		rc = bh_err_wrap(err, "container %s", id);
	if (rc == 0 && bh_rm_rf(l.dir, err) < 0)
		rc = bh_err_wrap(err, "container %s", id);
	loaded_free(&l);
	return rc;
}

int rt_container_oom_killed(const char *state_root, const char *id, bool *oom, struct bh_err *err)
{
	struct loaded l;
	long n = 0;
	int rc;

	if (state_load(state_root, id, &l, err) < 0)
		return -1;
	rc = rt_cgroup_oom_count(&l.cg, &n, err);
	*oom = rc == 0 && n > 0;
	loaded_free(&l);
	return rc < 0 ? bh_err_wrap(err, "container %s", id) : 0;
}

/* ---- start of a created container ------------------------------------------ */
/* Reads what the init writes to exec.fifo: "0", then EOF when its execve
 * succeeded (close-on-exec) or an error record when it failed. */
static int read_fifo(int fifo, int pidfd, const char *id, struct bh_err *err)
{
	char buf[2048];
	size_t len = 0;

	for (;;) {
		struct pollfd p[2] = {{.fd = fifo, .events = POLLIN},
		                      {.fd = pidfd, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return bh_err_sys(err, errno, "container %s: poll", id);
		if (!(p[0].revents & (POLLIN | POLLHUP)) && (p[1].revents & POLLIN))
			return bh_err_set(err, ESRCH, "container %s: init died before start", id);
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		n = read(fifo, buf + len, sizeof(buf) - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return bh_err_sys(err, errno, "container %s: read exec.fifo", id);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf))
			return bh_err_set(err, EPROTO, "container %s: exec.fifo overflow", id);
	}
	if (len == 0 || buf[0] != '0')
		return bh_err_set(err, ESRCH, "container %s: init died before start", id);
	if (len == 1)
		return 0;
	if (len < 1 + sizeof(int32_t) + 1)
		return bh_err_set(err, EPROTO, "container %s: short report", id);
	buf[len - 1] = '\0';
	int32_t code;
	memcpy(&code, buf + 1, sizeof(code));
	return bh_err_set(err, code, "container %s: %s", id, buf + 1 + sizeof(code));
}

int rt_container_start_created(const char *state_root, const char *id, struct bh_err *err)
{
	cleanup_free char *path = NULL;
	cleanup_close int fifo = -1, pidfd = -1;
	struct loaded l;
	int rc;

	if (state_load(state_root, id, &l, err) < 0)
		return -1;
	if (l.st.status != RT_STATUS_CREATED) {
		rc = bh_err_set(err, EINVAL, "container %s: is %s, not created", id,
		                rt_container_status_name(l.st.status));
		loaded_free(&l);
		return rc;
	}
	path = bh_path_join(l.dir, RT_EXEC_FIFO);
	pidfd = init_pidfd(&l, err);
	fifo = pidfd < 0 ? -1 : open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pidfd >= 0 && fifo < 0)
		bh_err_sys(err, errno, "container %s: open %s", id, path);
	rc = fifo < 0 ? -1 : read_fifo(fifo, pidfd, id, err);
	if (fifo >= 0)
		unlink(path);
	loaded_free(&l);
	return rc;
}
