/* Logging to stderr: one line per event, UTC timestamp, level. */
#include <string.h>
#include <time.h>

#include "common/common.h"

static enum bh_log_level log_level = BH_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void bh_log_set_level(enum bh_log_level level)
{
	log_level = level;
}

enum bh_log_level bh_log_get_level(void)
{
	return log_level;
}

int bh_log_parse_level(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcmp(s, "warning") == 0)
		return BH_LOG_WARN;
	return -1;
}

void bh_log(enum bh_log_level level, const char *fmt, ...)
{
	char ts[40], line[2048];
	va_list ap;

	if (level > log_level)
		return;
	bh_rfc3339_now(ts);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so concurrent writers do not interleave. */
	fprintf(stderr, "%s %s %s\n", ts, level_names[level], line);
}
