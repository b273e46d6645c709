/* berth: the CLI.  Global flags, the command table, and the one place where
 * an error becomes a stderr line and an exit code. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

int cli_fail(struct cli *cli, int exit_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cli->err.msg, sizeof(cli->err.msg), fmt, ap);
	va_end(ap);
	cli->exit_code = exit_code;
	return -1;
}

void cli_sanitize(const char *s, char *out, size_t outlen)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; s[i] != '\0' && i < outlen - 1; i++) {
		unsigned char c = (unsigned char)s[i], next = (unsigned char)s[i + 1];
		/* C0, DEL, and C1 (U+0080..U+009F, UTF-8 0xC2 0x80..0x9F: CSI
		 * and friends to a UTF-8 terminal) never reach the terminal. */
		if (c == 0xc2 && next >= 0x80 && next <= 0x9f && i + 1 < outlen - 1) {
			out[i] = out[i + 1] = '?';
			i++;
			continue;
		}
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : s[i];
	}
	out[i] = '\0';
}

int cli_print_json(struct cli *cli, json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (s == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "cannot encode JSON");
	printf("%s\n", s);
	free(s);
	return 0;
}

/* getopt keeps state across calls: main() used it for the global flags. */
static void getopt_restart(void)
{
#if defined(__GLIBC__)
	optind = 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
	optreset = 1;
	optind = 1;
#else
	optind = 1;
#endif
	opterr = 0;
}

static int bad_option(struct cli *cli, const char *label, char **argv, int c)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	const char *sep = label[0] ? ": " : "";

	if (c == ':')
		return cli_fail(cli, CLI_EXIT_CMD, "%s%soption %s needs a value", label, sep, arg);
	if (optopt != 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s%sunknown option -%c (see --help)", label,
		                sep, optopt);
	return cli_fail(cli, CLI_EXIT_CMD, "%s%sunknown option %s (see --help)", label, sep, arg);
}

static int getopt_parse(struct cli *cli, int argc, char **argv, const struct cli_opts *o,
                        char **pos, bool stop_at_positional)
{
	cleanup_free char *shortopts = bh_asprintf("+:h%s", o->shortopts ? o->shortopts : "");
	int npos = 0, c;

	getopt_restart();
	while (optind < argc || optind == 0) {
		/* "+" stops at the first positional: take it and go on, which
		 * gives GNU-style "NAME --flag" ordering on every libc. */
		c = getopt_long(argc, argv, shortopts, o->longopts, NULL);
		if (c == -1) {
			if (optind < argc && strcmp(argv[optind - 1], "--") == 0)
				break;
			/* run/create/exec: everything after IMAGE belongs to the
			 * container's command ("berth run busybox ls -l"). */
			if (stop_at_positional)
				break;
			if (optind < argc)
				pos[npos++] = argv[optind++];
			continue;
		}
		if (c == 'h') {
			printf("%s", o->usage);
			return -2;
		}
		if (c == '?' || c == ':')
			return bad_option(cli, o->name, argv, c);
		if (o->fn(cli, c, optarg, o->data) < 0)
			return -1;
	}
	while (optind < argc)
		pos[npos++] = argv[optind++];
	return npos;
}

int cli_getopt(struct cli *cli, int argc, char **argv, const struct cli_opts *o, char **pos)
{
	return getopt_parse(cli, argc, argv, o, pos, false);
}

int cli_getopt_until_positional(struct cli *cli, int argc, char **argv, const struct cli_opts *o,
                                char **pos)
{
	return getopt_parse(cli, argc, argv, o, pos, true);
}

#ifndef BERTH_CLI_NO_MAIN /* the unit tests link everything but the entry point */

struct cli_cmd {
	const char *name;
	cli_cmd_fn fn;
	const char *help;
};

/* Flat on purpose: later commands (run, ps, exec, ...) add one line each. */
static const struct cli_cmd commands[] = {
#ifdef BERTH_HAVE_CMD_CERTS
    {"certs", cmd_certs, "Make a CA, issue server and client certificates, inspect them"},
#endif
    {"attach", cmd_attach, "Attach the terminal to a running container"},
    {"context", cmd_context, "Manage contexts: named daemons with their TLS material"},
    {"commit", cmd_commit, "Create a new image from a container's changes"},
    {"create", cmd_create, "Create a container"},
    {"events", cmd_events, "Print the daemon's events and audit log, or follow them"},
    {"exec", cmd_exec, "Run a command in a running container"},
    {"exec-kill", cmd_exec_kill, "Send a signal to a running exec"},
    {"export", cmd_export, "Write a container's filesystem as a tar archive"},
    {"history", cmd_history, "Show the history of an image"},
    {"image", cmd_image, "Manage images: ls, rm, inspect, history, prune, save, load, ..."},
    {"images", cmd_images, "List images"},
    {"import", cmd_import, "Create an image from a rootfs tarball"},
    {"info", cmd_info, "Show what the daemon knows about its host"},
    {"inspect", cmd_inspect, "Show containers in detail (JSON)"},
    {"kill", cmd_kill, "Send a signal to running containers"},
    {"load", cmd_load, "Load images from a tar archive"},
    {"login", cmd_login, "Log in to a registry (credentials kept 0600)"},
    {"logs", cmd_logs, "Print a container's output"},
    {"logout", cmd_logout, "Forget a registry's credentials"},
    {"pull", cmd_pull, "Pull an image from a registry"},
    {"ps", cmd_ps, "List containers"},
    {"push", cmd_push, "Push an image to a registry"},
    {"restart", cmd_restart, "Restart containers"},
    {"rm", cmd_rm, "Remove containers"},
    {"rmi", cmd_rmi, "Remove images"},
    {"run", cmd_run, "Create and start a container, stream its output"},
    {"save", cmd_save, "Write images to a tar archive"},
    {"start", cmd_start, "Start containers"},
    {"stop", cmd_stop, "Stop running containers"},
    {"tag", cmd_tag, "Give an image another name"},
    {"trust", cmd_trust, "Manage who may connect: trust add/ls/revoke, enrollment tokens"},
    {"version", cmd_version, "Show the client and daemon versions"},
    {"wait", cmd_wait, "Wait for containers to stop, print their exit codes"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "Usage: berth [-H URL --tls-dir DIR | -c NAME] [--debug] COMMAND [ARGS...]\n\n"
	             "A client for berthd, the remote-first container engine.\n\n"
	             "Global options:\n"
	             "  -H, --host URL      daemon to talk to: tcp://HOST:PORT or unix:///PATH\n"
	             "      --tls-dir DIR   ca.pem, cert.pem, key.pem for a tcp:// -H\n"
	             "  -c, --context NAME  use this context; a list (a,b), globs ('prod-*') and\n"
	             "                      labels (@env=prod) run the command on each match\n"
	             "      --parallel N    fan-out: at most N contexts at once (default 16)\n"
	             "      --timeout S     fan-out: give up on a context after S seconds\n"
	             "      --format json   fan-out: one JSON object per context\n"
	             "      --debug         log what the client does on stderr\n"
	             "  -v, --version       print the client version\n\n"
	             "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(out,
	        "\nWithout -H or -c: BERTH_CONTEXT_BUNDLE, BERTH_HOST (+ BERTH_CERT_PATH),\n"
	        "BERTH_CONTEXT, the current context (berth context use), then the local\n"
	        "socket %s.\n"
	        "Run 'berth COMMAND --help' for more about a command.\n\n"
	        "Fan-out (ps, images, info, version, exec, run, pull, logs, stop, rm, events):\n"
	        "lines come prefixed \"CONTEXT | \", ps and images print one table with a\n"
	        "CONTEXT column; exit 0 only if every context succeeded, else 1 (per-context\n"
	        "exit codes in --format json: 124 = timed out).  -i/-t are refused.\n",
	        CTX_DEFAULT_HOST);
}

static const struct option global_opts[] = {
    {"host", required_argument, NULL, 'H'},
    {"tls-dir", required_argument, NULL, 'T'},
    {"context", required_argument, NULL, 'c'},
    {"debug", no_argument, NULL, 'D'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {"parallel", required_argument, NULL, 'P'},
    {"timeout", required_argument, NULL, 'W'},
    {"format", required_argument, NULL, 'F'},
    {NULL, 0, NULL, 0},
};

/* Returns 1 when the run is over (help, version), 0 to go on, < 0 on error. */
static int global_flag(struct cli *cli, int c, char **argv)
{
	switch (c) {
	case 'H':
		cli->host = optarg;
		return 0;
	case 'T':
		cli->tls_dir = optarg;
		return 0;
	case 'c':
		cli->context = optarg;
		return 0;
	case 'D':
		cli->debug = true;
		bh_log_set_level(BH_LOG_DEBUG);
		return 0;
	case 'h':
		usage(stdout);
		return 1;
	case 'v':
		printf("berth version %s, API %s\n", BERTH_VERSION, BERTH_API_VERSION);
		return 1;
	case 'P':
	case 'W':
	case 'F':
		return cli_fanout_flag(cli, c, optarg);
	default:
		return bad_option(cli, "", argv, c);
	}
}

static const struct cli_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int run(struct cli *cli, int argc, char **argv, char **config_dir)
{
	const struct cli_cmd *cmd;
	struct ctx_env env;
	int c, r;

	getopt_restart();
	while ((c = getopt_long(argc, argv, "+:H:c:hv", global_opts, NULL)) != -1)
		if ((r = global_flag(cli, c, argv)) != 0)
			return r < 0 ? r : 0;
	if (optind >= argc) {
		usage(stdout);
		return 0;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "unknown command \"%.100s\" (berth --help lists them)",
		                argv[optind]);
	ctx_env_from_process(&env);
	if (ctx_config_dir(&env, config_dir, &cli->err) < 0) {
		cli->exit_code = CLI_EXIT_CMD;
		return -1;
	}
	cli->config_dir = *config_dir;
	if (cli_guard(cli, argc - optind, argv + optind) < 0)
		return -1; /* a protected context: nothing was sent */
	if ((r = cli_fanout(cli, argc, argv, optind)) != 1)
		return r; /* ran on several contexts, or refused */
	r = cmd->fn(cli, argc - optind, argv + optind);
	return r == -2 ? 0 : r;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	char *config_dir = NULL;
	int r;

	cli_fanout_entry = main; /* fan-out children run main() again (client/fanout.c) */
#ifdef SIGPIPE
	/* A daemon that hangs up, or "berth ... | head", must give an error
	 * message or a short write, not a silent death by signal. */
	signal(SIGPIPE, SIG_IGN);
#endif

	r = run(&cli, argc, argv, &config_dir);
	if (r < 0)
		cli_error_name_daemon(&cli); /* "every error names the context and host" */
	cli_conn_free(&cli);
	free(config_dir);
	fflush(stdout);
	if (r >= 0)
		return r;
	fprintf(stderr, "berth: %s\n", cli.err.msg[0] ? cli.err.msg : "failed");
	return cli.exit_code != 0 ? cli.exit_code : CLI_EXIT_CMD;
}
#endif
