/* berth trust: the daemon's trust store (admin).  `trust add NAME --cert
 * FILE` trusts a certificate issued offline, `trust add NAME` without
 * --cert makes an enrollment token (cmd_enroll.c), `trust ls` lists the
 * identities, `trust revoke NAME|FP` revokes and cuts their sessions.  The
 * daemon's replies are input: printed sanitised. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client-internal.h"

#define TRUST_CERT_MAX (64 * 1024)
#define DAY_S          (24 * 3600)

static const char trust_usage[] =
    "Usage: berth trust COMMAND\n\n"
    "The daemon's trust store: who may connect, with which role (admin only).\n\n"
    "  add NAME --cert FILE [--role R]    trust a client certificate issued offline\n"
    "                                     (e.g. by 'berth certs issue'); role default operator\n"
    "  add NAME [--role R] [--expires 15m] [--cert-days 30]\n"
    "                                     print a single-use enrollment token for\n"
    "                                     'berth context create NAME --token TOKEN'\n"
    "  ls [--format json]                 list identities\n"
    "  revoke NAME|FINGERPRINT            revoke at once; open sessions are closed\n\n"
    "Roles: viewer (read-only), operator (plus run/exec/attach/stop/pull),\n"
    "admin (plus trust management).\n";

/* A string field of a daemon reply, or "?". */
static const char *str_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "?";
}

/* ---- add -------------------------------------------------------------------------- */

struct add_opts {
	const char *cert, *role, *expires, *cert_days;
};

static const struct option add_long[] = {
    {"cert", required_argument, NULL, 'C'},    {"role", required_argument, NULL, 'r'},
    {"expires", required_argument, NULL, 'e'}, {"cert-days", required_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
};

static int add_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct add_opts *o = data;

	switch (c) {
	case 'C':
		o->cert = arg;
		return 0;
	case 'r':
		if (strcmp(arg, "viewer") != 0 && strcmp(arg, "operator") != 0 &&
		    strcmp(arg, "admin") != 0)
			return cli_fail(cli, CLI_EXIT_CMD,
			                "trust add: --role \"%.40s\": viewer, operator or admin",
			                arg);
		o->role = arg;
		return 0;
	case 'e':
		o->expires = arg;
		return 0;
	case 'd':
		o->cert_days = arg;
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "trust add: unexpected option %d", c);
	}
}

/* "15m", "2h", "1d", "90s", "600": seconds, at most 30 days; -1 on junk. */
static long parse_expiry(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || v <= 0 || v > 30L * DAY_S)
		return -1;
	if (strcmp(end, "d") == 0)
		v *= DAY_S;
	else if (strcmp(end, "h") == 0)
		v *= 3600;
	else if (strcmp(end, "m") == 0)
		v *= 60;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return -1;
	return v <= 30L * DAY_S ? v : -1;
}

static int add_token(struct cli *cli, const char *name, const struct add_opts *o)
{
	long expires = parse_expiry(o->expires ? o->expires : "15m"), days = 30;

	if (expires < 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "trust add: --expires \"%.40s\": a duration such as 15m, 2h or 1d "
		                "(at most 30d)",
		                o->expires);
	if (o->cert_days != NULL && bh_parse_long(o->cert_days, 1, 3650, &days) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "trust add: --cert-days \"%.40s\": 1 to 3650",
		                o->cert_days);
	return cli_trust_token(cli, name, o->role ? o->role : "operator", expires, (int)days);
}

static int add_cert(struct cli *cli, const char *name, const struct add_opts *o)
{
	cleanup_free char *pem = NULL;
	cleanup_free char *text = NULL;
	struct cli_http_req rq = {.method = "POST", .path = "/_berth/trust"};
	struct bh_err err;
	json_t *req, *resp = NULL;
	char fp[16], role[16];
	size_t len;

	if (o->expires != NULL || o->cert_days != NULL)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "trust add: --expires and --cert-days are for tokens, not --cert");
	bh_err_clear(&err);
	if (bh_read_file(o->cert, TRUST_CERT_MAX, &pem, &len, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "trust add %s: %s", name, err.msg);
	req = json_pack("{s:s, s:s, s:s%}", "Name", name, "Role", o->role ? o->role : "operator",
	                "Certificate", pem, len);
	if (req == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "trust add %s: %s is not text", name, o->cert);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rq.body = text;
	rq.body_len = strlen(text);
	if (cli_api_json(cli, &rq, &resp) < 0)
		return -1;
	cli_sanitize(str_of(resp, "Fingerprint"), fp, 13);
	cli_sanitize(str_of(resp, "Role"), role, sizeof(role));
	printf("trusted %s as %s (certificate %.12s)\n", name, role, fp);
	json_decref(resp);
	return 0;
}

static int trust_add(struct cli *cli, int argc, char **argv)
{
	struct add_opts o = {0};
	struct cli_opts opts = {"trust add", trust_usage, "C:r:e:d:", add_long, add_flag, &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n == -2)
		return 0;
	if (n < 0)
		return -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "trust add: exactly one NAME (see --help)");
	if (o.cert != NULL)
		return add_cert(cli, pos[0], &o);
	return add_token(cli, pos[0], &o);
}

/* ---- ls ------------------------------------------------------------------------------ */

static void ago(int64_t t, int64_t now, char *out, size_t n)
{
	char d[48];

	if (t <= 0) {
		snprintf(out, n, "never");
		return;
	}
	cli_human_duration(now - t, d, sizeof(d));
	snprintf(out, n, "%s ago", d);
}

static void until(int64_t t, int64_t now, char *out, size_t n)
{
	char d[48];

	if (t <= now) {
		ago(t, now, out, n);
		return;
	}
	cli_human_duration(t - now, d, sizeof(d));
	snprintf(out, n, "in %s", d);
}

static int64_t int_of(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static void ls_row(json_t *e, int64_t now)
{
	char name[64], role[16], fp[16], created[64], expires[64], seen[64];
	int64_t exp = int_of(e, "Expires");
	const char *status = "active";

	cli_sanitize(str_of(e, "Name"), name, sizeof(name));
	cli_sanitize(str_of(e, "Role"), role, sizeof(role));
	cli_sanitize(str_of(e, "Fingerprint"), fp, 13);
	ago(int_of(e, "Created"), now, created, sizeof(created));
	until(exp, now, expires, sizeof(expires));
	ago(int_of(e, "LastSeen"), now, seen, sizeof(seen));
	if (json_is_true(json_object_get(e, "Revoked")))
		status = "revoked";
	else if (exp <= now)
		status = "expired";
	else if (exp - now < 7 * DAY_S)
		status = "expires soon";
	printf("%-20s %-9s %-13s %-22s %-22s %-22s %s\n", name, role, fp, created, expires, seen,
	       status);
}

static int trust_ls(struct cli *cli, int argc, char **argv)
{
	bool json = false;
	json_t *list = NULL, *e;
	int64_t now = (int64_t)time(NULL);
	size_t i;
	int n = cli_parse_format(cli, argc, argv, "trust ls", trust_usage, &json);

	if (n == -2)
		return 0;
	if (n < 0)
		return -1;
	if (cli_api_get_json(cli, "/_berth/trust", &list) < 0)
		return -1;
	if (!json_is_array(list)) {
		json_decref(list);
		return cli_fail(cli, CLI_EXIT_DAEMON,
		                "trust ls: the daemon's answer is not a list");
	}
	if (json) {
		n = cli_print_json(cli, list);
		json_decref(list);
		return n;
	}
	printf("%-20s %-9s %-13s %-22s %-22s %-22s %s\n", "NAME", "ROLE", "FINGERPRINT", "CREATED",
	       "EXPIRES", "LAST SEEN", "STATUS");
	json_array_foreach(list, i, e) ls_row(e, now);
	json_decref(list);
	return 0;
}

/* ---- revoke -------------------------------------------------------------------------- */

static int no_flag(struct cli *cli, int c, const char *arg, void *data)
{
	(void)arg;
	(void)data;
	return cli_fail(cli, CLI_EXIT_CMD, "trust revoke: unexpected option %d", c);
}

static int trust_revoke(struct cli *cli, int argc, char **argv)
{
	struct cli_opts opts = {"trust revoke", trust_usage, "", NULL, no_flag, NULL};
	static const struct option none[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *esc = NULL;
	cleanup_free char *path = NULL;
	struct cli_http_req rq = {.method = "DELETE"};
	json_t *resp = NULL;
	char target[96];
	int n;

	opts.longopts = none;
	n = cli_getopt(cli, argc, argv, &opts, pos);
	if (n == -2)
		return 0;
	if (n < 0)
		return -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "trust revoke: exactly one NAME or FINGERPRINT");
	esc = cli_url_escape(pos[0]);
	path = bh_asprintf("/_berth/trust/%s", esc);
	rq.path = path;
	if (cli_api_json(cli, &rq, &resp) < 0)
		return -1;
	cli_sanitize(pos[0], target, sizeof(target));
	printf("revoked %s (%lld certificate(s)); its open sessions were closed\n", target,
	       (long long)json_integer_value(json_object_get(resp, "Count")));
	json_decref(resp);
	return 0;
}

int cmd_trust(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		cli_cmd_fn fn;
	} subs[] = {
	    {"add", trust_add}, {"ls", trust_ls}, {"list", trust_ls}, {"revoke", trust_revoke}};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(trust_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(cli, argc - 1, argv + 1);
	return cli_fail(cli, CLI_EXIT_CMD,
	                "trust: unknown command \"%.80s\" (berth trust --help lists them)",
	                argv[1]);
}
