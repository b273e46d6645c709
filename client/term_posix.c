/* client: the terminal on POSIX (Linux, macOS): raw mode with termios, the
 * window size, and signals turned into poll()able events through a pipe.
 * The only file of client/ that knows termios: a Windows console version
 * (SetConsoleMode, ENABLE_VIRTUAL_TERMINAL_INPUT) replaces this one.
 * The saved mode is put back on every exit path: normal return, exit(),
 * and the signals that end berth. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "client/client-internal.h"

static struct termios saved;
static volatile sig_atomic_t raw_fd = -1;
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_seen, sig_proxying, sig_count;

static const struct {
	int sig;
	unsigned flag;
} ending[] = {
    {SIGINT, CLI_SIG_INT},
    {SIGTERM, CLI_SIG_TERM},
    {SIGHUP, CLI_SIG_HUP},
    {SIGQUIT, CLI_SIG_QUIT},
};
#define N_ENDING (sizeof(ending) / sizeof(ending[0]))

/* A pipe holds 64 KiB by default: a fast stream into one wakes its reader
 * (and us) every 64 KiB.  1 MiB is the kernel's pipe-max-size for anyone;
 * where it is refused (a user's pipe page quota) the pipe stays as it was. */
void cli_out_pipe_grow(int fd)
{
#ifdef F_SETPIPE_SZ
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
		(void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#else
	(void)fd;
#endif
}

bool cli_term_isatty(int fd)
{
	return isatty(fd) == 1;
}

int cli_term_size(int fd, int *rows, int *cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

/* Async-signal-safe: tcsetattr is on POSIX's list. */
void cli_term_restore(void)
{
	int fd = raw_fd;

	if (fd < 0)
		return;
	tcsetattr(fd, TCSADRAIN, &saved);
	raw_fd = -1;
}

static void restore_at_exit(void)
{
	cli_term_restore();
}

/* A signal that ends berth: the terminal first, then die of it, so the
 * parent sees the real cause. */
static void die_of(int sig)
{
	int e = errno;

	cli_term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
	errno = e;
}

static void on_ending_signal(int sig)
{
	int e = errno;

	if (!sig_proxying || sig_count++ > 0) {
		die_of(sig); /* a second one ends berth: a hung daemon cannot trap us */
		return;
	}
	for (size_t i = 0; i < N_ENDING; i++)
		if (ending[i].sig == sig)
			sig_seen |= ending[i].flag;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], "s", 1);
	errno = e;
}

static void on_winch(int sig)
{
	int e = errno;

	(void)sig;
	sig_seen |= CLI_SIG_WINCH;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], "w", 1);
	errno = e;
}

int cli_term_raw(int fd, struct bh_err *err)
{
	static bool registered;
	struct termios raw;

	if (tcgetattr(fd, &saved) < 0)
		return bh_err_sys(err, errno, "the input device is not a TTY");
	raw = saved;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (!registered) {
		atexit(restore_at_exit);
		registered = true;
	}
	raw_fd = fd;
	for (size_t i = 0; i < N_ENDING; i++)
		signal(ending[i].sig, on_ending_signal);
	if (tcsetattr(fd, TCSADRAIN, &raw) < 0) {
		raw_fd = -1;
		return bh_err_sys(err, errno, "cannot put the terminal in raw mode");
	}
	return 0;
}

static int nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int cli_term_signals_start(bool proxy, struct bh_err *err)
{
	if (sig_pipe[0] < 0) {
		if (pipe(sig_pipe) < 0)
			return bh_err_sys(err, errno, "pipe");
		if (nonblock_cloexec(sig_pipe[0]) < 0 || nonblock_cloexec(sig_pipe[1]) < 0)
			return bh_err_sys(err, errno, "pipe flags");
	}
	sig_seen = 0;
	sig_count = 0;
	sig_proxying = proxy;
	for (size_t i = 0; i < N_ENDING; i++)
		signal(ending[i].sig, on_ending_signal);
#ifdef SIGWINCH
	signal(SIGWINCH, on_winch);
#endif
	return sig_pipe[0];
}

unsigned cli_term_signals_take(void)
{
	char buf[64];
	unsigned v;

	while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
		;
	v = (unsigned)sig_seen;
	sig_seen = 0;
	return v;
}

bool cli_term_signals_pending(void)
{
	return sig_seen != 0;
}

void cli_term_signals_stop(void)
{
	for (size_t i = 0; i < N_ENDING; i++)
		signal(ending[i].sig, raw_fd >= 0 ? on_ending_signal : SIG_DFL);
#ifdef SIGWINCH
	signal(SIGWINCH, SIG_DFL);
#endif
	sig_proxying = 0;
}
