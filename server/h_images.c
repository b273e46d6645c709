/* /images endpoints: load (a tar body spooled to a temp file), list,
 * inspect and remove, all through runtime/'s image store on the pool.
 * Removal is refused while a container (any state) uses the image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt-image-archive.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

struct img_job {
	struct ctr_mgr *m;
	char ref[SRV_PARAM_MAX];
	bool force;
	int fd;
	json_t *out;
	char **loaded;
};

static struct img_job *job_new(struct srv_req *req, struct bh_err *err)
{
	struct img_job *j;
	const char *name = srv_param(req, "name");

	if (req->srv == NULL || req->srv->ctrs == NULL) {
		bh_err_set(err, ENOTSUP, "images are not available in this daemon");
		return NULL;
	}
	j = bh_calloc(1, sizeof(*j));
	j->m = req->srv->ctrs;
	j->fd = -1;
	if (name != NULL)
		bh_strlcpy(j->ref, name, sizeof(j->ref));
	return j;
}

static void job_free(struct img_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	json_decref(j->out);
	rt_image_strv_free(j->loaded);
	free(j);
}

static void json_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct img_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_json(req, 200, json_incref(j->out));
	job_free(j);
}

/* ---- load ---------------------------------------------------------------------------- */

static int load_work(void *arg, struct bh_err *err)
{
	struct img_job *j = arg;

	if (lseek(j->fd, 0, SEEK_SET) < 0)
		return bh_err_sys(err, errno, "load: rewind the request body");
	if (rt_image_load(j->m->store, j->fd, "request body", &j->loaded, err) < 0) {
		if (err->code != ENOMEM && err->code != ENOSPC && err->code != EIO)
			err->code = EINVAL; /* a bad archive is the client's */
		return -1; /* rt_image_load's message starts with "load: " */
	}
	for (size_t i = 0; j->loaded && j->loaded[i]; i++)
		srv_events_image("load", j->loaded[i], j->loaded[i]);
	return 0;
}

static void load_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct img_job *j = arg;
	struct bh_buf out;

	if (rc < 0) {
		srv_reply_error(req, err);
		job_free(j);
		return;
	}
	bh_buf_init(&out, 1024 * 1024);
	for (size_t i = 0; j->loaded && j->loaded[i]; i++) {
		bool is_id = bh_str_has_prefix(j->loaded[i], "sha256:");
		cleanup_free char *line =
		    bh_asprintf("Loaded image%s: %s\n", is_id ? " ID" : "", j->loaded[i]);
		json_t *o = json_pack("{s:s}", "stream", line);
		cleanup_free char *text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		bh_buf_printf(&out, "%s\n", text);
		bh_info("image %s loaded", j->loaded[i]);
	}
	srv_reply_text(req, 200, "application/json", out.data ? out.data : "", out.len);
	bh_buf_free(&out);
	job_free(j);
}

int srv_h_image_load(struct srv_req *req, struct bh_err *err)
{
	struct img_job *j;

	if (req->body_fd < 0)
		return bh_err_set(err, EINVAL, "load: a tar archive is required as the body");
	j = job_new(req, err);
	if (j == NULL)
		return -1;
	j->fd = dup(req->body_fd);
	if (j->fd < 0) {
		job_free(j);
		return bh_err_sys(err, errno, "load: dup");
	}
	srv_defer(req, load_work, load_done, j);
	return 0;
}

/* ---- list, inspect -------------------------------------------------------------------- */

static int list_work(void *arg, struct bh_err *err)
{
	struct img_job *j = arg;

	return rt_image_list(j->m->store, &j->out, err);
}

int srv_h_image_list(struct srv_req *req, struct bh_err *err)
{
	struct img_job *j = job_new(req, err);

	if (j == NULL)
		return -1;
	srv_defer(req, list_work, json_done, j);
	return 0;
}

static int inspect_work(void *arg, struct bh_err *err)
{
	struct img_job *j = arg;
	char id[RT_IMAGE_ID_LEN];

	if (rt_image_resolve(j->m->store, j->ref, id, err) < 0)
		return bh_err_set(err, err->code == EINVAL ? EINVAL : err->code,
		                  "No such image: %s", j->ref);
	return rt_image_inspect(j->m->store, id, &j->out, err);
}

int srv_h_image_inspect(struct srv_req *req, struct bh_err *err)
{
	struct img_job *j = job_new(req, err);

	if (j == NULL)
		return -1;
	srv_defer(req, inspect_work, json_done, j);
	return 0;
}

/* ---- remove ----------------------------------------------------------------------------- */

static int remove_work(void *arg, struct bh_err *err)
{
	struct img_job *j = arg;
	char id[RT_IMAGE_ID_LEN], cid[65];

	if (rt_image_resolve(j->m->store, j->ref, id, err) < 0)
		return err->code == ENOENT ? bh_err_set(err, ENOENT, "No such image: %s", j->ref)
		                           : -1;
	if (!j->force && ctr_mgr_image_used(j->m, id, cid))
		return bh_err_set(err, EBUSY,
		                  "conflict: unable to remove repository reference \"%s\" (must "
		                  "force) - container %.12s is using its referenced image %.19s",
		                  j->ref, cid, id + 7);
	/* Forced while a container uses it: untag only, as Docker; deleting
	 * would pull the layers from under the container's overlay. */
	if (j->force && ctr_mgr_image_used(j->m, id, cid)) {
		j->out = json_array();
		if (rt_image_untag_all(j->m->store, id, j->out, err) < 0)
			return -1;
	} else if (rt_image_remove(j->m->store, j->ref, j->force, &j->out, err) < 0) {
		return -1;
	}
	srv_events_image_removed(id, j->out);
	return 0;
}

int srv_h_image_delete(struct srv_req *req, struct bh_err *err)
{
	struct img_job *j = job_new(req, err);

	if (j == NULL)
		return -1;
	j->force = srv_query_bool(&req->query, "force");
	srv_defer(req, remove_work, json_done, j);
	return 0;
}
