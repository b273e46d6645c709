/* Private to runtime/registry*.c: one registry session (a curl handle, the
 * scheme found by the probe, the current Authorization) and its requests. */
#ifndef BERTH_REGISTRY_INTERNAL_H
#define BERTH_REGISTRY_INTERNAL_H

#include <stdio.h>

#include "runtime/rt-image-internal.h"
#include "runtime/rt-registry.h"

#define REG_HDR_MAX  2048        /* one captured response header */
#define REG_ERR_BODY (64u << 10) /* an error reply kept for its message */

struct reg_sess {
	void *curl;       /* CURL * */
	char *host;       /* "127.0.0.1:5000" */
	char *base;       /* "https://127.0.0.1:5000" after the probe */
	char *ca_file;    /* CERTS_D/HOST/ca.crt when it exists */
	char *repo;       /* scope of the token */
	bool push;        /* token scope: pull,push */
	bool insecure_ok; /* plain HTTP allowed (loopback or --insecure-registry) */
	const struct rt_reg_auth *auth;
	char *authz; /* "Authorization: ..." line: a secret */
	struct rt_reg_challenge ch;
	bool have_ch;
	volatile bool *cancel;
};

/* The sink gets 2xx body bytes; < 0 stops the transfer (err filled). */
typedef int (*reg_sink_fn)(void *arg, const void *data, size_t len, struct bh_err *err);

struct reg_rq {
	const char *method;
	const char *url; /* "/v2/..." (on base) or an absolute http(s) URL */
	const char *accept;
	const char *content_type;
	const void *data; /* upload from memory ... */
	size_t len;
	FILE *file;          /* ... or len bytes from a file */
	struct bh_buf *body; /* 2xx body, bounded by its max; or: */
	reg_sink_fn sink;
	void *sink_arg;
	int64_t range_from; /* > 0: Range: bytes=N- */
	bool follow;        /* follow redirects (blob GETs) */
	/* results */
	long status;
	char location[REG_HDR_MAX];
	char ctype[256];
	char digest[80];
	char www_auth[REG_HDR_MAX];
	int64_t clen;
	struct bh_buf errbody; /* a non-2xx body (freed by reg_rq_free) */
};
void reg_rq_free(struct reg_rq *rq);

int reg_sess_open(struct reg_sess *s, const char *host, const char *repo, bool push,
                  const struct rt_reg_opts *o, struct bh_err *err);
void reg_sess_close(struct reg_sess *s);
/* A second session for another thread, with the same base and token. */
int reg_sess_clone(const struct reg_sess *from, struct reg_sess *to, struct bh_err *err);
/* GET /v2/ (https, or http when allowed and the registry speaks no TLS),
 * then authenticates when it answers 401. */
int reg_sess_connect(struct reg_sess *s, struct bh_err *err);
/* One request; a 401 gets one new token and a retry.  Transport errors are
 * < 0; any HTTP status is a success (rq->status). */
int reg_do(struct reg_sess *s, struct reg_rq *rq, struct bh_err *err);
/* The registry's {"errors":[{code,message}]} as "code: message", or
 * "HTTP <status>". */
void reg_error_text(const struct reg_rq *rq, char *out, size_t outlen);
/* err from a failed status: ENOENT for 404, EACCES for 401/403, else EIO. */
int reg_status_err(const struct reg_rq *rq, struct bh_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The distribution record of image hex (registry_store.c). */
int reg_record_read(struct rt_store *st, const char *hex, json_t **rec, struct bh_err *err);
/* Merges a repo digest and a source repository into the record (caller
 * holds st->lock). */
int reg_record_update(struct rt_store *st, const char *hex, const char *manifest_digest,
                      const char *media_type, const char *repo_digest, const char *source,
                      struct bh_err *err);
char *reg_blob_path(struct rt_store *st, const char *hex);
/* Unpacks the compressed layer in file into a new temp dir under tmp/,
 * verifying diff_hex; *tmpdir is the dir holding root/ (for
 * rt_store_layer_commit). */
int reg_layer_unpack(struct rt_store *st, const char *file, const char *diff_hex, char **tmpdir,
                     uint64_t *size, struct bh_err *err);

/* Loaded, imported or committed images have no registry manifest: builds
 * a Docker v2 schema 2 one (uncompressed layers from their kept layer.tar,
 * registry_manifest.c), stores it and records it as if pulled. */
int reg_manifest_build(struct rt_store *st, const char *id, struct bh_err *err);

/* Garbage (registry_gc.c; caller holds st->lock): removes blobs no present
 * image references (its config; its record's manifest and the blobs that
 * names) and records of absent images, adding their bytes to *reclaimed
 * (may be NULL).  Does nothing while the store is held (a pull runs). */
int reg_gc_sweep(struct rt_store *st, uint64_t *reclaimed, struct bh_err *err);
/* Appends one line per orphan blob or record to problems. */
void reg_gc_check(struct rt_store *st, json_t *problems);

#endif
