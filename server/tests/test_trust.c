/* The trust store: verdicts (unknown, revoked, expired), durability and
 * mode of trust.json, refusal of torn or tampered files, single-use tokens
 * across a reopen (a crash), lazy last_seen, and the roles' names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server-internal.h"

static char dir[64];
static char path[96];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/berth-trust-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/trust.json", dir);
	return 0;
}

static int teardown(void **state)
{
	struct bh_err err;

	bh_rm_rf(dir, &err);
	return 0;
}

static struct srv_trust_entry entry(const char *name, char c, enum srv_role role, int64_t expires)
{
	struct srv_trust_entry e;

	memset(&e, 0, sizeof(e));
	bh_strlcpy(e.name, name, sizeof(e.name));
	memset(e.fingerprint, c, 64);
	e.role = role;
	e.expires = expires;
	return e;
}

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

static void test_new_store_is_empty_and_0600(void **state)
{
	struct srv_trust *t;
	struct bh_err err;
	struct stat st;
	char fp[65];

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_true(srv_trust_is_new(t));
	assert_false(srv_trust_is_new(t)); /* once */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	memset(fp, 'a', 64);
	fp[64] = '\0';
	assert_int_equal(srv_trust_check(t, fp, NULL, &err), -1);
	assert_int_equal(err.code, EACCES);
	assert_non_null(strstr(err.msg, "not in the trust store"));
	srv_trust_free(t);
}

static void test_add_check_revoke_persist(void **state)
{
	struct srv_trust *t;
	struct srv_trust_entry e = entry("alice", 'b', SRV_ROLE_VIEWER, now() + 3600), out;
	struct bh_err err;

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_add(t, &e, &err), 0);
	assert_int_equal(srv_trust_check(t, e.fingerprint, &out, &err), 0);
	assert_string_equal(out.name, "alice");
	assert_int_equal(out.role, SRV_ROLE_VIEWER);
	assert_true(out.created > 0);
	/* the same certificate twice: refused */
	assert_int_equal(srv_trust_add(t, &e, &err), -1);
	assert_int_equal(err.code, EEXIST);
	srv_trust_free(t);

	/* durable: a new process sees it */
	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_false(srv_trust_is_new(t));
	assert_int_equal(srv_trust_check(t, e.fingerprint, &out, &err), 0);
	assert_int_equal(srv_trust_revoke(t, "alice", &err), 1);
	assert_int_equal(srv_trust_check(t, e.fingerprint, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "revoked"));
	/* nothing left to revoke, and a revoked certificate never comes back */
	assert_int_equal(srv_trust_revoke(t, "alice", &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_int_equal(srv_trust_add(t, &e, &err), -1);
	assert_int_equal(err.code, EEXIST);
	srv_trust_free(t);

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_check(t, e.fingerprint, NULL, &err), -1);
	srv_trust_free(t);
}

static void test_revoke_by_fingerprint_and_name_counts(void **state)
{
	struct srv_trust *t;
	struct srv_trust_entry a = entry("bob", 'c', SRV_ROLE_OPERATOR, now() + 3600);
	struct srv_trust_entry b = entry("bob", 'd', SRV_ROLE_OPERATOR, now() + 3600);
	struct srv_trust_entry c = entry("eve", 'e', SRV_ROLE_ADMIN, now() + 3600);
	struct bh_err err;

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_add(t, &a, &err), 0);
	assert_int_equal(srv_trust_add(t, &b, &err), 0); /* renewal: same name */
	assert_int_equal(srv_trust_add(t, &c, &err), 0);
	assert_int_equal(srv_trust_revoke(t, c.fingerprint, &err), 1);
	assert_int_equal(srv_trust_revoke(t, "bob", &err), 2);
	assert_int_equal(srv_trust_check(t, a.fingerprint, NULL, &err), -1);
	assert_int_equal(srv_trust_check(t, b.fingerprint, NULL, &err), -1);
	json_t *list = srv_trust_list_json(t);
	assert_int_equal(json_array_size(list), 3);
	assert_true(json_is_true(json_object_get(json_array_get(list, 0), "Revoked")));
	json_decref(list);
	srv_trust_free(t);
}

static void test_expired_and_bad_entries(void **state)
{
	struct srv_trust *t;
	struct srv_trust_entry old = entry("old", 'f', SRV_ROLE_VIEWER, now() - 10);
	struct srv_trust_entry bad = entry("bad name", '1', SRV_ROLE_VIEWER, now() + 10);
	struct srv_trust_entry upper = entry("ok", 'A', SRV_ROLE_VIEWER, now() + 10);
	struct srv_trust_entry norole = entry("ok", '2', SRV_ROLE_ENROLL, now() + 10);
	struct bh_err err;

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_add(t, &old, &err), 0);
	assert_int_equal(srv_trust_check(t, old.fingerprint, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "expired"));
	assert_int_equal(srv_trust_add(t, &bad, &err), -1);
	assert_int_equal(err.code, EINVAL);
	assert_int_equal(srv_trust_add(t, &upper, &err), -1); /* fingerprints are lowercase */
	assert_int_equal(srv_trust_add(t, &norole, &err), -1);
	srv_trust_free(t);
}

static void write_raw(const char *text)
{
	struct bh_err err;

	assert_int_equal(bh_write_file_atomic(path, text, strlen(text), 0600, &err), 0);
}

/* A torn or tampered store must stop berthd, naming the file: never
 * "trust nothing" (locks the admin out) or "trust everything". */
static void test_torn_and_garbage_files_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{\"Version\":1,\"Identities\":[{\"Name\":\"a\"",
	    "garbage\n",
	    "[]",
	    "{\"Version\":2,\"Identities\":[],\"Tokens\":[]}",
	    "{\"Version\":1,\"Identities\":{},\"Tokens\":[]}",
	    "{\"Version\":1,\"Identities\":[],\"Tokens\":[],\"Version\":1}",
	    "{\"Version\":1,\"Identities\":[{\"Name\":\"a\",\"Fingerprint\":\"xx\",\"Role\":"
	    "\"admin\",\"Created\":1,\"Expires\":2,\"LastSeen\":0,\"Revoked\":false}],"
	    "\"Tokens\":[]}",
	    "{\"Version\":1,\"Identities\":[{\"Name\":\"a\",\"Fingerprint\":\"" /* no Revoked */
	    "0000000000000000000000000000000000000000000000000000000000000000\",\"Role\":"
	    "\"admin\",\"Created\":1,\"Expires\":2,\"LastSeen\":0}],\"Tokens\":[]}",
	    "{\"Version\":1,\"Identities\":[{\"Name\":\"a\",\"Fingerprint\":\""
	    "0000000000000000000000000000000000000000000000000000000000000000\",\"Role\":"
	    "\"root\",\"Created\":1,\"Expires\":2,\"LastSeen\":0,\"Revoked\":false}],"
	    "\"Tokens\":[]}",
	};
	struct srv_trust *t = NULL;
	struct bh_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_raw(bad[i]);
		bh_err_clear(&err);
		assert_int_equal(srv_trust_open(dir, &t, &err), -1);
		assert_non_null(strstr(err.msg, path));
		assert_int_equal(err.code, EINVAL);
	}
	/* and the file was left as it was, for the admin to look at */
	char *text = NULL;
	size_t len;
	assert_int_equal(bh_read_file(path, 1 << 20, &text, &len, &err), 0);
	assert_string_equal(text, bad[sizeof(bad) / sizeof(bad[0]) - 1]);
	free(text);
}

static void test_tokens_single_use_across_reopen(void **state)
{
	struct srv_trust *t;
	struct srv_token tok = {"dave", SRV_ROLE_OPERATOR, 0, 30}, out;
	uint8_t h[32], other[32];
	struct bh_err err;

	memset(h, 7, sizeof(h));
	memset(other, 8, sizeof(other));
	tok.expires = now() + 600;
	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_false(srv_trust_tokens_pending(t));
	assert_int_equal(srv_trust_token_add(t, &tok, h, &err), 0);
	assert_true(srv_trust_tokens_pending(t));
	assert_int_equal(srv_trust_token_take(t, other, &out, &err), -1);
	assert_int_equal(err.code, EACCES);
	assert_int_equal(srv_trust_token_take(t, h, &out, &err), 0);
	assert_string_equal(out.name, "dave");
	assert_int_equal(out.role, SRV_ROLE_OPERATOR);
	assert_int_equal(out.cert_days, 30);
	assert_false(srv_trust_tokens_pending(t));
	/* "crash": nothing flushed on purpose beyond what take() wrote */
	srv_trust_free(t);
	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_token_take(t, h, &out, &err), -1);
	assert_non_null(strstr(err.msg, "already used"));
	srv_trust_free(t);

	/* the secret itself is never in the file, only its hash */
	char *text = NULL;
	size_t len;
	assert_int_equal(bh_read_file(path, 1 << 20, &text, &len, &err), 0);
	assert_non_null(strstr(text, "0707070707070707"));
	free(text);
}

static void test_token_expired_and_bad(void **state)
{
	struct srv_trust *t;
	struct srv_token tok = {"x", SRV_ROLE_VIEWER, 0, 30}, out;
	uint8_t h[32];
	struct bh_err err;

	memset(h, 9, sizeof(h));
	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	tok.expires = now() - 1;
	assert_int_equal(srv_trust_token_add(t, &tok, h, &err), -1); /* already expired */
	tok.expires = now() + 60;
	tok.cert_days = 0;
	assert_int_equal(srv_trust_token_add(t, &tok, h, &err), -1);
	tok.cert_days = 1;
	tok.role = SRV_ROLE_ENROLL;
	assert_int_equal(srv_trust_token_add(t, &tok, h, &err), -1);
	assert_int_equal(srv_trust_token_take(t, h, &out, &err), -1);
	srv_trust_free(t);
}

static void test_last_seen_is_lazy(void **state)
{
	struct srv_trust *t;
	struct srv_trust_entry e = entry("seen", '3', SRV_ROLE_VIEWER, now() + 3600), out;
	struct bh_err err;
	char *text = NULL;
	size_t len;

	assert_int_equal(srv_trust_open(dir, &t, &err), 0);
	assert_int_equal(srv_trust_add(t, &e, &err), 0);
	srv_trust_seen(t, e.fingerprint, now());
	assert_int_equal(srv_trust_check(t, e.fingerprint, &out, &err), 0);
	assert_int_equal(out.last_seen, now());
	/* the write was just now: not due for a minute, and not on disk yet */
	assert_false(srv_trust_flush_due(t, now()));
	assert_int_equal(bh_read_file(path, 1 << 20, &text, &len, &err), 0);
	assert_non_null(strstr(text, "\"LastSeen\": 0"));
	free(text);
	assert_true(srv_trust_flush_due(t, now() + 61));
	assert_false(srv_trust_flush_due(t, now() + 62)); /* claimed by the first */
	/* free flushes */
	srv_trust_free(t);
	assert_int_equal(bh_read_file(path, 1 << 20, &text, &len, &err), 0);
	assert_null(strstr(text, "\"LastSeen\": 0"));
	free(text);
}

/* THE gate: role from the store on every call, the message names both roles. */
static void test_authorize_gate(void **state)
{
	static struct srv_server srv;
	struct srv_trust_entry e = entry("vic", '4', SRV_ROLE_VIEWER, now() + 3600);
	struct srv_identity id, unix_id, enrolling;
	struct bh_err err;

	memset(&srv, 0, sizeof(srv));
	assert_int_equal(srv_trust_open(dir, &srv.trust, &err), 0);
	assert_int_equal(srv_trust_add(srv.trust, &e, &err), 0);
	memset(&id, 0, sizeof(id));
	bh_strlcpy(id.fingerprint, e.fingerprint, sizeof(id.fingerprint));
	bh_strlcpy(id.cn, "vic", sizeof(id.cn));
	assert_int_equal(srv_authorize(&srv, &id, SRV_ROLE_VIEWER, "GET /x", &err), 0);
	assert_string_equal(id.name, "vic");
	assert_int_equal(id.role, SRV_ROLE_VIEWER);
	assert_int_equal(srv_authorize(&srv, &id, SRV_ROLE_OPERATOR, "POST /x", &err), -1);
	assert_int_equal(err.code, EACCES);
	assert_string_equal(err.msg, "POST /x needs role operator; vic is viewer");
	/* revoked after "connect": the same identity is refused on its next call */
	assert_int_equal(srv_trust_revoke(srv.trust, "vic", &err), 1);
	assert_int_equal(srv_authorize(&srv, &id, SRV_ROLE_VIEWER, "GET /x", &err), -1);
	assert_non_null(strstr(err.msg, "revoked"));
	/* the unix socket is admin without a store entry */
	memset(&unix_id, 0, sizeof(unix_id));
	unix_id.is_unix = true;
	unix_id.role = SRV_ROLE_ADMIN;
	assert_int_equal(srv_authorize(&srv, &unix_id, SRV_ROLE_ADMIN, "DELETE /x", &err), 0);
	/* an enrolling client reaches only enroll routes */
	memset(&enrolling, 0, sizeof(enrolling));
	enrolling.self_signed = true;
	memset(enrolling.fingerprint, '5', 64);
	assert_int_equal(srv_authorize(&srv, &enrolling, SRV_ROLE_ENROLL, "POST /e", &err), 0);
	assert_int_equal(srv_authorize(&srv, &enrolling, SRV_ROLE_VIEWER, "GET /_ping", &err), -1);
	assert_non_null(strstr(err.msg, "GET /_ping needs role viewer"));
	srv_trust_free(srv.trust);
}

static void test_role_names(void **state)
{
	enum srv_role r;

	assert_int_equal(srv_role_parse("viewer", &r), 0);
	assert_int_equal(r, SRV_ROLE_VIEWER);
	assert_int_equal(srv_role_parse("admin", &r), 0);
	assert_int_equal(r, SRV_ROLE_ADMIN);
	assert_int_equal(srv_role_parse("enroll", &r), -1); /* not grantable */
	assert_int_equal(srv_role_parse("Admin", &r), -1);
	assert_int_equal(srv_role_parse(NULL, &r), -1);
	assert_string_equal(srv_role_name(SRV_ROLE_OPERATOR), "operator");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_new_store_is_empty_and_0600, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_check_revoke_persist, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_revoke_by_fingerprint_and_name_counts, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_expired_and_bad_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_and_garbage_files_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens_single_use_across_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_expired_and_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_last_seen_is_lazy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_authorize_gate, setup, teardown),
	    cmocka_unit_test(test_role_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
