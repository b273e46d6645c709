/* berth info: the daemon's GET /info, plus which context and host answered. */
#include <inttypes.h>
#include <string.h>

#include "client/client-internal.h"

static const char usage[] = "Usage: berth info [--format json]\n\n"
                            "Show what the daemon knows about its host: containers, images,\n"
                            "kernel, OS, CPUs, memory, cgroups, data root.\n\n"
                            "  -f, --format json   print the daemon's reply as it is\n";

enum kind { K_STR, K_INT, K_BYTES };

static const struct field {
	const char *indent;
	const char *label;
	const char *key;
	enum kind kind;
} fields[] = {
    {" ", "Containers", "Containers", K_INT},
    {"  ", "Running", "ContainersRunning", K_INT},
    {"  ", "Paused", "ContainersPaused", K_INT},
    {"  ", "Stopped", "ContainersStopped", K_INT},
    {" ", "Images", "Images", K_INT},
    {" ", "Server Version", "ServerVersion", K_STR},
    {" ", "Cgroup Version", "CgroupVersion", K_STR},
    {" ", "Cgroup Driver", "CgroupDriver", K_STR},
    {" ", "Kernel Version", "KernelVersion", K_STR},
    {" ", "Operating System", "OperatingSystem", K_STR},
    {" ", "OSType", "OSType", K_STR},
    {" ", "Architecture", "Architecture", K_STR},
    {" ", "CPUs", "NCPU", K_INT},
    {" ", "Total Memory", "MemTotal", K_BYTES},
    {" ", "Name", "Name", K_STR},
    {" ", "ID", "ID", K_STR},
    {" ", "Data Root", "DockerRootDir", K_STR},
};

/* 8.000GiB, as docker prints sizes (binary units, 4 significant digits). */
static void human_bytes(json_int_t v, char *out, size_t n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024.0;
		u++;
	}
	snprintf(out, n, "%.4g%s", d, units[u]);
}

static void print_field(const struct field *f, json_t *v)
{
	char text[256];

	if (f->kind == K_STR && json_is_string(v))
		cli_sanitize(json_string_value(v), text, sizeof(text));
	else if (f->kind == K_INT && json_is_integer(v))
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (f->kind == K_BYTES && json_is_integer(v))
		human_bytes(json_integer_value(v), text, sizeof(text));
	else
		return; /* absent or of another type: skip the line */
	printf("%s%s: %s\n", f->indent, f->label, text);
}

static void print_info(const struct ctx_target *t, json_t *info)
{
	printf("Client:\n Context: %s (%s)\n Host: %s\n\nServer:\n", t->name, t->reason, t->host);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		print_field(&fields[i], json_object_get(info, fields[i].key));
}

int cmd_info(struct cli *cli, int argc, char **argv)
{
	const struct ctx_target *t;
	json_t *info;
	bool json = false;
	int r;

	r = cli_parse_format(cli, argc, argv, "info", usage, &json);
	if (r < 0)
		return r;
	if (cli_target(cli, &t) < 0 || cli_api_get_json(cli, "/info", &info) < 0)
		return -1;
	if (json)
		r = cli_print_json(cli, info);
	else
		print_info(t, info);
	json_decref(info);
	return r < 0 ? -1 : 0;
}
