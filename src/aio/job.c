/* A job's life: allocation from slabs kept on a free list, its lifecycle's
 * checked moves, dispatch to a backend, the aiocb <-> job binding, and
 * reaping, which a signal handler may do. */
#include "aio/aio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kq/post.h"

#define SLAB 128

#define TO(w) (1u << (w))
/* From each state, the states a job may move to. A job leaves the fd's
 * queues (ORDER, BARRIER) for a backend; a backend that cannot go on hands
 * it to the pool (KERNEL, POLL or RUNNING to QUEUED); a stream job goes back
 * to POLL when its fd would block; what can be taken back (ORDER, BARRIER,
 * POLL, QUEUED) may be cancelled to DONE. */
static const unsigned moves[KQ_W_COUNT] = {
    [KQ_W_FREE] = TO(KQ_W_FREE) | TO(KQ_W_ORDER) | TO(KQ_W_BARRIER) | TO(KQ_W_POLL) |
		  TO(KQ_W_QUEUED) | TO(KQ_W_KERNEL) | TO(KQ_W_RUNNING),
    [KQ_W_ORDER] =
	TO(KQ_W_POLL) | TO(KQ_W_QUEUED) | TO(KQ_W_KERNEL) | TO(KQ_W_RUNNING) | TO(KQ_W_DONE),
    [KQ_W_BARRIER] = TO(KQ_W_QUEUED) | TO(KQ_W_KERNEL) | TO(KQ_W_DONE),
    [KQ_W_POLL] = TO(KQ_W_RUNNING) | TO(KQ_W_QUEUED) | TO(KQ_W_DONE),
    [KQ_W_QUEUED] = TO(KQ_W_DONE),
    [KQ_W_KERNEL] = TO(KQ_W_QUEUED) | TO(KQ_W_DONE),
    [KQ_W_RUNNING] = TO(KQ_W_POLL) | TO(KQ_W_QUEUED) | TO(KQ_W_DONE),
    [KQ_W_DONE] = TO(KQ_W_FREE),
};

/* A move the table refuses would end a job twice, or never: stop here,
 * where it is found, not at the second ending. */
void kq_job_move(struct kq_job *j, enum kq_where to)
{
	if (!(moves[j->where] & TO(to))) {
		char m[96];
		int n = snprintf(m, sizeof m, "kqaio: job %p moved from state %d to %d\n",
				 (void *)j, j->where, (int)to);
		ssize_t w = write(2, m, (size_t)n);
		(void)w;
		abort();
	}
	j->where = (uint8_t)to;
}

void kq_dispatch(struct kq_job *j)
{
	for (int i = KQ_BE_STREAM; i < KQ_BE_N; i++) {
		const struct kq_backend *be = kq_aio.be[i];
		if (be && be->queue(j) == 0)
			return; /* it set j->be: it may have passed j on */
	}
}

struct kq_job *kq_job_alloc(void)
{
	kq_job_drain();
	if (kq_aio.njobs >= kq_config.max_jobs)
		return NULL;
	if (!kq_aio.free_jobs) {
		struct kq_job *s = calloc(SLAB, sizeof *s);
		if (!s)
			return NULL;
		for (int i = 0; i < SLAB; i++) {
			s[i].next_free = kq_aio.free_jobs;
			kq_aio.free_jobs = &s[i];
		}
	}
	struct kq_job *j = kq_aio.free_jobs;
	kq_aio.free_jobs = j->next_free;
	kq_aio.njobs++;
	j->gen++;
	kq_list_init(&j->work.link);
	kq_list_init(&j->qlink);
	kq_list_init(&j->wlink);
	kq_list_init(&j->alink);
	j->list = NULL;
	j->lio = NULL;
	j->kn = NULL;
	j->watcher = NULL;
	j->fdst = NULL;
	j->be = NULL;
	j->flags = 0;
	j->done = 0;
	return j;
}

/* Lock held. Reaping (or a submission undone) ends the job's kevent and its
 * hold on the list it came in. */
void kq_job_free(struct kq_job *j)
{
	if (j->kn) {
		kq_post_detach(j->kn);
		j->kn = NULL;
	}
	if (j->lio) {
		if (j->where == KQ_W_DONE)
			kq_list_entry_reaped(j->lio);
		kq_list_put(j->lio);
		j->lio = NULL;
	}
	free(j->iov_heap);
	j->iov_heap = NULL;
	kq_job_move(j, KQ_W_FREE);
	j->cb = NULL;
	j->next_free = kq_aio.free_jobs;
	kq_aio.free_jobs = j;
	kq_aio.njobs--;
}

struct kq_job *kq_job_of(struct aiocb *cb)
{
	struct kq_cbpriv *p = kq_priv(cb);
	if (__atomic_load_n(&p->magic, __ATOMIC_ACQUIRE) != KQ_CB_JOB ||
	    p->epoch != __atomic_load_n(&kq_epoch, __ATOMIC_ACQUIRE))
		return NULL;
	struct kq_job *j = p->job;
	if (!j || j->cb != cb || j->gen != p->gen || j->where == KQ_W_FREE)
		return NULL;
	return j;
}

struct kq_job *kq_job_claim(struct aiocb *cb)
{
	struct kq_cbpriv *p = kq_priv(cb);
	uint32_t m = KQ_CB_JOB;
	if (__atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE) == EINPROGRESS ||
	    !__atomic_compare_exchange_n(&p->magic, &m, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return NULL;
	return p->job; /* bound before the magic was set, so seen after the exchange */
}

void kq_job_reap(struct kq_job *j)
{
	kq_list_del(&j->qlink);
	kq_job_free(j);
}

/* A claimed job waits here for whoever next holds the lock to free it: a
 * stack pushed with compare-and-swap (a handler may push over an
 * interrupted push) and emptied whole, so no entry is ever seen twice. */
void kq_job_reaped(struct kq_job *j)
{
	if (j->kn)
		kq_post_hide(j->kn);
	struct kq_job *top = __atomic_load_n(&kq_aio.reaped, __ATOMIC_RELAXED);
	do
		j->next_free = top;
	while (!__atomic_compare_exchange_n(&kq_aio.reaped, &top, j, 1, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

void kq_job_drain(void)
{
	if (!__atomic_load_n(&kq_aio.reaped, __ATOMIC_RELAXED))
		return;
	struct kq_job *j = __atomic_exchange_n(&kq_aio.reaped, NULL, __ATOMIC_ACQUIRE);
	while (j) {
		struct kq_job *next = j->next_free;
		kq_job_reap(j);
		j = next;
	}
}
