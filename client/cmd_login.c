/* berth login [-u USER] [-p PASS | --password-stdin] REGISTRY: berthd checks
 * the credentials against the registry (POST /auth), then they are kept
 * 0600 in CONFIG_DIR/auth.json.  berth logout REGISTRY forgets them.  The
 * password never appears in a message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client-internal.h"

#define PASS_MAX 4096

struct login_opts {
	const char *user;
	const char *pass;
	bool pass_stdin;
};

static const struct option login_long[] = {
    {"username", required_argument, NULL, 'u'},
    {"password", required_argument, NULL, 'p'},
    {"password-stdin", no_argument, NULL, 'S'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int login_flag(struct cli *cli, int c, const char *arg, void *data)
{
	struct login_opts *o = data;

	if (c == 'u')
		o->user = arg;
	else if (c == 'p')
		o->pass = arg;
	else if (c == 'S')
		o->pass_stdin = true;
	else
		return cli_fail(cli, CLI_EXIT_CMD, "login: unexpected option %d", c);
	return 0;
}

/* One line from stdin, without its newline, at most PASS_MAX bytes. */
static int read_password(struct cli *cli, char **out)
{
	char *buf = bh_calloc(1, PASS_MAX + 2);
	size_t n;

	if (fgets(buf, PASS_MAX + 2, stdin) == NULL && !feof(stdin)) {
		free(buf);
		return cli_fail(cli, CLI_EXIT_CMD, "login: cannot read the password from stdin");
	}
	n = strcspn(buf, "\r\n");
	if (n > PASS_MAX) {
		bh_wipe(buf, PASS_MAX + 2);
		free(buf);
		return cli_fail(cli, CLI_EXIT_CMD, "login: password longer than %d bytes",
		                PASS_MAX);
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static int check_login(struct cli *cli, const char *registry, const char *user, const char *pass)
{
	json_t *req =
	    json_pack("{ssssss}", "username", user, "password", pass, "serveraddress", registry);
	char *body = json_dumps(req, JSON_COMPACT);
	struct cli_http_req rq = {
	    .method = "POST", .path = "/auth", .body = body, .body_len = strlen(body)};
	json_t *out = NULL;
	int r = cli_api_json(cli, &rq, &out);

	bh_wipe(body, strlen(body));
	free(body);
	json_decref(req);
	json_decref(out);
	return r;
}

int cmd_login(struct cli *cli, int argc, char **argv)
{
	struct login_opts o = {0};
	const struct cli_opts opts = {
	    .name = "login",
	    .usage = "Usage: berth login -u USER [-p PASSWORD | --password-stdin] REGISTRY\n",
	    .shortopts = "u:p:h",
	    .longopts = login_long,
	    .fn = login_flag,
	    .data = &o};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	char *pass = NULL;
	struct bh_err err;
	int n = cli_getopt(cli, argc, argv, &opts, pos), r;

	if (n < 0)
		return n == -2 ? 0 : -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "login: want exactly one REGISTRY");
	if (o.user == NULL || *o.user == '\0')
		return cli_fail(cli, CLI_EXIT_CMD, "login: a username is required (-u)");
	if (o.pass_stdin && o.pass)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "login: --password and --password-stdin conflict");
	if (o.pass_stdin && read_password(cli, &pass) < 0)
		return -1;
	if (!o.pass_stdin && o.pass == NULL)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "login: a password is required (-p or "
		                "--password-stdin)");
	if (pass == NULL)
		pass = bh_strdup(o.pass);
	r = check_login(cli, pos[0], o.user, pass);
	if (r == 0 && cli_creds_set(cli, pos[0], o.user, pass, &err) < 0)
		r = cli_fail(cli, CLI_EXIT_CMD, "login: %s", err.msg);
	bh_wipe(pass, strlen(pass));
	free(pass);
	if (r == 0)
		printf("Login Succeeded\n");
	return r;
}

int cmd_logout(struct cli *cli, int argc, char **argv)
{
	const struct cli_opts opts = {.name = "logout",
	                              .usage = "Usage: berth logout REGISTRY\n",
	                              .shortopts = "h",
	                              .longopts = login_long + 3,
	                              .fn = login_flag};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(char *));
	struct bh_err err;
	int n = cli_getopt(cli, argc, argv, &opts, pos);

	if (n < 0)
		return n == -2 ? 0 : -1;
	if (n != 1)
		return cli_fail(cli, CLI_EXIT_CMD, "logout: want exactly one REGISTRY");
	if (cli_creds_del(cli, pos[0], &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "logout: %s", err.msg);
	printf("Removing login credentials for %s\n", pos[0]);
	return 0;
}
