/* libFuzzer target: berthd's --config JSON file (srv_config_parse_json) and
 * the listen URLs inside it (srv_listen_parse).  The file is the operator's,
 * but a bad one must fail with a message, never crash the daemon. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const struct srv_config *cfg)
{
	struct srv_listen l;
	struct bh_err err = {0};

	if (cfg->n_listen > SRV_MAX_LISTENERS)
		abort();
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (srv_listen_parse(cfg->listen[i], &l, &err) < 0)
			abort(); /* only parseable URLs are kept */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_config cfg;
	struct srv_listen l;
	struct bh_err err = {0};
	char *text;

	if (size > SRV_CONFIG_MAX)
		return 0; /* load_file refuses bigger files */
	text = bh_strndup((const char *)data, size);
	srv_config_init(&cfg);
	if (srv_config_parse_json(&cfg, text, "fuzz.json", &err) == 0)
		check_config(&cfg);
	else if (err.msg[0] == '\0')
		abort(); /* a failure always says why */
	srv_config_free(&cfg);
	if (srv_listen_parse(text, &l, &err) == 0 && l.kind == SRV_LISTEN_TCP &&
	    (l.port < 0 || l.port > 65535))
		abort();
	free(text);
	return 0;
}
