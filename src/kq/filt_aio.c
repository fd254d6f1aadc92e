/* EVFILT_AIO and EVFILT_LIO: knotes the AIO engine makes for SIGEV_KEVENT
 * requests and lists. A program cannot add them (no attach: EPERM), but may
 * delete, enable or disable one that exists. Each knote holds a reference on
 * its kq, so a completion after close(kq) posts into the old object, never
 * into whatever has the fd number now. */
#include "kq/kq.h"
#include "kq/post.h"

#include <errno.h>
#include <stdlib.h>

static bool aio_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	return (kn->status & KN_FIRED) && !__atomic_load_n(&kn->u.aio.hidden, __ATOMIC_ACQUIRE);
}

static void aio_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->status & KN_FIRED)
		kq_knote_activate(kq, kn);
}

const struct kq_filter kq_filt_aio = {
    .filter = EVFILT_AIO,
    .enable = aio_enable,
    .event = aio_event,
};

const struct kq_filter kq_filt_lio = {
    .filter = EVFILT_LIO,
    .enable = aio_enable,
    .event = aio_event,
};

static void (*aio_flush)(void);

void kq_post_set_flush(void (*flush)(void))
{
	__atomic_store_n(&aio_flush, flush, __ATOMIC_RELEASE);
}

void kq_aio_flush(void)
{
	void (*flush)(void) = __atomic_load_n(&aio_flush, __ATOMIC_ACQUIRE);
	if (flush)
		flush();
}

void kq_drop_posted(struct kq *kq)
{
	struct kq_link gone;
	kq_list_init(&gone);
	pthread_mutex_lock(&kq->lock);
	for (size_t i = 0; kq->hash && i <= kq->hmask; i++)
		for (struct kq_knote *kn = kq->hash[i], *next; kn; kn = next) {
			next = kn->hnext;
			if (kn->filter != EVFILT_AIO && kn->filter != EVFILT_LIO)
				continue;
			/* Unlinked here, unreferenced after the lock: the last
			 * reference to the kq may go with it. */
			__atomic_add_fetch(&kn->refs, 1, __ATOMIC_RELAXED);
			kq_knote_drop(kq, kn);
			kq_list_add_tail(&gone, &kn->flink);
		}
	kq_unlock(kq);
	for (struct kq_link *l; (l = kq_list_first(&gone));) {
		kq_list_del(l);
		kq_knote_unref(kq_container_of(l, struct kq_knote, flink));
	}
}

struct kq_knote *kq_post_attach(int kqfd, short filter, uintptr_t ident, void *udata,
				unsigned flags, int *err)
{
	if (flags & ~(unsigned)(EV_ONESHOT | EV_CLEAR | EV_DISPATCH)) {
		*err = EINVAL;
		return NULL;
	}
	struct kq *kq = kq_get(kqfd);
	if (kq && !kq_alive(kq)) {
		kq_dead(kq);
		kq_put(kq);
		kq = NULL;
	}
	if (!kq) {
		*err = EBADF;
		return NULL;
	}
	struct kevent kev = {.ident = ident,
			     .filter = filter,
			     .flags = (unsigned short)(EV_ADD | flags),
			     .udata = udata};
	pthread_mutex_lock(&kq->lock);
	/* A resubmitted aiocb's knote replaces the last one's; each lio_listio
	 * has its own, though two in flight may share a list array (ident). */
	struct kq_knote *old = filter == EVFILT_AIO ? kq_knote_find(kq, ident, filter) : NULL;
	if (old)
		kq_knote_drop(kq, old);
	struct kq_knote *kn =
	    kq_knote_new(kq, &kev, filter == EVFILT_AIO ? &kq_filt_aio : &kq_filt_lio);
	if (kn) {
		kn->refs = 2; /* the kq's and the caller's */
		kn->kq = kq;
		kq_knote_insert(kq, kn);
	}
	kq_unlock(kq);
	if (!kn) {
		kq_put(kq);
		*err = ENOMEM;
	}
	return kn;
}

void kq_post_ref(struct kq_knote *kn)
{
	__atomic_add_fetch(&kn->refs, 1, __ATOMIC_RELAXED);
}

void kq_post_unref(struct kq_knote *kn)
{
	kq_knote_unref(kn);
}

void kq_post_fire(struct kq_knote *kn, int64_t data, int once)
{
	struct kq *kq = kn->kq;
	pthread_mutex_lock(&kq->lock);
	if (!(kn->status & KN_DEAD)) {
		kn->status |= KN_FIRED;
		kn->eflags = kn->filter == EVFILT_AIO ? EV_EOF : 0;
		kn->data = data;
		if (once)
			kn->status |= KN_ONCE;
		kq_knote_activate(kq, kn);
	}
	kq_unlock(kq);
}

void kq_post_detach(struct kq_knote *kn)
{
	struct kq *kq = kn->kq;
	pthread_mutex_lock(&kq->lock);
	if (!(kn->status & KN_DEAD))
		kq_knote_drop(kq, kn);
	kq_unlock(kq);
	kq_knote_unref(kn);
}

void kq_post_hide(struct kq_knote *kn)
{
	__atomic_store_n(&kn->u.aio.hidden, 1, __ATOMIC_RELEASE);
}
