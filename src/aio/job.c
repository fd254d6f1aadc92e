/* Job allocation from slabs kept on a free list, the aiocb <-> job binding,
 * and reaping, which a signal handler may do. */
#include "aio/aio.h"

#include <errno.h>
#include <stdlib.h>

#include "kq/post.h"

#define SLAB 128

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
	j->fdst = NULL;
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
	j->where = KQ_W_FREE;
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
