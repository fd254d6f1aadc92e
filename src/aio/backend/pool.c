/* The pool backend: worker threads sharing one queue, no per-fd serialization. */
#include "aio/aio.h"

static void pool_run(struct kq_work *w)
{
	struct kq_job *j = kq_container_of(w, struct kq_job, work);
	ssize_t res;
	int err;
	kq_job_io(j, 0, &res, &err);
	kq_job_finish(j, res, err);
}

void kq_pool_submit(struct kq_job *j)
{
	j->where = KQ_W_RUNQ;
	j->work.fn = pool_run;
	kq_tpool_push(&kq_aio.workers, &j->work);
}

int kq_pool_cancel(struct kq_job *j)
{
	return kq_tpool_remove(&kq_aio.workers, &j->work);
}
