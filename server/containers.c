/* The container manager's table and store: references, ownership of a
 * container by one operation at a time, the record files, and opening and
 * closing the manager with the image store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

void ctr_get(struct ctr *c)
{
	c->refs++;
}

void ctr_put(struct ctr_mgr *m, struct ctr *c)
{
	(void)m;
	if (c != NULL && --c->refs == 0)
		ctr_free(c);
}

int ctr_find(struct ctr_mgr *m, const char *ref, struct ctr **out, struct bh_err *err)
{
	int r;

	pthread_mutex_lock(&m->mu);
	r = ctr_lookup(m->list, ref, out, err);
	if (r == 0)
		ctr_get(*out);
	pthread_mutex_unlock(&m->mu);
	return r;
}

void ctr_own(struct ctr_mgr *m, struct ctr *c)
{
	while (c->busy)
		pthread_cond_wait(&m->cond, &m->mu);
	c->busy = true;
}

void ctr_release(struct ctr_mgr *m, struct ctr *c)
{
	c->busy = false;
	pthread_cond_broadcast(&m->cond);
}

bool ctr_wait_until(struct ctr_mgr *m, struct ctr *c, bool (*pred)(const struct ctr *),
                    int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!pred(c))
		if (pthread_cond_timedwait(&m->cond, &m->mu, &ts) == ETIMEDOUT)
			return pred(c);
	return true;
}

char *ctr_data_path(const struct ctr_mgr *m, const struct ctr *c, const char *name)
{
	if (name == NULL)
		return bh_asprintf("%s/%s", m->ctr_dir, c->id);
	return bh_asprintf("%s/%s/%s", m->ctr_dir, c->id, name);
}

char *ctr_exec_path(const struct ctr_mgr *m, const struct ctr *c)
{
	return bh_asprintf("%s/%s", m->exec_dir, c->id);
}

int ctr_save(struct ctr_mgr *m, const struct ctr *c, struct bh_err *err)
{
	json_t *j = ctr_record_json(c);
	cleanup_free char *text = json_dumps(j, JSON_COMPACT);
	cleanup_free char *path = ctr_data_path(m, c, CTR_RECORD);

	json_decref(j);
	if (text == NULL)
		return bh_err_set(err, ENOMEM, "container %s: cannot encode the record", c->id);
	if (bh_write_file_atomic(path, text, strlen(text), 0600, err) < 0)
		return bh_err_wrap(err, "container %s", c->id);
	return 0;
}

void ctr_mgr_kick(struct ctr_mgr *m)
{
	uint64_t one = 1;

	if (m->evfd >= 0 && write(m->evfd, &one, sizeof(one)) < 0)
		bh_debug("container watcher: wake: %s", strerror(errno));
}

void ctr_mgr_counts(struct ctr_mgr *m, int *total, int *running, int *paused, int *stopped)
{
	*total = *running = *paused = *stopped = 0;
	pthread_mutex_lock(&m->mu);
	for (struct ctr *c = m->list; c; c = c->next) {
		(*total)++;
		if (c->status == CTR_RUNNING || c->status == CTR_RESTARTING)
			(*running)++;
		else
			(*stopped)++;
	}
	pthread_mutex_unlock(&m->mu);
}

bool ctr_mgr_image_used(struct ctr_mgr *m, const char *image_id, char cid[65])
{
	bool used = false;

	pthread_mutex_lock(&m->mu);
	for (struct ctr *c = m->list; c && !used; c = c->next) {
		if (strcmp(c->image_id, image_id) == 0) {
			used = true;
			bh_strlcpy(cid, c->id, 65);
		}
	}
	pthread_mutex_unlock(&m->mu);
	return used;
}

static int make_dirs(struct ctr_mgr *m, struct bh_err *err)
{
	if (bh_mkdir_p(m->ctr_dir, 0700, err) < 0 || bh_mkdir_p(m->exec_dir, 0700, err) < 0 ||
	    bh_mkdir_p(m->state_root, 0700, err) < 0)
		return -1;
	/* Request bodies of a daemon that died: nothing refers to them. */
	if (bh_rm_rf(m->tmp_dir, err) < 0)
		return -1;
	return bh_mkdir_p(m->tmp_dir, 0700, err);
}

int ctr_mgr_open(struct ctr_mgr *m, struct srv_server *srv, const char *data_root,
                 const char *exec_root, const char *monitor_path, struct bh_err *err)
{
	pthread_condattr_t ca;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(m, 0, sizeof(*m));
	m->evfd = -1;
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	m->srv = srv;
	m->ncpu = n > 0 ? n : 1;
	m->data_root = bh_strdup(data_root);
	m->exec_root = bh_strdup(exec_root);
	m->ctr_dir = bh_path_join(data_root, "containers");
	m->exec_dir = bh_path_join(exec_root, "containers");
	m->state_root = bh_path_join(exec_root, "runtime");
	m->tmp_dir = bh_path_join(data_root, "tmp");
	m->monitor_path = bh_strdup(monitor_path);
	m->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->evfd < 0)
		return bh_err_sys(err, errno, "containers: eventfd");
	if (make_dirs(m, err) < 0)
		return bh_err_wrap(err, "containers");
	if (rt_store_open(data_root, &m->store, err) < 0)
		return bh_err_wrap(err, "image store");
	return 0;
}

void ctr_mgr_close(struct ctr_mgr *m)
{
	struct ctr *c, *next;

	if (m->data_root == NULL)
		return;
	for (c = m->list; c; c = next) {
		next = c->next;
		if (c->pidfd >= 0)
			close(c->pidfd);
		ctr_put(m, c);
	}
	m->list = NULL;
	if (m->store)
		rt_store_close(m->store);
	if (m->evfd >= 0)
		close(m->evfd);
	free(m->data_root);
	free(m->exec_root);
	free(m->ctr_dir);
	free(m->exec_dir);
	free(m->state_root);
	free(m->tmp_dir);
	free(m->monitor_path);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->mu);
	memset(m, 0, sizeof(*m));
	m->evfd = -1;
}
