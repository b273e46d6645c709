/* contexts: the berth client's context store (named daemons with their TLS
 * material under $BERTH_CONFIG or ~/.berth) and the resolution of which daemon
 * a command talks to.  Trusts nothing it reads: config files and imported
 * archives may be hostile.  Portable: POSIX today, platform bits in platform.c. */
#ifndef BERTH_CONTEXTS_H
#define BERTH_CONTEXTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"

#define CTX_DEFAULT_NAME    "default" /* built in: the local unix socket */
#define CTX_DEFAULT_HOST    "unix:///run/berth/berthd.sock"
#define CTX_NAME_MAX        64
#define CTX_FILE_MAX        (1024 * 1024) /* any meta, config or PEM file */
#define CTX_DESCRIPTION_MAX 1024

/* The environment, passed in rather than read so resolution stays pure.
 * ctx_env_from_process() fills it from getenv(); NULL fields are unset. */
struct ctx_env {
	const char *berth_config;    /* BERTH_CONFIG */
	const char *home;            /* HOME (USERPROFILE on Windows) */
	const char *berth_host;      /* BERTH_HOST */
	const char *berth_cert_path; /* BERTH_CERT_PATH: ca.pem, cert.pem, key.pem */
	const char *berth_context;   /* BERTH_CONTEXT */
	const char *berth_context_bundle; /* BERTH_CONTEXT_BUNDLE: base64 of an export */
};
void ctx_env_from_process(struct ctx_env *env);

/* $BERTH_CONFIG, else <home>/.berth.  Caller frees *out. */
int ctx_config_dir(const struct ctx_env *env, char **out, struct bh_err *err);

/* ^[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,63}$; "default" is valid but reserved. */
bool ctx_name_is_valid(const char *name);
/* Valid and not "default": a name that can be created or removed. */
int ctx_name_check_new(const char *name, struct bh_err *err);

/* Checks a daemon URL: tcp://HOST:PORT (HOST may be [v6]) or unix:///abs/path. */
int ctx_host_check(const char *host, struct bh_err *err);
bool ctx_host_is_tcp(const char *host);

/* TLS file paths.  All NULL for a unix host without TLS material. */
struct ctx_tls {
	char *ca;
	char *cert;
	char *key;
};
void ctx_tls_free(struct ctx_tls *tls);

/* A label of a context (env=prod): selected with -c @env=prod. */
#define CTX_LABELS_MAX      32
#define CTX_LABEL_KEY_MAX   63
#define CTX_LABEL_VALUE_MAX 127
struct ctx_label {
	char *key;
	char *value;
};

/* One context as stored in contexts/NAME/meta.json. */
struct ctx_meta {
	char *name;
	char *description; /* "" if none */
	char *host;
	char *created;      /* RFC 3339, "" for the default context */
	struct ctx_tls tls; /* absolute paths inside the store, or all NULL */
	/* "Protected" in meta.json: destructive verbs need -c NAME (client/guard.c). */
	bool is_protected;
	/* "Labels" in meta.json, sorted by key (contexts/labels.c). */
	struct ctx_label *labels;
	size_t nlabels;
};
void ctx_meta_free(struct ctx_meta *m);

/* Loads one context; "default" yields the built-in one.  An unknown name
 * fails with code ENOENT and "context \"x\" not found (berth context ls lists them)". */
int ctx_load(const char *config_dir, const char *name, struct ctx_meta *out, struct bh_err *err);

/* All contexts, "default" first, then by name.  Caller frees with ctx_list_free. */
int ctx_list(const char *config_dir, struct ctx_meta **out, size_t *n, struct bh_err *err);
void ctx_list_free(struct ctx_meta *list, size_t n);

/* TLS material given either as a directory (ca.pem, cert.pem, key.pem) or as
 * three files; everything NULL means none. */
struct ctx_tls_src {
	const char *dir;
	const char *ca;
	const char *cert;
	const char *key;
};

struct ctx_create_opts {
	const char *name;
	const char *description; /* may be NULL */
	const char *host;
	struct ctx_tls_src tls;
	bool is_protected;
	const char *const *labels; /* "KEY=VALUE" each */
	size_t nlabels;
};
/* Validates (name, host, files readable, cert/key pair) and copies the TLS
 * material into the store; the new context appears atomically or not at all. */
int ctx_create(const char *config_dir, const struct ctx_create_opts *o, struct bh_err *err);

/* NULL fields (and an empty tls source) are left unchanged. */
enum ctx_protect { CTX_PROTECT_KEEP = 0, CTX_PROTECT_ON, CTX_PROTECT_OFF };
struct ctx_update_opts {
	const char *description;
	const char *host;
	struct ctx_tls_src tls;
	enum ctx_protect protect;
	const char *const *labels; /* "KEY=VALUE" sets, "KEY=" removes */
	size_t nlabels;
};
int ctx_update(const char *config_dir, const char *name, const struct ctx_update_opts *o,
               struct bh_err *err);

/* Refuses the current context (config.json) unless force, which also resets
 * the current context to "default". */
int ctx_remove(const char *config_dir, const char *name, bool force, struct bh_err *err);

/* currentContext from config.json, "default" when unset.  Caller frees. */
int ctx_current(const char *config_dir, char **out, struct bh_err *err);
/* Makes name (which must exist) the current context. */
int ctx_use(const char *config_dir, const char *name, struct bh_err *err);

/* A tar with meta.json and tls/{ca,cert,key}.pem.  file "-" = stdout; a file
 * is written atomically with mode 0600 (it holds the key). */
int ctx_export(const char *config_dir, const char *name, const char *file, struct bh_err *err);
/* Reads such a tar (file "-" = stdin).  Only the known member names are
 * accepted; anything else (other names, links, devices, oversized members)
 * is refused and nothing is written. */
int ctx_import(const char *config_dir, const char *name, const char *file, struct bh_err *err);

/* ---- labels.c, select.c: labels and -c selections ------------------------ */
/* Key: 1-63 of a-z A-Z 0-9 _ . - / starting with a letter or digit; value:
 * 1-127 of a-z A-Z 0-9 _ . - / : + (never , = @ or glob characters). */
int ctx_label_check(const char *key, const char *value, struct bh_err *err);
/* The value of key on m, NULL when m has no such label. */
const char *ctx_label_get(const struct ctx_meta *m, const char *key);

/* true when spec is more than one exact name: a comma list, a glob (* ? [)
 * or a label selector (@KEY=VALUE, @KEY). */
bool ctx_selection_is_pattern(const char *spec);
/* Shell-style matching of s against * ? [a-z] [!a-z] (no escapes). */
bool ctx_glob_match(const char *pattern, const char *s);
/* The contexts spec selects, in store order (default first, then by name),
 * each once; named[i] says whether items[i] was named exactly in the list
 * (not only matched by a glob or a label).  A term matching nothing fails
 * with ENOENT naming it; globs and labels never select "default". */
struct ctx_selection {
	struct ctx_meta *items;
	bool *named;
	size_t n;
};
int ctx_select(const char *config_dir, const char *spec, struct ctx_selection *out,
               struct bh_err *err);
void ctx_selection_free(struct ctx_selection *sel);

/* ---- resolution --------------------------------------------------------
 * First match wins: -H (+ --tls-dir) > -c > BERTH_CONTEXT_BUNDLE >
 * BERTH_HOST (+ BERTH_CERT_PATH) > BERTH_CONTEXT > currentContext in
 * config.json > the local unix socket.  -c NAME takes the bundle when the
 * bundle's context is called NAME. */
struct ctx_flags {
	const char *host;    /* -H/--host */
	const char *tls_dir; /* --tls-dir */
	const char *context; /* -c/--context */
};

enum ctx_source {
	CTX_SRC_FLAG_HOST,
	CTX_SRC_FLAG_CONTEXT,
	CTX_SRC_ENV_HOST,
	CTX_SRC_ENV_CONTEXT,
	CTX_SRC_CONFIG,
	CTX_SRC_DEFAULT,
	CTX_SRC_ENV_BUNDLE, /* BERTH_CONTEXT_BUNDLE (also -c NAME naming the bundle) */
};

/* The TLS material itself: what connections use.  Read once from the
 * files at resolution, or decoded from BERTH_CONTEXT_BUNDLE (then there are
 * no files at all).  ctx_target_free wipes the key. */
struct ctx_tls_pem {
	char *ca, *cert, *key;
	size_t ca_len, cert_len, key_len;
};

struct ctx_target {
	char *name;         /* the context, or "-H" / "BERTH_HOST" for a bare host */
	char *host;         /* tcp://H:P or unix:///path */
	struct ctx_tls tls; /* all set for tcp, all NULL for unix without TLS */
	enum ctx_source source;
	char *reason; /* "from BERTH_CONTEXT", "current context in /x/config.json", ... */
	bool is_protected; /* the context's flag (client/guard.c) */
	struct ctx_tls_pem pem; /* set whenever tls is (and for a bundle, alone) */
};
void ctx_target_free(struct ctx_target *t);
/* Reads the files named in t->tls into t->pem (ctx_resolve does it). */
int ctx_target_read_pem(struct ctx_target *t, struct bh_err *err);

/* BERTH_CONTEXT_BUNDLE: the base64 text of `berth context export`'s tar,
 * used from memory and never written anywhere.  Checked like an import. */
int ctx_bundle_load(const char *b64, struct ctx_target *out, struct bh_err *err);

int ctx_resolve(const char *config_dir, const struct ctx_flags *flags, const struct ctx_env *env,
                struct ctx_target *out, struct bh_err *err);

#endif
