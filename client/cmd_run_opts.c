/* berth run / berth create, part one: docker's flags mapped onto the body of
 * POST /containers/create (pure: nothing is sent here, so a bad value costs
 * nothing on the daemon).  The flags and any --env-file are the user's. */
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

#define ENV_FILE_MAX (1024 * 1024)

enum {
	OPT_RM = 1000,
	OPT_NAME,
	OPT_ENV_FILE,
	OPT_HOSTNAME,
	OPT_ENTRYPOINT,
	OPT_CPUS,
	OPT_PIDS,
	OPT_READ_ONLY,
	OPT_NETWORK,
	OPT_RESTART,
	OPT_PULL,
};

static const struct option run_opts[] = {
    {"detach", no_argument, NULL, 'd'},
    {"rm", no_argument, NULL, OPT_RM},
    {"name", required_argument, NULL, OPT_NAME},
    {"env", required_argument, NULL, 'e'},
    {"env-file", required_argument, NULL, OPT_ENV_FILE},
    {"workdir", required_argument, NULL, 'w'},
    {"user", required_argument, NULL, 'u'},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
    {"memory", required_argument, NULL, 'm'},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"pids-limit", required_argument, NULL, OPT_PIDS},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"network", required_argument, NULL, OPT_NETWORK},
    {"net", required_argument, NULL, OPT_NETWORK},
    {"restart", required_argument, NULL, OPT_RESTART},
    {"pull", required_argument, NULL, OPT_PULL},
    {"label", required_argument, NULL, 'l'},
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char run_usage[] =
    "Usage: berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "       berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
    "Create a container from IMAGE (and, for run, start it and stream its output;\n"
    "berth run exits with the container's exit code).  Options end at IMAGE.\n\n"
    "  -d, --detach             run: start in the background and print the ID\n"
    "      --rm                 remove the container when it exits\n"
    "      --name NAME          name the container\n"
    "  -e, --env K=V            set a variable (-e K takes K from this environment)\n"
    "      --env-file FILE      read K=V lines from FILE\n"
    "  -w, --workdir DIR        working directory inside the container\n"
    "  -u, --user USER[:GROUP]  user (name or uid) to run as\n"
    "      --hostname NAME      the container's host name\n"
    "      --entrypoint CMD     override the image's entrypoint\n"
    "  -m, --memory SIZE        memory limit (64m, 1g, ...)\n"
    "      --cpus N             CPU quota (0.5 = half a core)\n"
    "      --pids-limit N       most processes (-1: unlimited)\n"
    "      --read-only          mount the root file system read-only\n"
    "      --network none|host  network mode\n"
    "      --restart POLICY     no | on-failure[:N] | always | unless-stopped\n"
    "      --pull POLICY        missing (pull IMAGE if the daemon lacks it; default),\n"
    "                           always, or never\n"
    "  -l, --label K=V          set a label\n"
    "  -i, --interactive        keep stdin open and forward it\n"
    "  -t, --tty                allocate a terminal (with -i, stdin must be one)\n";

/* The parse in progress: the pieces of the body gathered from the flags. */
struct run_parse {
	struct cli_run *r;
	json_t *env, *labels, *hc;
	bool entrypoint_set;
	const char *entrypoint;
	const char *restart;
	long restart_max;
};

static int bad_value(struct cli *cli, struct run_parse *p, const char *flag, const char *arg,
                     const char *hint)
{
	return cli_fail(cli, CLI_EXIT_RUN, "%s: invalid %s \"%.80s\": %s", p->r->cmd, flag, arg,
	                hint);
}

/* -e K=V, or -e K: K's value here, left out when K is unset (as docker). */
static int add_env(struct cli *cli, struct run_parse *p, const char *kv, size_t len)
{
	cleanup_free char *s = bh_strndup(kv, len);
	const char *eq = strchr(s, '=');
	const char *v;

	if (s[0] == '\0' || s[0] == '=')
		return bad_value(cli, p, "environment variable", s, "want KEY=VALUE");
	if (eq != NULL) {
		json_array_append_new(p->env, json_string(s));
		return 0;
	}
	if ((v = getenv(s)) != NULL)
		json_array_append_new(p->env, json_sprintf("%s=%s", s, v));
	return 0;
}

static int add_env_file(struct cli *cli, struct run_parse *p, const char *path)
{
	cleanup_free char *data = NULL;
	struct bh_err err = {0};
	size_t len, i = 0;

	if (bh_read_file(path, ENV_FILE_MAX, &data, &len, &err) < 0)
		return cli_fail(cli, CLI_EXIT_RUN, "%s: --env-file: %s", p->r->cmd, err.msg);
	while (i < len) {
		size_t end = i, stop;
		while (end < len && data[end] != '\n')
			end++;
		stop = end;
		while (i < stop && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (stop > i && (data[stop - 1] == '\r' || data[stop - 1] == ' '))
			stop--;
		if (stop > i && data[i] != '#' && add_env(cli, p, data + i, stop - i) < 0)
			return -1;
		i = end + 1;
	}
	return 0;
}

static int add_label(struct cli *cli, struct run_parse *p, const char *kv)
{
	const char *eq = strchr(kv, '=');
	cleanup_free char *key = bh_strndup(kv, eq ? (size_t)(eq - kv) : strlen(kv));

	if (key[0] == '\0')
		return bad_value(cli, p, "--label", kv, "want KEY=VALUE");
	json_object_set_new(p->labels, key, json_string(eq ? eq + 1 : ""));
	return 0;
}

static int resource_flag(struct cli *cli, struct run_parse *p, int c, const char *arg)
{
	int64_t v;
	long l;

	switch (c) {
	case 'm':
		if (bh_parse_size(arg, &v) < 0 || v <= 0)
			return bad_value(cli, p, "--memory", arg,
			                 "want a size such as 64m, 512k, 1g (units b, k, m, g)");
		json_object_set_new(p->hc, "Memory", json_integer(v));
		return 0;
	case OPT_CPUS:
		if (cli_parse_cpus(arg, &v) < 0)
			return bad_value(cli, p, "--cpus", arg,
			                 "want a number of CPUs >= 0, as 0.5");
		json_object_set_new(p->hc, "NanoCpus", json_integer(v));
		return 0;
	case OPT_PIDS:
		if (bh_parse_long(arg, -1, 1L << 30, &l) < 0)
			return bad_value(cli, p, "--pids-limit", arg, "want an integer >= -1");
		json_object_set_new(p->hc, "PidsLimit", json_integer(l));
		return 0;
	case OPT_RESTART:
		if (cli_parse_restart(arg, &p->restart, &p->restart_max) < 0)
			return bad_value(cli, p, "--restart", arg,
			                 "want no, on-failure[:N], always or unless-stopped");
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_RUN, "%s: unexpected option %d", p->r->cmd, c);
	}
}

static int config_flag(struct cli *cli, struct run_parse *p, int c, const char *arg)
{
	json_t *body = p->r->body;

	switch (c) {
	case 'w':
		json_object_set_new(body, "WorkingDir", json_string(arg));
		return 0;
	case 'u':
		json_object_set_new(body, "User", json_string(arg));
		return 0;
	case OPT_HOSTNAME:
		json_object_set_new(body, "Hostname", json_string(arg));
		return 0;
	case OPT_ENTRYPOINT:
		p->entrypoint_set = true;
		p->entrypoint = arg;
		return 0;
	case OPT_NETWORK:
		json_object_set_new(p->hc, "NetworkMode", json_string(arg));
		return 0;
	case OPT_READ_ONLY:
		json_object_set_new(p->hc, "ReadonlyRootfs", json_true());
		return 0;
	default:
		return resource_flag(cli, p, c, arg);
	}
}

static int run_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct run_parse *p = data;
	struct cli_run *r = p->r;

	switch (c) {
	case 'd':
		if (strcmp(r->cmd, "run") != 0)
			return cli_fail(cli, CLI_EXIT_RUN, "%s: unknown option -d (see --help)",
			                r->cmd);
		r->detach = true;
		return 0;
	case OPT_RM:
		r->rm = true;
		return 0;
	case OPT_NAME:
		r->name = arg;
		return 0;
	case OPT_PULL:
		if (strcmp(arg, "missing") == 0)
			r->pull = CLI_PULL_MISSING;
		else if (strcmp(arg, "always") == 0)
			r->pull = CLI_PULL_ALWAYS;
		else if (strcmp(arg, "never") == 0)
			r->pull = CLI_PULL_NEVER;
		else
			return cli_fail(cli, CLI_EXIT_RUN,
			                "%s: --pull %s: want always, missing or never", r->cmd,
			                arg);
		return 0;
	case 'e':
		return add_env(cli, p, arg, strlen(arg));
	case OPT_ENV_FILE:
		return add_env_file(cli, p, arg);
	case 'l':
		return add_label(cli, p, arg);
	case 'i':
		r->interactive = true;
		return 0;
	case 't':
		r->tty = true;
		return 0;
	default:
		return config_flag(cli, p, c, arg);
	}
}

/* What the flags cannot express alone: IMAGE and COMMAND, the entrypoint,
 * the restart policy, and the combinations docker refuses. */
static int finish_body(struct cli *cli, struct run_parse *p, int npos, char **pos)
{
	struct cli_run *r = p->r;
	json_t *b = r->body, *cmd;

	if (npos < 1)
		return cli_fail(cli, CLI_EXIT_RUN,
		                "%s: requires at least 1 argument: IMAGE [COMMAND] [ARG...]",
		                r->cmd);
	if (r->rm && p->restart != NULL && strcmp(p->restart, "no") != 0)
		return cli_fail(cli, CLI_EXIT_RUN, "%s: conflicting options: --restart and --rm",
		                r->cmd);
	r->image = pos[0];
	json_object_set_new(b, "Image", json_string(r->image));
	if (npos > 1) {
		cmd = json_array();
		for (int i = 1; i < npos; i++)
			json_array_append_new(cmd, json_string(pos[i]));
		json_object_set_new(b, "Cmd", cmd);
	}
	if (p->entrypoint_set) /* --entrypoint "" clears the image's, as docker */
		json_object_set_new(b, "Entrypoint", json_pack("[s]", p->entrypoint));
	if (p->restart != NULL)
		json_object_set_new(p->hc, "RestartPolicy",
		                    json_pack("{s:s, s:I}", "Name", p->restart, "MaximumRetryCount",
		                              (json_int_t)p->restart_max));
	/* An attached run removes the container itself once it has the output
	 * and the exit code; the daemon's AutoRemove could race the logs. */
	if (r->rm && (r->detach || strcmp(r->cmd, "create") == 0))
		json_object_set_new(p->hc, "AutoRemove", json_true());
	return 0;
}

static void body_defaults(struct cli_run *r, struct run_parse *p)
{
	r->body = json_object();
	p->env = json_array();
	p->labels = json_object();
	p->hc = json_object();
}

static void body_attach(struct cli_run *r, struct run_parse *p)
{
	json_t *b = r->body;
	bool attach = !r->detach;
	int rows, cols;

	json_object_set_new(b, "AttachStdin", json_boolean(attach && r->interactive));
	json_object_set_new(b, "AttachStdout", json_boolean(attach));
	json_object_set_new(b, "AttachStderr", json_boolean(attach));
	json_object_set_new(b, "Tty", json_boolean(r->tty));
	json_object_set_new(b, "OpenStdin", json_boolean(r->interactive));
	if (attach && r->interactive)
		json_object_set_new(b, "StdinOnce", json_true());
	/* The first size with the create, so a shell never starts at 80x24. */
	if (r->tty && cli_term_size(0, &rows, &cols) == 0)
		json_object_set_new(b, "ConsoleSize", json_pack("[i,i]", rows, cols));
	if (json_array_size(p->env) > 0)
		json_object_set(b, "Env", p->env);
	if (json_object_size(p->labels) > 0)
		json_object_set(b, "Labels", p->labels);
	json_object_set(b, "HostConfig", p->hc);
}

int cli_run_parse(struct cli *cli, const char *cmd, int argc, char **argv, struct cli_run *out)
{
	struct run_parse p = {.r = out};
	struct cli_opts o = {cmd, run_usage, "de:w:u:m:l:it", run_opts, run_flag, &p};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n;

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	body_defaults(out, &p);
	n = cli_getopt_until_positional(cli, argc, argv, &o, pos);
	if (n >= 0)
		n = finish_body(cli, &p, n, pos);
	if (n == -1)
		cli->exit_code = CLI_EXIT_RUN; /* docker's status for run's flag errors */
	if (n >= 0)
		body_attach(out, &p);
	json_decref(p.env);
	json_decref(p.labels);
	json_decref(p.hc);
	if (n < 0) {
		cli_run_free(out);
		return n;
	}
	return 0;
}

void cli_run_free(struct cli_run *r)
{
	json_decref(r->body);
	r->body = NULL;
}
