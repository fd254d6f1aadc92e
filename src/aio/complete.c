/* The completion path: publish a job's result, then (lock dropped) wake and notify. */
#include "aio/aio.h"

#include <errno.h>
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

void kq_complete_locked(struct kq_job *j, ssize_t res, int err, struct kq_batch *b)
{
	struct aiocb *cb = j->cb;
	kq_fd_job_done(j);
	kq_list_del(&j->alink);
	/* Visible as done before anyone is told (invariant 3). */
	cb->__return_value = err ? -1 : res;
	__atomic_store_n(&cb->__error_code, err, __ATOMIC_RELEASE);
	j->where = KQ_W_DONE;
	kq_list_add_tail(&kq_aio.done, &j->qlink);
	kq_stats_completed(j->op, res, err);
	kq_batch_add(b, &j->sev, j->kn, err, 0);
	if (j->list) {
		kq_list_entry_done(j->list, err != 0, b);
		j->list = NULL;
	}
	__atomic_add_fetch(&kq_aio.seq, 1, __ATOMIC_SEQ_CST);
}

void kq_batch_flush(struct kq_batch *b)
{
	kq_uring_flush();
	if (__atomic_load_n(&kq_aio.waiters, __ATOMIC_SEQ_CST))
		kq_futex_wake(&kq_aio.seq, INT_MAX);
	kq_uring_poke();
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

void kq_job_finish(struct kq_job *j, ssize_t res, int err)
{
	struct kq_batch b;
	kq_batch_init(&b);
	pthread_mutex_lock(&kq_aio.lock);
	kq_complete_locked(j, res, err, &b);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_batch_flush(&b);
}

void kq_dispatch(struct kq_job *j)
{
	if ((j->flags & (KQ_J_STREAM | KQ_J_BLOCKING)) == KQ_J_STREAM) {
		j->where = KQ_W_POLL;
		if (j->op == KQ_OP_WRITE)
			kq_stream_kick(j->fdst);
		else
			kq_stream_arm(j->fdst);
	} else if ((j->flags & KQ_J_INLINE) && kq_inline_take(j)) {
		/* done by the submitter, after the lock */
	} else if (kq_aio.backend != KQ_BE_URING || (j->flags & KQ_J_BLOCKING) ||
		   kq_uring_queue(j)) {
		kq_pool_submit(j);
	}
}

int kq_wait_until(int (*ready)(void *), void *arg, const struct timespec *deadline, int poll,
		  int nolock)
{
	int err;
	if (!nolock) {
		kq_uring_flush();
		kq_uring_collect();
	}
	int how = !poll && !nolock && kq_aio.backend == KQ_BE_URING ? kq_uring_wait_begin() : 0;
	if (how) {
		/* Completions reach this thread straight from the kernel. */
		while (!(err = ready(arg) ? -1 : kq_uring_wait(deadline)))
			;
		kq_uring_wait_end(how);
		return err < 0 ? 0 : err == ETIMEDOUT ? EAGAIN : err;
	}
	/* Announce the waiter before looking, so a completion after the look
	 * either sees it and wakes it, or changes seq before it sleeps. */
	__atomic_add_fetch(&kq_aio.waiters, 1, __ATOMIC_SEQ_CST);
	if (!poll && !nolock)
		kq_uring_sleeping(); /* quiet jobs need the completion thread now */
	for (;;) {
		uint32_t seen = __atomic_load_n(&kq_aio.seq, __ATOMIC_SEQ_CST);
		if (ready(arg)) {
			err = 0;
			break;
		}
		err = poll ? ETIMEDOUT : kq_futex_wait(&kq_aio.seq, seen, deadline);
		if (err) {
			err = err == ETIMEDOUT ? EAGAIN : err;
			break;
		}
	}
	__atomic_sub_fetch(&kq_aio.waiters, 1, __ATOMIC_SEQ_CST);
	return err;
}
