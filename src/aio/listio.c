/* lio_listio: queue a list's entries as one submission, then wait for the
 * list (LIO_WAIT) or let it notify once (LIO_NOWAIT); the counting is lio.c's. */
#include "aio/aio.h"

#include <errno.h>
#include <sys/event.h>

#include "common/futex.h"
#include "kq/post.h"

KQ_API int lio_listio(int mode, struct aiocb *const list[], int nent, struct sigevent *sig)
{
	KQ_ENTER(nested);
	if ((mode != LIO_WAIT && mode != LIO_NOWAIT) || nent < 0 || (nent > 0 && !list)) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	/* A list's kevent flags are ignored (doc/behaviour.md); its kqueue is checked below. */
	if (nent > kq_config.listio_max ||
	    (mode == LIO_NOWAIT && sig && sig->sigev_notify != SIGEV_KEVENT &&
	     kq_sigevent_check(sig))) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&kq_aio.lock);
	struct kq_list *l = kq_list_alloc();
	pthread_mutex_unlock(&kq_aio.lock);
	if (!l) {
		errno = EAGAIN;
		return -1;
	}
	l->wait = mode == LIO_WAIT;
	if (mode == LIO_NOWAIT && sig)
		l->sev = *sig;
	if (mode == LIO_NOWAIT && sig && sig->sigev_notify == SIGEV_KEVENT) {
		int err;
		l->kn = kq_post_attach(sig->sigev_notify_kqueue, EVFILT_LIO, (uintptr_t)list,
				       sig->sigev_value.sival_ptr, 0, &err);
		if (!l->kn) {
			pthread_mutex_lock(&kq_aio.lock);
			kq_list_put(l);
			pthread_mutex_unlock(&kq_aio.lock);
			errno = err;
			return -1;
		}
	}
	int eagain = 0, other = 0;
	struct kq_fdinfo fi = {.fd = -1, .fl = -1};
	KQ_BE_EACH(hold, 1); /* the whole list goes to the kernel in one submission */
	for (int i = 0; i < nent; i++) {
		struct aiocb *cb = list[i];
		if (!cb)
			continue;
		int sub = kq_lio_sub(cb->aio_lio_opcode);
		if (sub == -2)
			continue;
		int err = EINVAL;
		if (sub == -1)
			kq_record_failure(cb, EINVAL);
		else if (kq_submit(cb, sub, l, &fi, &err) == 0)
			continue;
		if (err == EAGAIN)
			eagain = 1;
		else
			other = 1;
	}
	/* Let go last to first: the inline reads start after the ring's part
	 * is on its way. */
	for (int i = KQ_BE_N; i-- > 0;)
		if (kq_aio.be[i] && kq_aio.be[i]->hold)
			kq_aio.be[i]->hold(0);
	struct kq_batch b;
	kq_batch_init(&b);
	pthread_mutex_lock(&kq_aio.lock);
	kq_list_seal(l, &b);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_batch_flush(&b);
	int err = other ? EIO : eagain ? EAGAIN : 0;
	if (mode == LIO_WAIT) {
		uint32_t left;
		while ((left = __atomic_load_n(&l->pending, __ATOMIC_ACQUIRE))) {
			if (kq_futex_wait(&l->pending, left, NULL) == EINTR) {
				err = EINTR;
				break;
			}
		}
		if (err != EINTR && l->failed)
			err = EIO;
	}
	pthread_mutex_lock(&kq_aio.lock);
	kq_list_put(l);
	pthread_mutex_unlock(&kq_aio.lock);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
