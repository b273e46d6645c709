/* Trust management (admin): GET /_berth/trust lists the identities, POST
 * /_berth/trust enters a certificate issued offline, DELETE
 * /_berth/trust/{name_or_fp} revokes and cuts the identity's live
 * connections.  Store writes (fsync) run on the pool, never on the lws
 * thread.  The bodies are an admin's, but still parsed as hostile. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

int srv_h_trust_list(struct srv_req *req, struct bh_err *err)
{
	if (req->srv == NULL || req->srv->trust == NULL)
		return bh_err_set(err, ENOTSUP, "this berthd has no trust store");
	srv_reply_json(req, 200, srv_trust_list_json(req->srv->trust));
	return 0;
}

struct trust_job {
	struct srv_trust *trust;
	struct srv_trust_entry e;
	char target[SRV_PARAM_MAX]; /* revoke: name or fingerprint */
	int count;
};

static int add_work(void *arg, struct bh_err *err)
{
	struct trust_job *j = arg;

	return srv_trust_add(j->trust, &j->e, err);
}

static void add_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct trust_job *j = arg;

	if (rc < 0) {
		srv_reply_error(req, err);
	} else {
		bh_info("%s: trusted %s (%s, certificate %.12s)", req->id.text, j->e.name,
		        srv_role_name(j->e.role), j->e.fingerprint);
		srv_reply_json(req, 201,
		               json_pack("{s:s, s:s, s:s, s:I}", "Name", j->e.name, "Fingerprint",
		                         j->e.fingerprint, "Role", srv_role_name(j->e.role),
		                         "Expires", (json_int_t)j->e.expires));
	}
	free(j);
}

int srv_trust_body_parse(const char *tls_dir, json_t *body, struct srv_trust_entry *e,
                         struct bh_err *err)
{
	json_t *name = json_object_get(body, "Name"), *role = json_object_get(body, "Role");
	json_t *cert = json_object_get(body, "Certificate");
	char cn[256];

	if (!json_is_string(name) ||
	    bh_strlcpy(e->name, json_string_value(name), sizeof(e->name)) < 0)
		return bh_err_set(err, EINVAL, "Name: a string of at most 63 bytes is required");
	e->role = SRV_ROLE_OPERATOR;
	if (role != NULL &&
	    (!json_is_string(role) || srv_role_parse(json_string_value(role), &e->role) < 0))
		return bh_err_set(err, EINVAL, "Role: viewer, operator or admin");
	if (!json_is_string(cert))
		return bh_err_set(err, EINVAL, "Certificate: a PEM certificate is required");
	if (srv_tls_cert_entry(tls_dir, json_string_value(cert), json_string_length(cert), e, cn,
	                       err) < 0)
		return bh_err_wrap(err, "Certificate");
	return 0;
}

int srv_h_trust_add(struct srv_req *req, struct bh_err *err)
{
	json_t *body = NULL;
	struct trust_job *j;

	if (req->srv == NULL || req->srv->trust == NULL)
		return bh_err_set(err, ENOTSUP, "this berthd has no trust store");
	if (srv_req_body_json(req, &body, err) < 0)
		return -1;
	j = bh_calloc(1, sizeof(*j));
	j->trust = req->srv->trust;
	if (srv_trust_body_parse(req->srv->cfg.tls_dir, body, &j->e, err) < 0) {
		json_decref(body);
		free(j);
		return -1;
	}
	json_decref(body);
	srv_defer(req, add_work, add_done, j);
	return 0;
}

static int revoke_work(void *arg, struct bh_err *err)
{
	struct trust_job *j = arg;

	j->count = srv_trust_revoke(j->trust, j->target, err);
	return j->count < 0 ? -1 : 0;
}

static void revoke_done(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct trust_job *j = arg;

	/* Revoked in memory even when the write failed: cut the sessions
	 * either way (the error still tells the admin). */
	srv_conns_close_fingerprint(req->srv, NULL);
	if (rc < 0) {
		srv_reply_error(req, err);
	} else {
		bh_info("%s: revoked %s (%d certificate(s))", req->id.text, j->target, j->count);
		srv_reply_json(req, 200,
		               json_pack("{s:s, s:i}", "Revoked", j->target, "Count", j->count));
	}
	free(j);
}

int srv_h_trust_revoke(struct srv_req *req, struct bh_err *err)
{
	const char *target = srv_param(req, "name_or_fp");
	struct trust_job *j;

	if (req->srv == NULL || req->srv->trust == NULL)
		return bh_err_set(err, ENOTSUP, "this berthd has no trust store");
	if (target == NULL || target[0] == '\0')
		return bh_err_set(err, EINVAL, "revoke: name or fingerprint required");
	j = bh_calloc(1, sizeof(*j));
	j->trust = req->srv->trust;
	bh_strlcpy(j->target, target, sizeof(j->target));
	srv_defer(req, revoke_work, revoke_done, j);
	return 0;
}
