/* A stand-in for `berth certs` until client/main.c exists: runs cmd_certs()
 * with the same contract (one stderr line, exit code).  Test use only. */
#include <stdarg.h>
#include <stdio.h>

#include "client/client.h"

int cli_fail(struct cli *cli, int exit_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cli->err.msg, sizeof(cli->err.msg), fmt, ap);
	va_end(ap);
	cli->exit_code = exit_code;
	return -1;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int r = cmd_certs(&cli, argc, argv);

	if (r < 0) {
		fprintf(stderr, "berth: %s\n", cli.err.msg);
		return cli.exit_code ? cli.exit_code : CLI_EXIT_CMD;
	}
	return r;
}
