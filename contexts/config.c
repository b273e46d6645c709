/* config.json (the current context) and removing contexts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contexts/contexts-internal.h"

static int config_load(const char *config_dir, json_t **out, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(config_dir, "config.json");

	if (!bh_path_exists(path)) {
		*out = json_object();
		return 0;
	}
	return ctx_json_load_file(path, out, err);
}

static int config_save(const char *config_dir, json_t *doc, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(config_dir, "config.json");
	char *s;
	int r;

	if (bh_mkdir_p(config_dir, CTX_MODE_DIR, err) < 0)
		return -1;
	s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s == NULL)
		abort(); /* allocation failure */
	r = bh_write_file_atomic(path, s, strlen(s), CTX_MODE_PUBLIC, err);
	free(s);
	return r;
}

int ctx_current(const char *config_dir, char **out, struct bh_err *err)
{
	json_t *doc, *v;
	int r = 0;

	if (config_load(config_dir, &doc, err) < 0)
		return -1;
	v = json_object_get(doc, "currentContext");
	if (v == NULL || (json_is_string(v) && json_string_length(v) == 0)) {
		*out = bh_strdup(CTX_DEFAULT_NAME);
	} else if (!json_is_string(v) || !ctx_name_is_valid(json_string_value(v))) {
		r = bh_err_set(err, EINVAL, "%s/config.json: currentContext is not a valid name",
		               config_dir);
	} else {
		*out = bh_strdup(json_string_value(v));
	}
	json_decref(doc);
	return r;
}

static int set_current(const char *config_dir, const char *name, struct bh_err *err)
{
	json_t *doc;
	int r;

	if (config_load(config_dir, &doc, err) < 0)
		return -1;
	/* Other keys (later: per-context settings) are kept as they are. */
	if (strcmp(name, CTX_DEFAULT_NAME) == 0)
		json_object_del(doc, "currentContext");
	else
		json_object_set_new(doc, "currentContext", json_string(name));
	r = config_save(config_dir, doc, err);
	json_decref(doc);
	return r;
}

int ctx_use(const char *config_dir, const char *name, struct bh_err *err)
{
	struct ctx_meta m;

	if (ctx_load(config_dir, name, &m, err) < 0)
		return -1;
	ctx_meta_free(&m);
	return set_current(config_dir, name, err) < 0 ? bh_err_wrap(err, "use %s", name) : 0;
}

/* Moves the directory out of sight first, so that a half-deleted context is
 * never listed or used, then deletes it. */
static int remove_dir(const char *config_dir, const char *name, struct bh_err *err)
{
	cleanup_free char *cdir = ctx_contexts_dir(config_dir);
	cleanup_free char *dir = ctx_dir(config_dir, name);
	cleanup_free char *tmp = NULL;
	cleanup_free char *victim = NULL;

	if (ctx_plat_make_temp_dir(cdir, &tmp, err) < 0)
		return -1;
	victim = bh_path_join(tmp, name);
	if (ctx_plat_rename_dir(dir, victim, err) < 0) {
		struct bh_err ignored;
		bh_rm_rf(tmp, &ignored);
		return -1;
	}
	return bh_rm_rf(tmp, err);
}

int ctx_remove(const char *config_dir, const char *name, bool force, struct bh_err *err)
{
	cleanup_free char *current = NULL;
	struct ctx_meta m;

	if (ctx_name_check_new(name, err) < 0)
		return bh_err_wrap(err, "remove context");
	if (ctx_load(config_dir, name, &m, err) < 0)
		return -1;
	ctx_meta_free(&m);
	if (ctx_current(config_dir, &current, err) < 0)
		return -1;
	if (strcmp(current, name) == 0) {
		if (!force)
			return bh_err_set(err, EBUSY,
			                  "context \"%s\" is the current context: switch with "
			                  "\"berth context use\" first, or remove it with -f",
			                  name);
		if (set_current(config_dir, CTX_DEFAULT_NAME, err) < 0)
			return bh_err_wrap(err, "remove context %s", name);
	}
	return remove_dir(config_dir, name, err) < 0 ? bh_err_wrap(err, "remove context %s", name)
	                                             : 0;
}
