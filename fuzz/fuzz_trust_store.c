/* libFuzzer target: berthd's trust store reader.  DATA_ROOT/trust.json is
 * written by berthd alone, but a torn write, a full disk or a hand edit
 * must never crash it or let a malformed entry through: whatever
 * srv_trust_open accepts holds only valid names, fingerprints and roles.
 * Input: the whole file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz-util.h"
#include "server/server-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entries(struct srv_trust *t)
{
	json_t *list = srv_trust_list_json(t), *e;
	struct srv_trust_entry out;
	struct bh_err err;
	enum srv_role role;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *fp = json_string_value(json_object_get(e, "Fingerprint"));
		if (fp == NULL || strlen(fp) != 64 ||
		    srv_role_parse(json_string_value(json_object_get(e, "Role")), &role) < 0)
			abort(); /* only checked values come out */
		if (srv_trust_check(t, fp, &out, &err) == 0 &&
		    (out.revoked || out.role < SRV_ROLE_VIEWER || out.role > SRV_ROLE_ADMIN))
			abort();
	}
	json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *dir, *file;
	struct srv_trust *t = NULL;
	struct bh_err err;

	if (dir == NULL) {
		dir = fz_path("data");
		if (bh_mkdir_p(dir, 0700, &err) < 0)
			abort();
		file = bh_path_join(dir, "trust.json");
	}
	fz_write_file(file, data, size, 0600);
	if (srv_trust_open(dir, &t, &err) < 0)
		return 0;
	check_entries(t);
	(void)srv_trust_tokens_pending(t);
	srv_trust_free(t);
	return 0;
}
