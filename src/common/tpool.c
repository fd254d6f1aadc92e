/* A thread pool: one FIFO of work items, threads started on demand, idle ones exit. */
#include "common/tpool.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

static void cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

void kq_tpool_init(struct kq_tpool *p, const char *name, int max, int idle_ms, size_t stack_size)
{
	p->name = name;
	pthread_mutex_init(&p->lock, NULL);
	cond_init(&p->cond);
	kq_list_init(&p->queue);
	p->queued = p->nthreads = p->nidle = 0;
	p->max = max;
	p->idle_ms = idle_ms;
	p->stack_size = stack_size;
}

int kq_thread_start(const pthread_attr_t *attr, size_t stack_size, void *(*fn)(void *), void *arg)
{
	/* Signals belong to the application's threads, never to ours. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int err;
	if (attr) {
		err = pthread_create(&t, attr, fn, arg);
	} else {
		pthread_attr_t own;
		pthread_attr_init(&own);
		pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
		if (stack_size)
			pthread_attr_setstacksize(&own, stack_size);
		err = pthread_create(&t, &own, fn, arg);
		if (err == EINVAL && stack_size) {
			/* The program's static TLS does not fit a small stack. */
			pthread_attr_destroy(&own);
			pthread_attr_init(&own);
			pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
			err = pthread_create(&t, &own, fn, arg);
		}
		pthread_attr_destroy(&own);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static void *worker(void *arg)
{
	struct kq_tpool *p = arg;
	pthread_setname_np(pthread_self(), p->name);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct kq_link *l = kq_list_first(&p->queue);
		if (l) {
			kq_list_del(l);
			p->queued--;
			pthread_mutex_unlock(&p->lock);
			struct kq_work *w = kq_container_of(l, struct kq_work, link);
			w->fn(w);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += p->idle_ms / 1000;
		dl.tv_nsec += (long)(p->idle_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		p->nidle++;
		int r = pthread_cond_timedwait(&p->cond, &p->lock, &dl);
		p->nidle--;
		if ((r == ETIMEDOUT && kq_list_empty(&p->queue)) || p->nthreads > p->max)
			break;
	}
	p->nthreads--;
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int kq_tpool_push(struct kq_tpool *p, struct kq_work *w)
{
	pthread_mutex_lock(&p->lock);
	kq_list_add_tail(&p->queue, &w->link);
	p->queued++;
	if (p->nidle)
		pthread_cond_signal(&p->cond);
	int err = 0;
	if (p->queued > p->nidle && p->nthreads < p->max) {
		/* On failure the item stays queued for the running threads, or for
		 * the next push to try again; it is never dropped. */
		err = kq_thread_start(NULL, p->stack_size, worker, p);
		if (!err)
			p->nthreads++;
		else if (p->nthreads)
			err = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return err ? EAGAIN : 0;
}

int kq_tpool_ensure(struct kq_tpool *p)
{
	pthread_mutex_lock(&p->lock);
	int err = 0;
	if (!p->nthreads && !(err = kq_thread_start(NULL, p->stack_size, worker, p)))
		p->nthreads++;
	pthread_mutex_unlock(&p->lock);
	return err ? EAGAIN : 0;
}

bool kq_tpool_remove(struct kq_tpool *p, struct kq_work *w)
{
	pthread_mutex_lock(&p->lock);
	bool queued = w->link.next != &w->link;
	if (queued) {
		kq_list_del(&w->link);
		p->queued--;
	}
	pthread_mutex_unlock(&p->lock);
	return queued;
}

void kq_tpool_tune(struct kq_tpool *p, int max, int idle_ms)
{
	pthread_mutex_lock(&p->lock);
	if (max > 0)
		p->max = max;
	if (idle_ms > 0)
		p->idle_ms = idle_ms;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void kq_tpool_fork_prepare(struct kq_tpool *p)
{
	pthread_mutex_lock(&p->lock);
}

void kq_tpool_fork_parent(struct kq_tpool *p)
{
	pthread_mutex_unlock(&p->lock);
}

void kq_tpool_fork_child(struct kq_tpool *p)
{
	pthread_mutex_unlock(&p->lock);
	kq_tpool_init(p, p->name, p->max, p->idle_ms, p->stack_size);
}
