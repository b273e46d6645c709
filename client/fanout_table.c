/* client: the merged table of a fan-out ps or images.  Each child printed its
 * rows as JSON lines (ps/images --format json, docker's field names); here
 * they become one table with a leading CONTEXT column.  Pure: tested alone. */
#include <string.h>

#include "client/fanout.h"

struct fan_columns {
	const char *cmd;
	size_t n;
	const char *head[8];
	const char *field[8]; /* the JSON line's key of each column */
};

static const struct fan_columns fan_tables[] = {
    {"ps",
     7,
     {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"},
     {"ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"}},
    {"images",
     5,
     {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"},
     {"Repository", "Tag", "ID", "CreatedSince", "Size"}},
};

static const struct fan_columns *columns_of(const char *cmd)
{
	for (size_t i = 0; i < sizeof(fan_tables) / sizeof(fan_tables[0]); i++)
		if (strcmp(fan_tables[i].cmd, cmd) == 0)
			return &fan_tables[i];
	return &fan_tables[0];
}

void cli_fan_table_head(const char *cmd, struct cli_table *t)
{
	const struct fan_columns *c = columns_of(cmd);
	const char *row[9] = {"CONTEXT"};

	for (size_t i = 0; i < c->n; i++)
		row[i + 1] = c->head[i];
	cli_table_init(t, c->n + 1);
	cli_table_add(t, row);
}

static void add_row(const struct fan_columns *c, const char *ctx, json_t *o, struct cli_table *t)
{
	const char *row[9] = {ctx};

	for (size_t i = 0; i < c->n; i++) {
		const char *v = json_string_value(json_object_get(o, c->field[i]));
		row[i + 1] = v ? v : "";
	}
	cli_table_add(t, row);
}

void cli_fan_table_rows(const char *cmd, const char *ctx, const char *out, size_t len,
                        struct cli_table *t, size_t *bad)
{
	const struct fan_columns *c = columns_of(cmd);

	while (len > 0) {
		const char *nl = memchr(out, '\n', len);
		size_t n = nl ? (size_t)(nl - out) : len;
		json_t *o = n > 0 ? json_loadb(out, n, 0, NULL) : NULL;

		if (json_is_object(o))
			add_row(c, ctx, o, t);
		else if (n > 0)
			(*bad)++;
		json_decref(o);
		out += nl ? n + 1 : n;
		len -= nl ? n + 1 : n;
	}
}
