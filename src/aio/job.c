/* Job allocation from slabs kept on a free list, and the aiocb <-> job binding. */
#include "aio/aio.h"

#include <stdlib.h>

#include "kq/post.h"

#define SLAB 128

struct kq_job *kq_job_alloc(void)
{
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

void kq_job_reap(struct kq_job *j)
{
	__atomic_store_n(&kq_priv(j->cb)->magic, 0, __ATOMIC_RELEASE);
	kq_list_del(&j->qlink);
	kq_job_free(j);
}
