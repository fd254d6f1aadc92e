/* Notifications owed by completions, made once the engine lock is dropped:
 * signals, threads, kevents, and the wakeup of waiters. */
#include "aio/aio.h"

#include <limits.h>

#include "common/futex.h"
#include "kq/post.h"

void kq_batch_init(struct kq_batch *b)
{
	b->n = 0;
	b->nwake = 0;
}

static int wants_notify(const struct sigevent *sev)
{
	return sev->sigev_notify != SIGEV_NONE &&
	       !(sev->sigev_notify == SIGEV_SIGNAL && sev->sigev_signo == 0);
}

void kq_batch_add(struct kq_batch *b, const struct sigevent *sev, struct kq_knote *kn, int64_t data,
		  int once)
{
	if (!wants_notify(sev) || (sev->sigev_notify == SIGEV_KEVENT && !kn))
		return;
	struct kq_note *n = &b->note[b->n++];
	n->sev = *sev;
	n->kn = sev->sigev_notify == SIGEV_KEVENT ? kn : NULL;
	n->data = data;
	n->once = once;
	/* A reap may delete the knote before the flush posts it. */
	if (n->kn)
		kq_post_ref(n->kn);
}

/* The word is bumped now, while its sleeper is sure to be watching; the
 * wake comes after the lock is dropped, and may find it awake already, or
 * asleep again on newer jobs: an early wake, which it allows for. */
void kq_batch_wake(struct kq_batch *b, struct kq_waiter *w)
{
	__atomic_add_fetch(&w->word, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < b->nwake; i++)
		if (b->wake[i] == &w->word)
			return;
	b->wake[b->nwake++] = &w->word; /* one per job at most: a batch ends no more */
}

void kq_batch_flush(struct kq_batch *b)
{
	KQ_BE_EACH(flush);
	for (int i = 0; i < b->nwake; i++)
		kq_futex_wake(b->wake[i], 1);
	b->nwake = 0;
	if (__atomic_load_n(&kq_aio.broadcast, __ATOMIC_SEQ_CST))
		kq_futex_wake(&kq_aio.seq, INT_MAX);
	KQ_BE_EACH(poke);
	for (int i = 0; i < b->n; i++) {
		struct kq_note *n = &b->note[i];
		if (n->kn) {
			kq_post_fire(n->kn, n->data, n->once);
			kq_post_unref(n->kn);
		} else {
			kq_notify(&n->sev);
		}
	}
	b->n = 0;
}
