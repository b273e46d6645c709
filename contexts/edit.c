/* Changing the store: create, update, remove, and the staged commit that
 * makes a new context appear atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certs/certs.h"
#include "contexts/contexts-internal.h"

static int check_readable(const char *what, const char *path, struct bh_err *err)
{
	if (!ctx_plat_is_readable(path))
		return bh_err_sys(err, errno, "%s %s", what, path);
	return 0;
}

int ctx_check_tls_files(const char *ca, const char *cert, const char *key, struct bh_err *err)
{
	struct pki_cert_info info;

	if (check_readable("CA file", ca, err) < 0 || check_readable("cert file", cert, err) < 0 ||
	    check_readable("key file", key, err) < 0)
		return -1;
	if (pki_cert_info_from_file(ca, &info, err) < 0)
		return bh_err_wrap(err, "CA file %s", ca);
	pki_cert_info_free(&info);
	return pki_check_pair(cert, key, err);
}

/* Resolves --tls-dir or --ca/--cert/--key into three paths (owned). */
static int src_paths(const struct ctx_tls_src *src, struct ctx_tls *out, struct bh_err *err)
{
	bool any_file = src->ca || src->cert || src->key;

	memset(out, 0, sizeof(*out));
	if (src->dir != NULL && any_file)
		return bh_err_set(err, EINVAL, "give either a TLS directory or --ca/--cert/--key");
	if (src->dir != NULL) {
		out->ca = bh_path_join(src->dir, "ca.pem");
		out->cert = bh_path_join(src->dir, "cert.pem");
		out->key = bh_path_join(src->dir, "key.pem");
		return 0;
	}
	if (!any_file)
		return 0;
	if (!src->ca || !src->cert || !src->key)
		return bh_err_set(err, EINVAL, "--ca, --cert and --key go together");
	out->ca = bh_strdup(src->ca);
	out->cert = bh_strdup(src->cert);
	out->key = bh_strdup(src->key);
	return 0;
}

static int material_read(const struct ctx_tls_src *src, struct ctx_material *m, struct bh_err *err)
{
	struct ctx_tls p;
	int r = -1;

	memset(m, 0, sizeof(*m));
	if (src_paths(src, &p, err) < 0)
		return -1;
	if (p.ca == NULL)
		return 0;
	if (ctx_check_tls_files(p.ca, p.cert, p.key, err) < 0)
		goto out;
	if (bh_read_file(p.ca, CTX_FILE_MAX, &m->ca.data, &m->ca.len, err) < 0 ||
	    bh_read_file(p.cert, CTX_FILE_MAX, &m->cert.data, &m->cert.len, err) < 0 ||
	    bh_read_file(p.key, CTX_FILE_MAX, &m->key.data, &m->key.len, err) < 0) {
		ctx_material_free(m);
		goto out;
	}
	m->present = true;
	r = 0;
out:
	ctx_tls_free(&p);
	return r;
}

static int write_tls(const char *dir, const struct ctx_material *m, struct bh_err *err)
{
	cleanup_free char *tdir = bh_path_join(dir, "tls");
	cleanup_free char *ca = bh_path_join(tdir, "ca.pem");
	cleanup_free char *cert = bh_path_join(tdir, "cert.pem");
	cleanup_free char *key = bh_path_join(tdir, "key.pem");

	if (bh_mkdir_p(tdir, CTX_MODE_DIR, err) < 0 ||
	    bh_write_file_atomic(key, m->key.data, m->key.len, CTX_MODE_SECRET, err) < 0 ||
	    bh_write_file_atomic(cert, m->cert.data, m->cert.len, CTX_MODE_PUBLIC, err) < 0 ||
	    bh_write_file_atomic(ca, m->ca.data, m->ca.len, CTX_MODE_PUBLIC, err) < 0)
		return -1;
	return 0;
}

static int check_written(const char *dir, struct bh_err *err)
{
	cleanup_free char *tdir = bh_path_join(dir, "tls");
	cleanup_free char *ca = bh_path_join(tdir, "ca.pem");
	cleanup_free char *cert = bh_path_join(tdir, "cert.pem");
	cleanup_free char *key = bh_path_join(tdir, "key.pem");

	return ctx_check_tls_files(ca, cert, key, err);
}

static int stage(const char *tmp, const char *meta_json, const struct ctx_material *m,
                 bool check_pair, struct bh_err *err)
{
	cleanup_free char *meta = bh_path_join(tmp, "meta.json");

	if (bh_write_file_atomic(meta, meta_json, strlen(meta_json), CTX_MODE_PUBLIC, err) < 0)
		return -1;
	if (!m->present)
		return 0;
	if (write_tls(tmp, m, err) < 0)
		return -1;
	return check_pair ? check_written(tmp, err) : 0;
}

int ctx_store_commit(const char *config_dir, const char *name, const char *meta_json,
                     const struct ctx_material *m, bool check_pair, struct bh_err *err)
{
	cleanup_free char *cdir = ctx_contexts_dir(config_dir);
	cleanup_free char *dst = ctx_dir(config_dir, name);
	cleanup_free char *tmp = NULL;
	struct bh_err ignored;

	if (bh_mkdir_p(cdir, CTX_MODE_DIR, err) < 0)
		return -1;
	if (bh_path_exists(dst))
		return bh_err_set(err, EEXIST, "context \"%s\" already exists", name);
	if (ctx_plat_make_temp_dir(cdir, &tmp, err) < 0)
		return -1;
	if (stage(tmp, meta_json, m, check_pair, err) < 0 ||
	    ctx_plat_rename_dir(tmp, dst, err) < 0) {
		bh_rm_rf(tmp, &ignored);
		return -1;
	}
	return 0;
}

static int check_description(const char *d, struct bh_err *err)
{
	if (d == NULL)
		return 0;
	if (strlen(d) > CTX_DESCRIPTION_MAX)
		return bh_err_set(err, EINVAL, "description longer than %d bytes",
		                  CTX_DESCRIPTION_MAX);
	for (const char *p = d; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bh_err_set(err, EINVAL, "description holds a control character");
	return 0;
}

static int need_tls(const char *host, bool have, struct bh_err *err)
{
	if (ctx_host_is_tcp(host) && !have)
		return bh_err_set(err, EINVAL,
		                  "%s needs TLS material: --tls-dir or --ca/--cert/--key", host);
	return 0;
}

int ctx_create(const char *config_dir, const struct ctx_create_opts *o, struct bh_err *err)
{
	struct ctx_material m;
	struct ctx_meta lm = {0}; /* holds the labels */
	char created[40];
	cleanup_free char *meta = NULL;
	cleanup_free char *dst = NULL;
	int r;

	if (ctx_name_check_new(o->name, err) < 0 || ctx_host_check(o->host, err) < 0 ||
	    check_description(o->description, err) < 0)
		return bh_err_wrap(err, "create context");
	dst = ctx_dir(config_dir, o->name);
	if (bh_path_exists(dst))
		return bh_err_set(err, EEXIST, "create context: context \"%s\" already exists",
		                  o->name);
	if (ctx_labels_apply(&lm, o->labels, o->nlabels, false, err) < 0) {
		ctx_labels_free(&lm);
		return bh_err_wrap(err, "create context %s", o->name);
	}
	if (material_read(&o->tls, &m, err) < 0) {
		ctx_labels_free(&lm);
		return bh_err_wrap(err, "create context %s", o->name);
	}
	if (need_tls(o->host, m.present, err) < 0) {
		ctx_material_free(&m);
		ctx_labels_free(&lm);
		return bh_err_wrap(err, "create context %s", o->name);
	}
	bh_rfc3339_now(created);
	meta = ctx_meta_dump(&(struct ctx_meta){.name = (char *)o->name,
	                                        .description = (char *)o->description,
	                                        .host = (char *)o->host,
	                                        .created = created,
	                                        .is_protected = o->is_protected,
	                                        .labels = lm.labels,
	                                        .nlabels = lm.nlabels});
	r = ctx_store_commit(config_dir, o->name, meta, &m, false, err);
	ctx_material_free(&m);
	ctx_labels_free(&lm);
	return r < 0 ? bh_err_wrap(err, "create context %s", o->name) : 0;
}

static int apply_update(const char *config_dir, struct ctx_meta *cur,
                        const struct ctx_update_opts *o, struct bh_err *err)
{
	cleanup_free char *dir = ctx_dir(config_dir, cur->name);
	cleanup_free char *path = bh_path_join(dir, "meta.json");
	cleanup_free char *meta = NULL;
	struct ctx_material m;
	int r = -1;

	if (material_read(&o->tls, &m, err) < 0)
		return -1;
	if (need_tls(cur->host, m.present || cur->tls.ca != NULL, err) < 0)
		goto out;
	/* Each file is replaced atomically, the three together are not: a
	 * crash in between can pair a new key with the old cert.  The next
	 * connection then fails with a TLS error, and the same update run
	 * again repairs it. */
	if (m.present && write_tls(dir, &m, err) < 0)
		goto out;
	meta = ctx_meta_dump(cur);
	r = bh_write_file_atomic(path, meta, strlen(meta), CTX_MODE_PUBLIC, err);
out:
	ctx_material_free(&m);
	return r;
}

static void replace_str(char **dst, const char *src)
{
	if (src == NULL)
		return;
	free(*dst);
	*dst = bh_strdup(src);
}

int ctx_update(const char *config_dir, const char *name, const struct ctx_update_opts *o,
               struct bh_err *err)
{
	struct ctx_meta cur;
	int r;

	if (ctx_name_check_new(name, err) < 0)
		return bh_err_wrap(err, "update context");
	if ((o->host && ctx_host_check(o->host, err) < 0) ||
	    check_description(o->description, err) < 0)
		return bh_err_wrap(err, "update context %s", name);
	if (ctx_load(config_dir, name, &cur, err) < 0)
		return -1;
	replace_str(&cur.host, o->host);
	replace_str(&cur.description, o->description);
	if (o->protect != CTX_PROTECT_KEEP)
		cur.is_protected = o->protect == CTX_PROTECT_ON;
	if (ctx_labels_apply(&cur, o->labels, o->nlabels, true, err) < 0) {
		ctx_meta_free(&cur);
		return bh_err_wrap(err, "update context %s", name);
	}
	r = apply_update(config_dir, &cur, o, err);
	ctx_meta_free(&cur);
	return r < 0 ? bh_err_wrap(err, "update context %s", name) : 0;
}
