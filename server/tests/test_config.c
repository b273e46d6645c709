/* berthd configuration: flags, the JSON file, defaults and the errors an
 * operator sees (file, line and column; unknown keys; unsafe listeners). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server-internal.h"

static char tmpfile_path[64];

static const char *write_tmp(const char *text)
{
	struct bh_err err;

	snprintf(tmpfile_path, sizeof(tmpfile_path), "/tmp/berthd-test-%d.json", (int)getpid());
	assert_int_equal(bh_write_file_atomic(tmpfile_path, text, strlen(text), 0600, &err), 0);
	return tmpfile_path;
}

static int teardown(void **state)
{
	unlink(tmpfile_path);
	return 0;
}

static int load(struct srv_config *cfg, struct bh_err *err, int argc, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return srv_config_load(cfg, argc, argv, err);
}

static void test_good_file(void **state)
{
	struct srv_config cfg;
	struct bh_err err;
	const char *path =
	    write_tmp("{\n  \"listen\": [\"tcp://127.0.0.1:9443\", \"unix:///tmp/b.sock\"],\n"
	              "  \"tls-dir\": \"/etc/berth/tls\",\n"
	              "  \"data-root\": \"/srv/berth\",\n  \"log-level\": \"debug\"\n}\n");

	assert_int_equal(load(&cfg, &err, 2, "--config", path), 0);
	assert_int_equal(cfg.n_listen, 2);
	assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:9443");
	assert_string_equal(cfg.listen[1], "unix:///tmp/b.sock");
	assert_string_equal(cfg.tls_dir, "/etc/berth/tls");
	assert_string_equal(cfg.data_root, "/srv/berth");
	assert_string_equal(cfg.exec_root, "/run/berth");
	assert_int_equal(cfg.log_level, BH_LOG_DEBUG);
	srv_config_free(&cfg);
}

static void test_flags_override_file(void **state)
{
	struct srv_config cfg;
	struct bh_err err;
	const char *path = write_tmp("{\"data-root\": \"/from/file\", \"exec-root\": \"/x/run\","
	                             " \"listen\": [\"unix:///from/file.sock\"]}");

	assert_int_equal(load(&cfg, &err, 5, "--config", path, "--data-root=/from/flag", "--listen",
	                      "unix:///from/flag.sock"),
	                 0);
	assert_string_equal(cfg.data_root, "/from/flag");
	assert_string_equal(cfg.exec_root, "/x/run");
	assert_int_equal(cfg.n_listen, 1);
	assert_string_equal(cfg.listen[0], "unix:///from/flag.sock");
	assert_int_equal(cfg.log_level, BH_LOG_INFO);
	srv_config_free(&cfg);
}

static void test_malformed_json(void **state)
{
	struct srv_config cfg;
	struct bh_err err;
	const char *path = write_tmp("{\n  \"data-root\": \"/a\",\n  \"tls-dir\" \"/b\"\n}\n");
	char want[128];

	assert_true(load(&cfg, &err, 2, "--config", path) < 0);
	snprintf(want, sizeof(want), "config %s: line 3 column", path);
	assert_non_null(strstr(err.msg, want));
	assert_null(strchr(err.msg, '\n'));
	srv_config_free(&cfg);
}

static void test_unknown_key_and_types(void **state)
{
	struct srv_config cfg;
	struct bh_err err;

	srv_config_init(&cfg);
	assert_true(srv_config_parse_json(&cfg, "{\"insecure\": true}", "f.json", &err) < 0);
	assert_non_null(strstr(err.msg, "unknown key \"insecure\""));
	assert_non_null(strstr(err.msg, "f.json"));
	assert_true(srv_config_parse_json(&cfg, "{\"listen\": \"tcp://1.2.3.4:1\"}", "f", &err) <
	            0);
	assert_true(srv_config_parse_json(&cfg, "{\"data-root\": 3}", "f", &err) < 0);
	assert_true(srv_config_parse_json(&cfg, "[]", "f", &err) < 0);
	assert_true(srv_config_parse_json(&cfg, "{\"log-level\": \"loud\"}", "f", &err) < 0);
	srv_config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct srv_config cfg;
	struct bh_err err;

	assert_int_equal(load(&cfg, &err, 0), 0);
	assert_int_equal(cfg.n_listen, 1);
	assert_string_equal(cfg.listen[0], "unix:///run/berth/berthd.sock");
	srv_config_free(&cfg);

	assert_int_equal(load(&cfg, &err, 4, "--exec-root", "/tmp/e1", "--tls-dir", "/t"), 0);
	assert_int_equal(cfg.n_listen, 2);
	assert_string_equal(cfg.listen[0], "unix:///tmp/e1/berthd.sock");
	assert_string_equal(cfg.listen[1], "tcp://0.0.0.0:7443");
	srv_config_free(&cfg);

	/* Named TCP listeners still get the admin socket in the exec root. */
	assert_int_equal(load(&cfg, &err, 6, "--exec-root", "/tmp/e2", "--tls-dir", "/t",
	                      "--listen", "tcp://127.0.0.1:0"),
	                 0);
	assert_int_equal(cfg.n_listen, 2);
	assert_string_equal(cfg.listen[0], "tcp://127.0.0.1:0");
	assert_string_equal(cfg.listen[1], "unix:///tmp/e2/berthd.sock");
	srv_config_free(&cfg);
}

static void test_tcp_needs_tls(void **state)
{
	struct srv_config cfg;
	struct bh_err err;

	assert_true(load(&cfg, &err, 2, "--listen", "tcp://127.0.0.1:7443") < 0);
	assert_non_null(strstr(err.msg, "--tls-dir"));
	srv_config_free(&cfg);
	assert_true(load(&cfg, &err, 1, "--insecure") < 0);
	assert_non_null(strstr(err.msg, "unknown option --insecure"));
	srv_config_free(&cfg);
	assert_true(load(&cfg, &err, 1, "--data-root") < 0);
	srv_config_free(&cfg);
}

static void test_listen_parse(void **state)
{
	struct srv_listen l;
	struct bh_err err;

	assert_int_equal(srv_listen_parse("tcp://127.0.0.1:7443", &l, &err), 0);
	assert_int_equal(l.kind, SRV_LISTEN_TCP);
	assert_string_equal(l.host, "127.0.0.1");
	assert_int_equal(l.port, 7443);
	assert_int_equal(srv_listen_parse("tcp://[::1]:8443", &l, &err), 0);
	assert_string_equal(l.host, "::1");
	assert_int_equal(l.port, 8443);
	assert_int_equal(srv_listen_parse("tcp://:1234", &l, &err), 0);
	assert_string_equal(l.host, "0.0.0.0");
	assert_int_equal(srv_listen_parse("unix:///run/x.sock", &l, &err), 0);
	assert_int_equal(l.kind, SRV_LISTEN_UNIX);
	assert_string_equal(l.path, "/run/x.sock");
	assert_true(srv_listen_parse("tcp://127.0.0.1", &l, &err) < 0);
	assert_true(srv_listen_parse("tcp://127.0.0.1:99999", &l, &err) < 0);
	assert_true(srv_listen_parse("tcp://example.com:1", &l, &err) < 0);
	assert_true(srv_listen_parse("unix://relative.sock", &l, &err) < 0);
	assert_true(srv_listen_parse("http://127.0.0.1:80", &l, &err) < 0);
}

/* max-cert-days: flag and file, the flag winning, the default, and junk. */
static void test_max_cert_days(void **state)
{
	struct srv_config cfg;
	struct bh_err err;
	const char *path = write_tmp("{\"max-cert-days\": 14}");

	assert_int_equal(load(&cfg, &err, 0), 0);
	assert_int_equal(srv_config_max_cert_days(&cfg), SRV_MAX_CERT_DAYS_DEFAULT);
	srv_config_free(&cfg);
	assert_int_equal(load(&cfg, &err, 2, "--config", path), 0);
	assert_int_equal(srv_config_max_cert_days(&cfg), 14);
	srv_config_free(&cfg);
	assert_int_equal(load(&cfg, &err, 4, "--config", path, "--max-cert-days", "7"), 0);
	assert_int_equal(srv_config_max_cert_days(&cfg), 7);
	srv_config_free(&cfg);
	assert_true(load(&cfg, &err, 2, "--max-cert-days", "0") < 0);
	assert_non_null(strstr(err.msg, "max-cert-days"));
	srv_config_init(&cfg);
	assert_true(srv_config_parse_json(&cfg, "{\"max-cert-days\": \"9\"}", "f.json", &err) < 0);
	assert_non_null(strstr(err.msg, "must be an integer"));
	srv_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_good_file, teardown),
	    cmocka_unit_test_teardown(test_flags_override_file, teardown),
	    cmocka_unit_test_teardown(test_malformed_json, teardown),
	    cmocka_unit_test(test_unknown_key_and_types),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_tcp_needs_tls),
	    cmocka_unit_test(test_listen_parse),
	    cmocka_unit_test_teardown(test_max_cert_days, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
