/* lio_listio: a list completes once, when every entry it queued is done
 * (invariants 1, 5, 8), counted against a guard held while queueing. */
#include "aio/aio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/event.h>

#include "common/futex.h"
#include "kq/post.h"

struct kq_list *kq_list_alloc(void)
{
	struct kq_list *l = kq_aio.free_lists;
	if (l)
		kq_aio.free_lists = l->next_free;
	else if (!(l = calloc(1, sizeof *l)))
		return NULL;
	l->pending = 1; /* the guard: nothing can finish the list while it fills */
	l->refs = 1;
	l->wait = 0;
	l->failed = 0;
	l->queued = 0;
	l->unreaped = 0;
	l->kn = NULL;
	l->sev.sigev_notify = SIGEV_NONE;
	return l;
}

void kq_list_put(struct kq_list *l)
{
	if (--l->refs)
		return;
	/* The last entry is reaped: the list's event goes with it. A list that
	 * queued nothing fired a one-shot event that waits to be read. */
	if (l->kn) {
		if (l->queued)
			kq_post_detach(l->kn);
		else
			kq_post_unref(l->kn);
		l->kn = NULL;
	}
	l->next_free = kq_aio.free_lists;
	kq_aio.free_lists = l;
}

/* The list's event goes when its last queued entry is reaped, once the list
 * is done (before that, the guard keeps entries still to come). */
void kq_list_entry_reaped(struct kq_list *l)
{
	if (--l->unreaped || __atomic_load_n(&l->pending, __ATOMIC_RELAXED) || !l->kn)
		return;
	kq_post_detach(l->kn);
	l->kn = NULL;
}

void kq_list_entry_done(struct kq_list *l, int failed, struct kq_batch *b)
{
	l->failed |= failed;
	uint32_t left = l->pending - 1;
	__atomic_store_n(&l->pending, left, __ATOMIC_RELEASE);
	if (!left) {
		if (l->wait)
			kq_futex_wake(&l->pending, 1);
		else {
			if (l->queued && !l->unreaped && l->kn) {
				/* Every entry was reaped before the list was done: its
				 * event is deleted with the last, so it never comes. */
				kq_post_detach(l->kn);
				l->kn = NULL;
			}
			kq_batch_add(b, &l->sev, l->kn, 0, !l->queued);
		}
	}
}

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
	kq_uring_plug(1); /* the whole list goes to the kernel in one submission */
	kq_inline_hold(1);
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
	kq_uring_plug(0);
	kq_inline_hold(0); /* after the ring's part is on its way */
	struct kq_batch b;
	kq_batch_init(&b);
	pthread_mutex_lock(&kq_aio.lock);
	l->refs++;		      /* the caller keeps the list to read its result */
	kq_list_entry_done(l, 0, &b); /* drop the guard */
	kq_list_put(l);
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
