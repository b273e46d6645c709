/* A small pthread worker pool.  Work that blocks (the runtime, image loads)
 * runs here so the one lws thread never waits; finished jobs queue up and
 * their done() runs on the thread that drains (the lws thread), woken by
 * wake() — lws_cancel_service() in berthd.
 *
 * The pool starts with its base number of threads and grows, up to
 * SRV_POOL_MAX_THREADS, whenever a job arrives while no thread is idle: some
 * jobs wait for a long time (a stop waits up to its timeout for the exit),
 * and a few of those must not starve quick ones like /version. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/server-internal.h"

struct srv_job {
	struct srv_job *next;
	srv_work_fn work;
	srv_pool_done_fn done;
	void *arg;
	int rc;
	struct bh_err err;
};

struct job_queue {
	struct srv_job *head;
	struct srv_job *tail;
};

struct srv_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_queue todo;     /* guarded by lock */
	struct job_queue finished; /* guarded by lock */
	bool quit;
	int nthreads; /* guarded by lock */
	int idle;     /* threads waiting for work; guarded by lock */
	int queued;   /* jobs in todo; guarded by lock */
	pthread_t threads[SRV_POOL_MAX_THREADS];
	void (*wake)(void *);
	void *wake_arg;
};

static void queue_push(struct job_queue *q, struct srv_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct srv_job *queue_pop(struct job_queue *q)
{
	struct srv_job *j = q->head;

	if (j) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return j;
}

static void job_finished(struct srv_pool *p, struct srv_job *j)
{
	/* wake() under the lock, so srv_pool_set_wake(NULL) is a barrier: after
	 * it returns no worker can touch what wake_arg pointed at. */
	pthread_mutex_lock(&p->lock);
	queue_push(&p->finished, j);
	if (p->wake)
		p->wake(p->wake_arg);
	pthread_mutex_unlock(&p->lock);
}

void srv_pool_set_wake(struct srv_pool *p, void (*wake)(void *), void *wake_arg)
{
	pthread_mutex_lock(&p->lock);
	p->wake = wake;
	p->wake_arg = wake_arg;
	pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg)
{
	struct srv_pool *p = arg;
	struct srv_job *j;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		p->idle++;
		while (p->todo.head == NULL && !p->quit)
			pthread_cond_wait(&p->cond, &p->lock);
		p->idle--;
		j = queue_pop(&p->todo);
		if (j)
			p->queued--;
		pthread_mutex_unlock(&p->lock);
		if (j == NULL)
			return NULL; /* quit and nothing left */
		bh_err_clear(&j->err);
		j->rc = j->work(j->arg, &j->err);
		job_finished(p, j);
	}
}

/* Under lock: one more thread, if the cap allows. */
static void pool_grow(struct srv_pool *p)
{
	if (p->nthreads >= SRV_POOL_MAX_THREADS)
		return;
	if (pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) == 0)
		p->nthreads++;
}

struct srv_pool *srv_pool_new(int nthreads, void (*wake)(void *), void *wake_arg)
{
	struct srv_pool *p = bh_calloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->wake = wake;
	p->wake_arg = wake_arg;
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < nthreads; i++)
		pool_grow(p);
	pthread_mutex_unlock(&p->lock);
	if (p->nthreads == 0) {
		bh_error("worker pool: cannot create threads");
		abort(); /* like an allocation failure: nothing sensible to do */
	}
	return p;
}

void srv_pool_submit(struct srv_pool *p, srv_work_fn work, srv_pool_done_fn done, void *arg)
{
	struct srv_job *j = bh_calloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	if (work == NULL) {
		job_finished(p, j);
		return;
	}
	pthread_mutex_lock(&p->lock);
	queue_push(&p->todo, j);
	if (++p->queued > p->idle)
		pool_grow(p);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

size_t srv_pool_drain(struct srv_pool *p)
{
	struct job_queue q;
	struct srv_job *j;
	size_t n = 0;

	/* Take the whole list at once: done() may submit more jobs. */
	pthread_mutex_lock(&p->lock);
	q = p->finished;
	memset(&p->finished, 0, sizeof(p->finished));
	pthread_mutex_unlock(&p->lock);
	while ((j = queue_pop(&q)) != NULL) {
		if (j->done)
			j->done(j->arg, j->rc, &j->err);
		free(j);
		n++;
	}
	return n;
}

void srv_pool_free(struct srv_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++) /* no more growth: quit is set */
		pthread_join(p->threads[i], NULL);
	while (srv_pool_drain(p) > 0)
		;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
