/* Reading results: aio_error (lock-free), aio_return and aio_waitcomplete (reaping). */
#include "aio/aio.h"

#include <errno.h>

#include "common/futex.h"

KQ_API int aio_error(const struct aiocb *cb)
{
	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	struct kq_cbpriv *p = kq_priv((struct aiocb *)cb);
	uint32_t m = __atomic_load_n(&p->magic, __ATOMIC_ACQUIRE);
	if ((m != KQ_CB_JOB && m != KQ_CB_FAILED) ||
	    __atomic_load_n(&p->epoch, __ATOMIC_RELAXED) !=
		__atomic_load_n(&kq_epoch, __ATOMIC_RELAXED)) {
		errno = EINVAL;
		return -1;
	}
	int e = __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE);
	if (e == EINPROGRESS) {
		/* Lazy submissions and quiet completions wait no longer than
		 * their owner's next look. */
		kq_uring_flush();
		kq_uring_collect();
		e = __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE);
	}
	return e;
}

/* Lock held: take a DONE job's result and free it. */
static ssize_t reap(struct kq_job *j, int *err)
{
	ssize_t res = j->cb->__return_value;
	*err = j->cb->__error_code;
	kq_job_reap(j);
	return res;
}

KQ_API ssize_t aio_return(struct aiocb *cb)
{
	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	if (__atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE) == EINPROGRESS)
		kq_uring_collect(); /* a quiet job may be done in the CQ */
	pthread_mutex_lock(&kq_aio.lock);
	struct kq_job *j = kq_job_of(cb);
	int err = EINVAL;
	ssize_t res = -1;
	if (j && j->where == KQ_W_DONE)
		res = reap(j, &err);
	pthread_mutex_unlock(&kq_aio.lock);
	if (err) {
		errno = err;
		return -1;
	}
	return res;
}

struct take {
	struct aiocb *cb;
	ssize_t res;
	int err;
};

/* Takes the oldest finished job, if there is one. */
static int take_oldest(void *arg)
{
	struct take *t = arg;
	pthread_mutex_lock(&kq_aio.lock);
	struct kq_link *l = kq_list_first(&kq_aio.done);
	if (l) {
		struct kq_job *j = kq_container_of(l, struct kq_job, qlink);
		t->cb = j->cb;
		t->res = reap(j, &t->err);
	}
	pthread_mutex_unlock(&kq_aio.lock);
	return l != NULL;
}

KQ_API ssize_t aio_waitcomplete(struct aiocb **cbp, struct timespec *timeout)
{
	if (!cbp) {
		errno = EINVAL;
		return -1;
	}
	*cbp = NULL;
	struct timespec dl, *dlp = NULL;
	int poll = timeout && !timeout->tv_sec && !timeout->tv_nsec;
	if (timeout && !poll) {
		if (kq_deadline(timeout, &dl)) {
			errno = EINVAL;
			return -1;
		}
		dlp = &dl;
	}
	kq_aio_init();
	struct take t = {0};
	int err = kq_wait_until(take_oldest, &t, dlp, poll);
	if (!err) {
		*cbp = t.cb;
		err = t.err;
	}
	if (err) {
		errno = err;
		return -1;
	}
	return t.res;
}
