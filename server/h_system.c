/* System endpoints in Docker Engine API shapes: /_ping, /version, /info.
 * Host facts come from runtime/ on a worker thread (they read /proc and
 * /etc), which is also the first real user of srv_defer. */
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "server/containers-internal.h"
#include "server/server-internal.h"

#ifndef BERTH_GIT_COMMIT
#define BERTH_GIT_COMMIT "unknown"
#endif
#define BUILD_TIME  __DATE__ " " __TIME__
#define COMPILER    "gcc " __VERSION__
#define ENGINE_NAME "berth"

int srv_h_ping(struct srv_req *req, struct bh_err *err)
{
	srv_resp_header(req, "Docker-Experimental", "false");
	srv_resp_header(req, "Cache-Control", "no-cache, no-store, must-revalidate");
	srv_resp_header(req, "Pragma", "no-cache");
	if (req->method == SRV_HEAD)
		srv_reply_text(req, 200, "text/plain; charset=utf-8", NULL, 0);
	else
		srv_reply_text(req, 200, "text/plain; charset=utf-8", "OK", 2);
	return 0;
}

static int host_info_work(void *arg, struct bh_err *err)
{
	return rt_host_info_get(arg, err);
}

static json_t *version_details(const struct rt_host_info *h)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ApiVersion",
	                 BERTH_API_VERSION, "Arch", h->arch, "BuildTime", BUILD_TIME,
	                 "Experimental", "false", "GitCommit", BERTH_GIT_COMMIT, "GoVersion",
	                 COMPILER, "KernelVersion", h->kernel_version, "MinAPIVersion",
	                 BERTH_MIN_API_VERSION, "Os", h->os_type);
}

static json_t *version_json(const struct rt_host_info *h)
{
	json_t *v = json_pack("{s:{s:s}, s:[{s:s, s:s, s:o}]}", "Platform", "Name",
	                      ENGINE_NAME " " BERTH_VERSION, "Components", "Name", "Engine",
	                      "Version", BERTH_VERSION, "Details", version_details(h));

	json_object_set_new(v, "Version", json_string(BERTH_VERSION));
	json_object_set_new(v, "ApiVersion", json_string(BERTH_API_VERSION));
	json_object_set_new(v, "MinAPIVersion", json_string(BERTH_MIN_API_VERSION));
	json_object_set_new(v, "GitCommit", json_string(BERTH_GIT_COMMIT));
	json_object_set_new(v, "GoVersion", json_string(COMPILER));
	json_object_set_new(v, "Os", json_string(h->os_type));
	json_object_set_new(v, "Arch", json_string(h->arch));
	json_object_set_new(v, "KernelVersion", json_string(h->kernel_version));
	json_object_set_new(v, "BuildTime", json_string(BUILD_TIME));
	return v;
}

static void version_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct rt_host_info *h = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_json(req, 200, version_json(h));
	free(h);
}

int srv_h_version(struct srv_req *req, struct bh_err *err)
{
	srv_defer(req, host_info_work, version_done, bh_calloc(1, sizeof(struct rt_host_info)));
	return 0;
}

static json_t *identity_json(const struct srv_identity *id)
{
	if (id->is_unix)
		return json_pack("{s:s, s:I}", "Type", "unix", "UID", (json_int_t)id->uid);
	return json_pack("{s:s, s:s, s:s}", "Type", "tls", "CommonName", id->cn, "Fingerprint",
	                 id->fingerprint);
}

static json_t *berth_json(const struct srv_req *req)
{
	json_t *listeners = json_array();

	for (size_t i = 0; i < req->srv->n_listeners; i++)
		json_array_append_new(listeners, json_string(req->srv->listeners[i].url));
	return json_pack("{s:o, s:o}", "Listeners", listeners, "Identity", identity_json(&req->id));
}

/* /info's host facts plus the image count, both read on a pool thread. */
struct info_job {
	struct rt_host_info h; /* first: host_info_work takes the job as the info */
	struct ctr_mgr *ctrs;
	int images;
};

static int info_work(void *arg, struct bh_err *err)
{
	struct info_job *j = arg;
	json_t *list = NULL;

	if (rt_host_info_get(&j->h, err) < 0)
		return -1;
	if (j->ctrs != NULL && rt_image_list(j->ctrs->store, &list, err) == 0)
		j->images = (int)json_array_size(list);
	json_decref(list);
	return 0;
}

static json_t *info_json(const struct srv_req *req, const struct info_job *j)
{
	const struct srv_server *srv = req->srv;
	const struct rt_host_info *h = &j->h;
	int total = 0, running = 0, paused = 0, stopped = 0;
	json_t *v;

	if (srv->ctrs != NULL)
		ctr_mgr_counts(srv->ctrs, &total, &running, &paused, &stopped);
	v = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:s}", "ID", srv->engine_id,
	              "Containers", total, "ContainersRunning", running, "ContainersPaused",
	              paused, "ContainersStopped", stopped, "Images", j->images, "Driver",
	              "overlay2", "DockerRootDir", srv->cfg.data_root);

	json_object_set_new(v, "KernelVersion", json_string(h->kernel_version));
	json_object_set_new(v, "OperatingSystem", json_string(h->os_name));
	json_object_set_new(v, "OSType", json_string(h->os_type));
	json_object_set_new(v, "Architecture", json_string(h->arch));
	json_object_set_new(v, "NCPU", json_integer(h->ncpu));
	json_object_set_new(v, "MemTotal", json_integer(h->mem_total));
	json_object_set_new(v, "Name", json_string(h->hostname));
	json_object_set_new(v, "ServerVersion", json_string(BERTH_VERSION));
	json_object_set_new(v, "CgroupDriver", json_string(h->cgroup_driver));
	json_object_set_new(v, "CgroupVersion", json_string(h->cgroup_version));
	json_object_set_new(v, "SecurityOptions", json_pack("[s]", "name=seccomp,profile=builtin"));
	json_object_set_new(v, "Berth", berth_json(req));
	return v;
}

static void info_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct info_job *j = arg;

	if (rc < 0)
		srv_reply_error(req, err);
	else if (!req->closed)
		srv_reply_json(req, 200, info_json(req, j));
	free(j);
}

int srv_h_info(struct srv_req *req, struct bh_err *err)
{
	struct info_job *j = bh_calloc(1, sizeof(*j));

	j->ctrs = req->srv ? req->srv->ctrs : NULL;
	srv_defer(req, info_work, info_done, j);
	return 0;
}
