/* The container manager's pure parts: create-body validation, the image
 * config merge, names, prefix lookup, status strings, the record round
 * trip, list filters; and the HTTP body spool used by /images/load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/containers-internal.h"
#include "server/server-internal.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	assert_non_null(j);
	return j;
}

/* Runs ctr_parse_create on text; returns its result and err. */
static int create(const char *text, json_t **cfg, json_t **hc, struct bh_err *err)
{
	json_t *body = parse(text);
	int r;

	bh_err_clear(err);
	r = ctr_parse_create(body, 2, cfg, hc, err);
	json_decref(body);
	return r;
}

static void test_names(void **state)
{
	assert_true(ctr_name_valid("web"));
	assert_true(ctr_name_valid("/web-1.a_b"));
	assert_true(ctr_name_valid("a1"));
	assert_false(ctr_name_valid("a"));   /* Docker needs two characters */
	assert_false(ctr_name_valid("-ab")); /* must start alphanumeric */
	assert_false(ctr_name_valid("a b"));
	assert_false(ctr_name_valid("a/b"));
	assert_false(ctr_name_valid(""));
	assert_false(ctr_name_valid("/"));
}

static void test_create_ok(void **state)
{
	json_t *cfg, *hc;
	struct bh_err err;

	/* What the docker CLI sends for "unset" is accepted. */
	assert_int_equal(create("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":null,"
	                        "\"PortBindings\":{},\"Privileged\":false,\"CapAdd\":null}}",
	                        &cfg, &hc, &err),
	                 0);
	json_decref(cfg);
	json_decref(hc);
	assert_int_equal(
	    create("{\"Image\":\"busybox\",\"Cmd\":[\"echo\",\"hi\"],"
	           "\"Entrypoint\":\"/bin/sh\",\"Env\":[\"A=1\"],\"Tty\":true,"
	           "\"Labels\":{\"k\":\"v\"},\"HostConfig\":{\"Memory\":8388608,"
	           "\"NanoCpus\":1000000000,\"RestartPolicy\":{\"Name\":\"on-failure\","
	           "\"MaximumRetryCount\":2},\"NetworkMode\":\"default\"}}",
	           &cfg, &hc, &err),
	    0);
	assert_string_equal(json_string_value(json_object_get(cfg, "Image")), "busybox");
	assert_int_equal(json_array_size(json_object_get(cfg, "Entrypoint")), 1);
	assert_true(json_is_true(json_object_get(cfg, "Tty")));
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "none");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 8388608);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(hc, "RestartPolicy"), "Name")),
	    "on-failure");
	json_decref(cfg);
	json_decref(hc);
}

static void expect_bad(const char *text, const char *msg)
{
	json_t *cfg = NULL, *hc = NULL;
	struct bh_err err;

	assert_int_equal(create(text, &cfg, &hc, &err), -1);
	assert_int_equal(err.code, EINVAL);
	if (strstr(err.msg, msg) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", err.msg, msg);
	assert_null(cfg);
	assert_null(hc);
}

static void test_create_bad(void **state)
{
	expect_bad("{\"Cmd\":[\"x\"]}", "Image");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":1024}}",
	           "Minimum memory limit allowed is 6MB");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"NanoCpus\":-1}}", "CPUs");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"NanoCpus\":3000000000}}", "CPUs");
	expect_bad("{\"Image\":\"b\",\"Cmd\":[1]}", "Cmd[0]");
	expect_bad("{\"Image\":\"b\",\"Env\":\"A=1\"}", "Env");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}",
	           "invalid restart policy");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"AutoRemove\":true,"
	           "\"RestartPolicy\":{\"Name\":\"always\"}}}",
	           "AutoRemove");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"NetworkMode\":\"bridge\"}}", "network");
	expect_bad("{\"Image\":\"b\",\"WorkingDir\":\"rel\"}", "absolute");
	expect_bad("{\"Image\":\"b\",\"Tty\":\"yes\"}", "Tty");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Binds\":[\"/:/host\"]}}",
	           "HostConfig.Binds is not supported");
	expect_bad("{\"Image\":\"b\",\"HostConfig\":{\"Privileged\":true}}", "Privileged");
	expect_bad("{\"Image\":\"b\",\"StopSignal\":\"SIGNOPE\"}", "Invalid signal");
}

static json_t *merged(const char *req, const char *img, struct bh_err *err, int *r)
{
	json_t *cfg, *hc, *image = parse(img);

	assert_int_equal(create(req, &cfg, &hc, err), 0);
	*r = ctr_merge_image(cfg, image, err);
	json_decref(image);
	json_decref(hc);
	return cfg;
}

static const char *IMG = "{\"Env\":[\"PATH=/bin\",\"A=img\"],\"Cmd\":[\"sh\"],"
                         "\"Entrypoint\":[\"/init\"],\"WorkingDir\":\"/w\",\"User\":\"nobody\"}";

static void test_merge(void **state)
{
	struct bh_err err;
	int r;
	json_t *cfg, *argv;

	/* Cmd replaces the image's; Entrypoint and the rest are inherited. */
	cfg =
	    merged("{\"Image\":\"b\",\"Cmd\":[\"echo\",\"x\"],\"Env\":[\"A=req\"]}", IMG, &err, &r);
	assert_int_equal(r, 0);
	argv = ctr_argv(cfg);
	assert_int_equal(json_array_size(argv), 3);
	assert_string_equal(json_string_value(json_array_get(argv, 0)), "/init");
	assert_string_equal(json_string_value(json_array_get(argv, 1)), "echo");
	json_decref(argv);
	assert_int_equal(json_array_size(json_object_get(cfg, "Env")), 2); /* PATH + A=req */
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Env"), 1)),
	                    "A=req");
	assert_string_equal(json_string_value(json_object_get(cfg, "WorkingDir")), "/w");
	assert_string_equal(json_string_value(json_object_get(cfg, "User")), "nobody");
	json_decref(cfg);

	/* A given Entrypoint drops the image's Cmd. */
	cfg = merged("{\"Image\":\"b\",\"Entrypoint\":[\"/bin/echo\"],\"User\":\"0\"}", IMG, &err,
	             &r);
	assert_int_equal(r, 0);
	argv = ctr_argv(cfg);
	assert_int_equal(json_array_size(argv), 1);
	assert_string_equal(json_string_value(json_array_get(argv, 0)), "/bin/echo");
	json_decref(argv);
	assert_string_equal(json_string_value(json_object_get(cfg, "User")), "0");
	json_decref(cfg);

	/* --entrypoint "" ([""]) resets the image's Entrypoint and Cmd. */
	cfg = merged("{\"Image\":\"b\",\"Entrypoint\":[\"\"]}", IMG, &err, &r);
	assert_int_equal(r, -1);
	assert_string_equal(err.msg, "no command specified");
	json_decref(cfg);

	/* Neither side has a command. */
	cfg = merged("{\"Image\":\"b\"}", "{\"Env\":[]}", &err, &r);
	assert_int_equal(r, -1);
	assert_int_equal(err.code, EINVAL);
	assert_string_equal(err.msg, "no command specified");
	json_decref(cfg);
}

static struct ctr *mk(const char *id, const char *name, struct ctr *next)
{
	struct ctr *c = ctr_alloc();

	bh_strlcpy(c->id, id, sizeof(c->id));
	bh_strlcpy(c->name, name, sizeof(c->name));
	c->next = next;
	return c;
}

#define ID_A "aaaa1111000000000000000000000000000000000000000000000000000000aa"
#define ID_B "aaaa2222000000000000000000000000000000000000000000000000000000bb"

static void test_lookup(void **state)
{
	struct ctr *list = mk(ID_A, "web", mk(ID_B, "db", NULL)), *c;
	struct bh_err err;

	assert_int_equal(ctr_lookup(list, ID_B, &c, &err), 0);
	assert_string_equal(c->name, "db");
	assert_int_equal(ctr_lookup(list, "/web", &c, &err), 0);
	assert_string_equal(c->id, ID_A);
	assert_int_equal(ctr_lookup(list, "db", &c, &err), 0);
	assert_int_equal(ctr_lookup(list, "aaaa1", &c, &err), 0);
	assert_string_equal(c->name, "web");
	assert_int_equal(ctr_lookup(list, "aaaa", &c, &err), -1);
	assert_int_equal(err.code, EINVAL);
	assert_non_null(strstr(err.msg, "multiple containers match prefix"));
	assert_int_equal(ctr_lookup(list, "nope", &c, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_string_equal(err.msg, "No such container: nope");
	assert_int_equal(ctr_lookup(list, "", &c, &err), -1);
	ctr_free(list->next);
	ctr_free(list);
}

static void test_status_text(void **state)
{
	struct ctr *c = ctr_alloc();
	char out[128];
	time_t now = 1700000000;

	ctr_status_text(c, now, out, sizeof(out));
	assert_string_equal(out, "Created");
	c->status = CTR_RUNNING;
	bh_rfc3339(c->started_at, now - 2, 0);
	ctr_status_text(c, now, out, sizeof(out));
	assert_string_equal(out, "Up 2 seconds");
	c->status = CTR_EXITED;
	c->exit_code = 0;
	bh_rfc3339(c->finished_at, now - 3, 500);
	ctr_status_text(c, now, out, sizeof(out));
	assert_string_equal(out, "Exited (0) 3 seconds ago");
	c->exit_code = 137;
	bh_rfc3339(c->finished_at, now - 3600, 0);
	ctr_status_text(c, now, out, sizeof(out));
	assert_string_equal(out, "Exited (137) About an hour ago");
	ctr_human_duration(0, out, sizeof(out));
	assert_string_equal(out, "Less than a second");
	ctr_human_duration(150, out, sizeof(out));
	assert_string_equal(out, "2 minutes");
	ctr_human_duration(3 * 86400, out, sizeof(out));
	assert_string_equal(out, "3 days");
	ctr_free(c);
}

static void test_record_round_trip(void **state)
{
	struct ctr *c = mk(ID_A, "web", NULL), *d = ctr_alloc();
	struct bh_err err;
	json_t *j, *hc;
	int r;

	c->config = merged("{\"Image\":\"busybox\",\"Cmd\":[\"true\"]}", IMG, &err, &r);
	assert_int_equal(create("{\"Image\":\"x\"}", &j, &hc, &err), 0);
	json_decref(j);
	c->host_config = hc;
	bh_strlcpy(c->image_id, "sha256:abc", sizeof(c->image_id));
	bh_strlcpy(c->image_ref, "busybox", sizeof(c->image_ref));
	bh_rfc3339_now(c->created);
	c->status = CTR_RUNNING;
	c->pid = 1234;
	c->exit_code = 3;
	c->restart_count = 2;
	c->manually_stopped = true;
	bh_strlcpy(c->error, "boom", sizeof(c->error));
	j = ctr_record_json(c);
	assert_int_equal(ctr_record_parse(j, d, &err), 0);
	json_decref(j);
	assert_string_equal(d->id, c->id);
	assert_string_equal(d->name, "web");
	assert_int_equal(d->status, CTR_RUNNING);
	assert_int_equal(d->pid, 1234);
	assert_int_equal(d->exit_code, 3);
	assert_int_equal(d->restart_count, 2);
	assert_true(d->manually_stopped);
	assert_string_equal(d->error, "boom");
	assert_true(json_equal(d->config, c->config));
	assert_true(json_equal(d->host_config, c->host_config));
	/* A truncated record is refused, not half-loaded. */
	j = parse("{\"ID\":\"" ID_A "\",\"Name\":\"x\"}");
	assert_int_equal(ctr_record_parse(j, d, &err), -1);
	json_decref(j);
	ctr_free(c);
	ctr_free(d);
}

static void test_filters_and_signals(void **state)
{
	struct ctr *c = mk(ID_A, "web", NULL);
	struct bh_err err;
	json_t *f;

	c->config = parse("{\"Labels\":{\"tier\":\"front\"}}");
	c->status = CTR_RUNNING;
	assert_int_equal(
	    ctr_filters_parse("{\"name\":[\"we\"],\"status\":[\"running\"]}", &f, &err), 0);
	assert_true(ctr_filters_match(f, c));
	json_decref(f);
	assert_int_equal(ctr_filters_parse("{\"label\":[\"tier=back\"]}", &f, &err), 0);
	assert_false(ctr_filters_match(f, c));
	json_decref(f);
	assert_int_equal(ctr_filters_parse("{\"id\":[\"aaaa1\"],\"label\":[\"tier\"]}", &f, &err),
	                 0);
	assert_true(ctr_filters_match(f, c));
	json_decref(f);
	assert_int_equal(ctr_filters_parse("{\"bogus\":[\"x\"]}", &f, &err), -1);
	assert_int_equal(ctr_filters_parse("[1]", &f, &err), -1);
	assert_int_equal(ctr_signal_parse("SIGKILL"), 9);
	assert_int_equal(ctr_signal_parse("KILL"), 9);
	assert_int_equal(ctr_signal_parse("15"), 15);
	assert_int_equal(ctr_signal_parse(NULL), 9);
	assert_int_equal(ctr_signal_parse("SIGNOPE"), -1);
	ctr_free(c);
}

/* /images/load bodies go to an unlinked temp file, bounded by the route. */
static int dummy(struct srv_req *req, struct bh_err *err)
{
	return 0;
}

static void test_body_spool(void **state)
{
	char dir[] = "/tmp/berth-spool-XXXXXX";
	struct srv_server srv;
	struct srv_route route = {SRV_POST, "/x", dummy, SRV_BODY_SPOOL | 10, SRV_ROLE_ENROLL};
	struct srv_req *req;
	struct bh_err err;
	char back[16] = "";
	cleanup_free char *tmp = NULL;

	assert_non_null(mkdtemp(dir));
	memset(&srv, 0, sizeof(srv));
	srv.cfg.data_root = dir;
	req = srv_req_new(&srv, NULL);
	req->route = &route;
	req->body.max = 10;
	assert_int_equal(srv_req_body_append(req, "hello", 5, &err), 0);
	assert_int_equal(srv_req_body_append(req, "world", 5, &err), 0);
	assert_true(req->body_fd >= 0);
	assert_int_equal(req->body.len, 0); /* nothing in memory */
	assert_int_equal(pread(req->body_fd, back, sizeof(back), 0), 10);
	assert_string_equal(back, "helloworld");
	assert_int_equal(srv_req_body_append(req, "!", 1, &err), -1);
	assert_int_equal(err.code, EFBIG);
	srv_req_unref(req);
	/* The temp file had no name: the dir holds only the empty tmp/. */
	tmp = bh_path_join(dir, "tmp");
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Regression: with sent bytes still before out_off, a chunk that did not
 * fit was cut after its header (a corrupt chunked body for logs -f). */
static void test_stream_chunk_never_cut(void **state)
{
	static char mib[1024 * 1024];
	struct srv_server srv;
	struct srv_req *req;
	struct bh_err err;
	int writes = 0;

	memset(&srv, 0, sizeof(srv));
	memset(mib, 'x', sizeof(mib));
	req = srv_req_new(&srv, NULL);
	srv_stream_begin(req, 200, "text/plain");
	while (srv_stream_write(req, mib, sizeof(mib), &err) == 0)
		writes++;
	assert_int_equal(err.code, EAGAIN);
	assert_true(writes >= 3);
	/* The writer sent all but the last 100 bytes, without compacting. */
	req->out_off = req->out.len - 100;
	assert_int_equal(srv_stream_write(req, mib, sizeof(mib), &err), 0);
	assert_int_equal(srv_stream_queued(req), 100 + strlen("100000\r\n") + sizeof(mib) + 2);
	assert_memory_equal(req->out.data + req->out_off + 100, "100000\r\nxxx", 11);
	assert_memory_equal(req->out.data + req->out.len - 3, "x\r\n", 3);
	req->closed = true;
	srv_req_unref(req);
}

static void test_monitor_path_option(void **state)
{
	struct srv_config cfg;
	struct bh_err err;
	char *argv[] = {"--monitor-path", "/opt/berth/berth-monitor"};

	srv_config_init(&cfg);
	assert_int_equal(srv_config_parse_args(&cfg, 2, argv, &err), 0);
	assert_string_equal(cfg.monitor_path, "/opt/berth/berth-monitor");
	srv_config_free(&cfg);
	srv_config_init(&cfg);
	assert_int_equal(srv_config_parse_json(&cfg, "{\"monitor-path\":\"/m\"}", "c.json", &err),
	                 0);
	assert_string_equal(cfg.monitor_path, "/m");
	assert_int_equal(srv_config_parse_json(&cfg, "{\"monitor-path\":1}", "c.json", &err), -1);
	srv_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_create_ok),
	    cmocka_unit_test(test_create_bad),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_status_text),
	    cmocka_unit_test(test_record_round_trip),
	    cmocka_unit_test(test_filters_and_signals),
	    cmocka_unit_test(test_body_spool),
	    cmocka_unit_test(test_stream_chunk_never_cut),
	    cmocka_unit_test(test_monitor_path_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
