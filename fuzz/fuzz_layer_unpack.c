/* libFuzzer target: layer tars (hostile by design: names, links,
 * whiteouts, devices, sizes) unpacked by rt_layer_unpack into a fresh
 * directory RUN/root with small limits.  After each run RUN must still hold
 * exactly root/, an empty outside/ and an unchanged sentinel file: nothing
 * may be created, changed or linked next to the root.  RUN is removed. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>

#include "fuzz/fuzz-util.h"
#include "runtime/rt-image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sentinel_text[] = "berth fuzz sentinel\n";

static void die(const char *what, const struct bh_err *err)
{
	fprintf(stderr, "fuzz_layer_unpack: %s: %s\n", what, err ? err->msg : "");
	abort();
}

static void make_run(const char *run)
{
	struct bh_err err;
	char *p;

	if (bh_mkdir_p(run, 0700, &err) < 0)
		die("mkdir", &err);
	p = bh_path_join(run, "root");
	if (mkdir(p, 0755) < 0)
		die(p, NULL);
	free(p);
	p = bh_path_join(run, "outside");
	if (mkdir(p, 0755) < 0)
		die(p, NULL);
	free(p);
	p = bh_path_join(run, "sentinel");
	fz_write_file(p, sentinel_text, strlen(sentinel_text), 0644);
	free(p);
}

/* Exactly root, outside, sentinel in run; outside empty; sentinel intact. */
static void check_run(const char *run)
{
	char *p = bh_path_join(run, "sentinel"), *text = NULL;
	char *outside = bh_path_join(run, "outside");
	struct bh_err err;
	struct dirent *de;
	size_t len = 0, n = 0;
	DIR *d;

	if (bh_read_file(p, 4096, &text, &len, &err) < 0 || strcmp(text, sentinel_text) != 0)
		die("sentinel changed", NULL);
	d = opendir(run);
	while (d && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	if (d == NULL || n != 3)
		die("something appeared next to the root", NULL);
	closedir(d);
	if (rmdir(outside) < 0)
		die("outside/ is not empty", NULL);
	free(p);
	free(text);
	free(outside);
}

static void unpack(const char *run, const uint8_t *data, size_t size)
{
	struct rt_layer_limits lim = {.max_entries = 64, .max_bytes = 1 << 20, .max_name = 256};
	struct archive *a = archive_read_new();
	char *root = bh_path_join(run, "root");
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct bh_err err = {0};
	uint64_t total = 0;

	if (rootfd < 0)
		die(root, NULL);
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK &&
	    rt_layer_unpack(rootfd, a, &lim, &total, &err) == 0 && total > lim.max_bytes)
		die("limit", &err);
	archive_read_free(a);
	close(rootfd);
	free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *run;
	struct bh_err err;

	if (run == NULL)
		run = fz_path("run");
	make_run(run);
	unpack(run, data, size);
	check_run(run);
	if (bh_rm_rf(run, &err) < 0)
		die("cleanup", &err);
	return 0;
}
