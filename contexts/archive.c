/* Export and import of a context as a tar (libarchive).  An imported archive
 * is hostile input: only four member names are accepted, each a regular file
 * of bounded size, and nothing is written until all of it has been checked. */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contexts/contexts-internal.h"

enum { M_META, M_CA, M_CERT, M_KEY, M_COUNT };
static const char *const member_names[M_COUNT] = {"meta.json", "tls/ca.pem", "tls/cert.pem",
                                                  "tls/key.pem"};
static const int member_modes[M_COUNT] = {CTX_MODE_PUBLIC, CTX_MODE_PUBLIC, CTX_MODE_PUBLIC,
                                          CTX_MODE_SECRET};

static void pems_free(struct ctx_pem p[M_COUNT])
{
	for (int i = 0; i < M_COUNT; i++) {
		if (p[i].data != NULL)
			bh_wipe(p[i].data, p[i].len); /* the key is among them */
		free(p[i].data);
		p[i].data = NULL;
		p[i].len = 0;
	}
}

/* ---- export ------------------------------------------------------------- */

static la_ssize_t write_cb(struct archive *a, void *arg, const void *buf, size_t n)
{
	if (bh_buf_append(arg, buf, n) < 0) {
		archive_set_error(a, EFBIG, "archive larger than %d bytes", CTX_ARCHIVE_MAX);
		return -1;
	}
	return (la_ssize_t)n;
}

static int add_member(struct archive *a, int idx, const struct ctx_pem *p, struct bh_err *err)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	archive_entry_set_pathname(e, member_names[idx]);
	archive_entry_set_filetype(e, AE_IFREG);
	/* The key keeps 0600 in the tar header, so a plain tar -x stays safe. */
	archive_entry_set_perm(e, (mode_t)member_modes[idx]);
	archive_entry_set_size(e, (la_int64_t)p->len);
	archive_entry_set_mtime(e, time(NULL), 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, p->data, p->len) != (la_ssize_t)p->len)
		r = bh_err_set(err, EIO, "write member %s: %s", member_names[idx],
		               archive_error_string(a));
	archive_entry_free(e);
	return r;
}

static int build_tar(struct ctx_pem p[M_COUNT], struct bh_buf *out, struct bh_err *err)
{
	struct archive *a = archive_write_new();
	int r = 0;

	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, out, NULL, write_cb, NULL) != ARCHIVE_OK) {
		r = bh_err_set(err, EIO, "tar: %s", archive_error_string(a));
		goto out;
	}
	for (int i = 0; i < M_COUNT && r == 0; i++)
		if (p[i].data != NULL)
			r = add_member(a, i, &p[i], err);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = bh_err_set(err, EIO, "tar: %s", archive_error_string(a));
out:
	archive_write_free(a);
	return r;
}

static int read_stored(const struct ctx_meta *m, struct ctx_pem p[M_COUNT], struct bh_err *err)
{
	const char *paths[M_COUNT] = {NULL, m->tls.ca, m->tls.cert, m->tls.key};

	p[M_META].data = ctx_meta_dump(m);
	p[M_META].len = strlen(p[M_META].data);
	if (m->tls.ca == NULL)
		return 0;
	for (int i = M_CA; i < M_COUNT; i++)
		if (bh_read_file(paths[i], CTX_FILE_MAX, &p[i].data, &p[i].len, err) < 0)
			return -1;
	return 0;
}

static int write_out(const char *file, const struct bh_buf *tar, struct bh_err *err)
{
	if (strcmp(file, "-") != 0)
		return bh_write_file_atomic(file, tar->data, tar->len, CTX_MODE_SECRET, err);
	if (fwrite(tar->data, 1, tar->len, stdout) != tar->len || fflush(stdout) != 0)
		return bh_err_sys(err, errno, "write standard output");
	return 0;
}

int ctx_export(const char *config_dir, const char *name, const char *file, struct bh_err *err)
{
	struct ctx_pem p[M_COUNT] = {{0}};
	struct ctx_meta m;
	struct bh_buf tar;
	int r;

	if (ctx_load(config_dir, name, &m, err) < 0)
		return -1;
	bh_buf_init(&tar, CTX_ARCHIVE_MAX);
	r = read_stored(&m, p, err);
	if (r == 0)
		r = build_tar(p, &tar, err);
	if (r == 0)
		r = write_out(file, &tar, err);
	if (tar.data != NULL)
		bh_wipe(tar.data, tar.len);
	bh_buf_free(&tar);
	pems_free(p);
	ctx_meta_free(&m);
	return r < 0 ? bh_err_wrap(err, "export context %s to %s", name, file) : 0;
}

/* ---- import ------------------------------------------------------------- */

/* A member name fit for an error message: hostile names may carry escapes. */
static void printable(const char *s, char out[128])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 127; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	out[i] = '\0';
}

static int member_index(const char *name)
{
	for (int i = 0; i < M_COUNT; i++)
		if (strcmp(name, member_names[i]) == 0)
			return i;
	return -1;
}

static int member_read_data(struct archive *a, const char *shown, struct ctx_pem *p,
                            struct bh_err *err)
{
	struct bh_buf b;
	char chunk[16384];
	la_ssize_t n;

	bh_buf_init(&b, CTX_FILE_MAX);
	while ((n = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
		if (bh_buf_append(&b, chunk, (size_t)n) < 0) {
			bh_buf_free(&b);
			return bh_err_set(err, EFBIG, "member \"%s\": larger than %d bytes", shown,
			                  CTX_FILE_MAX);
		}
	}
	if (n < 0) {
		bh_buf_free(&b);
		return bh_err_set(err, EIO, "member \"%s\": %s", shown, archive_error_string(a));
	}
	if (b.data == NULL)
		bh_buf_append(&b, "", 0);
	p->data = b.data;
	p->len = b.len;
	return 0;
}

/* Returns the member index, M_COUNT for the harmless "tls/" directory entry,
 * or -1 with err naming the member. */
static int member_check(struct archive_entry *e, const char *shown, struct bh_err *err)
{
	const char *name = archive_entry_pathname(e);
	mode_t ft = archive_entry_filetype(e);
	int idx;

	if (archive_entry_hardlink(e) != NULL)
		return bh_err_set(err, EPERM, "member \"%s\": is a hard link", shown);
	if (ft == AE_IFLNK || archive_entry_symlink(e) != NULL)
		return bh_err_set(err, EPERM, "member \"%s\": is a symbolic link", shown);
	if (ft == AE_IFDIR && (strcmp(name, "tls") == 0 || strcmp(name, "tls/") == 0))
		return M_COUNT;
	idx = member_index(name);
	if (idx < 0)
		return bh_err_set(err, EPERM,
		                  "member \"%s\": not allowed (only meta.json, tls/ca.pem, "
		                  "tls/cert.pem, tls/key.pem)",
		                  shown);
	if (ft != AE_IFREG)
		return bh_err_set(err, EPERM, "member \"%s\": not a regular file", shown);
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > CTX_FILE_MAX)
		return bh_err_set(err, EFBIG, "member \"%s\": larger than %d bytes", shown,
		                  CTX_FILE_MAX);
	return idx;
}

static int read_members(struct archive *a, struct ctx_pem p[M_COUNT], struct bh_err *err)
{
	struct archive_entry *e;
	char shown[128];
	int r, idx;

	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		if (name == NULL)
			return bh_err_set(err, EINVAL, "a member without a name");
		printable(name, shown);
		idx = member_check(e, shown, err);
		if (idx < 0)
			return -1;
		if (idx == M_COUNT)
			continue;
		if (p[idx].data != NULL)
			return bh_err_set(err, EINVAL, "member \"%s\": appears twice", shown);
		if (member_read_data(a, shown, &p[idx], err) < 0)
			return -1;
	}
	if (r != ARCHIVE_EOF)
		return bh_err_set(err, EINVAL, "not a valid tar: %s", archive_error_string(a));
	return 0;
}

static int parse_tar(const char *data, size_t len, struct ctx_pem p[M_COUNT], struct bh_err *err)
{
	struct archive *a = archive_read_new();
	int r;

	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
		r = bh_err_set(err, EINVAL, "not a valid tar: %s", archive_error_string(a));
	else
		r = read_members(a, p, err);
	archive_read_free(a);
	return r;
}

static int parse_meta(const struct ctx_pem *p, struct ctx_meta *m, struct bh_err *err)
{
	json_error_t jerr;
	json_t *doc;
	int r;

	if (p->data == NULL)
		return bh_err_set(err, EINVAL, "member \"meta.json\": missing");
	doc = json_loadb(p->data, p->len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return bh_err_set(err, EINVAL, "member \"meta.json\": line %d column %d: %s",
		                  jerr.line, jerr.column, jerr.text);
	if (!json_is_object(doc))
		r = bh_err_set(err, EINVAL, "member \"meta.json\": not a JSON object");
	else
		r = ctx_meta_parse(doc, "member \"meta.json\"", m, err);
	/* The exporter's name: a bundle answers to it (-c NAME); import renames. */
	if (r == 0 && ctx_name_is_valid(json_string_value(json_object_get(doc, "Name"))))
		m->name = bh_strdup(json_string_value(json_object_get(doc, "Name")));
	json_decref(doc);
	return r;
}

/* Moves the parsed members into a material set: all three TLS files or none. */
static int take_material(struct ctx_pem p[M_COUNT], const char *host, struct ctx_material *m,
                         struct bh_err *err)
{
	int have = (p[M_CA].data != NULL) + (p[M_CERT].data != NULL) + (p[M_KEY].data != NULL);

	memset(m, 0, sizeof(*m));
	if (have != 0 && have != 3) {
		for (int i = M_CA; i < M_COUNT; i++)
			if (p[i].data == NULL)
				return bh_err_set(err, EINVAL,
				                  "member \"%s\": missing (TLS needs ca.pem, "
				                  "cert.pem and key.pem)",
				                  member_names[i]);
	}
	if (have == 0 && ctx_host_is_tcp(host))
		return bh_err_set(err, EINVAL, "%s needs TLS material and the archive has none",
		                  host);
	m->present = have == 3;
	m->ca = p[M_CA];
	m->cert = p[M_CERT];
	m->key = p[M_KEY];
	memset(&p[M_CA], 0, 3 * sizeof(p[0]));
	return 0;
}

int ctx_archive_parse(const char *data, size_t len, struct ctx_meta *meta, struct ctx_material *m,
                      struct bh_err *err)
{
	struct ctx_pem p[M_COUNT] = {{0}};
	int r = -1;

	memset(meta, 0, sizeof(*meta));
	memset(m, 0, sizeof(*m));
	if (parse_tar(data, len, p, err) < 0 || parse_meta(&p[M_META], meta, err) < 0)
		goto out;
	r = take_material(p, meta->host, m, err);
	if (r < 0)
		ctx_meta_free(meta);
out:
	pems_free(p);
	return r;
}

static int import_data(const char *config_dir, const char *name, const char *data, size_t len,
                       struct bh_err *err)
{
	struct ctx_material m;
	struct ctx_meta meta;
	char now[40];
	cleanup_free char *json = NULL;
	int r;

	if (ctx_archive_parse(data, len, &meta, &m, err) < 0)
		return -1;
	bh_rfc3339_now(now);
	free(meta.name);
	meta.name = bh_strdup(name);
	if (meta.created[0] == '\0') {
		free(meta.created);
		meta.created = bh_strdup(now);
	}
	json = ctx_meta_dump(&meta);
	r = ctx_store_commit(config_dir, name, json, &m, true, err);
	ctx_meta_free(&meta);
	ctx_material_free(&m);
	return r;
}

int ctx_import(const char *config_dir, const char *name, const char *file, struct bh_err *err)
{
	const char *label = strcmp(file, "-") == 0 ? "standard input" : file;
	cleanup_free char *dst = NULL;
	char *data = NULL;
	size_t len = 0;
	int r;

	if (ctx_name_check_new(name, err) < 0)
		return bh_err_wrap(err, "import %s", label);
	dst = ctx_dir(config_dir, name);
	if (bh_path_exists(dst))
		return bh_err_set(err, EEXIST, "import %s: context \"%s\" already exists", label,
		                  name);
	if (strcmp(file, "-") == 0)
		r = ctx_plat_read_stdin(CTX_ARCHIVE_MAX, &data, &len, err);
	else
		r = bh_read_file(file, CTX_ARCHIVE_MAX, &data, &len, err);
	if (r == 0)
		r = import_data(config_dir, name, data, len, err);
	if (data != NULL)
		bh_wipe(data, len);
	free(data);
	return r < 0 ? bh_err_wrap(err, "import %s", label) : 0;
}
