/* The registry credentials of `berth login`: CONFIG_DIR/auth.json, 0600,
 * {"auths": {REGISTRY: {"auth": base64("user:password")}}} as Docker's
 * config.json keeps them.  Sent to berthd per request as X-Registry-Auth;
 * never printed.  Portable: common/'s file helpers only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

#define AUTH_FILE     "auth.json"
#define AUTH_FILE_MAX (1024 * 1024)
#define CRED_MAX      (16 * 1024)

char *cli_ref_registry(const char *ref)
{
	size_t n = strcspn(ref, "/");

	if (ref[n] == '/' && (memchr(ref, '.', n) || memchr(ref, ':', n) ||
	                      (n == 9 && strncmp(ref, "localhost", 9) == 0)))
		return bh_strndup(ref, n);
	return bh_strdup("docker.io");
}

static char *auth_path(struct cli *cli)
{
	return bh_path_join(cli->config_dir, AUTH_FILE);
}

static json_t *read_auths(struct cli *cli, struct bh_err *err)
{
	cleanup_free char *path = auth_path(cli);
	cleanup_free char *text = NULL;
	size_t len = 0;
	json_t *doc;

	if (!bh_path_exists(path))
		return json_pack("{s{}}", "auths");
	if (bh_read_file(path, AUTH_FILE_MAX, &text, &len, err) < 0)
		return NULL;
	doc = json_loadb(text, len, 0, NULL);
	bh_wipe(text, len);
	if (!json_is_object(json_object_get(doc, "auths"))) {
		json_decref(doc);
		bh_err_set(err, EINVAL, "%s: not a credentials file", path);
		return NULL;
	}
	return doc;
}

static int write_auths(struct cli *cli, json_t *doc, struct bh_err *err)
{
	cleanup_free char *path = auth_path(cli);
	cleanup_free char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	int r;

	if (bh_mkdir_p(cli->config_dir, 0700, err) < 0)
		return -1;
	r = bh_write_file_atomic(path, text, strlen(text), 0600, err);
	bh_wipe(text, strlen(text));
	return r;
}

int cli_creds_get(struct cli *cli, const char *registry, char **user, char **pass,
                  struct bh_err *err)
{
	json_t *doc = read_auths(cli, err);
	const char *b64, *colon;
	char *plain = NULL;
	size_t len = 0;

	if (doc == NULL)
		return -1;
	b64 = json_string_value(
	    json_object_get(json_object_get(json_object_get(doc, "auths"), registry), "auth"));
	if (b64 == NULL) {
		json_decref(doc);
		return bh_err_set(err, ENOENT, "no credentials for %s", registry);
	}
	if (bh_base64_decode(b64, CRED_MAX, &plain, &len) < 0 ||
	    (colon = memchr(plain, ':', len)) == NULL) {
		free(plain);
		json_decref(doc);
		return bh_err_set(err, EINVAL, "credentials for %s are damaged", registry);
	}
	*user = bh_strndup(plain, (size_t)(colon - plain));
	*pass = bh_strdup(colon + 1);
	bh_wipe(plain, len);
	free(plain);
	json_decref(doc);
	return 0;
}

int cli_creds_set(struct cli *cli, const char *registry, const char *user, const char *pass,
                  struct bh_err *err)
{
	json_t *doc = read_auths(cli, err);
	cleanup_free char *plain = NULL;
	cleanup_free char *b64 = NULL;
	int r;

	if (doc == NULL)
		return -1;
	plain = bh_asprintf("%s:%s", user, pass);
	b64 = bh_base64_encode(plain, strlen(plain), false);
	json_object_set_new(json_object_get(doc, "auths"), registry,
	                    json_pack("{ss}", "auth", b64));
	r = write_auths(cli, doc, err);
	bh_wipe(plain, strlen(plain));
	bh_wipe(b64, strlen(b64));
	json_decref(doc);
	return r;
}

int cli_creds_del(struct cli *cli, const char *registry, struct bh_err *err)
{
	json_t *doc = read_auths(cli, err);
	int r;

	if (doc == NULL)
		return -1;
	if (json_object_del(json_object_get(doc, "auths"), registry) < 0) {
		json_decref(doc);
		return bh_err_set(err, ENOENT, "not logged in to %s", registry);
	}
	r = write_auths(cli, doc, err);
	json_decref(doc);
	return r;
}

char *cli_registry_auth_header(struct cli *cli, const char *registry)
{
	struct bh_err err;
	char *user = NULL, *pass = NULL, *json, *b64, *line;
	json_t *o;

	if (cli_creds_get(cli, registry, &user, &pass, &err) < 0)
		o = json_object(); /* anonymous */
	else
		o = json_pack("{ssssss}", "username", user, "password", pass, "serveraddress",
		              registry);
	json = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	b64 = bh_base64_encode(json, strlen(json), true);
	line = bh_asprintf("X-Registry-Auth: %s", b64);
	bh_wipe(json, strlen(json));
	bh_wipe(b64, strlen(b64));
	free(json);
	free(b64);
	if (pass)
		bh_wipe(pass, strlen(pass));
	free(user);
	free(pass);
	return line;
}
