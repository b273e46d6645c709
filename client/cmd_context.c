/* berth context: create, ls, use, show, inspect, update, rm, export, import.
 * The store and the resolution live in contexts/; this file is flags and
 * printing. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/certs.h"
#include "client/client-internal.h"

static const struct option help_only[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int no_opt(struct cli *cli, int c, const char *arg, void *data)
{
	return cli_fail(cli, CLI_EXIT_CMD, "internal: unhandled option %d", c);
}

static int store_fail(struct cli *cli, const struct bh_err *err)
{
	return cli_fail(cli, CLI_EXIT_CMD, "%s", err->msg);
}

/* Parses options and checks the count of positionals (min..max). */
static int parse(struct cli *cli, int argc, char **argv, const struct cli_opts *o, char **pos,
                 int min, int max)
{
	int n = cli_getopt(cli, argc, argv, o, pos);

	if (n < 0)
		return n;
	if (n < min)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: missing arguments (see --help)", o->name);
	if (n > max)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: unexpected argument \"%.80s\"", o->name,
		                pos[max]);
	return n;
}

#define POSV(argc) ((char **)bh_calloc((size_t)(argc) + 1, sizeof(char *)))

/* ---- create / update ----------------------------------------------------- */

struct edit_args {
	const char *host;
	const char *description;
	struct ctx_tls_src tls;
	bool force;
	bool quiet;
	bool json;
	enum ctx_protect protect;
	const char *labels[CTX_LABELS_MAX + 1]; /* --label KEY=VALUE */
	size_t nlabels;
	const char *token; /* create --token: enrollment (cmd_enroll.c) */
};

enum { O_TOKEN = 900 }; /* context create --token */
enum { O_HOST = 1000, O_DESC, O_TLS_DIR, O_CA, O_CERT, O_KEY, O_FORMAT, O_PROTECTED, O_LABEL };

static const struct option edit_opts[] = {
    {"host", required_argument, NULL, O_HOST},
    {"description", required_argument, NULL, O_DESC},
    {"tls-dir", required_argument, NULL, O_TLS_DIR},
    {"ca", required_argument, NULL, O_CA},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"protected", optional_argument, NULL, O_PROTECTED},
    {"label", required_argument, NULL, O_LABEL},
    {"token", required_argument, NULL, O_TOKEN},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int edit_opt(struct cli *cli, int c, const char *arg, void *data)
{
	struct edit_args *a = data;

	switch (c) {
	case O_HOST:
		a->host = arg;
		return 0;
	case O_DESC:
		a->description = arg;
		return 0;
	case O_TLS_DIR:
		a->tls.dir = arg;
		return 0;
	case O_CA:
		a->tls.ca = arg;
		return 0;
	case O_CERT:
		a->tls.cert = arg;
		return 0;
	case O_KEY:
		a->tls.key = arg;
		return 0;
	case O_TOKEN:
		a->token = arg;
		return 0;
	case O_PROTECTED:
		return cli_guard_parse_protected(cli, arg, &a->protect);
	case O_LABEL:
		if (a->nlabels >= CTX_LABELS_MAX)
			return cli_fail(cli, CLI_EXIT_CMD, "at most %d --label", CTX_LABELS_MAX);
		a->labels[a->nlabels++] = arg;
		return 0;
	default:
		return no_opt(cli, c, arg, data);
	}
}

static const char create_usage[] =
    "Usage: berth context create NAME --host tcp://HOST:PORT\n"
    "         (--tls-dir DIR | --ca FILE --cert FILE --key FILE) [--description TEXT]\n"
    "         [--protected] [--label KEY=VALUE]...\n\n"
    "Create a context: a named daemon and the TLS material to reach it.  The\n"
    "files are checked (the key must match the cert) and copied into the store.\n"
    "--protected: destructive commands (rm, rmi, stop, kill, prune, ...) refuse\n"
    "this context unless it is named exactly with -c NAME on the command line.\n"
    "--label KEY=VALUE: select it with -c @KEY=VALUE (berth --help, fan-out).\n"
    "NAME: 1-64 of a-z A-Z 0-9 _ . + - starting with a letter or digit; \"default\"\n"
    "is the built-in context for the local socket.\n\n"
    "       berth context create NAME --token TOKEN [--description TEXT] [...]\n\n"
    "Enroll with a token from `berth trust add` (on the daemon's side): a new\n"
    "key is made here and never leaves this machine, the daemon (recognised by\n"
    "the key pin in the token) signs a certificate for it, and the context is\n"
    "written once that certificate has arrived.  A token works once.\n";

static int sub_create(struct cli *cli, int argc, char **argv)
{
	struct edit_args a = {0};
	struct cli_opts o = {"context create", create_usage, "", edit_opts, edit_opt, &a};
	cleanup_free char **pos = POSV(argc);
	struct ctx_create_opts c;
	struct bh_err err = {0};
	int n = parse(cli, argc, argv, &o, pos, 1, 1);

	if (n < 0)
		return n;
	if (a.token != NULL) { /* enrollment with a token: cmd_enroll.c */
		c = (struct ctx_create_opts){.name = pos[0], .description = a.description,
		                             .host = a.host, .tls = a.tls,
		                             .is_protected = a.protect == CTX_PROTECT_ON,
		                             .labels = a.labels, .nlabels = a.nlabels};
		return cli_context_create_token(cli, &c, a.token);
	}
	if (a.host == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "context create: --host is required");
	c = (struct ctx_create_opts){pos[0], a.description, a.host, a.tls,
	                             a.protect == CTX_PROTECT_ON, a.labels, a.nlabels};
	if (ctx_create(cli->config_dir, &c, &err) < 0)
		return store_fail(cli, &err);
	printf("%s\n", pos[0]);
	return 0;
}

static const char update_usage[] =
    "Usage: berth context update NAME [--host URL] [--description TEXT]\n"
    "         [--tls-dir DIR | --ca FILE --cert FILE --key FILE] [--protected=true|false]\n"
    "         [--label KEY=VALUE | --label KEY=]...\n\n"
    "Change a context; what is not given stays as it is.  --label KEY= removes\n"
    "the label KEY.\n";

static int sub_update(struct cli *cli, int argc, char **argv)
{
	struct edit_args a = {0};
	struct cli_opts o = {"context update", update_usage, "", edit_opts, edit_opt, &a};
	cleanup_free char **pos = POSV(argc);
	struct ctx_update_opts u;
	struct bh_err err = {0};
	int n = parse(cli, argc, argv, &o, pos, 1, 1);

	if (n < 0)
		return n;
	if (a.token != NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "context update: --token is for context create");
	if (!a.host && !a.description && !a.tls.dir && !a.tls.ca && !a.tls.cert && !a.tls.key &&
	    a.protect == CTX_PROTECT_KEEP && a.nlabels == 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context update: nothing to change (see --help)");
	u = (struct ctx_update_opts){a.description, a.host, a.tls, a.protect, a.labels, a.nlabels};
	if (ctx_update(cli->config_dir, pos[0], &u, &err) < 0)
		return store_fail(cli, &err);
	printf("%s\n", pos[0]);
	return 0;
}

/* ---- ls / show / use ------------------------------------------------------ */

static const struct option list_opts[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"format", required_argument, NULL, O_FORMAT},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int list_opt(struct cli *cli, int c, const char *arg, void *data)
{
	struct edit_args *a = data;

	if (c == 'q') {
		a->quiet = true;
	} else if (c == 'f') {
		a->force = true;
	} else if (c == O_FORMAT) {
		if (strcmp(arg, "json") != 0)
			return cli_fail(cli, CLI_EXIT_CMD, "unknown --format \"%.40s\" (only json)",
			                arg);
		a->json = true;
	} else {
		return no_opt(cli, c, arg, data);
	}
	return 0;
}

/* The context a command would use now, if it is a named one (not -H or
 * BERTH_HOST).  Errors of the resolution are not ls's business. */
static char *in_effect(struct cli *cli)
{
	const struct ctx_target *t;
	struct bh_err saved = cli->err;
	int code = cli->exit_code;

	if (cli_target(cli, &t) < 0) {
		cli->err = saved;
		cli->exit_code = code;
		return NULL;
	}
	if (t->source == CTX_SRC_FLAG_HOST || t->source == CTX_SRC_ENV_HOST)
		return NULL;
	return bh_strdup(t->name);
}

static json_t *labels_json(const struct ctx_meta *m)
{
	json_t *o = json_object();

	for (size_t i = 0; i < m->nlabels; i++)
		json_object_set_new(o, m->labels[i].key, json_string(m->labels[i].value));
	return o;
}

static json_t *list_json(const struct ctx_meta *l, size_t n, const char *cur)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:b, s:b, s:b}", "Name", l[i].name, "Description",
		                   l[i].description, "Host", l[i].host, "Current",
		                   cur && strcmp(cur, l[i].name) == 0, "TLS", l[i].tls.ca != NULL,
		                   "Protected", l[i].is_protected));
		json_object_set_new(json_array_get(arr, i), "Labels", labels_json(&l[i]));
	}
	return arr;
}

/* "env=prod,role=db" (labels are checked text: nothing to sanitise). */
static char *labels_text(const struct ctx_meta *m)
{
	struct bh_buf b;

	bh_buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < m->nlabels; i++)
		bh_buf_printf(&b, "%s%s=%s", i ? "," : "", m->labels[i].key, m->labels[i].value);
	return b.data ? b.data : bh_strdup("");
}

static void list_table(const struct ctx_meta *l, size_t n, const char *cur)
{
	int wn = 4, wd = 11, wh = 4;
	bool labels = false; /* a LABELS column only when some context has labels */
	char desc[41];

	for (size_t i = 0; i < n; i++) {
		int ln = (int)strlen(l[i].name) + 2, ld = (int)strlen(l[i].description);
		wn = ln > wn ? ln : wn;
		wd = ld > wd ? (ld > 40 ? 40 : ld) : wd;
		wh = (int)strlen(l[i].host) > wh ? (int)strlen(l[i].host) : wh;
		labels |= l[i].nlabels > 0;
	}
	printf("%-*s   %-*s   %-*s%s\n", wn, "NAME", wd, "DESCRIPTION", labels ? wh : 0, "HOST",
	       labels ? "   LABELS" : "");
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *name =
		    bh_asprintf("%s%s", l[i].name, cur && strcmp(cur, l[i].name) == 0 ? " *" : "");
		cleanup_free char *lt = labels_text(&l[i]);
		cli_sanitize(l[i].description, desc, sizeof(desc));
		printf("%-*s   %-*s   %-*s%s%s\n", wn, name, wd, desc, lt[0] ? wh : 0, l[i].host,
		       lt[0] ? "   " : "", lt);
	}
}

static const char ls_usage[] =
    "Usage: berth context ls [-q | --format json] [--check [--timeout 5s]]\n\n"
    "List the contexts; * marks the one in effect.  Client certificates that\n"
    "expire within 7 days (or have) get a warning on stderr.\n"
    "--check probes every context at once: reachable, round-trip time, server\n"
    "version, client certificate expiry, or the error (each within --timeout:\n"
    "seconds, or 500ms).\n";

enum { O_CHECK = 950, O_TIMEOUT }; /* context ls */

static const struct option ls_opts[] = {
    {"quiet", no_argument, NULL, 'q'},
    {"format", required_argument, NULL, O_FORMAT},
    {"check", no_argument, NULL, O_CHECK},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct ls_args {
	struct edit_args e; /* -q, --format */
	bool check;
	long timeout_ms;
};

/* "5", "5s", "500ms" -> milliseconds (1 ms .. 10 minutes). */
static int parse_timeout(struct cli *cli, const char *arg, long *ms)
{
	size_t n = strlen(arg);
	bool in_ms = n > 2 && strcmp(arg + n - 2, "ms") == 0;
	cleanup_free char *num = bh_strndup(arg, n - (in_ms ? 2 : (n > 1 && arg[n - 1] == 's')));
	long v;

	if (bh_parse_long(num, 1, in_ms ? 600000 : 600, &v) < 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "context ls: --timeout \"%.40s\": expected seconds (5, 5s) or "
		                "500ms, at most 10 minutes",
		                arg);
	*ms = in_ms ? v : v * 1000;
	return 0;
}

static int ls_opt(struct cli *cli, int c, const char *arg, void *data)
{
	struct ls_args *la = data;

	if (c == O_CHECK) {
		la->check = true;
		return 0;
	}
	if (c == O_TIMEOUT)
		return parse_timeout(cli, arg, &la->timeout_ms);
	return list_opt(cli, c, arg, &la->e);
}

static int sub_ls(struct cli *cli, int argc, char **argv)
{
	struct ls_args la = {.timeout_ms = 5000};
	struct edit_args a = {0};
	struct cli_opts o = {"context ls", ls_usage, "q", ls_opts, ls_opt, &la};
	cleanup_free char **pos = POSV(argc);
	cleanup_free char *cur = NULL;
	struct ctx_meta *l;
	struct bh_err err = {0};
	size_t n;
	int r = parse(cli, argc, argv, &o, pos, 0, 0);

	if (r < 0)
		return r;
	a = la.e;
	if (ctx_list(cli->config_dir, &l, &n, &err) < 0)
		return store_fail(cli, &err);
	cur = in_effect(cli);
	if (la.check) {
		r = cli_context_check(cli, l, n, la.timeout_ms, a.json);
	} else if (a.json) {
		json_t *arr = list_json(l, n, cur);
		r = cli_print_json(cli, arr);
		json_decref(arr);
	} else if (a.quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", l[i].name);
	} else {
		list_table(l, n, cur);
	}
	cli_context_expiry_warnings(l, n);
	ctx_list_free(l, n);
	return r < 0 ? -1 : 0;
}

static const char show_usage[] =
    "Usage: berth context show\n\n"
    "Print the daemon commands talk to now, and why: -H, -c,\n"
    "BERTH_HOST, BERTH_CONTEXT, the current context or the local socket.\n";

static int sub_show(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = {"context show", show_usage, "", help_only, no_opt, NULL};
	cleanup_free char **pos = POSV(argc);
	const struct ctx_target *t;
	int r = parse(cli, argc, argv, &o, pos, 0, 0);

	if (r < 0)
		return r;
	if (cli_target(cli, &t) < 0)
		return -1;
	if (t->source == CTX_SRC_FLAG_HOST || t->source == CTX_SRC_ENV_HOST)
		printf("%s (%s)\n", t->host, t->reason);
	else
		printf("%s (%s)\nhost: %s\n", t->name, t->reason, t->host);
	return 0;
}

static const char use_usage[] = "Usage: berth context use NAME\n\n"
                                "Make NAME the current context (\"default\": the local socket).\n";

static int sub_use(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = {"context use", use_usage, "", help_only, no_opt, NULL};
	cleanup_free char **pos = POSV(argc);
	struct bh_err err = {0};
	struct ctx_env env;
	int r = parse(cli, argc, argv, &o, pos, 1, 1);

	if (r < 0)
		return r;
	if (ctx_use(cli->config_dir, pos[0], &err) < 0)
		return store_fail(cli, &err);
	printf("%s\n", pos[0]);
	ctx_env_from_process(&env);
	if (env.berth_host != NULL || env.berth_context != NULL)
		fprintf(stderr, "berth: warning: %s is set and overrides the current context\n",
		        env.berth_host ? "BERTH_HOST" : "BERTH_CONTEXT");
	return 0;
}

/* ---- inspect ------------------------------------------------------------ */

static json_t *time_json(int64_t t)
{
	char s[40];

	bh_rfc3339(s, t, 0);
	return json_string(s);
}

static json_t *cert_json(const char *path)
{
	struct pki_cert_info info;
	struct bh_err err = {0};
	json_t *j;

	if (pki_cert_info_from_file(path, &info, &err) < 0)
		return json_pack("{s:s}", "Error", err.msg);
	j = json_pack("{s:s, s:s, s:o, s:o, s:b, s:s}", "Subject", info.subject, "Issuer",
	              info.issuer, "NotBefore", time_json(info.not_before), "NotAfter",
	              time_json(info.not_after), "Expired", info.not_after < (int64_t)time(NULL),
	              "Fingerprint", info.fingerprint);
	pki_cert_info_free(&info);
	return j;
}

static json_t *inspect_json(const struct ctx_meta *m)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:b}", "Name", m->name, "Description",
	                      m->description, "Host", m->host, "Created", m->created,
	                      "Protected", m->is_protected);

	json_object_set_new(j, "Labels", labels_json(m));
	if (m->tls.ca == NULL) {
		json_object_set_new(j, "TLS", json_null());
		return j;
	}
	/* Paths only: the key itself is never printed. */
	json_object_set_new(
	    j, "TLS",
	    json_pack("{s:s, s:s, s:s}", "CA", m->tls.ca, "Cert", m->tls.cert, "Key", m->tls.key));
	json_object_set_new(j, "ClientCert", cert_json(m->tls.cert));
	return j;
}

static const char inspect_usage[] =
    "Usage: berth context inspect NAME...\n\n"
    "Print contexts as a JSON array: host, TLS file paths, the client\n"
    "certificate's subject and expiry.\n";

static int sub_inspect(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = {"context inspect", inspect_usage, "", help_only, no_opt, NULL};
	cleanup_free char **pos = POSV(argc);
	struct bh_err err = {0};
	json_t *arr;
	int n = parse(cli, argc, argv, &o, pos, 1, argc), r = 0;

	if (n < 0)
		return n;
	arr = json_array();
	for (int i = 0; i < n && r == 0; i++) {
		struct ctx_meta m;
		if (ctx_load(cli->config_dir, pos[i], &m, &err) < 0) {
			r = store_fail(cli, &err);
			break;
		}
		json_array_append_new(arr, inspect_json(&m));
		ctx_meta_free(&m);
	}
	if (r == 0)
		r = cli_print_json(cli, arr);
	json_decref(arr);
	return r;
}

/* ---- rm / export / import ------------------------------------------------ */

static const char rm_usage[] = "Usage: berth context rm [-f] NAME...\n\n"
                               "Remove contexts.  The current context is refused unless -f\n"
                               "(which also makes \"default\" current).\n";

static int sub_rm(struct cli *cli, int argc, char **argv)
{
	struct edit_args a = {0};
	struct cli_opts o = {"context rm", rm_usage, "f", list_opts, list_opt, &a};
	cleanup_free char **pos = POSV(argc);
	struct bh_err err = {0};
	int n = parse(cli, argc, argv, &o, pos, 1, argc);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (ctx_remove(cli->config_dir, pos[i], a.force, &err) < 0)
			return store_fail(cli, &err);
		printf("%s\n", pos[i]);
	}
	return 0;
}

static const char export_usage[] =
    "Usage: berth context export NAME [FILE|-]\n\n"
    "Write the context (metadata and TLS files, key included) as a tar to FILE\n"
    "(default NAME.berthcontext, mode 0600) or to standard output.\n";

static int sub_export(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = {"context export", export_usage, "", help_only, no_opt, NULL};
	cleanup_free char **pos = POSV(argc);
	cleanup_free char *file = NULL;
	struct bh_err err = {0};
	int n = parse(cli, argc, argv, &o, pos, 1, 2);

	if (n < 0)
		return n;
	file = n == 2 ? bh_strdup(pos[1]) : bh_asprintf("%s.berthcontext", pos[0]);
	/* The tar holds the private key: never spray it over a terminal. */
	if (strcmp(file, "-") == 0 && isatty(STDOUT_FILENO))
		return cli_fail(cli, CLI_EXIT_CMD,
				"context export: refusing to write the archive to a terminal");
	if (ctx_export(cli->config_dir, pos[0], file, &err) < 0)
		return store_fail(cli, &err);
	if (strcmp(file, "-") != 0)
		printf("%s\n", file);
	return 0;
}

static const char import_usage[] =
    "Usage: berth context import NAME FILE|-\n\n"
    "Create context NAME from an exported tar (or standard input).  Only\n"
    "meta.json and tls/{ca,cert,key}.pem are accepted; nothing is written\n"
    "unless all of it is valid.\n";

static int sub_import(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = {"context import", import_usage, "", help_only, no_opt, NULL};
	cleanup_free char **pos = POSV(argc);
	struct bh_err err = {0};
	int n = parse(cli, argc, argv, &o, pos, 2, 2);

	if (n < 0)
		return n;
	if (ctx_import(cli->config_dir, pos[0], pos[1], &err) < 0)
		return store_fail(cli, &err);
	printf("%s\n", pos[0]);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct {
	const char *name;
	cli_cmd_fn fn;
	const char *help;
} subs[] = {
    {"create", sub_create, "Create a context from a host and TLS files"},
    {"ls", sub_ls, "List contexts (also: list)"},
    {"list", sub_ls, NULL},
    {"use", sub_use, "Set the current context"},
    {"show", sub_show, "Print the context in effect and why"},
    {"inspect", sub_inspect, "Print contexts as JSON"},
    {"update", sub_update, "Change a context"},
    {"renew", cli_context_renew, "Renew the client certificate over mutual TLS"},
    {"rm", sub_rm, "Remove contexts (also: remove)"},
    {"remove", sub_rm, NULL},
    {"export", sub_export, "Write a context as a tar"},
    {"import", sub_import, "Create a context from an exported tar"},
};

static void context_usage(void)
{
	printf("Usage: berth context COMMAND\n\nManage contexts: named daemons with their TLS "
	       "material.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (subs[i].help != NULL)
			printf("  %-8s %s\n", subs[i].name, subs[i].help);
}

int cmd_context(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		context_usage();
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(cli, argc - 1, argv + 1);
	return cli_fail(cli, CLI_EXIT_CMD,
	                "context: unknown command \"%.80s\" (berth context --help lists them)",
	                argv[1]);
}
