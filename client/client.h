/* client: the berth CLI.  One cmd_<verb>.c per command, a command table in
 * main.c.  Portable C (POSIX today, macOS and Windows later): no Linux-only
 * headers or calls here; platform code sits behind common/ and client/platform. */
#ifndef BERTH_CLIENT_H
#define BERTH_CLIENT_H

#include <stdbool.h>

#include "common/common.h"

/* Exit codes (as docker's CLI). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_CMD = 1, /* the command failed: bad flags, the daemon said no */
	CLI_EXIT_DAEMON = 125, /* cannot reach the daemon, TLS or transport failure */
};

/* State shared by every command: global flags and the one error slot. */
struct cli {
	const char *host; /* -H/--host */
	const char *tls_dir; /* --tls-dir, goes with -H */
	const char *context; /* -c/--context */
	const char *config_dir; /* resolved $BERTH_CONFIG or ~/.berth */
	bool debug;
	/* Fan-out (-c with several contexts): --parallel, --timeout, --format
	 * json before the command; 0/false when not given (client/fanout.c). */
	long fan_parallel, fan_timeout;
	bool fan_json;

	/* The resolved daemon and its connection, made on first use
	 * (cli_target() in client-internal.h) and freed by main(). */
	struct cli_conn *conn;

	/* A command that returns < 0 fills these; main() prints err.msg as the
	 * one stderr line and exits with exit_code (CLI_EXIT_CMD if 0). */
	struct bh_err err;
	int exit_code;
};

/* A command returns >= 0 as the process exit status (0, or a container's
 * exit code), or < 0 after filling cli->err (and cli->exit_code). */
typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

int cmd_certs(struct cli *cli, int argc, char **argv);

/* Convenience for commands: sets cli->err and the exit code, returns -1. */
int cli_fail(struct cli *cli, int exit_code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
