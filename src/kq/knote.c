/* Knotes: the (ident, filter) table, the queue of knotes to report, their life. */
#include "kq/kq.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static bool is_fd_filter(short filter)
{
	return filter == EVFILT_READ || filter == EVFILT_WRITE;
}

const struct kq_filter *kq_filter_of(short filter)
{
	switch (filter) {
	case EVFILT_READ:
		return &kq_filt_read;
	case EVFILT_WRITE:
		return &kq_filt_write;
	case EVFILT_TIMER:
		return &kq_filt_timer;
	case EVFILT_USER:
		return &kq_filt_user;
	case EVFILT_SIGNAL:
		return &kq_filt_signal;
	case EVFILT_PROC:
		return &kq_filt_proc;
	case EVFILT_VNODE:
		return &kq_filt_vnode;
	case EVFILT_AIO:
		return &kq_filt_aio;
	case EVFILT_LIO:
		return &kq_filt_lio;
	default:
		return NULL;
	}
}

static size_t slot(const struct kq *kq, uintptr_t ident, short filter)
{
	uint64_t h = ((uint64_t)ident ^ ((uint64_t)(uint16_t)filter << 48)) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 20) & kq->hmask;
}

struct kq_knote *kq_knote_find(struct kq *kq, uintptr_t ident, short filter)
{
	if (is_fd_filter(filter)) {
		if (ident >= kq->nfds || !kq->fds[ident])
			return NULL;
		return kq->fds[ident]->kn[filter == EVFILT_WRITE];
	}
	if (!kq->hash)
		return NULL;
	for (struct kq_knote *kn = kq->hash[slot(kq, ident, filter)]; kn; kn = kn->hnext)
		if (kn->ident == ident && kn->filter == filter)
			return kn;
	return NULL;
}

/* Doubling keeps insertion and lookup O(1) however many knotes there are. */
static int grow(struct kq *kq)
{
	size_t n = kq->hash ? (kq->hmask + 1) * 2 : 64;
	struct kq_knote **h = calloc(n, sizeof *h);
	if (!h)
		return ENOMEM;
	struct kq_knote **old = kq->hash;
	size_t oldn = old ? kq->hmask + 1 : 0;
	kq->hash = h;
	kq->hmask = n - 1;
	for (size_t i = 0; i < oldn; i++)
		for (struct kq_knote *kn = old[i], *next; kn; kn = next) {
			next = kn->hnext;
			size_t s = slot(kq, kn->ident, kn->filter);
			kn->hnext = h[s];
			h[s] = kn;
		}
	free(old);
	return 0;
}

struct kq_knote *kq_knote_new(struct kq *kq, const struct kevent *kev, const struct kq_filter *fop)
{
	if (!is_fd_filter(kev->filter) && (!kq->hash || kq->hcount >= kq->hmask + 1) && grow(kq))
		return NULL;
	struct kq_knote *kn = calloc(1, sizeof *kn);
	if (!kn)
		return NULL;
	kq_list_init(&kn->alink);
	kq_list_init(&kn->flink);
	kn->fop = fop;
	kn->ident = kev->ident;
	kn->filter = kev->filter;
	kn->flags =
	    (kev->flags & ~(EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE)) | fop->force_flags;
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	kn->udata = kev->udata;
	kn->gen = ++kq->gen & 0xffffff;
	kn->refs = 1;
	if (kev->flags & EV_DISABLE)
		kn->status |= KN_DISABLED;
	return kn;
}

void kq_knote_insert(struct kq *kq, struct kq_knote *kn)
{
	if (is_fd_filter(kn->filter))
		return;
	size_t s = slot(kq, kn->ident, kn->filter);
	kn->hnext = kq->hash[s];
	kq->hash[s] = kn;
	kq->hcount++;
}

static void unlink_hash(struct kq *kq, struct kq_knote *kn)
{
	for (struct kq_knote **p = &kq->hash[slot(kq, kn->ident, kn->filter)]; *p; p = &(*p)->hnext)
		if (*p == kn) {
			*p = kn->hnext;
			kq->hcount--;
			return;
		}
}

/* The last reference to an AIO knote is always the engine's, dropped
 * without the kq lock, so putting the kq here cannot deadlock. */
void kq_knote_unref(struct kq_knote *kn)
{
	if (__atomic_sub_fetch(&kn->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		struct kq *kq = kn->kq;
		free(kn);
		if (kq)
			kq_put(kq);
	}
}

void kq_knote_drop(struct kq *kq, struct kq_knote *kn)
{
	kq_knote_dequeue(kq, kn);
	if (kn->fop->detach)
		kn->fop->detach(kq, kn);
	if (!is_fd_filter(kn->filter))
		unlink_hash(kq, kn);
	kn->status |= KN_DEAD;
	kq_knote_unref(kn);
}

void kq_knote_activate(struct kq *kq, struct kq_knote *kn)
{
	if (kn->status & (KN_QUEUED | KN_DISABLED | KN_DEAD))
		return;
	kn->status |= KN_QUEUED;
	kq_list_add_tail(&kq->active, &kn->alink);
}

void kq_knote_dequeue(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	if (!(kn->status & KN_QUEUED))
		return;
	kn->status &= ~KN_QUEUED;
	kq_list_del(&kn->alink);
}

void kq_knote_free_all(struct kq *kq)
{
	kq_fd_free_all(kq);
	for (size_t i = 0; kq->hash && i <= kq->hmask; i++)
		while (kq->hash[i])
			kq_knote_drop(kq, kq->hash[i]);
	free(kq->hash);
	kq->hash = NULL;
	kq_timer_free_all(kq);
}

/* The kq fd polls readable through evfd, which is edge-triggered in epfd and
 * never read: each write is one edge, pending until a wait takes it (and
 * clears armed). A knote left in the queue gets a new edge, so the kq fd stays
 * readable while there is something to report, and a kevent() call that
 * queues and reports the same knotes makes no system call. The write comes
 * after unlocking, so the thread it wakes does not run into the lock. */
void kq_unlock(struct kq *kq)
{
	bool edge = !kq->armed && !kq_list_empty(&kq->active);
	if (edge)
		kq->armed = true;
	pthread_mutex_unlock(&kq->lock);
	if (edge) {
		uint64_t v = 1;
		ssize_t r = write(kq->evfd, &v, sizeof v);
		(void)r;
	}
}
