/* The pool backend: worker threads sharing one queue, no per-fd serialization. */
#include "aio/backend/backend.h"

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
	kq_job_move(j, KQ_W_QUEUED);
	j->be = &kq_be_pool;
	j->work.fn = pool_run;
	kq_tpool_push(&kq_aio.workers, &j->work);
}

static int queue(struct kq_job *j)
{
	kq_pool_submit(j);
	return 0;
}

static int cancel(struct kq_job *j)
{
	return kq_tpool_remove(&kq_aio.workers, &j->work);
}

const struct kq_backend kq_be_pool = {
    .name = "pool",
    .workers = 1,
    .queue = queue,
    .cancel = cancel,
};
