/* client: protected contexts.  A context marked protected (berth context
 * create --protected) refuses every destructive verb unless the context was
 * named exactly with -c/--context on this command line: a current context
 * (`context use`), BERTH_CONTEXT, a bundle, a glob or a label selector never
 * suffice, and --force does not bypass it.  The one list of destructive verbs
 * and the one check live here, called from main.c before any command runs,
 * so nothing is sent when the check fails.  Pure C and contexts/: portable. */
#include <string.h>

#include "client/client-internal.h"

/* Top-level verbs, then "command subcommand" pairs.  A new destructive
 * command is added here, nowhere else. */
static const char *const destructive_verbs[] = {
    "rm", "rmi", "stop", "kill", "restart", "prune",
};
static const char *const destructive_subs[][2] = {
    {"image", "rm"},          {"image", "rmi"},        {"image", "remove"},   {"image", "prune"},
    {"container", "rm"},      {"container", "remove"}, {"container", "stop"}, {"container", "kill"},
    {"container", "restart"}, {"container", "prune"},  {"volume", "rm"},      {"volume", "remove"},
    {"volume", "prune"},      {"network", "rm"},       {"network", "prune"},  {"system", "prune"},
    {"trust", "revoke"},      {"trust", "rm"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

bool cli_guard_is_destructive(int argc, char **argv)
{
	if (argc < 1)
		return false;
	for (size_t i = 0; i < N_OF(destructive_verbs); i++)
		if (strcmp(argv[0], destructive_verbs[i]) == 0)
			return true;
	if (argc < 2)
		return false;
	for (size_t i = 0; i < N_OF(destructive_subs); i++)
		if (strcmp(argv[0], destructive_subs[i][0]) == 0 &&
		    strcmp(argv[1], destructive_subs[i][1]) == 0)
			return true;
	return false;
}

int cli_guard_parse_protected(struct cli *cli, const char *arg, enum ctx_protect *out)
{
	if (arg == NULL || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0) {
		*out = CTX_PROTECT_ON;
		return 0;
	}
	if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0) {
		*out = CTX_PROTECT_OFF;
		return 0;
	}
	return cli_fail(cli, CLI_EXIT_CMD, "--protected=%.40s: expected true or false", arg);
}

/* ---- the check ------------------------------------------------------------ */

static int refuse(struct cli *cli, const char *verb, const char *name, const char *host,
                  const char *why)
{
	return cli_fail(cli, CLI_EXIT_CMD,
	                "%s: context \"%s\" (host %s) is protected and was not named with -c "
	                "(selected: %s); name it exactly with -c %s on this command line to "
	                "run %s there (--force does not override this)",
	                verb, name, host, why, name, verb);
}

/* -c with a list, glob or label selector (contexts/select.c): every
 * protected context it picks must be named exactly in the same list. */
static int check_selection(struct cli *cli, const char *verb)
{
	struct ctx_selection sel;
	struct bh_err err = {0};
	char why[300];
	int r = 0;

	if (ctx_select(cli->config_dir, cli->context, &sel, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: %s", verb, err.msg);
	for (size_t i = 0; i < sel.n && r == 0; i++) {
		if (!sel.items[i].is_protected || sel.named[i])
			continue;
		snprintf(why, sizeof(why), "picked by the pattern in -c '%.200s'", cli->context);
		r = refuse(cli, verb, sel.items[i].name, sel.items[i].host, why);
	}
	ctx_selection_free(&sel);
	return r;
}

static int verb_of(int argc, char **argv, char *out, size_t outlen)
{
	if (argc >= 2 && !cli_guard_is_destructive(1, argv))
		snprintf(out, outlen, "%s %s", argv[0], argv[1]);
	else
		snprintf(out, outlen, "%s", argv[0]);
	return 0;
}

static bool asks_for_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int cli_guard(struct cli *cli, int argc, char **argv)
{
	const struct ctx_target *t;
	char verb[128];

	if (!cli_guard_is_destructive(argc, argv) || asks_for_help(argc, argv))
		return 0;
	if (cli->host != NULL)
		return 0; /* -H: a bare host, no context to protect */
	verb_of(argc, argv, verb, sizeof(verb));
	if (cli->context != NULL) {
		if (!ctx_selection_is_pattern(cli->context))
			return 0; /* one exact name: named on purpose */
		return check_selection(cli, verb);
	}
	if (cli_target(cli, &t) < 0)
		return -1;
	if (!t->is_protected)
		return 0;
	return refuse(cli, verb, t->name, t->host, t->reason);
}
