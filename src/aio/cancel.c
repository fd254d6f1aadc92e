/* aio_cancel: take back jobs that have not started; they still end and notify. */
#include "aio/aio.h"

#include <errno.h>
#include <fcntl.h>

/* Lock held. 1 if j was taken back before any byte moved. */
static int take_back(struct kq_job *j)
{
	switch (j->where) {
	case KQ_W_QUEUED:
		return j->be->cancel && j->be->cancel(j);
	case KQ_W_ORDER:
	case KQ_W_BARRIER:
		return 1;
	case KQ_W_POLL:
		return j->done == 0; /* a stream write that has begun must finish */
	default:
		return 0;
	}
}

KQ_API int aio_cancel(int fd, struct aiocb *cb)
{
	KQ_ENTER(nested);
	if (fcntl(fd, F_GETFD) < 0) {
		errno = EBADF;
		return -1;
	}
	if (cb && cb->aio_fildes != fd) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	KQ_BE_EACH(collect); /* a job done in the CQ is AIO_ALLDONE */
	struct kq_batch b;
	kq_batch_init(&b);
	int result = AIO_ALLDONE;
	/* Without cb: the jobs on the file fd names now, not one it named before. */
	struct kq_fdinfo fi = {.fd = -1, .fl = -1};
	int known = !cb && kq_fd_describe(fd, &fi, 0) == 0;
	pthread_mutex_lock(&kq_aio.lock);
	if (cb) {
		struct kq_job *j = kq_job_of(cb);
		if (j && j->where != KQ_W_DONE) {
			result = AIO_NOTCANCELED;
			if (take_back(j)) {
				kq_complete_locked(j, -1, ECANCELED, &b);
				result = AIO_CANCELED;
			}
		}
		pthread_mutex_unlock(&kq_aio.lock);
		kq_batch_flush(&b);
		return result;
	}
	int notcanceled = 0;
	struct kq_link *l = kq_aio.active.next;
	struct kq_fd *f = known ? kq_fd_lookup(&fi) : NULL;
	while (f && l != &kq_aio.active) {
		struct kq_job *j = kq_container_of(l, struct kq_job, alink);
		l = l->next;
		if (j->fdst != f)
			continue;
		if (!take_back(j)) {
			notcanceled = 1;
			continue;
		}
		/* Completing j may dispatch its successors, so rescan after each. */
		kq_complete_locked(j, -1, ECANCELED, &b);
		result = AIO_CANCELED;
		pthread_mutex_unlock(&kq_aio.lock);
		kq_batch_flush(&b);
		pthread_mutex_lock(&kq_aio.lock);
		l = kq_aio.active.next;
		f = kq_fd_lookup(&fi); /* gone with its last job, or still there */
		notcanceled = 0;
	}
	pthread_mutex_unlock(&kq_aio.lock);
	if (notcanceled)
		return AIO_NOTCANCELED;
	return result;
}
