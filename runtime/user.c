/* "user[:group]" → uid, gid and supplementary groups, from the container's
 * own /etc/passwd and /etc/group, opened inside the root with openat2
 * RESOLVE_IN_ROOT (an image's symlink cannot point them at the host's). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/rt-container-internal.h"

#define RT_DB_MAX   (1024 * 1024)
#define RT_GIDS_MAX 1024

/* Reads a file from inside the root; ENOENT leaves *out NULL and is no error. */
static int read_in_root(int rootfd, const char *path, char **out, struct bh_err *err)
{
	cleanup_close int fd = rt_open_in_root(rootfd, path, O_RDONLY, err);
	struct bh_buf b;
	char chunk[8192];
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return err->code == ENOENT ? 0 : -1;
	bh_buf_init(&b, RT_DB_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (bh_buf_append(&b, chunk, (size_t)n) < 0) {
			bh_buf_free(&b);
			return bh_err_set(err, EFBIG, "%s: larger than %d bytes", path, RT_DB_MAX);
		}
	if (n < 0) {
		bh_buf_free(&b);
		return bh_err_sys(err, errno, "read %s", path);
	}
	bh_buf_append(&b, "", 0);
	*out = b.data;
	return 0;
}

/* Splits a colon-separated line into at most max fields, in place. */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;

	while (n < max) {
		f[n++] = line;
		line = strchr(line, ':');
		if (line == NULL)
			break;
		*line++ = '\0';
	}
	return n;
}

static bool parse_id(const char *s, unsigned *out)
{
	long v;

	if (bh_parse_long(s, 0, 0x7fffffff, &v) < 0)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Calls fn on each line of db, split into fields; stops when fn returns 1. */
static void each_line(char *db, size_t nf, int (*fn)(char **f, size_t n, void *arg), void *arg)
{
	char *next;

	for (char *l = db; l && *l; l = next) {
		char *f[8];
		next = strchr(l, '\n');
		if (next)
			*next++ = '\0';
		if (l[0] == '#' || l[0] == '\0')
			continue;
		if (fn(f, split_fields(l, f, nf), arg) == 1)
			return;
	}
}

struct user_q {
	const char *want;
	bool found;
	uid_t uid;
	gid_t gid;
	char name[256];
};

static int match_user(char **f, size_t n, void *arg)
{
	struct user_q *q = arg;
	unsigned uid, gid, num;

	if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
		return 0;
	if (strcmp(f[0], q->want) != 0 && !(parse_id(q->want, &num) && num == uid))
		return 0;
	q->found = true;
	q->uid = uid;
	q->gid = gid;
	bh_strlcpy(q->name, f[0], sizeof(q->name));
	return 1;
}

struct group_q {
	const char *want; /* a group to look up, or NULL */
	bool found;
	gid_t gid;
	const char *member; /* collect the groups listing this user, or NULL */
	gid_t *gids;
	size_t n;
};

static bool has_member(char *list, const char *name)
{
	for (char *m = list; m && *m;) {
		size_t len = strcspn(m, ",");
		if (len == strlen(name) && strncmp(m, name, len) == 0)
			return true;
		m += len + (m[len] ? 1 : 0);
	}
	return false;
}

static int match_group(char **f, size_t n, void *arg)
{
	struct group_q *q = arg;
	unsigned gid, num;

	if (n < 3 || !parse_id(f[2], &gid))
		return 0;
	if (q->want && !q->found &&
	    (strcmp(f[0], q->want) == 0 || (parse_id(q->want, &num) && num == gid))) {
		q->found = true;
		q->gid = gid;
	}
	if (q->member && n >= 4 && has_member(f[3], q->member) && q->n < RT_GIDS_MAX) {
		q->gids = bh_realloc(q->gids, (q->n + 1) * sizeof(gid_t));
		q->gids[q->n++] = gid;
	}
	return 0;
}

static int resolve_user(int rootfd, const char *user, struct user_q *q, struct bh_err *err)
{
	cleanup_free char *passwd = NULL;
	unsigned num;

	q->want = user;
	if (read_in_root(rootfd, "/etc/passwd", &passwd, err) < 0)
		return -1;
	if (passwd)
		each_line(passwd, 7, match_user, q);
	if (q->found)
		return 0;
	if (!parse_id(user, &num))
		return bh_err_set(err, ENOENT, "user %s: not found in /etc/passwd", user);
	q->uid = num;
	q->gid = 0; /* as Docker: an unknown numeric uid gets group 0 */
	return 0;
}

int rt_user_resolve(int rootfd, const char *spec, uid_t *uid, gid_t *gid, gid_t **gids,
                    size_t *n_gids, struct bh_err *err)
{
	cleanup_free char *user = bh_strdup(spec), *group_db = NULL;
	char *group = strchr(user, ':');
	struct user_q uq = {0};
	struct group_q gq = {0};

	if (group)
		*group++ = '\0';
	if (user[0] == '\0' || (group && group[0] == '\0'))
		return bh_err_set(err, EINVAL, "user %s: empty name", spec);
	if (resolve_user(rootfd, user, &uq, err) < 0 ||
	    read_in_root(rootfd, "/etc/group", &group_db, err) < 0)
		return -1;
	gq.want = group;
	gq.member = uq.found ? uq.name : NULL;
	if (group_db)
		each_line(group_db, 4, match_group, &gq);
	if (group && !gq.found && !parse_id(group, &gq.gid)) {
		free(gq.gids);
		return bh_err_set(err, ENOENT, "group %s: not found in /etc/group", group);
	}
	*uid = uq.uid;
	*gid = group ? gq.gid : uq.gid;
	*gids = gq.gids;
	*n_gids = gq.n;
	return 0;
}
