/* client: -c with several contexts (a list, a glob, @label=value).  One
 * match runs as usual; several run the same command once per context as a
 * child process of this binary (`berth -c NAME COMMAND ARGS...`), scheduled
 * and printed by fanout_run.c.  What cannot work on several hosts at once
 * (a terminal, an interactive stream, commands not meant for it) is refused
 * here, before anything runs. */
#include <stdlib.h>
#include <string.h>

#include "client/fanout.h"

#define FAN_PARALLEL_DEFAULT 16

/* The commands that may fan out, and what their output is in JSON. */
struct fan_cmd {
	const char *name;
	enum cli_fan_result json;
	bool table;       /* ps, images: one merged table with CONTEXT */
	bool format_flag; /* has its own --format json */
};
static const struct fan_cmd fan_cmds[] = {
    {"ps", CLI_FAN_RESULT_LINES, true, true},      {"images", CLI_FAN_RESULT_LINES, true, true},
    {"info", CLI_FAN_RESULT_WHOLE, false, true},   {"version", CLI_FAN_RESULT_WHOLE, false, true},
    {"exec", CLI_FAN_RESULT_TEXT, false, false},   {"run", CLI_FAN_RESULT_TEXT, false, false},
    {"pull", CLI_FAN_RESULT_TEXT, false, false},   {"logs", CLI_FAN_RESULT_TEXT, false, false},
    {"stop", CLI_FAN_RESULT_TEXT, false, false},   {"rm", CLI_FAN_RESULT_TEXT, false, false},
    {"events", CLI_FAN_RESULT_LINES, false, true},
};

static const struct fan_cmd *fan_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(fan_cmds) / sizeof(fan_cmds[0]); i++)
		if (strcmp(fan_cmds[i].name, name) == 0)
			return &fan_cmds[i];
	return NULL;
}

/* What the command's own flags say (argv[0] is the command). */
struct fan_flags {
	bool quiet; /* ps/images -q: IDs, no table */
	bool json;  /* --format json */
	bool help;  /* -h/--help: the command prints its usage, nothing fans out */
	bool interactive, tty, detach;
};

static bool is_format_json(char **argv, int i, int argc)
{
	if (strcmp(argv[i], "--format=json") == 0)
		return true;
	return strcmp(argv[i], "--format") == 0 && i + 1 < argc && strcmp(argv[i + 1], "json") == 0;
}

/* ps, images, info, version: no free-form arguments, so a scan is exact
 * enough; ps's -f/--filter and version's -f take a value. */
static void scan_listing(const char *cmd, int argc, char **argv, struct fan_flags *f)
{
	bool f_is_format = strcmp(cmd, "info") == 0 || strcmp(cmd, "version") == 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			f->help = true;
		else if (strcmp(a, "--quiet") == 0)
			f->quiet = true;
		else if (is_format_json(argv, i, argc))
			f->json = true;
		else if (strcmp(a, "--filter") == 0)
			i++;
		else if (a[0] == '-' && a[1] != '-' && a[1] != '\0') {
			if (strchr(a, 'q') != NULL &&
			    (strchr(a, 'f') == NULL || strchr(a, 'q') < strchr(a, 'f')))
				f->quiet = true;
			if (f_is_format && strncmp(a, "-f", 2) == 0)
				f->json |= strcmp(a + 2, "json") == 0 ||
				           (a[2] == '\0' && i + 1 < argc &&
				            strcmp(argv[i + 1], "json") == 0);
			if (a[strlen(a) - 1] == 'f')
				i++; /* its value */
		}
	}
}

/* exec's options up to CONTAINER, with exec's own option table
 * (client/cmd_exec.c): only -i, -t and -d matter here. */
static int exec_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct fan_flags *f = data;

	f->interactive |= c == 'i';
	f->tty |= c == 't';
	f->detach |= c == 'd';
	return 0;
}

static int scan_exec(struct cli *cli, int argc, char **argv, struct fan_flags *f)
{
	struct cli_opts o = {"exec", "", CLI_EXEC_SHORTOPTS, cli_exec_longopts, exec_flag, f};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n = cli_getopt_until_positional(cli, argc, argv, &o, pos);

	if (n == -2)
		f->help = true;
	return n == -1 ? -1 : 0;
}

static int scan_run(struct cli *cli, int argc, char **argv, struct fan_flags *f)
{
	struct cli_run r;
	int n = cli_run_parse(cli, "run", argc, argv, &r);

	if (n == -2) {
		f->help = true; /* run's usage is printed already */
		return 0;
	}
	if (n < 0)
		return -1;
	f->interactive = r.interactive;
	f->tty = r.tty;
	f->detach = r.detach;
	cli_run_free(&r);
	return 0;
}

static int scan_flags(struct cli *cli, const struct fan_cmd *c, int argc, char **argv,
                      struct fan_flags *f)
{
	memset(f, 0, sizeof(*f));
	if (strcmp(c->name, "exec") == 0)
		return scan_exec(cli, argc, argv, f);
	if (strcmp(c->name, "run") == 0)
		return scan_run(cli, argc, argv, f);
	scan_listing(c->name, argc, argv, f);
	if (!c->format_flag)
		f->json = false;
	return 0;
}

/* "a, b, c and 17 more" for messages. */
static void names_text(const struct ctx_selection *sel, char *out, size_t outlen)
{
	struct bh_buf b;
	size_t i;

	bh_buf_init(&b, 4096);
	for (i = 0; i < sel->n && i < 5; i++)
		bh_buf_printf(&b, "%s%s", i ? ", " : "", sel->items[i].name);
	if (i < sel->n)
		bh_buf_printf(&b, " and %zu more", sel->n - i);
	bh_strlcpy(out, b.data ? b.data : "", outlen);
	bh_buf_free(&b);
}

static int refuse(struct cli *cli, const struct ctx_selection *sel, const char *cmd,
                  const struct fan_flags *f)
{
	char names[512];

	names_text(sel, names, sizeof(names));
	if (sel->n == 1) /* only the fan-out flags brought us here */
		return cli_fail(cli, CLI_EXIT_CMD,
		                "'berth %s%s' does not fan out: --parallel, --timeout and --format "
		                "before the command are for ps, images, info, version, exec, run, "
		                "pull, logs, stop, rm and events without -i/-t",
		                cmd, f && (f->interactive || f->tty) ? " -i/-t" : "");
	if (f == NULL)
		return cli_fail(
		    cli, CLI_EXIT_CMD,
		    "'berth %s' runs on one context at a time, and -c '%s' selects %zu: "
		    "%s (fan-out takes ps, images, info, version, exec, run, pull, "
		    "logs, stop, rm, events)",
		    cmd, cli->context, sel->n, names);
	return cli_fail(cli, CLI_EXIT_CMD,
	                "'berth %s%s%s' is interactive and cannot run on %zu contexts at once "
	                "(-c '%s' selects %s): drop -i/-t or select one context",
	                cmd, f->interactive ? " -i" : "", f->tty ? " -t" : "", sel->n, cli->context,
	                names);
}

/* The child's argv: exe -c NAME [--debug] COMMAND ARGS... [--format json]. */
int (*cli_fanout_entry)(int argc, char **argv);

static char **child_argv(const struct cli *cli, const char *exe, int argc, char **argv,
                         bool add_json, int *ctx_index)
{
	char **v = bh_calloc((size_t)argc + 8, sizeof(*v));
	int k = 0;

	v[k++] = (char *)exe;
	v[k++] = "-c";
	*ctx_index = k;
	v[k++] = "";
	if (cli->debug)
		v[k++] = "--debug";
	for (int i = 0; i < argc; i++)
		v[k++] = argv[i];
	if (add_json) {
		v[k++] = "--format";
		v[k++] = "json";
	}
	return v;
}

static enum cli_fan_mode mode_of(const struct cli *cli, const struct fan_cmd *c,
                                 const struct fan_flags *f)
{
	if ((cli->fan_json || f->json) && strcmp(c->name, "events") == 0)
		return CLI_FAN_JSON_STREAM; /* endless: one object per event */
	if (cli->fan_json || f->json)
		return CLI_FAN_JSON;
	if (c->table && !f->quiet)
		return CLI_FAN_TABLE;
	return CLI_FAN_LINES;
}

static int fan_out(struct cli *cli, const struct ctx_selection *sel, const struct fan_cmd *c,
                   const struct fan_flags *f, int argc, char **argv, const char *argv0)
{
	struct cli_fan_host *hosts = bh_calloc(sel->n, sizeof(*hosts));
	cleanup_free char *exe = cli_child_self_exe(argv0);
	struct cli_fan_plan p = {.exe = exe, .cmd = c->name, .config_dir = cli->config_dir};
	const char *spawn = getenv("BERTH_FANOUT_SPAWN");
	cleanup_free char *fast = NULL;
	int r;

	for (size_t i = 0; i < sel->n; i++)
		hosts[i] = (struct cli_fan_host){sel->items[i].name, sel->items[i].host};
	p.mode = mode_of(cli, c, f);
	p.result = f->quiet ? CLI_FAN_RESULT_TEXT : c->json;
	p.argv = child_argv(cli, exe, argc, argv,
	                    c->format_flag && !f->quiet && p.mode != CLI_FAN_LINES, &p.ctx_index);
	p.parallel = cli->fan_parallel > 0 ? cli->fan_parallel : FAN_PARALLEL_DEFAULT;
	p.timeout_s = cli->fan_timeout;
	p.hosts = hosts;
	p.nhosts = sel->n;
	p.marker = CLI_FANOUT_ENV "=1";
	/* Forks skip a process start each (about half of a host's CPU);
	 * BERTH_FANOUT_SPAWN=exec re-executes the binary instead (bench/fanout). */
	if (!bh_str_has_prefix(spawn ? spawn : "", "exec"))
		p.entry = cli_fanout_entry;
	/* ps, images (info, version in JSON) with flags it knows: no children at
	 * all, one GET per host from here; BERTH_FANOUT_SPAWN=fork|exec keeps
	 * children (bench). */
	if (!f->quiet && !cli->debug && (spawn == NULL || spawn[0] == '\0'))
		p.fast_path = fast = cli_fan_fast_path(c->name, argc, argv, p.mode == CLI_FAN_JSON,
		                                       &p.fast_no_trunc);
	r = cli_fan_run(cli, &p);
	free(p.argv);
	free(hosts);
	return r;
}

static bool fan_opts_given(const struct cli *cli)
{
	return cli->fan_parallel > 0 || cli->fan_timeout > 0 || cli->fan_json;
}

/* A fan-out child: never fans out again; its stdout is a pipe, so lines
 * must leave as they are made (events, logs -f). */
static int as_child(struct cli *cli)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cli->context != NULL && ctx_selection_is_pattern(cli->context))
		return cli_fail(cli, CLI_EXIT_CMD, "internal: a fan-out child got a selection");
	return 1;
}

static int several(struct cli *cli, struct ctx_selection *sel, int argc, char **argv,
                   const char *argv0)
{
	const struct fan_cmd *c = fan_cmd_find(argv[0]);
	struct fan_flags f;

	if (c == NULL)
		return refuse(cli, sel, argv[0], NULL);
	if (scan_flags(cli, c, argc, argv, &f) < 0)
		return -1;
	if (f.help) /* the command prints its usage (run's is out already) */
		return strcmp(c->name, "run") == 0 ? 0 : 1;
	if (f.interactive || f.tty)
		return refuse(cli, sel, argv[0], &f);
	return fan_out(cli, sel, c, &f, argc, argv, argv0);
}

int cli_fanout_flag(struct cli *cli, int c, const char *arg)
{
	if (c == 'F') {
		if (strcmp(arg, "json") != 0)
			return cli_fail(cli, CLI_EXIT_CMD, "--format \"%.40s\": only json", arg);
		cli->fan_json = true;
		return 0;
	}
	if (c == 'P' && bh_parse_long(arg, 1, 1024, &cli->fan_parallel) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "--parallel \"%.40s\": want 1-1024", arg);
	if (c == 'W' && bh_parse_long(arg, 1, 86400, &cli->fan_timeout) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "--timeout \"%.40s\": want 1-86400 (seconds)",
		                arg);
	return 0;
}

int cli_fanout(struct cli *cli, int argc, char **argv, int cmd_index)
{
	static char one[CTX_NAME_MAX + 1]; /* the single match, for cli->context */
	const char *marker = getenv(CLI_FANOUT_ENV);
	struct ctx_selection sel;
	struct bh_err err = {0};
	int r;

	if (marker != NULL && marker[0] != '\0')
		return as_child(cli);
	if (cli->context == NULL) {
		if (fan_opts_given(cli))
			return cli_fail(cli, CLI_EXIT_CMD,
			                "--parallel, --timeout and --format before the command go "
			                "with -c (the contexts to run on)");
		return 1;
	}
	if (!ctx_selection_is_pattern(cli->context) && !fan_opts_given(cli))
		return 1; /* one exact name: today's path, no extra cost */
	if (cli->host != NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "-H and -c '%s' do not go together",
		                cli->context);
	if (ctx_select(cli->config_dir, cli->context, &sel, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s", err.msg);
	if (sel.n == 1 && !fan_opts_given(cli)) {
		bh_strlcpy(one, sel.items[0].name, sizeof(one));
		cli->context = one;
		r = 1;
	} else {
		r = several(cli, &sel, argc - cmd_index, argv + cmd_index, argv[0]);
	}
	ctx_selection_free(&sel);
	return r;
}
