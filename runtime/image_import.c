/* berth import: a rootfs tar (any compression libarchive reads) -> a
 * one-layer image.  The tar is decompressed into the layer's kept tar while
 * its sha256 (the diff id) is computed, then unpacked with the normal,
 * confined unpacker.  Like Docker: host os/arch, no Cmd unless --change. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-host.h"
#include "runtime/rt-image-archive.h"
#include "runtime/rt-image-internal.h"

#define IMPORT_MAX (64ULL << 30) /* decompressed bytes (decompression bombs) */
#define READ_BLOCK 65536
#define CHANGE_MAX 4096


static int copy_raw(struct archive *a, int out, char hex[65], struct bh_err *err)
{
	cleanup_free char *buf = bh_malloc(READ_BLOCK);
	struct rt_sha256 *h = rt_store_sha256_new();
	uint64_t total = 0;
	la_ssize_t n;
	int r = 0;

	while (r == 0 && (n = archive_read_data(a, buf, READ_BLOCK)) > 0) {
		total += (uint64_t)n;
		if (total > IMPORT_MAX)
			r = bh_err_set(err, EFBIG, "decompressed tar larger than %llu bytes",
			               IMPORT_MAX);
		else if (bh_write_all(out, buf, (size_t)n) < 0)
			r = bh_err_sys(err, errno, "write layer tar");
		else
			rt_store_sha256_update(h, buf, (size_t)n);
	}
	rt_store_sha256_final(h, hex);
	if (r == 0 && n < 0)
		r = bh_err_set(err, EINVAL, "read tar: %s", archive_error_string(a));
	if (r == 0 && total == 0)
		r = bh_err_set(err, EINVAL, "empty input: not a tar archive");
	return r;
}

/* fd (compressed or not) -> path, uncompressed; hex = its sha256. */
static int decompress_to(int fd, const char *path, char hex[65], struct bh_err *err)
{
	cleanup_close int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r;

	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (out < 0)
		r = bh_err_sys(err, errno, "create %s", path);
	else if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK ||
	         archive_read_next_header(a, &e) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "read tar: %s", archive_error_string(a));
	else
		r = copy_raw(a, out, hex, err);
	archive_read_free(a);
	if (r == 0 && fsync(out) < 0)
		r = bh_err_sys(err, errno, "sync %s", path);
	return r;
}

static json_t *base_config(const char *created, json_t *changes)
{
	struct utsname u;
	json_t *cfg, *run = json_object();

	uname(&u);
	if (json_is_object(changes))
		json_object_update(run, changes);
	cfg = json_pack("{ss ss ss so}", "architecture", rt_arch_from_machine(u.machine), "os",
	                "linux", "created", created, "config", run);
	return cfg;
}

int rt_image_import(struct rt_store *s, int fd, json_t *changes, const char *ref,
                    const char *comment, char id[RT_IMAGE_ID_LEN], struct bh_err *err)
{
	cleanup_free char *tmpdir = rt_store_mkdtemp(s, "layer", err);
	cleanup_free char *tar = NULL;
	char created[40], hex[65];
	struct bh_err ignored;
	json_t *config, *hist;
	int r;

	if (tmpdir == NULL)
		return bh_err_wrap(err, "import");
	tar = bh_path_join(tmpdir, RT_LAYER_TAR);
	if (decompress_to(fd, tar, hex, err) < 0) {
		bh_rm_rf(tmpdir, &ignored);
		return bh_err_wrap(err, "import");
	}
	bh_rfc3339_now(created);
	config = base_config(created, changes);
	hist = json_pack("{ss ss ss}", "created", created, "created_by", "", "comment",
	                 comment && *comment ? comment : "Imported from -");
	r = rt_image_finish_layer(s, tmpdir, hex, config, hist, ref, id, err);
	json_decref(config);
	return r < 0 ? bh_err_wrap(err, "import") : 0;
}

/* ---- --change ------------------------------------------------------------------ */

/* A JSON array of strings, or the shell form wrapped in /bin/sh -c. */
static json_t *exec_form(const char *arg)
{
	json_t *j = json_loads(arg, 0, NULL), *x;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, x)
		{
			if (!json_is_string(x)) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
	json_decref(j);
	return json_pack("[sss]", "/bin/sh", "-c", arg);
}

static void env_set(json_t *config, const char *kv)
{
	json_t *env = json_object_get(config, "Env"), *x;
	size_t klen = strcspn(kv, "="), i;

	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(config, "Env", env);
	}
	json_array_foreach(env, i, x)
	{
		const char *e = json_string_value(x);
		if (e && strncmp(e, kv, klen) == 0 && (e[klen] == '=' || e[klen] == '\0')) {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

static void object_set(json_t *config, const char *key, const char *name, json_t *value)
{
	json_t *o = json_object_get(config, key);

	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(config, key, o);
	}
	json_object_set_new(o, name, value);
}

static int apply_kv(json_t *config, const char *verb, const char *arg, struct bh_err *err)
{
	cleanup_free char *key = bh_strndup(arg, strcspn(arg, "= "));
	const char *val = arg + strlen(key);

	if (strcmp(verb, "ENV") == 0) {
		cleanup_free char *kv = bh_asprintf("%s=%s", key, *val ? val + 1 : "");
		env_set(config, kv);
	} else if (strcmp(verb, "LABEL") == 0) {
		object_set(config, "Labels", key, json_string(*val ? val + 1 : ""));
	} else if (strcmp(verb, "EXPOSE") == 0) {
		cleanup_free char *port =
		    strchr(arg, '/') ? bh_strdup(arg) : bh_asprintf("%s/tcp", arg);
		object_set(config, "ExposedPorts", port, json_object());
	} else {
		return bh_err_set(err, EINVAL, "dockerfile parse error: unknown instruction %s",
		                  verb);
	}
	return 0;
}

int rt_image_apply_change(json_t *config, const char *change, struct bh_err *err)
{
	char verb[16];
	size_t n = strcspn(change, " \t");
	const char *arg = change + n + strspn(change + n, " \t");
	json_t *form;

	if (strlen(change) > CHANGE_MAX || n == 0 || n >= sizeof(verb) || *arg == '\0')
		return bh_err_set(err, EINVAL, "invalid change \"%.64s\"", change);
	for (size_t i = 0; i < n; i++)
		verb[i] = (char)toupper((unsigned char)change[i]);
	verb[n] = '\0';
	if (strcmp(verb, "CMD") == 0 || strcmp(verb, "ENTRYPOINT") == 0) {
		if ((form = exec_form(arg)) == NULL)
			return bh_err_set(err, EINVAL, "%s: not a JSON array of strings", verb);
		json_object_set_new(config, verb[0] == 'C' ? "Cmd" : "Entrypoint", form);
	} else if (strcmp(verb, "WORKDIR") == 0) {
		json_object_set_new(config, "WorkingDir", json_string(arg));
	} else if (strcmp(verb, "USER") == 0) {
		json_object_set_new(config, "User", json_string(arg));
	} else {
		return apply_kv(config, verb, arg, err);
	}
	return 0;
}
