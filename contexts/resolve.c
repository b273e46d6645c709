/* Which daemon a command talks to, and why. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

void ctx_target_free(struct ctx_target *t)
{
	free(t->name);
	free(t->host);
	free(t->reason);
	ctx_tls_free(&t->tls);
	free(t->pem.ca);
	free(t->pem.cert);
	if (t->pem.key != NULL)
		bh_wipe(t->pem.key, t->pem.key_len);
	free(t->pem.key);
	memset(t, 0, sizeof(*t));
}

int ctx_target_read_pem(struct ctx_target *t, struct bh_err *err)
{
	if (t->tls.ca == NULL || t->pem.ca != NULL)
		return 0;
	if (bh_read_file(t->tls.ca, CTX_FILE_MAX, &t->pem.ca, &t->pem.ca_len, err) < 0 ||
	    bh_read_file(t->tls.cert, CTX_FILE_MAX, &t->pem.cert, &t->pem.cert_len, err) < 0 ||
	    bh_read_file(t->tls.key, CTX_FILE_MAX, &t->pem.key, &t->pem.key_len, err) < 0)
		return bh_err_wrap(err, "TLS material of %s", t->name);
	if (ctx_key_pem_check(t->pem.key, t->pem.key_len, err) < 0)
		return bh_err_wrap(err, "%s", t->tls.key);
	return 0;
}

/* The bundle, if -c names it (its exported Name): CI can then name a
 * protected context exactly without any file.  1 when it was taken. */
static int bundle_named(const char *name, const struct ctx_env *env, struct ctx_target *out,
                        struct bh_err *err)
{
	if (env->berth_context_bundle == NULL || env->berth_context_bundle[0] == '\0')
		return 0;
	if (ctx_bundle_load(env->berth_context_bundle, out, err) < 0)
		return -1;
	if (strcmp(out->name, name) == 0) {
		free(out->reason);
		out->reason = bh_strdup("from --context, found in BERTH_CONTEXT_BUNDLE");
		return 1;
	}
	ctx_target_free(out);
	return 0;
}

/* A bare host from -H or BERTH_HOST; tls_dir holds ca.pem, cert.pem, key.pem. */
static int from_host(const char *label, const char *host, const char *tls_dir, enum ctx_source src,
                     struct ctx_target *out, struct bh_err *err)
{
	if (ctx_host_check(host, err) < 0)
		return bh_err_wrap(err, "%s", label);
	out->name = bh_strdup(label);
	out->host = bh_strdup(host);
	out->source = src;
	out->reason = bh_asprintf("from %s", label);
	if (!ctx_host_is_tcp(host))
		return 0; /* the unix socket is guarded by its file mode, not TLS */
	if (tls_dir == NULL)
		return bh_err_set(err, EINVAL,
		                  "%s needs TLS material: --tls-dir or BERTH_CERT_PATH", host);
	out->tls.ca = bh_path_join(tls_dir, "ca.pem");
	out->tls.cert = bh_path_join(tls_dir, "cert.pem");
	out->tls.key = bh_path_join(tls_dir, "key.pem");
	if (!ctx_plat_is_readable(out->tls.ca) || !ctx_plat_is_readable(out->tls.cert) ||
	    !ctx_plat_is_readable(out->tls.key))
		return bh_err_set(err, ENOENT,
		                  "TLS directory %s: needs readable ca.pem, cert.pem "
		                  "and key.pem",
		                  tls_dir);
	return 0;
}

static int from_context(const char *config_dir, const char *name, enum ctx_source src, char *reason,
                        struct ctx_target *out, struct bh_err *err)
{
	struct ctx_meta m;

	out->reason = reason;
	out->source = src;
	if (ctx_load(config_dir, name, &m, err) < 0)
		return -1;
	out->name = steal_pointer(&m.name);
	out->host = steal_pointer(&m.host);
	out->tls = m.tls;
	out->is_protected = m.is_protected;
	memset(&m.tls, 0, sizeof(m.tls));
	ctx_meta_free(&m);
	if (ctx_host_is_tcp(out->host) && out->tls.ca == NULL)
		return bh_err_set(err, ENOENT,
		                  "context \"%s\": %s needs TLS material, and the "
		                  "context has none (berth context update)",
		                  out->name, out->host);
	return 0;
}

static int from_config(const char *config_dir, struct ctx_target *out, struct bh_err *err)
{
	cleanup_free char *current = NULL;

	if (ctx_current(config_dir, &current, err) < 0)
		return -1;
	if (strcmp(current, CTX_DEFAULT_NAME) == 0)
		return from_context(config_dir, current, CTX_SRC_DEFAULT,
		                    bh_strdup("no context selected"), out, err);
	return from_context(config_dir, current, CTX_SRC_CONFIG,
	                    bh_asprintf("current context in %s/config.json", config_dir), out, err);
}

static int resolve(const char *config_dir, const struct ctx_flags *f, const struct ctx_env *env,
                   struct ctx_target *out, struct bh_err *err)
{
	/* First match wins, also between -H and -c (as the README promises). */
	if (f->host != NULL)
		return from_host("-H", f->host, f->tls_dir ? f->tls_dir : env->berth_cert_path,
		                 CTX_SRC_FLAG_HOST, out, err);
	if (f->tls_dir != NULL)
		return bh_err_set(err, EINVAL, "--tls-dir goes with -H");
	if (f->context != NULL) {
		int r = bundle_named(f->context, env, out, err);
		if (r != 0)
			return r < 0 ? -1 : 0;
		return from_context(config_dir, f->context, CTX_SRC_FLAG_CONTEXT,
		                    bh_strdup("from --context"), out, err);
	}
	/* CI sets the bundle on purpose: it wins over the other variables. */
	if (env->berth_context_bundle != NULL && env->berth_context_bundle[0] != '\0')
		return ctx_bundle_load(env->berth_context_bundle, out, err);
	if (env->berth_host != NULL && env->berth_host[0] != '\0')
		return from_host("BERTH_HOST", env->berth_host, env->berth_cert_path,
		                 CTX_SRC_ENV_HOST, out, err);
	if (env->berth_context != NULL && env->berth_context[0] != '\0')
		return from_context(config_dir, env->berth_context, CTX_SRC_ENV_CONTEXT,
		                    bh_strdup("from BERTH_CONTEXT"), out, err);
	return from_config(config_dir, out, err);
}

int ctx_resolve(const char *config_dir, const struct ctx_flags *flags, const struct ctx_env *env,
                struct ctx_target *out, struct bh_err *err)
{
	memset(out, 0, sizeof(*out));
	if (resolve(config_dir, flags, env, out, err) < 0 || ctx_target_read_pem(out, err) < 0) {
		ctx_target_free(out);
		return -1;
	}
	return 0;
}
