/* Authorization: the trust store inside the daemon (opening it, entering
 * the `certs init` admin certificate on first start, flushing last_seen off
 * the lws thread) and THE gate every REST route and WebSocket upgrade
 * passes before a handler runs.  The identity arriving here was read from
 * a handshake-verified certificate or the root-only unix socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server-internal.h"

/* An identity name from a CN ("John Doe" -> "John-Doe"; none -> "admin"):
 * names end up in tables and log lines, so only a-z A-Z 0-9 - _ . @. */
static void name_from_cn(const char *cn, char *out, size_t size)
{
	size_t i;

	for (i = 0; cn[i] != '\0' && i + 1 < size; i++) {
		char c = cn[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '@';
		out[i] = ok ? c : '-';
	}
	out[i] = '\0';
	if (i == 0)
		bh_strlcpy(out, "admin", size);
}

static int first_start(struct srv_server *srv, struct bh_err *err)
{
	cleanup_free char *path = NULL;
	cleanup_free char *pem = NULL;
	struct srv_trust_entry e;
	char cn[256] = "";
	size_t len;

	if (srv->cfg.tls_dir == NULL)
		return 0;
	path = bh_path_join(srv->cfg.tls_dir, "cert.pem");
	if (!bh_path_exists(path)) {
		bh_info("trust store: new and empty (no %s to enter as admin)", path);
		return 0;
	}
	memset(&e, 0, sizeof(e));
	/* A cert.pem that could never connect (another CA, expired) is not
	 * fatal: the store stays empty and the root-only unix socket is admin.
	 * Failing here would fail this start only: the store exists now. */
	if (bh_read_file(path, 64 * 1024, &pem, &len, err) < 0 ||
	    srv_tls_cert_entry(srv->cfg.tls_dir, pem, len, &e, cn, err) < 0) {
		bh_warn("trust store: first start, %s not entered as admin: %s", path, err->msg);
		bh_err_clear(err);
		return 0;
	}
	name_from_cn(cn, e.name, sizeof(e.name));
	e.role = SRV_ROLE_ADMIN;
	if (srv_trust_add(srv->trust, &e, err) < 0) {
		bh_warn("trust store: first start, %s not entered as admin: %s", path, err->msg);
		bh_err_clear(err);
		return 0;
	}
	bh_info("trust store: first start, entered %s (%s, fingerprint %.12s) as admin", path,
	        e.name, e.fingerprint);
	return 0;
}

int srv_trust_start(struct srv_server *srv, struct bh_err *err)
{
	if (srv_trust_open(srv->cfg.data_root, &srv->trust, err) < 0)
		return -1;
	if (srv_trust_is_new(srv->trust))
		return first_start(srv, err);
	return 0;
}

void srv_trust_stop(struct srv_server *srv)
{
	srv_trust_free(srv->trust); /* flushes a pending last_seen */
	srv->trust = NULL;
}

/* last_seen reaches the disk from a worker: never an fsync on the lws thread. */
static int flush_work(void *arg, struct bh_err *err)
{
	return srv_trust_flush(arg, err);
}

static void flush_done(void *arg, int rc, const struct bh_err *err)
{
	(void)arg;
	if (rc < 0)
		bh_warn("%s", err->msg);
}

/* Fills id's name and role from the store; fails when the certificate is
 * no longer trusted (revoked or expired since the handshake). */
static int identity_refresh(struct srv_server *srv, struct srv_identity *id, struct bh_err *err)
{
	struct srv_trust_entry e;
	int64_t now = (int64_t)time(NULL);

	if (id->self_signed) {
		id->role = SRV_ROLE_ENROLL;
		id->name[0] = '\0';
		return 0;
	}
	if (srv_trust_check(srv->trust, id->fingerprint, &e, err) < 0)
		return -1;
	bh_strlcpy(id->name, e.name, sizeof(id->name));
	id->role = e.role;
	srv_trust_seen(srv->trust, id->fingerprint, now);
	if (srv->pool != NULL && srv_trust_flush_due(srv->trust, now))
		srv_pool_submit(srv->pool, flush_work, flush_done, srv->trust);
	return 0;
}

int srv_authorize(struct srv_server *srv, struct srv_identity *id, enum srv_role need,
                  const char *what, struct bh_err *err)
{
	if (srv == NULL || srv->trust == NULL)
		return 0; /* no store (unit tests of the HTTP layer) */
	if (!id->is_unix && identity_refresh(srv, id, err) < 0)
		return -1;
	if (id->role >= need)
		return 0;
	if (id->role == SRV_ROLE_ENROLL)
		return bh_err_set(err, EACCES, "%s needs role %s; an enrolling client has none",
		                  what, srv_role_name(need));
	return bh_err_set(err, EACCES, "%s needs role %s; %s is %s", what, srv_role_name(need),
	                  id->name[0] ? id->name : id->cn, srv_role_name(id->role));
}
