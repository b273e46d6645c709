/* contexts: private helpers shared by the store, the archive code and the
 * platform layer.  Not for use outside contexts/. */
#ifndef BERTH_CONTEXTS_INTERNAL_H
#define BERTH_CONTEXTS_INTERNAL_H

#include <jansson.h>

#include "contexts/contexts.h"

/* File modes.  A Windows port maps these to ACLs in platform.c. */
#define CTX_MODE_DIR    0700
#define CTX_MODE_SECRET 0600 /* keys, and exported archives that hold them */
#define CTX_MODE_PUBLIC 0644 /* meta.json, config.json, ca.pem, cert.pem */

#define CTX_ARCHIVE_MAX (8 * 1024 * 1024) /* a whole exported context */

/* ---- platform.c: the one file a Windows port replaces ----------------- */
/* <home>/.berth */
int ctx_plat_default_config_dir(const struct ctx_env *env, char **out, struct bh_err *err);
/* Creates a fresh private directory parent/.tmp-XXXXXX; caller frees *out. */
int ctx_plat_make_temp_dir(const char *parent, char **out, struct bh_err *err);
/* Renames a directory into place; fails with EEXIST if to exists. */
int ctx_plat_rename_dir(const char *from, const char *to, struct bh_err *err);
/* Reads fd 0 (stdin) up to max bytes. */
int ctx_plat_read_stdin(size_t max, char **out, size_t *out_len, struct bh_err *err);
bool ctx_plat_is_readable(const char *path);

/* ---- store.c ------------------------------------------------------------ */
/* TLS material held in memory; the key is wiped by ctx_material_free. */
struct ctx_pem {
	char *data;
	size_t len;
};
struct ctx_material {
	bool present;
	struct ctx_pem ca, cert, key;
};
void ctx_material_free(struct ctx_material *m);

char *ctx_contexts_dir(const char *config_dir);
char *ctx_dir(const char *config_dir, const char *name);

/* Parses a JSON object from path (at most CTX_FILE_MAX); the error names the
 * file and jansson's line and column.  ENOENT is reported as such. */
int ctx_json_load_file(const char *path, json_t **out, struct bh_err *err);
/* Parses a meta.json document; label names it in errors. */
int ctx_meta_parse(json_t *doc, const char *label, struct ctx_meta *out, struct bh_err *err);
/* meta.json for m (its name, description, host, created and flags). */
char *ctx_meta_dump(const struct ctx_meta *m);

/* Writes a complete context into a temp dir in the store and renames it to
 * contexts/NAME.  check_pair validates the written cert/key/CA there (import:
 * the material came from an archive, not from checked files). */
int ctx_store_commit(const char *config_dir, const char *name, const char *meta_json,
                     const struct ctx_material *m, bool check_pair, struct bh_err *err);
/* Validates ca/cert/key files: readable, CA parses, cert and key match. */
int ctx_check_tls_files(const char *ca, const char *cert, const char *key, struct bh_err *err);

/* ---- labels.c ------------------------------------------------------------- */
/* "Labels" of a meta.json document into m (checked; label names the file). */
int ctx_labels_parse(json_t *doc, const char *label, struct ctx_meta *m, struct bh_err *err);
void ctx_labels_dump(const struct ctx_meta *m, json_t *doc);
/* Applies "KEY=VALUE" settings; with allow_remove "KEY=" removes KEY. */
int ctx_labels_apply(struct ctx_meta *m, const char *const *kv, size_t n, bool allow_remove,
                     struct bh_err *err);
void ctx_labels_free(struct ctx_meta *m);

/* ---- bundle.c -------------------------------------------------------------- */
/* A PEM private key that is not encrypted (nothing may ask for a pass phrase). */
int ctx_key_pem_check(const char *key, size_t len, struct bh_err *err);

/* ---- archive.c ------------------------------------------------------------ */
/* Parses an exported context in memory and checks every member; writes
 * nothing (ctx_import commits the result; the fuzz target stops here). */
int ctx_archive_parse(const char *data, size_t len, struct ctx_meta *meta, struct ctx_material *m,
                      struct bh_err *err);

#endif
