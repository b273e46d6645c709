/* berth-probe: a static program run inside test containers that reports
 * what it sees from the inside as one JSON object on stdout.
 *   berth-probe [facts]        identity, fds, capabilities, seccomp, denied calls
 *   berth-probe alloc MB       touches MB MiB of memory (for the OOM test)
 *   berth-probe forkbomb N     tries N forks, reports how many worked
 *   berth-probe write PATH     tries to create PATH, reports the errno */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/sched.h>

static void print_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int first = 1;

	printf("\"fds\":[");
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		printf("%s%s", first ? "" : ",", e->d_name);
		first = 0;
	}
	printf("],");
	if (d)
		closedir(d);
}

static void print_status_field(const char *key, const char *json_key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(key);

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			char *v = line + n + 1;
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			printf("\"%s\":\"%s\",", json_key, v);
		}
	if (f)
		fclose(f);
}

static int err_of(long rc)
{
	return rc < 0 ? errno : 0;
}

static void print_denied(void)
{
	struct clone_args ca = {.exit_signal = SIGCHLD};
	struct io_uring_params p = {0};
	long rc;

	/* A scratch mount point, undone at once if the mount worked. */
	mkdir("/.probe-mnt", 0700);
	rc = mount("none", "/.probe-mnt", "tmpfs", 0, NULL);
	printf("\"mount_errno\":%d,", err_of(rc));
	if (rc == 0)
		umount2("/.probe-mnt", MNT_DETACH);
	rmdir("/.probe-mnt");
	printf("\"keyctl_errno\":%d,", err_of(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0)));
	printf("\"unshare_user_errno\":%d,", err_of(unshare(CLONE_NEWUSER)));
	printf("\"unshare_errno\":%d,", err_of(unshare(CLONE_NEWNS)));
	rc = syscall(SYS_clone3, &ca, sizeof(ca));
	if (rc == 0)
		_exit(0);
	if (rc > 0)
		waitpid((pid_t)rc, NULL, 0);
	printf("\"clone3_errno\":%d,", err_of(rc));
	rc = syscall(SYS_io_uring_setup, 1, &p);
	printf("\"io_uring_errno\":%d,", err_of(rc));
	if (rc >= 0)
		close((int)rc);
	rc = socket(AF_ALG, SOCK_SEQPACKET, 0);
	printf("\"af_alg_errno\":%d,", err_of(rc));
	rc = socket(AF_VSOCK, SOCK_STREAM, 0);
	printf("\"af_vsock_errno\":%d,", err_of(rc));
#if defined(__x86_64__)
	/* The 32-bit ABI must be filtered too: i386 unshare is 310. */
	{
		long ret = 310;
		__asm__ volatile("int $0x80"
		                 : "+a"(ret)
		                 : "b"((long)CLONE_NEWUSER)
		                 : "memory", "rcx", "r8", "r9", "r10", "r11");
		printf("\"unshare_i386_errno\":%ld,", ret < 0 ? -ret : 0);
	}
#endif
	rc = socket(AF_UNIX, SOCK_STREAM, 0);
	printf("\"af_unix_errno\":%d,", err_of(rc));
}

/* mknod is allowed (as Docker); opening a device outside the allow list is
 * not.  8:0 is a disk, 1:1 is /dev/mem. */
static void print_devices(void)
{
	static const struct {
		const char *key, *path;
		mode_t type;
		unsigned maj, min;
	} devs[] = {{"disk", "/tmp/.probe-disk", S_IFBLK, 8, 0},
	            {"mem", "/tmp/.probe-mem", S_IFCHR, 1, 1}};

	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		int mk =
		    mknod(devs[i].path, devs[i].type | 0600, makedev(devs[i].maj, devs[i].min));
		int fd = open(devs[i].path, O_RDONLY);
		printf("\"%s_mknod_errno\":%d,\"%s_open_errno\":%d,", devs[i].key,
		       mk < 0 ? errno : 0, devs[i].key, fd < 0 ? errno : 0);
		if (fd >= 0)
			close(fd);
		unlink(devs[i].path);
	}
	printf("\"null_open_errno\":%d,", open("/dev/null", O_RDONLY) < 0 ? errno : 0);
}

static long file_long(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");
	long v = -99999;

	if (f && fgets(buf, sizeof(buf), f))
		v = atol(buf);
	if (f)
		fclose(f);
	return v;
}

static long file_bytes(const char *path)
{
	char buf[4096];
	long total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && total < 1 << 20)
		total += n;
	close(fd);
	return n < 0 ? -errno : total;
}

static void print_string(const char *key, const char *v)
{
	printf("\"%s\":\"", key);
	for (; v && *v; v++)
		if (*v == '"' || *v == '\\')
			printf("\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			printf("\\u%04x", *v);
		else
			putchar(*v);
	printf("\",");
}

static int facts(void)
{
	char host[256] = "", cwd[4096] = "", cg[4096] = "";
	struct rlimit nofile;
	FILE *f = fopen("/proc/self/cgroup", "r");
	size_t n = f ? fread(cg, 1, sizeof(cg) - 1, f) : 0;

	cg[n] = '\0';
	if (f)
		fclose(f);
	gethostname(host, sizeof(host));
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), "(error %d)", errno);
	printf("{");
	print_fds();
	print_status_field("CapEff", "cap_eff");
	print_status_field("CapBnd", "cap_bnd");
	print_status_field("CapPrm", "cap_prm");
	print_status_field("NoNewPrivs", "no_new_privs");
	print_status_field("Seccomp", "seccomp");
	print_status_field("SigIgn", "sig_ign");
	print_status_field("SigBlk", "sig_blk");
	printf("\"oom_score_adj\":%ld,", file_long("/proc/self/oom_score_adj"));
	print_denied();
	print_devices();
	print_string("hostname", host);
	print_string("cwd", cwd);
	print_string("cgroup", cg);
	print_string("foo", getenv("FOO"));
	printf("\"kcore_bytes\":%ld,\"keys_bytes\":%ld,", file_bytes("/proc/kcore"),
	       file_bytes("/proc/keys"));
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0)
		printf("\"nofile_soft\":%llu,\"nofile_hard\":%llu,",
		       (unsigned long long)nofile.rlim_cur, (unsigned long long)nofile.rlim_max);
	printf("\"uid\":%d,\"gid\":%d,\"pid\":%d}\n", (int)getuid(), (int)getgid(), (int)getpid());
	return 0;
}

static int alloc(long mb)
{
	for (long i = 0; i < mb; i++) {
		char *p = malloc(1 << 20);
		if (p == NULL)
			return 2;
		memset(p, 1, 1 << 20);
	}
	printf("{\"allocated_mb\":%ld}\n", mb);
	return 0;
}

static int forkbomb(int n)
{
	int ok = 0, err = 0;
	pid_t kids[4096];

	fflush(stdout);
	for (int i = 0; i < n && i < 4096; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			pause();
			_exit(0);
		}
		if (pid < 0) {
			err = errno;
			break;
		}
		kids[ok++] = pid;
	}
	for (int i = 0; i < ok; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	printf("{\"forked\":%d,\"fork_errno\":%d}\n", ok, err);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "facts";

	/* It tries mount, unshare and friends: never on a host by mistake. */
	if (getpid() != 1) {
		fprintf(stderr, "berth-probe: must run as pid 1 of a container\n");
		return 2;
	}
	if (strcmp(mode, "facts") == 0)
		return facts();
	if (strcmp(mode, "alloc") == 0 && argc > 2)
		return alloc(atol(argv[2]));
	if (strcmp(mode, "forkbomb") == 0 && argc > 2)
		return forkbomb(atoi(argv[2]));
	if (strcmp(mode, "write") == 0 && argc > 2) {
		int fd = open(argv[2], O_CREAT | O_WRONLY, 0644);
		printf("{\"write_errno\":%d}\n", fd < 0 ? errno : 0);
		return 0;
	}
	if (strcmp(mode, "exit") == 0 && argc > 2)
		return atoi(argv[2]);
	fprintf(stderr, "berth-probe: unknown mode %s\n", mode);
	return 2;
}
