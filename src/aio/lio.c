/* A list's accounting, all of it: a list completes once, when every entry
 * it queued is done (invariants 1, 5, 8), counted against a guard held while
 * queueing; its event goes with its last entry reaped. Lock held throughout. */
#include "aio/aio.h"

#include <stdlib.h>

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

/* Submission binds j to l: l is not done until j is. */
void kq_list_entry_add(struct kq_list *l, struct kq_job *j)
{
	j->list = j->lio = l;
	l->refs++;
	__atomic_store_n(&l->pending, l->pending + 1, __ATOMIC_RELAXED);
}

/* Submission failed after kq_list_entry_add: j never counted. */
void kq_list_entry_undo(struct kq_job *j)
{
	struct kq_list *l = j->list;
	if (!l)
		return;
	l->refs--;
	__atomic_store_n(&l->pending, l->pending - 1, __ATOMIC_RELAXED);
	j->list = j->lio = NULL;
}

/* ... or went through: an entry queued, to be reaped. */
void kq_list_entry_queued(struct kq_list *l)
{
	l->queued++;
	l->unreaped++;
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

/* Every entry is queued: the guard goes, so the last entry done ends the
 * list. The caller keeps its reference, to read the result. */
void kq_list_seal(struct kq_list *l, struct kq_batch *b)
{
	kq_list_entry_done(l, 0, b);
}
