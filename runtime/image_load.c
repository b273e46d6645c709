/* Loading docker-archive (`docker save`) and OCI image-layout tars.  The
 * outer tar is staged first under tmp/ with every member stored by number
 * (its name is only a key, never a path), then manifests are followed,
 * every digest verified, and layers unpacked into private temp dirs.  Only
 * when all of that succeeded are layers, configs and tags committed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "runtime/rt-host.h"
#include "runtime/rt-image-archive.h"
#include "runtime/rt-image-internal.h"

#define MAX_MEMBERS     100000
#define MAX_MEMBER_NAME 4096
#define MAX_TOTAL       (256ULL << 30) /* staged bytes of one load */
#define MAX_LINK_DEPTH  8
#define MAX_IMAGES      1000
#define MAX_LAYERS      500 /* per image; overlayfs stops near 500 lowerdirs */
#define MAX_INDEX_DEPTH 2
#define READ_BLOCK      65536
#define MAX_CONFIGS     (64u << 20) /* all configs of one load, held in memory */

#define MT_OCI_INDEX   "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

struct member {
	char *name; /* normalised archive path */
	char *link; /* symlink or hardlink target, normalised; NULL for files */
	char *file; /* staged copy */
	uint64_t size;
	char hex[65];
};

struct pending_layer {
	char hex[65]; /* diff id */
	char *tmpdir; /* NULL once committed */
	uint64_t size;
};

struct loaded_image {
	char hex[65]; /* config digest = image id */
	char *config;
	size_t config_len;
	char **refs;  /* normalised, NULL-terminated */
	char **diffs; /* diff id hexes, NULL-terminated */
	uint64_t size;
};

struct load {
	struct rt_store *s;
	char *stage;
	struct member *m;
	size_t nm;
	size_t entries; /* outer tar entries read, for messages */
	uint64_t total;
	uint64_t config_bytes; /* configs held in memory until commit */
	struct pending_layer *pl;
	size_t npl;
	struct loaded_image *img;
	size_t nimg;
	struct bh_err *err;
};

/* Joins dir and name and resolves "." and ".." lexically; NULL if the path
 * climbs above the archive's root. */
static char *norm_path(const char *dir, const char *name)
{
	cleanup_free char *in = bh_asprintf("%s/%s", name[0] == '/' ? "" : dir, name);
	char *out = bh_calloc(1, strlen(in) + 1);
	size_t n = 0;

	for (const char *p = in; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n == 0) {
				free(out);
				return NULL;
			}
			while (n > 0 && out[n - 1] != '/')
				n--;
			n = n > 0 ? n - 1 : 0;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len + (p[len] == '/');
	}
	out[n] = '\0';
	return out;
}

static int archive_fail(struct load *l, struct archive *a, const char *name)
{
	const char *msg = archive_error_string(a);
	const char *what;

	msg = msg ? msg : "unknown error";
	what = strstr(msg, "runcated") ? "truncated" : "corrupt";
	if (name == NULL)
		return bh_err_set(l->err, EINVAL, "%s archive at entry %zu: %s", what, l->entries,
		                  msg);
	return bh_err_set(l->err, EINVAL, "%s archive at entry %zu (%s): %s", what, l->entries,
	                  name, msg);
}


static int stage_data(struct load *l, struct archive *a, struct member *m)
{
	cleanup_close int fd = -1;
	cleanup_free char *buf = bh_malloc(READ_BLOCK);
	struct rt_sha256 *h;
	la_ssize_t n;

	m->file = bh_asprintf("%s/%zu", l->stage, l->nm);
	fd = open(m->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return bh_err_sys(l->err, errno, "stage %s", m->name);
	h = rt_store_sha256_new();
	while ((n = archive_read_data(a, buf, READ_BLOCK)) > 0) {
		l->total += (uint64_t)n;
		m->size += (uint64_t)n;
		if (l->total > MAX_TOTAL)
			n = -2;
		else if (bh_write_all(fd, buf, (size_t)n) < 0)
			n = -3;
		if (n < 0)
			break;
		rt_store_sha256_update(h, buf, (size_t)n);
	}
	rt_store_sha256_final(h, m->hex);
	if (n == -2)
		return bh_err_set(l->err, EFBIG, "archive larger than %llu bytes", MAX_TOTAL);
	if (n == -3)
		return bh_err_sys(l->err, errno, "stage %s", m->name);
	return n < 0 ? archive_fail(l, a, m->name) : 0;
}

static void member_free(struct member *m)
{
	free(m->name);
	free(m->link);
	free(m->file);
}

static int stage_entry(struct load *l, struct archive *a, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	const char *hard = archive_entry_hardlink(e);
	struct member m = {0};
	cleanup_free char *dir = NULL;
	bool is_link;

	if (name == NULL || strlen(name) > MAX_MEMBER_NAME ||
	    (m.name = norm_path("", name)) == NULL)
		return bh_err_set(l->err, EINVAL, "archive entry %zu: bad name", l->entries);
	dir = bh_strdup(m.name);
	*(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
	is_link = hard || archive_entry_filetype(e) == AE_IFLNK;
	if (hard)
		m.link = norm_path("", hard);
	else if (is_link && archive_entry_symlink(e))
		m.link = norm_path(dir, archive_entry_symlink(e));
	if ((is_link && m.link == NULL) || (!is_link && archive_entry_filetype(e) != AE_IFREG)) {
		member_free(&m);
		return 0; /* directories; links leaving the archive are never found */
	}
	if (m.link == NULL && stage_data(l, a, &m) < 0) {
		member_free(&m);
		return -1;
	}
	l->m = bh_realloc(l->m, (l->nm + 1) * sizeof(*l->m));
	l->m[l->nm++] = m;
	return 0;
}

static int read_outer(struct load *l, int fd)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r = 0;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK)
		r = archive_fail(l, a, NULL);
	while (r == 0) {
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		l->entries++;
		if (ar < ARCHIVE_WARN)
			r = archive_fail(l, a, NULL);
		else if (l->nm >= MAX_MEMBERS)
			r = bh_err_set(l->err, EFBIG, "archive has more than %d entries",
			               MAX_MEMBERS);
		else
			r = stage_entry(l, a, e);
	}
	archive_read_free(a);
	return r;
}

/* The last member of that name, following links inside the archive. */
static struct member *find(struct load *l, const char *name)
{
	for (int depth = 0; depth < MAX_LINK_DEPTH && name; depth++) {
		struct member *m = NULL;
		for (size_t i = l->nm; i-- > 0;)
			if (strcmp(l->m[i].name, name) == 0) {
				m = &l->m[i];
				break;
			}
		if (m == NULL || m->link == NULL)
			return m;
		name = m->link;
	}
	return NULL;
}

/* A member by name; a name of the form blobs/sha256/<hex> must hold
 * content with that digest, and so must want_hex if given. */
static struct member *find_blob(struct load *l, const char *name, const char *want_hex)
{
	cleanup_free char *norm = name ? norm_path("", name) : NULL;
	struct member *m = norm ? find(l, norm) : NULL;
	const char *named = norm && bh_str_has_prefix(norm, "blobs/sha256/") ? norm + 13 : NULL;

	if (m == NULL) {
		bh_err_set(l->err, ENOENT, "%s: not in archive", name ? name : "(null)");
		return NULL;
	}
	if ((named && strcmp(named, m->hex) != 0) || (want_hex && strcmp(want_hex, m->hex) != 0)) {
		bh_err_set(l->err, EINVAL, "%s: digest mismatch (content is sha256:%s)", name,
		           m->hex);
		return NULL;
	}
	return m;
}

static int read_member(struct load *l, struct member *m, char **data, size_t *len)
{
	if (m->size > RT_STORE_MAX_JSON)
		return bh_err_set(l->err, EFBIG, "%s: larger than %u bytes", m->name,
		                  RT_STORE_MAX_JSON);
	return bh_read_file(m->file, RT_STORE_MAX_JSON, data, len, l->err);
}

static json_t *member_json(struct load *l, struct member *m)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	json_error_t je;
	json_t *j;

	if (read_member(l, m, &data, &len) < 0)
		return NULL;
	j = json_loadb(data, len, 0, &je);
	if (j == NULL)
		bh_err_set(l->err, EINVAL, "%s: bad JSON: %s (line %d)", m->name, je.text, je.line);
	return j;
}

/* Reads the decompressed layer through a raw libarchive reader, hashing as
 * the tar reader consumes it: one pass verifies the diff id and unpacks. */
static int layer_known(struct load *l, const char *hex, uint64_t *size)
{
	for (size_t i = 0; i < l->npl; i++)
		if (strcmp(l->pl[i].hex, hex) == 0) {
			*size = l->pl[i].size;
			return 1;
		}
	if (!rt_store_layer_present(l->s, hex))
		return 0;
	if (rt_store_layer_size(l->s, hex, size) < 0)
		*size = 0;
	return 1;
}

static int ensure_layer(struct load *l, struct member *m, const char *hex, uint64_t *size)
{
	struct pending_layer p = {0};
	cleanup_free char *root = NULL, *keep = NULL;
	cleanup_close int rootfd = -1;

	if (layer_known(l, hex, size))
		return 0;
	p.tmpdir = rt_store_mkdtemp(l->s, "layer", l->err);
	if (p.tmpdir == NULL)
		return -1;
	bh_strlcpy(p.hex, hex, sizeof(p.hex));
	l->pl = bh_realloc(l->pl, (l->npl + 1) * sizeof(*l->pl));
	l->pl[l->npl++] = p; /* freed with the load, committed or not */
	root = bh_path_join(p.tmpdir, "root");
	if (mkdir(root, 0755) < 0 || (rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return bh_err_sys(l->err, errno, "create %s", root);
	keep = bh_path_join(p.tmpdir, RT_LAYER_TAR);
	/* The decompressed tar is kept beside root/ so that save (image_save.c)
	 * sends the very bytes of the diff id: same image id after a round trip. */
	if (rt_layer_unpack_verified(m->file, rootfd, hex, keep, &l->pl[l->npl - 1].size,
	                             l->err) < 0)
		return bh_err_wrap(l->err, "layer %s", m->name);
	*size = l->pl[l->npl - 1].size;
	return 0;
}

static int add_refs(struct load *l, struct loaded_image *img, const char *const *tags, size_t n)
{
	img->refs = bh_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		img->refs[i] = rt_image_ref_normalize(tags[i], l->err);
		if (img->refs[i] == NULL)
			return -1;
	}
	return 0;
}

static int load_layers(struct load *l, json_t *config, struct member **layers, size_t n,
                       struct loaded_image *img)
{
	json_t *diffs = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
	char hex[65];

	if (!json_is_array(diffs) || json_array_size(diffs) != n)
		return bh_err_set(l->err, EINVAL, "config has %zu diff_ids for %zu layers",
		                  json_array_size(diffs), n);
	img->diffs = bh_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		uint64_t sz = 0;
		if (rt_store_digest_hex(json_string_value(json_array_get(diffs, i)), hex) < 0)
			return bh_err_set(l->err, EINVAL, "config: diff_id %zu is not sha256", i);
		if (ensure_layer(l, layers[i], hex, &sz) < 0)
			return -1;
		img->size += sz;
		img->diffs[i] = bh_strdup(hex);
	}
	return 0;
}

/* One image: its config member, its layer members (lowest first) and the
 * tags to give it. */
static int load_image(struct load *l, struct member *cfgm, struct member **layers, size_t n,
                      const char *const *tags, size_t ntags)
{
	struct loaded_image img = {0};
	json_t *config = NULL;
	json_error_t je;
	int r;

	bh_strlcpy(img.hex, cfgm->hex, sizeof(img.hex));
	r = read_member(l, cfgm, &img.config, &img.config_len);
	l->config_bytes += img.config_len;
	if (r == 0 && l->config_bytes > MAX_CONFIGS)
		r = bh_err_set(l->err, EFBIG, "image configs larger than %u bytes", MAX_CONFIGS);
	if (r == 0 && ((config = json_loadb(img.config, img.config_len, 0, &je)) == NULL ||
	               !json_is_object(config)))
		r = bh_err_set(l->err, EINVAL, "%s: bad image config", cfgm->name);
	if (r == 0)
		r = add_refs(l, &img, tags, ntags);
	if (r == 0)
		r = load_layers(l, config, layers, n, &img);
	json_decref(config);
	l->img = bh_realloc(l->img, (l->nimg + 1) * sizeof(*l->img));
	l->img[l->nimg++] = img; /* freed with the load */
	return r < 0 ? bh_err_wrap(l->err, "image %.12s", cfgm->hex) : 0;
}

/* Strings of a JSON array (borrowed); NULL for anything else. */
static const char **strings_of(json_t *arr, size_t max, size_t *n)
{
	const char **v;
	json_t *x;
	size_t i;

	*n = json_array_size(arr);
	if (!json_is_array(arr) || *n > max)
		return NULL;
	v = bh_calloc(*n + 1, sizeof(*v));
	json_array_foreach(arr, i, x)
	{
		if ((v[i] = json_string_value(x)) == NULL) {
			free(v);
			return NULL;
		}
	}
	return v;
}

static int docker_entry(struct load *l, json_t *entry)
{
	size_t nl = 0, nt = 0;
	cleanup_free const char **names =
	    strings_of(json_object_get(entry, "Layers"), MAX_LAYERS, &nl);
	cleanup_free const char **tags = NULL;
	cleanup_free struct member **layers = NULL;
	json_t *rt = json_object_get(entry, "RepoTags");
	struct member *cfgm;

	if (names == NULL)
		return bh_err_set(l->err, EINVAL, "manifest.json: bad Layers");
	tags = json_is_null(rt) || rt == NULL ? bh_calloc(1, sizeof(*tags))
	                                      : strings_of(rt, 1000, &nt);
	if (tags == NULL)
		return bh_err_set(l->err, EINVAL, "manifest.json: bad RepoTags");
	cfgm = find_blob(l, json_string_value(json_object_get(entry, "Config")), NULL);
	if (cfgm == NULL)
		return bh_err_wrap(l->err, "manifest.json: Config");
	layers = bh_calloc(nl + 1, sizeof(*layers));
	for (size_t i = 0; i < nl; i++)
		if ((layers[i] = find_blob(l, names[i], NULL)) == NULL)
			return bh_err_wrap(l->err, "manifest.json: layer %zu", i);
	return load_image(l, cfgm, layers, nl, tags, nt);
}

static int load_docker(struct load *l, struct member *mf)
{
	json_t *arr = member_json(l, mf), *entry;
	size_t i;
	int r = 0;

	if (arr == NULL)
		return -1;
	if (!json_is_array(arr) || json_array_size(arr) > MAX_IMAGES)
		r = bh_err_set(l->err, EINVAL, "manifest.json: not an array of images");
	json_array_foreach(arr, i, entry)
	{
		if (r == 0)
			r = docker_entry(l, entry);
	}
	json_decref(arr);
	return r;
}

/* The tag of an OCI index entry: Docker's io.containerd.image.name, else
 * org.opencontainers.image.ref.name when it is a full reference (a bare
 * "latest" names no repository, and the image loads untagged). */
static const char *oci_ref(json_t *desc)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *name = json_string_value(json_object_get(ann, "io.containerd.image.name"));
	const char *rn =
	    json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));

	if (name)
		return name;
	if (rn && (strchr(rn, ':') || strchr(rn, '/')))
		return rn;
	return NULL;
}

static struct member *oci_blob(struct load *l, json_t *desc)
{
	char hex[65];
	cleanup_free char *name = NULL;

	if (rt_store_digest_hex(json_string_value(json_object_get(desc, "digest")), hex) < 0) {
		bh_err_set(l->err, EINVAL, "descriptor without a sha256 digest");
		return NULL;
	}
	name = bh_asprintf("blobs/sha256/%s", hex);
	return find_blob(l, name, hex);
}

static int oci_manifest(struct load *l, json_t *manifest, const char *ref)
{
	json_t *descs = json_object_get(manifest, "layers"), *d;
	cleanup_free struct member **layers = NULL;
	struct member *cfgm = oci_blob(l, json_object_get(manifest, "config"));
	size_t i, n = json_array_size(descs);

	if (cfgm == NULL)
		return bh_err_wrap(l->err, "manifest config");
	if (!json_is_array(descs) || n > MAX_LAYERS)
		return bh_err_set(l->err, EINVAL, "manifest: bad layers");
	layers = bh_calloc(n + 1, sizeof(*layers));
	json_array_foreach(descs, i, d)
	{
		if ((layers[i] = oci_blob(l, d)) == NULL)
			return bh_err_wrap(l->err, "manifest layer %zu", i);
	}
	return load_image(l, cfgm, layers, n, &ref, ref ? 1 : 0);
}

static bool platform_matches(json_t *desc)
{
	json_t *p = json_object_get(desc, "platform");
	struct utsname u;
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	const char *os = json_string_value(json_object_get(p, "os"));

	if (p == NULL)
		return true;
	uname(&u);
	return (os == NULL || strcmp(os, "linux") == 0) &&
	       (arch == NULL || strcmp(arch, rt_arch_from_machine(u.machine)) == 0);
}

static int oci_descriptor(struct load *l, json_t *desc, const char *ref, int depth);

/* A nested index (multi-platform image): the first entry for this host. */
static int oci_index(struct load *l, json_t *index, const char *ref, int depth)
{
	json_t *d;
	size_t i;

	if (depth >= MAX_INDEX_DEPTH)
		return bh_err_set(l->err, EINVAL, "image index nested too deep");
	json_array_foreach(json_object_get(index, "manifests"), i, d)
	{
		if (platform_matches(d))
			return oci_descriptor(l, d, ref, depth + 1);
	}
	return bh_err_set(l->err, ENOENT, "image index has no manifest for this platform");
}

static int oci_descriptor(struct load *l, json_t *desc, const char *ref, int depth)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	struct member *m = oci_blob(l, desc);
	json_t *j;
	int r;

	ref = ref ? ref : oci_ref(desc);
	if (m == NULL || (j = member_json(l, m)) == NULL)
		return bh_err_wrap(l->err, "index.json");
	if ((mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0)) ||
	    json_is_array(json_object_get(j, "manifests")))
		r = oci_index(l, j, ref, depth);
	else
		r = oci_manifest(l, j, ref);
	json_decref(j);
	return r;
}

/* index.json: every image for this platform, each with its tag. */
static int load_oci(struct load *l, struct member *idx)
{
	json_t *index = member_json(l, idx), *d, *descs;
	size_t i;
	int r = 0;

	if (index == NULL)
		return -1;
	descs = json_object_get(index, "manifests");
	if (!json_is_array(descs) || json_array_size(descs) > MAX_IMAGES)
		r = bh_err_set(l->err, EINVAL, "index.json: no manifests");
	/* Entries for other platforms are skipped: they would share tags. */
	json_array_foreach(descs, i, d)
	{
		if (r == 0 && platform_matches(d))
			r = oci_descriptor(l, d, NULL, 0);
	}
	if (r == 0 && l->nimg == 0)
		r = bh_err_set(l->err, ENOENT, "index.json: no image for this platform");
	json_decref(index);
	return r;
}

static int load_images(struct load *l)
{
	struct member *mf = find(l, "manifest.json");
	struct member *idx = find(l, "index.json");

	/* Docker 25+ writes both; manifest.json carries the RepoTags. */
	if (mf)
		return load_docker(l, mf);
	if (idx)
		return load_oci(l, idx);
	return bh_err_set(
	    l->err, EINVAL,
	    "neither manifest.json nor index.json: not a docker-archive or OCI layout");
}

/* A layer found in the store while loading may have been removed since
 * (rt_image_remove runs under the same mutex): re-check under it. */
static int layers_still_present(struct load *l)
{
	for (size_t i = 0; i < l->nimg; i++)
		for (char **d = l->img[i].diffs; d && *d; d++)
			if (!rt_store_layer_present(l->s, *d))
				return bh_err_set(
				    l->err, EAGAIN,
				    "layer sha256:%s was removed during the load; retry", *d);
	return 0;
}

static int commit_images(struct load *l)
{
	json_t *index = NULL;
	int r = layers_still_present(l);

	for (size_t i = 0; r == 0 && i < l->nimg; i++) {
		struct loaded_image *img = &l->img[i];
		r = rt_store_put_blob(l->s, img->config, img->config_len, img->hex, l->err);
		if (r == 0)
			r = rt_store_image_put(l->s, img->hex, img->size, l->err);
	}
	if (r == 0)
		r = rt_store_tags_read(l->s, &index, l->err);
	for (size_t i = 0; r == 0 && i < l->nimg; i++) {
		char id[RT_IMAGE_ID_LEN];
		snprintf(id, sizeof(id), "sha256:%s", l->img[i].hex);
		for (char **ref = l->img[i].refs; *ref; ref++)
			rt_store_tags_set(index, *ref, id);
	}
	if (r == 0)
		r = rt_store_tags_write(l->s, index, l->err);
	json_decref(index);
	return r;
}

/* Layers first, then configs and imagedb, tags last: a crash in between
 * leaves unreferenced but complete content, never a tag to a missing one. */
static int commit(struct load *l)
{
	int r = 0;

	pthread_mutex_lock(&l->s->lock);
	for (size_t i = 0; r == 0 && i < l->npl; i++) {
		r = rt_store_layer_commit(l->s, l->pl[i].tmpdir, l->pl[i].hex, l->pl[i].size,
		                          l->err);
		if (r == 0) {
			free(l->pl[i].tmpdir);
			l->pl[i].tmpdir = NULL;
		}
	}
	if (r == 0)
		r = commit_images(l);
	pthread_mutex_unlock(&l->s->lock);
	return r < 0 ? bh_err_wrap(l->err, "commit") : 0;
}

static char **loaded_names(struct load *l)
{
	char **v = bh_calloc(1, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < l->nimg; i++) {
		size_t nrefs = 0;
		while (l->img[i].refs[nrefs])
			nrefs++;
		v = bh_realloc(v, (n + nrefs + 2) * sizeof(*v));
		for (size_t j = 0; j < nrefs; j++)
			v[n++] = rt_image_ref_familiar(l->img[i].refs[j]);
		if (nrefs == 0)
			v[n++] = bh_asprintf("sha256:%s", l->img[i].hex);
		v[n] = NULL;
	}
	return v;
}

static void load_free(struct load *l)
{
	struct bh_err ignored;

	for (size_t i = 0; i < l->nm; i++)
		member_free(&l->m[i]);
	free(l->m);
	for (size_t i = 0; i < l->npl; i++) {
		if (l->pl[i].tmpdir)
			bh_rm_rf(l->pl[i].tmpdir, &ignored);
		free(l->pl[i].tmpdir);
	}
	free(l->pl);
	for (size_t i = 0; i < l->nimg; i++) {
		free(l->img[i].config);
		rt_image_strv_free(l->img[i].refs);
		rt_image_strv_free(l->img[i].diffs);
	}
	free(l->img);
	if (l->stage)
		bh_rm_rf(l->stage, &ignored);
	free(l->stage);
}

int rt_image_load(struct rt_store *s, int fd, const char *label, char ***loaded, struct bh_err *err)
{
	struct load l = {.s = s, .err = err};
	int r = -1;

	l.stage = rt_store_mkdtemp(s, "load", err);
	if (l.stage != NULL)
		r = read_outer(&l, fd);
	if (r == 0)
		r = load_images(&l);
	if (r == 0)
		r = commit(&l);
	if (r == 0 && loaded)
		*loaded = loaded_names(&l);
	load_free(&l);
	return r < 0 ? bh_err_wrap(err, "load: %s", label ? label : "archive") : 0;
}

int rt_image_load_path(struct rt_store *s, const char *path, char ***loaded, struct bh_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	const char *base = strrchr(path, '/');

	if (fd < 0)
		return bh_err_sys(err, errno, "load: open %s", path);
	return rt_image_load(s, fd, base ? base + 1 : path, loaded, err);
}
