/* berth version: the client's build facts and the daemon's GET /version. */
#include <string.h>

#include <curl/curl.h>

#include "client/client-internal.h"

#if defined(__linux__)
#define CLI_OS "linux"
#elif defined(__APPLE__)
#define CLI_OS "darwin"
#elif defined(_WIN32)
#define CLI_OS "windows"
#elif defined(__FreeBSD__)
#define CLI_OS "freebsd"
#else
#define CLI_OS "unknown"
#endif

/* Go/OCI architecture names, as the daemon reports its own. */
#if defined(__x86_64__) || defined(_M_X64)
#define CLI_ARCH "amd64"
#elif defined(__aarch64__) || defined(_M_ARM64)
#define CLI_ARCH "arm64"
#elif defined(__arm__)
#define CLI_ARCH "arm"
#elif defined(__i386__) || defined(_M_IX86)
#define CLI_ARCH "386"
#elif defined(__riscv) && __riscv_xlen == 64
#define CLI_ARCH "riscv64"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define CLI_ARCH "ppc64le"
#elif defined(__s390x__)
#define CLI_ARCH "s390x"
#else
#define CLI_ARCH "unknown"
#endif

/* What docker calls "Go version": the toolchain the client was built with. */
#if defined(__clang__)
#define CLI_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define CLI_COMPILER "gcc " __VERSION__
#else
#define CLI_COMPILER "unknown C compiler"
#endif

static const char usage[] = "Usage: berth version [--format json]\n\n"
                            "Show the client's version and the daemon's.  If the daemon cannot\n"
                            "be reached, the client part is printed and the command exits 125.\n\n"
                            "  -f, --format json   print {\"Client\": {...}, \"Server\": {...}}\n";

static const struct option long_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int format_opt(struct cli *cli, int c, const char *arg, void *data)
{
	bool *json = data;

	if (strcmp(arg, "json") != 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: unknown --format \"%.40s\" (only json)",
		                c == 'f' ? "format" : "option", arg);
	*json = true;
	return 0;
}

int cli_parse_format(struct cli *cli, int argc, char **argv, const char *name, const char *use,
                     bool *json)
{
	struct cli_opts o = {name, use, "f:", long_opts, format_opt, json};
	cleanup_free char **pos = bh_calloc((size_t)argc + 1, sizeof(*pos));
	int n = cli_getopt(cli, argc, argv, &o, pos);

	if (n > 0)
		return cli_fail(cli, CLI_EXIT_CMD, "%s: unexpected argument \"%.80s\"", name,
		                pos[0]);
	return n;
}

json_t *cli_version_client_json(const char *context)
{
	json_t *c =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "Version", BERTH_VERSION, "ApiVersion",
	              BERTH_API_VERSION, "CompilerVersion", CLI_COMPILER, "Libcurl",
	              curl_version_info(CURLVERSION_NOW)->version, "Os", CLI_OS, "Arch", CLI_ARCH);

	if (context != NULL)
		json_object_set_new(c, "Context", json_string(context));
	return c;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void print_line(const char *indent, const char *label, const char *value)
{
	char clean[256];

	cli_sanitize(value, clean, sizeof(clean));
	printf("%s%-14s%s\n", indent, label, clean);
}

static void print_client(json_t *c)
{
	char osarch[64];

	snprintf(osarch, sizeof(osarch), "%s/%s", str(c, "Os"), str(c, "Arch"));
	printf("Client:\n");
	print_line(" ", "Version:", str(c, "Version"));
	print_line(" ", "API version:", str(c, "ApiVersion"));
	print_line(" ", "C compiler:", str(c, "CompilerVersion"));
	print_line(" ", "libcurl:", str(c, "Libcurl"));
	print_line(" ", "OS/Arch:", osarch);
	if (json_object_get(c, "Context") != NULL)
		print_line(" ", "Context:", str(c, "Context"));
}

static void print_server(json_t *s)
{
	char api[96], osarch[96];

	snprintf(api, sizeof(api), "%s (minimum version %s)", str(s, "ApiVersion"),
	         str(s, "MinAPIVersion"));
	snprintf(osarch, sizeof(osarch), "%s/%s", str(s, "Os"), str(s, "Arch"));
	printf("\nServer:\n Engine:\n");
	print_line("  ", "Version:", str(s, "Version"));
	print_line("  ", "API version:", api);
	print_line("  ", "OS/Arch:", osarch);
	print_line("  ", "Kernel:", str(s, "KernelVersion"));
	if (str(s, "GitCommit")[0] != '\0')
		print_line("  ", "Git commit:", str(s, "GitCommit"));
}

int cmd_version(struct cli *cli, int argc, char **argv)
{
	const struct ctx_target *t = NULL;
	json_t *client, *server = NULL, *doc;
	bool json = false;
	int r;

	r = cli_parse_format(cli, argc, argv, "version", usage, &json);
	if (r < 0)
		return r;
	r = cli_target(cli, &t);
	client = cli_version_client_json(t ? t->name : NULL);
	if (r == 0)
		r = cli_api_get_json(cli, "/version", &server);
	if (json) {
		doc = json_pack("{s:o, s:o}", "Client", client, "Server",
		                server ? server : json_null());
		cli_print_json(cli, doc);
		json_decref(doc);
		return r < 0 ? -1 : 0;
	}
	print_client(client);
	if (server != NULL)
		print_server(server);
	json_decref(client);
	json_decref(server);
	return r < 0 ? -1 : 0;
}
