/* Registry client: pull from and push to OCI distribution / Docker Registry
 * v2 registries with libcurl.  Trusts nothing a registry sends: every
 * manifest, config and blob is size-bounded and its sha256 verified while it
 * streams; layers are unpacked through rt_layer_unpack().  Credentials come
 * from the caller (X-Registry-Auth), live only in memory and are never logged.
 *
 * Transport: HTTPS with the system CAs plus CERTS_D/HOST:PORT/ca.crt; plain
 * HTTP only for loopback registries and those listed as insecure, and only
 * when the registry does not speak TLS (certificate errors never fall back).
 *
 * Store: a pulled image keeps its manifest and its compressed layer blobs in
 * blobs/sha256 (so a push sends the very same bytes and digest), and a record
 * DATA_ROOT/image/distribution/sha256/<image hex> {"manifest", "mediaType",
 * "repoDigests", "sources"}.  Layers commit one by one as they complete (a
 * later pull reuses them); the config, the image and its tag only when all
 * are there, so an interrupted pull registers nothing.  A blob transfer cut
 * mid-way resumes with Range (the partial file and its running hash are
 * kept); partial blobs of a daemon that died are swept with tmp/. */
#ifndef BERTH_RT_REGISTRY_H
#define BERTH_RT_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/common.h"

struct rt_store;

#define RT_REG_MAX_MANIFEST (4u << 20)  /* manifests, indexes, configs */
#define RT_REG_MAX_TOKEN    (64u << 10) /* token responses */
#define RT_REG_MAX_REDIRS   5
#define RT_REG_PARALLEL     3 /* layers downloaded at once */
#define RT_REG_RESUMES      3 /* Range retries of a cut blob transfer */

#define RT_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define RT_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define RT_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define RT_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* ---- references ---------------------------------------------------------- */
struct rt_reg_ref {
	char *domain; /* "127.0.0.1:5000", "docker.io" */
	char *host;   /* where to connect: "registry-1.docker.io" for docker.io */
	char *repo;   /* "library/busybox" */
	char *name;   /* "docker.io/library/busybox" (normalised, no tag) */
	char *tag;    /* "latest" unless a digest was given; NULL then */
	char *digest; /* "sha256:<hex>" or NULL */
};
/* "busybox", "127.0.0.1:5000/x:1", "x@sha256:<hex>"; a digest wins over a
 * tag.  EINVAL for anything rt_image_ref_normalize refuses. */
int rt_reg_ref_parse(const char *ref, struct rt_reg_ref *out, struct bh_err *err);
void rt_reg_ref_free(struct rt_reg_ref *r);

/* ---- WWW-Authenticate ------------------------------------------------------ */
struct rt_reg_challenge {
	char scheme[16]; /* "Bearer" or "Basic" */
	char realm[1024];
	char service[256];
	char scope[512];
};
/* Parses `Bearer realm="...",service="...",scope="..."`; -1 if malformed
 * or a value does not fit. */
int rt_reg_challenge_parse(const char *hdr, struct rt_reg_challenge *out);

/* ---- platforms --------------------------------------------------------------- */
struct rt_platform {
	char os[32];
	char arch[32];
	char variant[32]; /* "" = any */
};
/* "linux/arm64/v8", "linux/amd64"; NULL or "" is the host's.  EINVAL. */
int rt_platform_parse(const char *s, struct rt_platform *p, struct bh_err *err);
/* Does an index entry's "platform" object fit want?  (amd64 ignores
 * variants; arm64's empty variant means v8.) */
bool rt_platform_match(json_t *platform, const struct rt_platform *want);

/* ---- manifests ------------------------------------------------------------------ */
struct rt_reg_desc {
	char digest[72]; /* "sha256:<hex>" */
	char hex[65];
	int64_t size;
	char media_type[128];
};
/* Is this media type (or, lacking one, this document) an index / list? */
bool rt_reg_is_index(const char *media_type, json_t *doc);
/* The digest of the entry of index that fits p (first match); ENOENT. */
int rt_reg_index_pick(json_t *index, const struct rt_platform *p, struct rt_reg_desc *out,
                      struct bh_err *err);
/* An image manifest (schemaVersion 2): config and layers (*layers: caller
 * frees).  EINVAL for schema 1, missing fields, bad digests, > 500 layers. */
int rt_reg_manifest_parse(json_t *doc, struct rt_reg_desc *config, struct rt_reg_desc **layers,
                          size_t *n, struct bh_err *err);

/* ---- credentials ------------------------------------------------------------------ */
struct rt_reg_auth {
	char *username;
	char *password; /* or an identity token */
	char *serveraddress;
};
/* Decodes an X-Registry-Auth value (base64url of a JSON object); "" or
 * "{}" gives empty credentials.  EINVAL. */
int rt_reg_auth_decode(const char *header, struct rt_reg_auth *out, struct bh_err *err);
/* Wipes and frees the fields. */
void rt_reg_auth_clear(struct rt_reg_auth *a);

/* May host ("h:port") be reached over plain HTTP: loopback, or listed in
 * insecure (NULL-terminated "host" or "host:port" entries)? */
bool rt_reg_plain_http_allowed(const char *host, const char *const *insecure);

/* ---- operations (each blocks; run on a worker thread) ------------------------------- */
struct rt_reg_opts {
	const char *certs_d;         /* CERTS_D/HOST:PORT/ca.crt; NULL = /etc/berth/certs.d */
	const char *const *insecure; /* NULL-terminated "host[:port]" list, may be NULL */
	const struct rt_reg_auth *auth;
	const char *platform;  /* pull: NULL = the host's */
	volatile bool *cancel; /* set by the caller to stop (client left) */
};
/* Progress events in Docker's JSON-lines shape ({"status", "id",
 * "progressDetail"}); event is borrowed.  Called from several threads. */
typedef void (*rt_reg_progress_fn)(void *arg, json_t *event);

/* Pulls ref into the store and tags it (a digest reference tags nothing).
 * err names the registry and reference: "manifest for 127.0.0.1:5000/x:nope
 * not found: manifest unknown"; ENOENT, EACCES (unauthorized), EIO. */
int rt_registry_pull(struct rt_store *s, const char *ref, const struct rt_reg_opts *o,
                     rt_reg_progress_fn fn, void *arg, struct bh_err *err);
/* Pushes the local image ref to its registry, blobs first (existence
 * check, cross-repo mount), then the same manifest bytes: a pulled image's
 * own manifest; for a loaded, imported or committed image one built and
 * kept on its first push (Docker v2s2, uncompressed layers from the kept
 * layer.tar), so every push of it gives the same digest. */
int rt_registry_push(struct rt_store *s, const char *ref, const struct rt_reg_opts *o,
                     rt_reg_progress_fn fn, void *arg, struct bh_err *err);
/* Checks the credentials in o->auth against registry's /v2/ (EACCES). */
int rt_registry_login(const char *registry, const struct rt_reg_opts *o, struct bh_err *err);
/* The RepoDigests recorded for image id ("sha256:<hex>"): a new array. */
json_t *rt_registry_repo_digests(struct rt_store *s, const char *id);

#endif
