/* Notifications owed by completions, made once the engine lock is dropped:
 * signals, threads, kevents, and the wakeup of waiters. */
#include "aio/aio.h"

#include <limits.h>

#include "common/futex.h"
#include "kq/post.h"

void kq_batch_init(struct kq_batch *b)
{
	b->n = 0;
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

void kq_batch_flush(struct kq_batch *b)
{
	KQ_BE_EACH(flush);
	if (__atomic_load_n(&kq_aio.waiters, __ATOMIC_SEQ_CST))
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
