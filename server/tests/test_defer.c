/* srv_defer round trip: work on a pool thread, done() back on the draining
 * thread, the request kept alive across a client that leaves. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server-internal.h"

static int wake_pipe[2];
static struct srv_server srv;

static void wake(void *arg)
{
	char c = 1;

	assert_int_equal(write(wake_pipe[1], &c, 1), 1);
}

/* Blocks until a job finished (the wake), then runs its done(). */
static void wait_and_drain(void)
{
	char c;

	assert_int_equal(read(wake_pipe[0], &c, 1), 1);
	assert_int_equal(srv_pool_drain(srv.pool), 1);
}

static int setup(void **state)
{
	assert_int_equal(pipe(wake_pipe), 0);
	memset(&srv, 0, sizeof(srv));
	srv.pool = srv_pool_new(2, wake, NULL);
	srv.cfg.data_root = bh_strdup("/var/lib/berth-test");
	bh_strlcpy(srv.engine_id, "test-engine", sizeof(srv.engine_id));
	return 0;
}

static int teardown(void **state)
{
	srv_pool_free(srv.pool);
	srv_config_free(&srv.cfg);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	return 0;
}

struct job {
	pthread_t worker;
	int done_calls;
	bool saw_closed;
};

static int work_ok(void *arg, struct bh_err *err)
{
	struct job *j = arg;

	j->worker = pthread_self();
	return 0;
}

static int work_fail(void *arg, struct bh_err *err)
{
	return bh_err_set(err, ENOENT, "no such container: x");
}

static void done_reply(struct srv_req *req, void *arg, int rc, const struct bh_err *err)
{
	struct job *j = arg;

	j->done_calls++;
	j->saw_closed = req->closed;
	if (rc < 0)
		srv_reply_error(req, err);
	else
		srv_reply_text(req, 200, "text/plain", "done", 4);
}

static void test_round_trip(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);
	struct job j = {0};

	srv_defer(req, work_ok, done_reply, &j);
	assert_int_equal(req->refs, 2);
	wait_and_drain();
	assert_int_equal(j.done_calls, 1);
	assert_false(pthread_equal(j.worker, pthread_self()));
	assert_int_equal(req->refs, 1);
	assert_int_equal(req->status, 200);
	assert_string_equal(req->out.data, "done");
	srv_req_unref(req);
}

static void test_error_is_mapped(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);
	struct job j = {0};

	srv_defer(req, work_fail, done_reply, &j);
	wait_and_drain();
	assert_int_equal(req->status, 404);
	assert_string_equal(req->out.data, "{\"message\":\"no such container: x\"}\n");
	srv_req_unref(req);
}

static void test_client_left(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);
	struct job j = {0};

	srv_defer(req, work_ok, done_reply, &j);
	srv_req_detach(req); /* the connection closed; the job still holds req */
	wait_and_drain();    /* done() runs and the last reference goes (ASan checks) */
	assert_int_equal(j.done_calls, 1);
	assert_true(j.saw_closed);
}

static void call_on_loop(struct srv_req *req, void *arg)
{
	*(pthread_t *)arg = pthread_self();
	srv_req_unref(req);
}

static void *producer(void *arg)
{
	struct srv_req *req = arg;
	static pthread_t ran_on;

	srv_call_on_loop(req, call_on_loop, &ran_on);
	return &ran_on;
}

static void test_call_on_loop(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);
	pthread_t t;
	void *ran_on;

	srv_req_ref(req);
	assert_int_equal(pthread_create(&t, NULL, producer, req), 0);
	pthread_join(t, &ran_on);
	wait_and_drain();
	assert_true(pthread_equal(*(pthread_t *)ran_on, pthread_self()));
	assert_int_equal(req->refs, 1);
	srv_req_unref(req);
}

static void test_version_handler_deferred(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);

	req->method = SRV_GET;
	bh_strlcpy(req->path, "/v1.43/version", sizeof(req->path));
	srv_dispatch(req);
	assert_false(req->responded); /* the answer comes from the worker */
	wait_and_drain();
	assert_int_equal(req->status, 200);
	assert_non_null(strstr(req->out.data, "\"ApiVersion\":\"" BERTH_API_VERSION "\""));
	assert_non_null(strstr(req->out.data, "\"Components\":[{\"Name\":\"Engine\""));
	srv_req_unref(req);
}

static void test_info_handler_deferred(void **state)
{
	struct srv_req *req = srv_req_new(&srv, NULL);

	req->method = SRV_GET;
	bh_strlcpy(req->path, "/info", sizeof(req->path));
	req->id.is_unix = true;
	srv_dispatch(req);
	wait_and_drain();
	assert_int_equal(req->status, 200);
	assert_non_null(strstr(req->out.data, "\"DockerRootDir\":\"/var/lib/berth-test\""));
	assert_non_null(strstr(req->out.data, "\"Identity\":{\"Type\":\"unix\",\"UID\":0}"));
	assert_non_null(strstr(req->out.data, "\"ID\":\"test-engine\""));
	srv_req_unref(req);
}

/* Jobs that block (a stop waiting for an exit) must not starve the others:
 * the pool grows while none of its threads is idle.  Every job waits until
 * all of them run at the same time, so with a fixed pool of 2 this would
 * never finish. */
#define BLOCKERS 6
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_in;

static int work_gate(void *arg, struct bh_err *err)
{
	pthread_mutex_lock(&gate_mu);
	gate_in++;
	pthread_cond_broadcast(&gate_cv);
	while (gate_in < BLOCKERS)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return 0;
}

static void done_count(void *arg, int rc, const struct bh_err *err)
{
	(*(int *)arg)++;
}

static void test_pool_grows_for_blocked_jobs(void **state)
{
	int finished = 0;

	for (int i = 0; i < BLOCKERS; i++)
		srv_pool_submit(srv.pool, work_gate, done_count, &finished);
	for (int woken = 0; woken < BLOCKERS; woken++) { /* one wake per job */
		char c;
		assert_int_equal(read(wake_pipe[0], &c, 1), 1);
		srv_pool_drain(srv.pool);
	}
	assert_int_equal(finished, BLOCKERS);
	assert_int_equal(gate_in, BLOCKERS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_pool_grows_for_blocked_jobs),
	    cmocka_unit_test(test_error_is_mapped),
	    cmocka_unit_test(test_client_left),
	    cmocka_unit_test(test_call_on_loop),
	    cmocka_unit_test(test_version_handler_deferred),
	    cmocka_unit_test(test_info_handler_deferred),
	};
	bh_log_set_level(BH_LOG_ERROR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
