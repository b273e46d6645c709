/* berth certs: make and inspect berth's PKI (all the work is in certs/).
 *   berth certs init     a CA, a server cert for berthd and an admin client cert
 *   berth certs issue    a client cert (or, for tests, a server-only or expired one)
 *   berth certs server   a fresh server cert from an existing CA
 *   berth certs inspect  what a certificate says */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "certs/certs.h"
#include "client/client.h"

static const char usage_certs[] =
    "Usage: berth certs COMMAND [OPTIONS]\n"
    "\n"
    "Make and inspect berth's TLS certificates (ECDSA P-256, SHA-256).\n"
    "\n"
    "Commands:\n"
    "  init      Create a CA, a server certificate for berthd and an admin client cert\n"
    "  issue     Issue a client certificate signed by the CA\n"
    "  server    Issue a new server certificate from an existing CA\n"
    "  inspect   Show what a certificate says\n"
    "\n"
    "Run 'berth certs COMMAND --help' for more.\n";

static const char usage_init[] =
    "Usage: berth certs init --dir DIR [--host NAME]... [--ip ADDR]... [--days N] [--force]\n"
    "\n"
    "Writes into DIR (created 0700; keys 0600):\n"
    "  ca.pem, ca-key.pem               a new CA, valid for 10 years\n"
    "  server-cert.pem, server-key.pem  berthd's certificate (serverAuth); its names are\n"
    "                                   localhost, 127.0.0.1 and ::1 plus --host/--ip\n"
    "  cert.pem, key.pem                a client certificate for CN=admin (clientAuth)\n"
    "\n"
    "Options:\n"
    "  --dir DIR      where to write (required)\n"
    "  --host NAME    extra DNS name for the server certificate (repeatable)\n"
    "  --ip ADDR      extra IPv4/IPv6 address for the server certificate (repeatable)\n"
    "  --days N       validity of the server and client certificates (default 365;\n"
    "                 never past the CA's own expiry)\n"
    "  --force        replace an existing CA in DIR (certs it signed stop working)\n";

static const char usage_issue[] =
    "Usage: berth certs issue NAME --ca-dir DIR --out OUTDIR [--days N] [--force]\n"
    "       berth certs issue NAME --server --ca-dir DIR --out OUTDIR [--host NAME]...\n"
    "\n"
    "Issues a client certificate for CN=NAME signed by the CA in DIR (ca.pem and\n"
    "ca-key.pem) and writes OUTDIR/ca.pem, cert.pem and key.pem: the docker CLI's\n"
    "names, so DOCKER_CERT_PATH or 'berth context create' can use OUTDIR as is.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR   the CA's directory (required)\n"
    "  --out OUTDIR   where to write (required; created 0700, key 0600)\n"
    "  --days N       validity in days from now (default 365; never past the CA's\n"
    "                 expiry).  A NEGATIVE N makes an already EXPIRED certificate\n"
    "                 (for tests): its one day of validity ended |N| days ago, so\n"
    "                 '--days -1' expired yesterday\n"
    "  --server       issue a serverAuth-only certificate instead (for tests: such a\n"
    "                 cert must be refused as a client certificate); still written as\n"
    "                 cert.pem/key.pem and with the SANs of a server certificate\n"
    "  --host NAME    extra DNS name (with --server; repeatable)\n"
    "  --ip ADDR      extra IP address (with --server; repeatable)\n"
    "  --force        replace an existing cert.pem/key.pem in OUTDIR\n";

static const char usage_server[] =
    "Usage: berth certs server --ca-dir DIR [--out OUTDIR] [--host NAME]... [--ip ADDR]...\n"
    "                          [--days N] [--name CN]\n"
    "\n"
    "Issues a new server certificate for berthd from the CA in DIR and writes\n"
    "OUTDIR/server-cert.pem, server-key.pem (0600) and ca.pem, replacing what is\n"
    "there (the key first, then the cert; send berthd SIGHUP afterwards to reload).\n"
    "Its names are localhost, 127.0.0.1 and ::1 plus --host/--ip.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR   the CA's directory (required)\n"
    "  --out OUTDIR   where to write (default: the CA's directory)\n"
    "  --host NAME    extra DNS name (repeatable)\n"
    "  --ip ADDR      extra IPv4/IPv6 address (repeatable)\n"
    "  --days N       validity in days (default 365; negative: expired, as for issue)\n"
    "  --name CN      the subject's common name (default berthd)\n";

static const char usage_inspect[] =
    "Usage: berth certs inspect FILE [--format text|json]\n"
    "\n"
    "Shows the first certificate of FILE (PEM or DER): subject, names, issuer,\n"
    "validity (RFC 3339, UTC), key type, SHA-256 fingerprint, serial, CA flag and\n"
    "key usages.  The fingerprint is the SHA-256 of the DER in lower-case hex without\n"
    "colons (openssl x509 -noout -fingerprint -sha256 shows the same digits in\n"
    "upper case with colons); the serial is lower-case hex.\n";

/* Long options only; getopt_long returns these codes. */
enum {
	OPT_HELP = 'h',
	OPT_DIR = 256,
	OPT_CA_DIR,
	OPT_OUT,
	OPT_HOST,
	OPT_IP,
	OPT_DAYS,
	OPT_FORCE,
	OPT_SERVER,
	OPT_NAME,
	OPT_FORMAT,
};

struct certs_args {
	const char *dir, *ca_dir, *out, *name, *format;
	const char **hosts, **ips;
	size_t n_hosts, n_ips;
	long days;
	bool days_set, force, server, help;
	const char *positional; /* NAME or FILE */
};

static void args_free(struct certs_args *a)
{
	free(a->hosts);
	free(a->ips);
}

static void strv_push(const char ***v, size_t *n, const char *s)
{
	*v = bh_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

/* getopt keeps state across calls; main() may have used it for global flags. */
static void getopt_restart(void)
{
#if defined(__GLIBC__)
	optind = 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
	optreset = 1;
	optind = 1;
#else
	optind = 1;
#endif
	opterr = 0;
}

static int take_opt(struct cli *cli, struct certs_args *a, int c)
{
	switch (c) {
	case OPT_HELP:
		a->help = true;
		return 0;
	case OPT_DIR:
		a->dir = optarg;
		return 0;
	case OPT_CA_DIR:
		a->ca_dir = optarg;
		return 0;
	case OPT_OUT:
		a->out = optarg;
		return 0;
	case OPT_HOST:
		strv_push(&a->hosts, &a->n_hosts, optarg);
		return 0;
	case OPT_IP:
		strv_push(&a->ips, &a->n_ips, optarg);
		return 0;
	case OPT_FORCE:
		a->force = true;
		return 0;
	case OPT_SERVER:
		a->server = true;
		return 0;
	case OPT_NAME:
		a->name = optarg;
		return 0;
	case OPT_FORMAT:
		a->format = optarg;
		return 0;
	case OPT_DAYS:
		a->days_set = true;
		if (bh_parse_long(optarg, -PKI_MAX_DAYS, PKI_MAX_DAYS, &a->days) < 0)
			return cli_fail(cli, CLI_EXIT_CMD, "invalid --days \"%s\": want -%d..%d",
			                optarg, PKI_MAX_DAYS, PKI_MAX_DAYS);
		return 0;
	default:
		return cli_fail(cli, CLI_EXIT_CMD, "internal: unhandled option %d", c);
	}
}

static int bad_opt(struct cli *cli, const char *sub, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return cli_fail(cli, CLI_EXIT_CMD, "certs %s: option %s needs a value", sub, arg);
	if (optopt > 0 && optopt < 256)
		return cli_fail(cli, CLI_EXIT_CMD, "certs %s: unknown option -%c (see --help)", sub,
		                optopt);
	return cli_fail(cli, CLI_EXIT_CMD, "certs %s: unknown option %s (see --help)", sub, arg);
}

/* Parses argv (argv[0] is the subcommand) with the options in opts; at most
 * one positional argument. */
static int parse_args(struct cli *cli, int argc, char **argv, const struct option *opts,
                      struct certs_args *a)
{
	int c;

	getopt_restart();
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return bad_opt(cli, argv[0], c, argv);
		if (take_opt(cli, a, c) < 0)
			return -1;
	}
	if (optind < argc)
		a->positional = argv[optind++];
	if (optind < argc)
		return cli_fail(cli, CLI_EXIT_CMD, "certs %s: unexpected argument \"%s\"", argv[0],
		                argv[optind]);
	return 0;
}

static int fail_err(struct cli *cli, const struct bh_err *err)
{
	return cli_fail(cli, CLI_EXIT_CMD, "%s", err->msg);
}

static void format_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "@%lld", (long long)t);
}

/* ---- init --------------------------------------------------------------- */

static int print_ca_summary(const char *dir)
{
	cleanup_free char *ca = bh_path_join(dir, "ca.pem");
	struct pki_cert_info info;
	struct bh_err err;
	char until[32];

	if (pki_cert_info_from_file(ca, &info, &err) < 0)
		return -1;
	format_time(info.not_after, until);
	printf("CA:          %s (valid until %s)\n", info.subject, until);
	printf("Fingerprint: %s (SHA-256)\n", info.fingerprint);
	pki_cert_info_free(&info);
	return 0;
}

static int run_init(struct cli *cli, struct certs_args *a)
{
	struct pki_init_opts o = {.dir = a->dir,
	                          .hosts = a->hosts,
	                          .n_hosts = a->n_hosts,
	                          .ips = a->ips,
	                          .n_ips = a->n_ips,
	                          .force = a->force};
	struct bh_err err;

	if (a->dir == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs init: --dir is required");
	if (a->positional != NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs init: unexpected argument \"%s\"",
		                a->positional);
	if (a->days_set && a->days < 1)
		return cli_fail(cli, CLI_EXIT_CMD, "certs init: --days must be at least 1");
	o.days = (int)a->days;
	if (pki_init(&o, &err) < 0)
		return fail_err(cli, &err);
	printf("Wrote %s: ca.pem ca-key.pem server-cert.pem server-key.pem cert.pem key.pem\n",
	       a->dir);
	print_ca_summary(a->dir);
	return 0;
}

/* ---- issue and server --------------------------------------------------- */

static int check_leaf_args(struct cli *cli, const char *sub, struct certs_args *a)
{
	if (a->ca_dir == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs %s: --ca-dir is required", sub);
	if (a->days_set && a->days == 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "certs %s: --days 0 is not a validity (negative means expired)",
		                sub);
	return 0;
}

static void print_issued(const char *out, const char *cert_name)
{
	cleanup_free char *path = bh_path_join(out, cert_name);
	struct pki_cert_info info;
	struct bh_err err;
	char until[32];

	if (pki_cert_info_from_file(path, &info, &err) < 0)
		return;
	format_time(info.not_after, until);
	printf("Wrote %s (CN=%s, valid until %s, fingerprint %s)\n", path, info.common_name, until,
	       info.fingerprint);
	pki_cert_info_free(&info);
}

static int run_issue(struct cli *cli, struct certs_args *a)
{
	struct pki_issue_opts o = {.ca_dir = a->ca_dir,
	                           .out_dir = a->out,
	                           .name = a->positional,
	                           .eku = a->server ? PKI_EKU_SERVER : PKI_EKU_CLIENT,
	                           .hosts = a->hosts,
	                           .n_hosts = a->n_hosts,
	                           .ips = a->ips,
	                           .n_ips = a->n_ips,
	                           .force = a->force};
	struct bh_err err;

	if (a->positional == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs issue: NAME is required (see --help)");
	if (check_leaf_args(cli, "issue", a) < 0)
		return -1;
	if (a->out == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs issue: --out is required");
	if (!a->server && a->n_hosts + a->n_ips > 0)
		return cli_fail(cli, CLI_EXIT_CMD, "certs issue: --host and --ip need --server");
	o.days = (int)a->days;
	if (pki_issue(&o, &err) < 0)
		return fail_err(cli, &err);
	print_issued(a->out, "cert.pem");
	return 0;
}

static int run_server(struct cli *cli, struct certs_args *a)
{
	struct pki_issue_opts o = {.ca_dir = a->ca_dir,
	                           .out_dir = a->out ? a->out : a->ca_dir,
	                           .name = a->name ? a->name : "berthd",
	                           .eku = PKI_EKU_SERVER,
	                           .hosts = a->hosts,
	                           .n_hosts = a->n_hosts,
	                           .ips = a->ips,
	                           .n_ips = a->n_ips,
	                           .server_file_names = true,
	                           .force = true};
	struct bh_err err;

	if (a->positional != NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs server: unexpected argument \"%s\"",
		                a->positional);
	if (check_leaf_args(cli, "server", a) < 0)
		return -1;
	o.days = (int)a->days;
	if (pki_issue(&o, &err) < 0)
		return fail_err(cli, &err);
	print_issued(o.out_dir, "server-cert.pem");
	return 0;
}

/* ---- inspect ------------------------------------------------------------ */

static const char *validity_status(const struct pki_cert_info *info)
{
	int64_t now = (int64_t)time(NULL);

	if (now < info->not_before)
		return "not yet valid";
	return now > info->not_after ? "EXPIRED" : "valid";
}

static void eku_text(int eku, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s%s", (eku & PKI_EKU_SERVER) ? "serverAuth " : "",
	         (eku & PKI_EKU_CLIENT) ? "clientAuth " : "", (eku & PKI_EKU_OTHER) ? "other " : "",
	         eku ? "" : "(none)");
	if (eku && out[0] != '\0' && out[strlen(out) - 1] == ' ')
		out[strlen(out) - 1] = '\0';
}

static void print_list(const char *label, char **v, size_t n)
{
	printf("%-16s", label);
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "", v[i]);
	printf("%s\n", n ? "" : "(none)");
}

static void print_info_text(const struct pki_cert_info *info)
{
	char nb[32], na[32], eku[64];

	format_time(info->not_before, nb);
	format_time(info->not_after, na);
	eku_text(info->eku, eku, sizeof(eku));
	printf("%-16s%s\n", "Subject:", info->subject);
	printf("%-16s%s\n", "Common name:", info->common_name);
	print_list("DNS names:", info->dns_sans, info->n_dns_sans);
	print_list("IP addresses:", info->ip_sans, info->n_ip_sans);
	printf("%-16s%s\n", "Issuer:", info->issuer);
	printf("%-16s%s\n", "Not before:", nb);
	printf("%-16s%s (%s)\n", "Not after:", na, validity_status(info));
	printf("%-16s%s\n", "Key type:", info->key_type);
	printf("%-16s%s\n", "SHA-256:", info->fingerprint);
	printf("%-16s%s\n", "Serial:", info->serial);
	printf("%-16s%s\n", "CA:", info->is_ca ? "true" : "false");
	printf("%-16s%s\n", "Key usage:", info->key_usage[0] ? info->key_usage : "(none)");
	printf("%-16s%s\n", "Ext key usage:", eku);
}

static json_t *json_strv(char **v, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

static json_t *json_eku(int eku)
{
	json_t *arr = json_array();

	if (eku & PKI_EKU_SERVER)
		json_array_append_new(arr, json_string("serverAuth"));
	if (eku & PKI_EKU_CLIENT)
		json_array_append_new(arr, json_string("clientAuth"));
	if (eku & PKI_EKU_OTHER)
		json_array_append_new(arr, json_string("other"));
	return arr;
}

static json_t *info_json(const struct pki_cert_info *info)
{
	char nb[32], na[32];
	json_t *o = json_object();

	format_time(info->not_before, nb);
	format_time(info->not_after, na);
	json_object_set_new(o, "Subject", json_string(info->subject));
	json_object_set_new(o, "CommonName", json_string(info->common_name));
	json_object_set_new(o, "DNSNames", json_strv(info->dns_sans, info->n_dns_sans));
	json_object_set_new(o, "IPAddresses", json_strv(info->ip_sans, info->n_ip_sans));
	json_object_set_new(o, "Issuer", json_string(info->issuer));
	json_object_set_new(o, "NotBefore", json_string(nb));
	json_object_set_new(o, "NotAfter", json_string(na));
	json_object_set_new(o, "Status", json_string(validity_status(info)));
	json_object_set_new(o, "KeyType", json_string(info->key_type));
	json_object_set_new(o, "FingerprintSHA256", json_string(info->fingerprint));
	json_object_set_new(o, "Serial", json_string(info->serial));
	json_object_set_new(o, "IsCA", json_boolean(info->is_ca));
	json_object_set_new(o, "KeyUsage", json_string(info->key_usage));
	json_object_set_new(o, "ExtKeyUsage", json_eku(info->eku));
	return o;
}

static int print_info_json(struct cli *cli, const struct pki_cert_info *info)
{
	json_t *o = info_json(info);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(o);
	if (s == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs inspect: cannot encode JSON");
	printf("%s\n", s);
	free(s);
	return 0;
}

static int run_inspect(struct cli *cli, struct certs_args *a)
{
	struct pki_cert_info info;
	struct bh_err err;
	bool json = false;
	int r = 0;

	if (a->positional == NULL)
		return cli_fail(cli, CLI_EXIT_CMD, "certs inspect: FILE is required (see --help)");
	if (a->format != NULL && strcmp(a->format, "json") == 0)
		json = true;
	else if (a->format != NULL && strcmp(a->format, "text") != 0)
		return cli_fail(cli, CLI_EXIT_CMD,
		                "certs inspect: unknown --format \"%s\" (text or json)", a->format);
	if (pki_cert_info_from_file(a->positional, &info, &err) < 0)
		return cli_fail(cli, CLI_EXIT_CMD, "certs inspect: %s", err.msg);
	if (json)
		r = print_info_json(cli, &info);
	else
		print_info_text(&info);
	pki_cert_info_free(&info);
	return r;
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct option opts_init[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"dir", required_argument, NULL, OPT_DIR},
    {"host", required_argument, NULL, OPT_HOST},
    {"ip", required_argument, NULL, OPT_IP},
    {"days", required_argument, NULL, OPT_DAYS},
    {"force", no_argument, NULL, OPT_FORCE},
    {NULL, 0, NULL, 0},
};

static const struct option opts_issue[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"ca-dir", required_argument, NULL, OPT_CA_DIR},
    {"out", required_argument, NULL, OPT_OUT},
    {"days", required_argument, NULL, OPT_DAYS},
    {"server", no_argument, NULL, OPT_SERVER},
    {"host", required_argument, NULL, OPT_HOST},
    {"ip", required_argument, NULL, OPT_IP},
    {"force", no_argument, NULL, OPT_FORCE},
    {NULL, 0, NULL, 0},
};

static const struct option opts_server[] = {
    {"help", no_argument, NULL, OPT_HELP},       {"ca-dir", required_argument, NULL, OPT_CA_DIR},
    {"out", required_argument, NULL, OPT_OUT},   {"days", required_argument, NULL, OPT_DAYS},
    {"host", required_argument, NULL, OPT_HOST}, {"ip", required_argument, NULL, OPT_IP},
    {"name", required_argument, NULL, OPT_NAME}, {NULL, 0, NULL, 0},
};

static const struct option opts_inspect[] = {
    {"help", no_argument, NULL, OPT_HELP},
    {"format", required_argument, NULL, OPT_FORMAT},
    {NULL, 0, NULL, 0},
};

struct certs_sub {
	const char *name;
	const struct option *opts;
	const char *usage;
	int (*run)(struct cli *cli, struct certs_args *a);
};

static const struct certs_sub subs[] = {
    {"init", opts_init, usage_init, run_init},
    {"issue", opts_issue, usage_issue, run_issue},
    {"server", opts_server, usage_server, run_server},
    {"inspect", opts_inspect, usage_inspect, run_inspect},
};

static int run_sub(struct cli *cli, const struct certs_sub *sub, int argc, char **argv)
{
	struct certs_args a = {0};
	int r = parse_args(cli, argc, argv, sub->opts, &a);

	if (r == 0 && a.help) {
		fputs(sub->usage, stdout);
	} else if (r == 0) {
		r = sub->run(cli, &a);
	}
	args_free(&a);
	return r < 0 ? -1 : 0;
}

int cmd_certs(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_fail(
		    cli, CLI_EXIT_CMD,
		    "certs: missing command (init, issue, server, inspect; see --help)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_certs, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return run_sub(cli, &subs[i], argc - 1, argv + 1);
	return cli_fail(cli, CLI_EXIT_CMD, "certs: unknown command \"%s\" (see --help)", argv[1]);
}
