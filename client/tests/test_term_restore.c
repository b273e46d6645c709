/* Raw mode is put back on every exit path: a child under a fresh pty
 * (openpty: POSIX, test only) goes raw, then returns normally, fails with
 * exit(1), raises SIGTERM, or is killed with SIGTERM/SIGHUP from outside;
 * the pty's modes must be the original ones each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <util.h>
#else
#include <pty.h>
#endif

#include <cmocka.h>

#include "client/client-internal.h"

enum how { NORMAL, ERROR_EXIT, RAISE_TERM, KILLED_TERM, KILLED_HUP, SIGNALS_PROXIED };

/* The proxied case: the first signal must arrive as an event (reported
 * on ready), then the child waits for the second. */
static void wait_event(int sig_fd, int ready)
{
	struct pollfd p = {.fd = sig_fd, .events = POLLIN};

	while (poll(&p, 1, -1) != 1)
		;
	if ((cli_term_signals_take() & CLI_SIG_TERM) && write(ready, "e", 1) != 1)
		_exit(95);
	for (;;)
		pause();
}

static void child(int slave, int ready, int go, enum how how)
{
	struct bh_err err = {0};
	int sig_fd = -1;
	char c;

	if (cli_term_raw(slave, &err) < 0)
		_exit(90);
	if (how == SIGNALS_PROXIED && (sig_fd = cli_term_signals_start(true, &err)) < 0)
		_exit(91);
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1) /* the parent saw raw mode */
		_exit(92);
	switch (how) {
	case NORMAL:
		cli_term_restore();
		exit(0);
	case ERROR_EXIT:
		exit(1); /* no restore call: atexit must do it */
	case RAISE_TERM:
		raise(SIGTERM);
		_exit(93);
	case SIGNALS_PROXIED:
		wait_event(sig_fd, ready);
		break;
	case KILLED_TERM:
	case KILLED_HUP:
		for (;;)
			pause();
	}
	_exit(94);
}

/* Runs the child; returns its wait status.  Checks the modes afterwards. */
static int run_child(enum how how, int kill_with, int kills)
{
	struct termios before, after, raw_seen;
	int master, slave, sync[2], go[2], status;
	char c;
	pid_t pid;

	assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
	assert_int_equal(tcgetattr(slave, &before), 0);
	assert_true(before.c_lflag & ICANON);
	assert_int_equal(pipe(sync), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sync[0]);
		close(go[1]);
		child(slave, sync[1], go[0], how);
	}
	close(sync[1]);
	close(go[0]);
	assert_int_equal(read(sync[0], &c, 1), 1); /* raw now */
	assert_int_equal(tcgetattr(slave, &raw_seen), 0);
	if (raw_seen.c_lflag & (ICANON | ECHO | ISIG))
		kill(pid, SIGKILL); /* fail without leaving the child behind */
	assert_int_equal(write(go[1], "g", 1), 1);
	for (int i = 0; i < kills; i++) {
		kill(pid, kill_with);
		/* Signals do not queue: wait until the first one was seen. */
		if (how == SIGNALS_PROXIED && i == 0 && read(sync[0], &c, 1) != 1)
			kill(pid, SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(raw_seen.c_lflag & (ICANON | ECHO | ISIG));
	assert_int_equal(tcgetattr(slave, &after), 0);
	assert_int_equal(after.c_lflag, before.c_lflag);
	assert_int_equal(after.c_iflag, before.c_iflag);
	assert_int_equal(after.c_oflag, before.c_oflag);
	assert_memory_equal(after.c_cc, before.c_cc, sizeof(before.c_cc));
	close(sync[0]);
	close(go[1]);
	close(master);
	close(slave);
	return status;
}

static void test_normal_exit(void **state)
{
	int st = run_child(NORMAL, 0, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_error_exit(void **state)
{
	int st = run_child(ERROR_EXIT, 0, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

static void test_raised_sigterm(void **state)
{
	int st = run_child(RAISE_TERM, 0, 0);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM); /* dies of it, restored */
}

static void test_killed_from_outside(void **state)
{
	int st = run_child(KILLED_TERM, SIGTERM, 1);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	st = run_child(KILLED_HUP, SIGHUP, 1);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGHUP);
}

/* While signals are proxied the first one is an event; the second still
 * ends berth with the terminal restored. */
static void test_second_proxied_signal_ends(void **state)
{
	int st = run_child(SIGNALS_PROXIED, SIGTERM, 2);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

static void test_not_a_tty(void **state)
{
	struct bh_err err = {0};
	int p[2], rows, cols;

	assert_int_equal(pipe(p), 0);
	assert_false(cli_term_isatty(p[0]));
	assert_int_equal(cli_term_raw(p[0], &err), -1);
	assert_non_null(strstr(err.msg, "not a TTY"));
	assert_int_equal(cli_term_size(p[0], &rows, &cols), -1);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normal_exit),
	    cmocka_unit_test(test_error_exit),
	    cmocka_unit_test(test_raised_sigterm),
	    cmocka_unit_test(test_killed_from_outside),
	    cmocka_unit_test(test_second_proxied_signal_ends),
	    cmocka_unit_test(test_not_a_tty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
