/* The platform-specific corner of contexts/: environment, home directory,
 * private temp directories and directory renames.  POSIX; a Windows port
 * replaces this file (USERPROFILE, _mkdir with ACLs, MoveFileEx). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contexts/contexts-internal.h"

static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && *v != '\0') ? v : NULL;
}

void ctx_env_from_process(struct ctx_env *env)
{
	env->berth_config = env_get("BERTH_CONFIG");
	env->home = env_get("HOME");
	env->berth_host = env_get("BERTH_HOST");
	env->berth_cert_path = env_get("BERTH_CERT_PATH");
	env->berth_context = env_get("BERTH_CONTEXT");
	env->berth_context_bundle = env_get("BERTH_CONTEXT_BUNDLE");
}

int ctx_plat_default_config_dir(const struct ctx_env *env, char **out, struct bh_err *err)
{
	if (env->home == NULL || env->home[0] != '/')
		return bh_err_set(err, ENOENT,
		                  "cannot find the config directory: set BERTH_CONFIG or HOME");
	*out = bh_path_join(env->home, ".berth");
	return 0;
}

int ctx_plat_make_temp_dir(const char *parent, char **out, struct bh_err *err)
{
	char *tmpl = bh_path_join(parent, ".tmp-XXXXXX");

	/* mkdtemp creates the directory 0700 with a name nobody can predict. */
	if (mkdtemp(tmpl) == NULL) {
		int e = errno;
		free(tmpl);
		return bh_err_sys(err, e, "create temporary directory in %s", parent);
	}
	*out = tmpl;
	return 0;
}

int ctx_plat_rename_dir(const char *from, const char *to, struct bh_err *err)
{
	struct stat st;

	/* rename(2) would silently replace an empty directory: refuse first.
	 * The window between the check and the rename only matters if another
	 * berth of the same user creates the same name at the same moment. */
	if (lstat(to, &st) == 0)
		return bh_err_set(err, EEXIST, "%s already exists", to);
	if (rename(from, to) < 0)
		return bh_err_sys(err, errno, "rename %s to %s", from, to);
	return 0;
}

int ctx_plat_read_stdin(size_t max, char **out, size_t *out_len, struct bh_err *err)
{
	struct bh_buf b;
	char chunk[16384];

	bh_buf_init(&b, max);
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			bh_buf_free(&b);
			return bh_err_sys(err, e, "read standard input");
		}
		if (n == 0)
			break;
		if (bh_buf_append(&b, chunk, (size_t)n) < 0) {
			bh_buf_free(&b);
			return bh_err_set(err, EFBIG, "standard input: larger than %zu bytes", max);
		}
	}
	if (b.data == NULL)
		bh_buf_append(&b, "", 0);
	*out = b.data;
	*out_len = b.len;
	return 0;
}

bool ctx_plat_is_readable(const char *path)
{
	return access(path, R_OK) == 0;
}
