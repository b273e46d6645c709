/* berthd's lifecycle: configuration, directories, the engine ID, unix
 * sockets, signals, the pid file that says "ready", and the clean exit. */
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

#define ENGINE_ID_FILE "engine-id"
#define PID_FILE       "berthd.pid"

int srv_unix_prepare(const char *path, struct bh_err *err)
{
	struct sockaddr_un sa;
	struct stat st;
	cleanup_close int fd = -1;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : bh_err_sys(err, errno, "listen unix://%s", path);
	if (!S_ISSOCK(st.st_mode))
		return bh_err_set(err, EEXIST, "listen unix://%s: exists and is not a socket",
		                  path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (bh_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
		return bh_err_set(err, EINVAL, "listen unix://%s: path too long", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bh_err_sys(err, errno, "listen unix://%s: socket", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return bh_err_set(err, EADDRINUSE, "listen unix://%s: address already in use",
		                  path);
	if (errno != ECONNREFUSED)
		return bh_err_sys(err, errno, "listen unix://%s", path);
	/* Nobody listens: a stale socket from a daemon that died. */
	if (unlink(path) < 0)
		return bh_err_sys(err, errno, "listen unix://%s: remove stale socket", path);
	return 0;
}

int srv_unix_peer_identity(int fd, struct srv_identity *id)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	memset(id, 0, sizeof(*id));
	id->is_unix = true;
	id->uid = cred.uid;
	id->role = SRV_ROLE_ADMIN; /* the socket is root-only (0660 root:root) */
	snprintf(id->addr, sizeof(id->addr), "unix");
	snprintf(id->name, sizeof(id->name), "unix:uid=%u", (unsigned)cred.uid);
	snprintf(id->text, sizeof(id->text), "unix:uid=%u", (unsigned)cred.uid);
	return 0;
}

bool srv_tcp_in_use(const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;
	bool in_use;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		return false;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	in_use = bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE;
	close(fd);
	return in_use;
}

static bool is_listening_socket(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

void srv_stop_accepting(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int quiet, n = 0;
	long fd;

	if (d == NULL)
		return;
	/* The fd numbers stay valid for lws (it closes them at the end), but
	 * now name a silent eventfd: the kernel drops the listening socket. */
	quiet = eventfd(0, EFD_CLOEXEC);
	while (quiet >= 0 && (de = readdir(d)) != NULL) {
		if (bh_parse_long(de->d_name, 0, INT32_MAX, &fd) < 0 || fd == dirfd(d) ||
		    !is_listening_socket((int)fd))
			continue;
		if (dup3(quiet, (int)fd, O_CLOEXEC) >= 0)
			n++;
	}
	closedir(d);
	if (quiet >= 0)
		close(quiet);
	bh_debug("closed %d listening socket(s)", n);
}

/* A stable random ID per data root, like dockerd's engine ID. */
static int engine_id_load(struct srv_server *srv, struct bh_err *err)
{
	cleanup_free char *path = bh_path_join(srv->cfg.data_root, ENGINE_ID_FILE);
	cleanup_free char *text = NULL;
	uint8_t raw[32];
	cleanup_close int fd = -1;

	if (bh_read_file(path, 256, &text, NULL, NULL) == 0 && strlen(text) >= 64) {
		text[strcspn(text, "\n")] = '\0';
		bh_strlcpy(srv->engine_id, text, sizeof(srv->engine_id));
		return 0;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw))
		return bh_err_sys(err, errno, "read /dev/urandom");
	bh_hex(raw, sizeof(raw), srv->engine_id);
	return bh_write_file_atomic(path, srv->engine_id, strlen(srv->engine_id), 0644, err);
}

/* Another daemon on the same exec root would fight over the socket and
 * the runtime state: refuse while its pid is alive. */
static int pid_file_check(struct srv_server *srv, struct bh_err *err)
{
	cleanup_free char *text = NULL;
	long pid;

	snprintf(srv->pid_path, sizeof(srv->pid_path), "%s/%s", srv->cfg.exec_root, PID_FILE);
	if (bh_read_file(srv->pid_path, 64, &text, NULL, NULL) < 0)
		return 0;
	text[strcspn(text, "\n")] = '\0';
	if (bh_parse_long(text, 1, INT32_MAX, &pid) == 0 && pid != getpid() &&
	    (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return bh_err_set(err, EBUSY, "another berthd (pid %ld) uses exec root %s", pid,
		                  srv->cfg.exec_root);
	unlink(srv->pid_path);
	return 0;
}

static int pid_file_write(struct srv_server *srv, struct bh_err *err)
{
	char text[32];

	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (bh_write_file_atomic(srv->pid_path, text, strlen(text), 0644, err) < 0)
		return -1;
	srv->pid_written = true;
	return 0;
}

static int prepare_dirs(struct srv_server *srv, struct bh_err *err)
{
	if (bh_mkdir_p(srv->cfg.data_root, 0700, err) < 0 ||
	    bh_mkdir_p(srv->cfg.exec_root, 0711, err) < 0)
		return -1;
	return engine_id_load(srv, err);
}

static int prepare_unix_sockets(struct srv_server *srv, struct bh_err *err)
{
	struct srv_listen l;

	for (size_t i = 0; i < srv->cfg.n_listen; i++) {
		if (srv_listen_parse(srv->cfg.listen[i], &l, err) < 0)
			return -1;
		if (l.kind != SRV_LISTEN_UNIX)
			continue;
		cleanup_free char *dir = bh_strndup(l.path, strrchr(l.path, '/') - l.path + 1);
		if (bh_mkdir_p(dir, 0711, err) < 0 || srv_unix_prepare(l.path, err) < 0)
			return -1;
	}
	return 0;
}

/* Every client connection is an fd, and lws sizes its table from this
 * limit and stops accepting when it is full: with a login shell's 1024 the
 * 1000th client waited in the backlog until it gave up.  The soft limit goes
 * up to the hard one (the administrator's cap), at most BERTHD_NOFILE so that
 * lws's per-fd tables stay small. */
#define BERTHD_NOFILE 65536

static struct rlimit inherited_nofile;

/* Monitors and the containers they start keep the limit berthd was given,
 * as before it raised its own (runs in every child after fork()). */
static void restore_fd_limit_in_child(void)
{
	setrlimit(RLIMIT_NOFILE, &inherited_nofile);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	want = rl.rlim_max < BERTHD_NOFILE ? rl.rlim_max : BERTHD_NOFILE;
	if (rl.rlim_cur >= want)
		return;
	inherited_nofile = rl;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		bh_warn("cannot raise the open-file limit to %llu: %s", (unsigned long long)want,
		        strerror(errno));
	else
		pthread_atfork(NULL, NULL, restore_fd_limit_in_child);
}

/* SIGTERM, SIGINT and SIGHUP arrive on a signalfd read by the event loop:
 * no work in signal handlers.  Blocked before any thread exists, so the
 * workers inherit the mask. */
static int signals_setup(struct srv_server *srv, struct bh_err *err)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return bh_err_sys(err, errno, "block signals");
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		return bh_err_sys(err, errno, "signalfd");
	return 0;
}

/* berth-monitor lives beside berthd unless --monitor-path says otherwise. */
static char *monitor_path(const struct srv_server *srv)
{
	char self[4096];
	ssize_t n;
	char *slash;

	if (srv->cfg.monitor_path != NULL)
		return bh_strdup(srv->cfg.monitor_path);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return bh_strdup("berth-monitor");
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash != NULL)
		*slash = '\0';
	return bh_path_join(self, "berth-monitor");
}

/* Graceful stop: followers and waiters would hold it for the whole grace
 * period; their streams end now.  Containers keep running. */
static void containers_on_stop(struct srv_server *srv)
{
	srv_events_end_streams(); /* GET /events streams are endless too */
	if (srv->ctrs != NULL)
		ctr_mgr_end_streams(srv->ctrs);
}

static int containers_open(struct srv_server *srv, struct bh_err *err)
{
	static struct ctr_mgr ctrs;
	cleanup_free char *mon = monitor_path(srv);

	/* Not fatal: images and the rest of the API work without it; starting
	 * a container then fails with this same message. */
	if (access(mon, X_OK) < 0)
		bh_warn("berth-monitor %s: %s (see --monitor-path)", mon, strerror(errno));
	if (ctr_mgr_open(&ctrs, srv, srv->cfg.data_root, srv->cfg.exec_root, mon, err) < 0) {
		ctr_mgr_close(&ctrs);
		return -1;
	}
	srv->ctrs = &ctrs;
	srv->on_stop = containers_on_stop;
	return 0;
}

static void cleanup(struct srv_server *srv)
{
	/* Containers keep running (live restore): only our watcher stops. */
	if (srv->ctrs)
		ctr_mgr_stop(srv->ctrs);
	srv_lws_stop(srv);
	srv_trust_stop(srv); /* after the pool: no flush job left */
	if (srv->ctrs)
		ctr_mgr_close(srv->ctrs);
	srv->ctrs = NULL;
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i].spec.kind == SRV_LISTEN_UNIX && srv->listeners[i].vh)
			unlink(srv->listeners[i].spec.path);
	if (srv->pid_written)
		unlink(srv->pid_path);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	srv_events_close();
	srv_config_free(&srv->cfg);
}

static int start(struct srv_server *srv, struct bh_err *err)
{
	/* Check the TLS files before anything is created or bound. */
	if (srv->cfg.tls_dir != NULL && srv_tls_check_dir(srv->cfg.tls_dir, err) < 0)
		return -1;
	raise_fd_limit();
	if (prepare_dirs(srv, err) < 0 || pid_file_check(srv, err) < 0 ||
	    srv_trust_start(srv, err) < 0 ||
	    srv_events_open(srv->cfg.data_root, err) < 0 || containers_open(srv, err) < 0 ||
	    prepare_unix_sockets(srv, err) < 0 ||
	    signals_setup(srv, err) < 0 || srv_lws_start(srv, err) < 0)
		return -1;
	/* Live restore before "ready": running containers are watched again,
	 * exits that happened while berthd was away are recorded. */
	if (ctr_mgr_start(srv->ctrs, err) < 0)
		return -1;
	return pid_file_write(srv, err);
}

static void log_ready(const struct srv_server *srv)
{
	char list[1024] = "";
	size_t used = 0;

	for (size_t i = 0; i < srv->n_listeners; i++) {
		int w = snprintf(list + used, sizeof(list) - used, " %s", srv->listeners[i].url);
		if (w < 0 || (size_t)w >= sizeof(list) - used)
			break;
		used += (size_t)w;
	}
	bh_info("berthd %s (API %s) ready, pid %d, listening on%s", BERTH_VERSION,
	        BERTH_API_VERSION, (int)getpid(), list);
}

int srv_main(int argc, char **argv)
{
	static struct srv_server srv; /* large; one per process */
	struct bh_err err;
	int status = 0;

	memset(&srv, 0, sizeof(srv));
	srv.sigfd = -1;
	bh_err_clear(&err);
	if (srv_config_load(&srv.cfg, argc > 0 ? argc - 1 : 0, argv + (argc > 0), &err) < 0) {
		fprintf(stderr, "berthd: %s\n", err.msg);
		srv_config_free(&srv.cfg);
		return 1;
	}
	if (srv.cfg.help || srv.cfg.version) {
		if (srv.cfg.help)
			srv_usage(stdout);
		else
			printf("berthd version %s, API %s\n", BERTH_VERSION, BERTH_API_VERSION);
		srv_config_free(&srv.cfg);
		return 0;
	}
	bh_log_set_level((enum bh_log_level)srv.cfg.log_level);
	/* One malloc arena for the lws thread and the few workers: glibc gives
	 * each thread that contends its own, and their freed pages stay resident
	 * (0.5 MB of idle RSS measured); the workers block on syscalls, not on
	 * malloc.  Before any thread exists. */
	mallopt(M_ARENA_MAX, 1);
	if (start(&srv, &err) < 0) {
		fprintf(stderr, "berthd: %s\n", err.msg);
		status = 1;
	} else {
		log_ready(&srv);
		status = srv_lws_run(&srv) < 0 ? 1 : 0;
		bh_info("berthd stopped");
	}
	cleanup(&srv);
	return status;
}
