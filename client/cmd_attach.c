/* berth attach: the container's main process on our terminal over
 * GET /containers/{id}/attach/ws.  Whether it has a TTY and open stdin comes
 * from the container's inspect document (untrusted, only booleans used). */
#include <string.h>

#include "client/client-internal.h"

enum { OPT_DETACH_KEYS = 1000, OPT_NO_STDIN, OPT_SIG_PROXY };

static const struct option attach_opts[] = {
    {"detach-keys", required_argument, NULL, OPT_DETACH_KEYS},
    {"no-stdin", no_argument, NULL, OPT_NO_STDIN},
    {"sig-proxy", optional_argument, NULL, OPT_SIG_PROXY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char attach_usage[] =
    "Usage: berth attach [OPTIONS] CONTAINER\n\n"
    "Attach our stdin, stdout and stderr to a running container (a created one:\n"
    "from its start on); exits with its exit code, or 0 after detaching.\n\n"
    "      --detach-keys KEYS   keys that detach (default \"" CLI_DETACH_DEFAULT "\",\n"
    "                           \"\" for none)\n"
    "      --no-stdin           do not forward stdin\n"
    "      --sig-proxy[=BOOL]   forward signals to the container (default true; not\n"
    "                           with a TTY, where ctrl-c is a key)\n";

struct attach_parse {
	const char *detach_keys;
	bool no_stdin, sig_proxy;
};

static int attach_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct attach_parse *p = data;

	switch (c) {
	case OPT_DETACH_KEYS:
		p->detach_keys = arg;
		return 0;
	case OPT_NO_STDIN:
		p->no_stdin = true;
		return 0;
	case OPT_SIG_PROXY:
		if (arg == NULL || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0)
			p->sig_proxy = true;
		else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0)
			p->sig_proxy = false;
		else
			return cli_fail(cli, CLI_EXIT_CMD,
			                "attach: invalid --sig-proxy \"%.20s\": want true or false",
			                arg);
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "attach: unexpected option %d", c);
	}
}

/* Tty and OpenStdin of the container; it must be running, or created (the
 * stream then waits for its start). */
static int container_modes(struct cli *cli, const char *esc, bool *tty, bool *open_stdin)
{
	cleanup_free char *path = bh_asprintf("/containers/%s/json", esc);
	json_t *doc = NULL, *cfg, *state;
	int rc = 0;

	if (cli_api_get_json(cli, path, &doc) < 0)
		return -1;
	cfg = json_object_get(doc, "Config");
	state = json_object_get(doc, "State");
	*tty = json_is_true(json_object_get(cfg, "Tty"));
	*open_stdin = json_is_true(json_object_get(cfg, "OpenStdin"));
	const char *status = json_string_value(json_object_get(state, "Status"));

	if (!json_is_true(json_object_get(state, "Running")) &&
	    (status == NULL || strcmp(status, "created") != 0))
		rc = cli_fail(cli, CLI_EXIT_CMD,
		              "You cannot attach to a stopped container, start it first");
	json_decref(doc);
	return rc;
}

/* Shared with run -it: the attach stream of container (escaped already). */
int cli_attach_stream(struct cli *cli, const char *esc, bool tty, bool in, bool sig_proxy,
                      const char *detach_keys, int (*upgraded)(void *), void *arg, bool *detached)
{
	struct cli_detach keys;
	struct bh_err err = {0};
	cleanup_free char *path = NULL;

	if (cli_detach_parse(detach_keys ? detach_keys : CLI_DETACH_DEFAULT, &keys, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s", err.msg);
	if (tty && in && !cli_term_isatty(0))
		return cli_fail(cli, CLI_EXIT_CMD, "the input device is not a TTY");
	path = bh_asprintf("/containers/%s/attach/ws?stdin=%d&stdout=1&stderr=1&logs=0", esc,
	                   in ? 1 : 0);
	struct cli_session_opts o = {
	    .tty = tty && cli_term_isatty(0),
	    .stdin_on = in,
	    .sig_proxy = sig_proxy && !tty,
	    .keys = &keys,
	    .in_fd = 0,
	    .out_fd = 1,
	    .err_fd = 2,
	    .upgraded = upgraded,
	    .upgraded_arg = arg,
	};
	return cli_stream_session(cli, path, &o, detached);
}

int cmd_attach(struct cli *cli, int argc, char **argv)
{
	struct attach_parse p = {.sig_proxy = true};
	struct cli_opts o = {"attach", attach_usage, "", attach_opts, attach_flag, &p};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	cleanup_free char *esc = NULL;
	bool tty = false, open_stdin = false;
	int n = cli_getopt(cli, argc, argv, &o, pos);

	if (n < 0)
		return n;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "attach: requires exactly 1 argument: CONTAINER");
	esc = cli_url_escape(pos[0]);
	if (container_modes(cli, esc, &tty, &open_stdin) < 0)
		return -1;
	return cli_attach_stream(cli, esc, tty, open_stdin && !p.no_stdin, p.sig_proxy,
	                         p.detach_keys, NULL, NULL, NULL);
}
