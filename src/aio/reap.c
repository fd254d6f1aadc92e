/* Reading results without a lock, so a signal handler may: aio_error, and
 * aio_return, which reaps; aio_waitcomplete reaps the oldest. */
#include "aio/aio.h"

#include <errno.h>

#include "common/futex.h"

/* The aiocb names a request of this process (done or not), or one whose
 * submission failed. */
static int named(const struct aiocb *cb)
{
	struct kq_cbpriv *p = kq_priv((struct aiocb *)cb);
	uint32_t m = __atomic_load_n(&p->magic, __ATOMIC_ACQUIRE);
	return (m == KQ_CB_JOB || m == KQ_CB_FAILED) &&
	       __atomic_load_n(&p->epoch, __ATOMIC_RELAXED) ==
		   __atomic_load_n(&kq_epoch, __ATOMIC_RELAXED);
}

int kq_error_of(const struct aiocb *cb)
{
	if (!cb || !named(cb))
		return -1;
	return __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE);
}

KQ_API int aio_error(const struct aiocb *cb)
{
	KQ_ENTER(nested);
	int e = kq_error_of(cb);
	if (e < 0) {
		errno = EINVAL;
		return -1;
	}
	if (e == EINPROGRESS && !nested) {
		/* Lazy submissions and quiet completions wait no longer than
		 * their owner's next look. */
		KQ_BE_EACH(flush);
		KQ_BE_EACH(collect);
		e = __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE);
	} else if (e == EINPROGRESS) {
		KQ_BE_EACH(nudge); /* a handler that polls */
	}
	return e;
}

KQ_API ssize_t aio_return(struct aiocb *cb)
{
	KQ_ENTER(nested);
	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	if (!nested && __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE) == EINPROGRESS)
		KQ_BE_EACH(collect); /* a quiet job may be done in the CQ */
	struct kq_job *j = named(cb) ? kq_job_claim(cb) : NULL;
	if (!j) {
		errno = EINVAL;
		return -1;
	}
	ssize_t res = cb->__return_value;
	int err = cb->__error_code;
	/* Freed now (its events go with it), unless this is a handler that may
	 * have interrupted a lock holder on this thread: then by the next
	 * holder, and until then its EVFILT_AIO event is hidden. */
	kq_job_reaped(j);
	if (!nested) {
		pthread_mutex_lock(&kq_aio.lock);
		kq_job_drain();
		pthread_mutex_unlock(&kq_aio.lock);
	}
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
	int found = 0;
	pthread_mutex_lock(&kq_aio.lock);
	kq_job_drain();
	for (struct kq_link *l = kq_aio.done.next; l != &kq_aio.done && !found; l = l->next) {
		struct kq_job *j = kq_container_of(l, struct kq_job, qlink);
		if (kq_job_of(j->cb) != j || kq_job_claim(j->cb) != j)
			continue; /* a handler's aio_return has it */
		t->cb = j->cb;
		t->res = j->cb->__return_value;
		t->err = j->cb->__error_code;
		kq_job_reap(j);
		found = 1;
	}
	pthread_mutex_unlock(&kq_aio.lock);
	return found;
}

KQ_API ssize_t aio_waitcomplete(struct aiocb **cbp, struct timespec *timeout)
{
	KQ_ENTER(nested);
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
	struct kq_wait w = {take_oldest, NULL, &t};
	int err = kq_wait_until(&w, dlp, poll, 0);
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
