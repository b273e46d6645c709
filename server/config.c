/* berthd's configuration: long flags, an optional JSON file with the same
 * keys, defaults.  Flags override the file.  Input is the operator's, but a
 * bad file must still fail with one line naming the file and the spot. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "server/server-internal.h"

#define DEFAULT_DATA_ROOT "/var/lib/berth"
#define DEFAULT_EXEC_ROOT "/run/berth"
#define DEFAULT_TCP       "tcp://0.0.0.0:7443"
#define SOCK_NAME         "berthd.sock"

void srv_config_init(struct srv_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = -1;
}

static void listen_clear(struct srv_config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++) {
		free(cfg->listen[i]);
		cfg->listen[i] = NULL;
	}
	cfg->n_listen = 0;
}

void srv_config_free(struct srv_config *cfg)
{
	listen_clear(cfg);
	free(cfg->tls_dir);
	free(cfg->data_root);
	free(cfg->exec_root);
	free(cfg->config_file);
	free(cfg->monitor_path);
	free(cfg->certs_d);
	for (size_t i = 0; i < cfg->n_insecure; i++)
		free(cfg->insecure[i]);
	srv_config_init(cfg);
}

void srv_usage(FILE *out)
{
	fprintf(out,
	        "Usage: berthd [OPTIONS]\n"
	        "\n"
	        "The berth container engine daemon.\n"
	        "\n"
	        "Options:\n"
	        "  --listen URL        tcp://ADDR:PORT (always mutual TLS) or unix://PATH;\n"
	        "                      repeatable (default unix://EXEC_ROOT/" SOCK_NAME ", plus\n"
	        "                      " DEFAULT_TCP " with --tls-dir)\n"
	        "  --tls-dir DIR       ca.pem, server-cert.pem, server-key.pem\n"
	        "  --data-root DIR     persistent state (default " DEFAULT_DATA_ROOT ")\n"
	        "  --exec-root DIR     runtime state, pid file, socket (default " DEFAULT_EXEC_ROOT
	        ")\n"
	        "  --monitor-path FILE the berth-monitor binary (default: beside berthd)\n"
	        "  --certs-d DIR       registry CAs: DIR/HOST:PORT/ca.crt (default "
	        "/etc/berth/certs.d)\n"
	        "  --insecure-registry HOST[:PORT]  may be reached over plain HTTP "
	        "(repeatable;\n"
	        "                      loopback registries always may)\n"
	        "  --max-cert-days N   longest client certificate enrollment signs (default 90)\n"
	        "  --config FILE       JSON object with the same keys as these flags\n"
	        "  --log-level LEVEL   error, warn, info or debug (default info)\n"
	        "  --help              print this help\n"
	        "  --version           print the version\n"
	        "\n"
	        "Signals: SIGTERM/SIGINT stop gracefully (containers keep running and are\n"
	        "restored at the next start); SIGHUP reloads the TLS files.\n");
}

static int set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = bh_strdup(value);
	return 0;
}

static int add_listen(struct srv_config *cfg, const char *url, struct bh_err *err)
{
	struct srv_listen l;

	if (srv_listen_parse(url, &l, err) < 0)
		return -1;
	if (cfg->n_listen >= SRV_MAX_LISTENERS)
		return bh_err_set(err, EINVAL, "too many listeners (at most %d)",
		                  SRV_MAX_LISTENERS);
	cfg->listen[cfg->n_listen++] = bh_strdup(url);
	return 0;
}

static int set_log_level(struct srv_config *cfg, const char *value, struct bh_err *err)
{
	int lvl = bh_log_parse_level(value);

	if (lvl < 0)
		return bh_err_set(err, EINVAL,
		                  "invalid log level \"%s\" (error, warn, info or debug)", value);
	cfg->log_level = lvl;
	return 0;
}

int srv_config_max_cert_days(const struct srv_config *cfg)
{
	return cfg->max_cert_days > 0 ? cfg->max_cert_days : SRV_MAX_CERT_DAYS_DEFAULT;
}

static int set_max_cert_days(struct srv_config *cfg, const char *value, struct bh_err *err)
{
	long d;

	if (bh_parse_long(value, 1, 36500, &d) < 0)
		return bh_err_set(err, EINVAL, "max-cert-days \"%s\": want 1..36500 (days)", value);
	cfg->max_cert_days = (int)d;
	return 0;
}

static int add_insecure(struct srv_config *cfg, const char *value, struct bh_err *err)
{
	if (cfg->n_insecure >= SRV_MAX_INSECURE)
		return bh_err_set(err, EINVAL, "more than %d --insecure-registry entries",
		                  SRV_MAX_INSECURE);
	if (*value == '\0' || strpbrk(value, "/@ ") != NULL)
		return bh_err_set(err, EINVAL, "insecure-registry \"%s\": want HOST[:PORT]", value);
	cfg->insecure[cfg->n_insecure++] = bh_strdup(value);
	return 0;
}

/* One option with its value, shared by flags and the file. */
static int config_set(struct srv_config *cfg, const char *key, const char *value,
                      struct bh_err *err)
{
	if (strcmp(key, "listen") == 0)
		return add_listen(cfg, value, err);
	if (strcmp(key, "tls-dir") == 0)
		return set_string(&cfg->tls_dir, value);
	if (strcmp(key, "data-root") == 0)
		return set_string(&cfg->data_root, value);
	if (strcmp(key, "exec-root") == 0)
		return set_string(&cfg->exec_root, value);
	if (strcmp(key, "config") == 0)
		return set_string(&cfg->config_file, value);
	if (strcmp(key, "monitor-path") == 0)
		return set_string(&cfg->monitor_path, value);
	if (strcmp(key, "log-level") == 0)
		return set_log_level(cfg, value, err);
	if (strcmp(key, "certs-d") == 0)
		return set_string(&cfg->certs_d, value);
	if (strcmp(key, "insecure-registry") == 0)
		return add_insecure(cfg, value, err);
	if (strcmp(key, "max-cert-days") == 0)
		return set_max_cert_days(cfg, value, err);
	return bh_err_set(err, EINVAL, "unknown option --%s", key);
}

static bool known_option(const char *key)
{
	static const char *const keys[] = {"listen", "tls-dir",   "data-root",   "exec-root",
	                                   "config", "log-level", "monitor-path",
	                                   "certs-d", "insecure-registry", "max-cert-days"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

static int parse_one_arg(struct srv_config *cfg, int argc, char **argv, int *i, struct bh_err *err)
{
	const char *arg = argv[*i];
	const char *eq;
	cleanup_free char *key = NULL;

	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		cfg->help = true;
		return 0;
	}
	if (strcmp(arg, "--version") == 0 || strcmp(arg, "-v") == 0) {
		cfg->version = true;
		return 0;
	}
	if (!bh_str_has_prefix(arg, "--") || arg[2] == '\0')
		return bh_err_set(err, EINVAL, "unexpected argument \"%s\"", arg);
	eq = strchr(arg, '=');
	if (eq != NULL) {
		key = bh_strndup(arg + 2, (size_t)(eq - arg - 2));
		return config_set(cfg, key, eq + 1, err);
	}
	if (!known_option(arg + 2))
		return bh_err_set(err, EINVAL, "unknown option %s", arg);
	if (*i + 1 >= argc)
		return bh_err_set(err, EINVAL, "option %s needs a value", arg);
	*i += 1;
	return config_set(cfg, arg + 2, argv[*i], err);
}

int srv_config_parse_args(struct srv_config *cfg, int argc, char **argv, struct bh_err *err)
{
	for (int i = 0; i < argc; i++)
		if (parse_one_arg(cfg, argc, argv, &i, err) < 0)
			return -1;
	return 0;
}

static int json_set_listen(struct srv_config *cfg, json_t *v, struct bh_err *err)
{
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return bh_err_set(err, EINVAL, "\"listen\" must be an array of strings");
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return bh_err_set(err, EINVAL, "\"listen\"[%zu] must be a string", i);
		if (add_listen(cfg, json_string_value(item), err) < 0)
			return -1;
	}
	return 0;
}

static int json_set_insecure(struct srv_config *cfg, json_t *v, struct bh_err *err)
{
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return bh_err_set(err, EINVAL, "\"insecure-registry\" must be an array of strings");
	json_array_foreach(v, i, item)
	{
		if (!json_is_string(item))
			return bh_err_set(err, EINVAL, "\"insecure-registry\"[%zu] must be a string",
			                  i);
		if (add_insecure(cfg, json_string_value(item), err) < 0)
			return -1;
	}
	return 0;
}

static int json_set_key(struct srv_config *cfg, const char *key, json_t *v, struct bh_err *err)
{
	static const char *const strings[] = {"tls-dir", "data-root", "exec-root", "log-level",
	                                      "monitor-path", "certs-d"};

	if (strcmp(key, "listen") == 0)
		return json_set_listen(cfg, v, err);
	if (strcmp(key, "insecure-registry") == 0)
		return json_set_insecure(cfg, v, err);
	if (strcmp(key, "max-cert-days") == 0 && json_is_integer(v)) {
		char n[32];
		snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(v));
		return config_set(cfg, key, n, err);
	}
	if (strcmp(key, "max-cert-days") == 0)
		return bh_err_set(err, EINVAL, "\"max-cert-days\" must be an integer");
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (strcmp(key, strings[i]) != 0)
			continue;
		if (!json_is_string(v))
			return bh_err_set(err, EINVAL, "\"%s\" must be a string", key);
		return config_set(cfg, key, json_string_value(v), err);
	}
	return bh_err_set(err, EINVAL, "unknown key \"%s\"", key);
}

int srv_config_parse_json(struct srv_config *cfg, const char *text, const char *name,
                          struct bh_err *err)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int r = 0;

	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return bh_err_set(err, EINVAL, "config %s: line %d column %d: %s", name, jerr.line,
		                  jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return bh_err_set(err, EINVAL, "config %s: must be a JSON object", name);
	}
	json_object_foreach(root, key, v)
	{
		r = json_set_key(cfg, key, v, err);
		if (r < 0) {
			bh_err_wrap(err, "config %s", name);
			break;
		}
	}
	json_decref(root);
	return r;
}

static int parse_tcp(const char *rest, struct srv_listen *out, const char *url, struct bh_err *err)
{
	const char *colon = strrchr(rest, ':');
	const char *host = rest;
	size_t hlen;
	long port;
	unsigned char addr[16];

	if (colon == NULL || bh_parse_long(colon + 1, 0, 65535, &port) < 0)
		return bh_err_set(err, EINVAL, "listen %s: expected tcp://ADDR:PORT", url);
	hlen = (size_t)(colon - rest);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0) {
		host = "0.0.0.0";
		hlen = 7;
	}
	if (hlen >= sizeof(out->host))
		return bh_err_set(err, EINVAL, "listen %s: address too long", url);
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (inet_pton(AF_INET, out->host, addr) != 1 && inet_pton(AF_INET6, out->host, addr) != 1)
		return bh_err_set(err, EINVAL, "listen %s: \"%s\" is not an IP address", url,
		                  out->host);
	out->port = (int)port;
	return 0;
}

int srv_listen_parse(const char *url, struct srv_listen *out, struct bh_err *err)
{
	memset(out, 0, sizeof(*out));
	if (bh_str_has_prefix(url, "tcp://")) {
		out->kind = SRV_LISTEN_TCP;
		return parse_tcp(url + 6, out, url, err);
	}
	if (bh_str_has_prefix(url, "unix://")) {
		out->kind = SRV_LISTEN_UNIX;
		if (url[7] != '/')
			return bh_err_set(err, EINVAL,
			                  "listen %s: the socket path must be absolute", url);
		if (bh_strlcpy(out->path, url + 7, sizeof(out->path)) < 0)
			return bh_err_set(err, EINVAL, "listen %s: socket path too long", url);
		return 0;
	}
	return bh_err_set(err, EINVAL, "listen %s: expected tcp://ADDR:PORT or unix://PATH", url);
}

static void merge_string(char **dst, char **from_flags, const char *dflt)
{
	if (*from_flags != NULL) {
		free(*dst);
		*dst = steal_pointer(from_flags);
	} else if (*dst == NULL) {
		*dst = bh_strdup(dflt);
	}
}

/* cfg holds the file's values; flags win where given. */
static void merge_flags(struct srv_config *cfg, struct srv_config *flags)
{
	if (flags->n_listen > 0) {
		listen_clear(cfg);
		for (size_t i = 0; i < flags->n_listen; i++)
			cfg->listen[i] = steal_pointer(&flags->listen[i]);
		cfg->n_listen = flags->n_listen;
		flags->n_listen = 0;
	}
	if (flags->tls_dir != NULL)
		merge_string(&cfg->tls_dir, &flags->tls_dir, NULL);
	merge_string(&cfg->data_root, &flags->data_root, DEFAULT_DATA_ROOT);
	merge_string(&cfg->exec_root, &flags->exec_root, DEFAULT_EXEC_ROOT);
	if (flags->monitor_path != NULL)
		merge_string(&cfg->monitor_path, &flags->monitor_path, NULL);
	if (flags->certs_d != NULL)
		merge_string(&cfg->certs_d, &flags->certs_d, NULL);
	if (flags->n_insecure > 0) { /* flags replace the file's list, as --listen */
		for (size_t i = 0; i < cfg->n_insecure; i++)
			free(cfg->insecure[i]);
		for (size_t i = 0; i <= flags->n_insecure; i++)
			cfg->insecure[i] = steal_pointer(&flags->insecure[i]);
		cfg->n_insecure = flags->n_insecure;
		flags->n_insecure = 0;
	}
	if (flags->log_level >= 0)
		cfg->log_level = flags->log_level;
	if (flags->max_cert_days > 0)
		cfg->max_cert_days = flags->max_cert_days;
	if (cfg->log_level < 0)
		cfg->log_level = BH_LOG_INFO;
	cfg->help = flags->help;
	cfg->version = flags->version;
	cfg->config_file = steal_pointer(&flags->config_file);
}

static int load_file(struct srv_config *cfg, const char *path, struct bh_err *err)
{
	cleanup_free char *text = NULL;

	if (bh_read_file(path, SRV_CONFIG_MAX, &text, NULL, err) < 0)
		return bh_err_wrap(err, "config");
	return srv_config_parse_json(cfg, text, path, err);
}

static bool has_listen_kind(const struct srv_config *cfg, enum srv_listen_kind kind)
{
	struct srv_listen l;
	struct bh_err e;

	for (size_t i = 0; i < cfg->n_listen; i++)
		if (srv_listen_parse(cfg->listen[i], &l, &e) == 0 && l.kind == kind)
			return true;
	return false;
}

/* The unix socket is the local admin door: there is always one. */
static int add_default_listeners(struct srv_config *cfg, struct bh_err *err)
{
	bool none = cfg->n_listen == 0;
	cleanup_free char *sock = NULL;

	if (!has_listen_kind(cfg, SRV_LISTEN_UNIX)) {
		sock = bh_path_join(cfg->exec_root, SOCK_NAME);
		cleanup_free char *url = bh_asprintf("unix://%s", sock);
		if (add_listen(cfg, url, err) < 0)
			return -1;
	}
	if (none && cfg->tls_dir != NULL && add_listen(cfg, DEFAULT_TCP, err) < 0)
		return -1;
	if (has_listen_kind(cfg, SRV_LISTEN_TCP) && cfg->tls_dir == NULL)
		return bh_err_set(err, EINVAL,
		                  "a tcp:// listener needs --tls-dir (TCP is always mutual TLS)");
	return 0;
}

int srv_config_load(struct srv_config *cfg, int argc, char **argv, struct bh_err *err)
{
	struct srv_config flags;
	int r = -1;

	srv_config_init(&flags);
	srv_config_init(cfg);
	if (srv_config_parse_args(&flags, argc, argv, err) < 0)
		goto out;
	if (flags.help || flags.version) {
		cfg->help = flags.help;
		cfg->version = flags.version;
		r = 0;
		goto out;
	}
	if (flags.config_file != NULL && load_file(cfg, flags.config_file, err) < 0)
		goto out;
	merge_flags(cfg, &flags);
	r = add_default_listeners(cfg, err);
out:
	srv_config_free(&flags);
	return r;
}
