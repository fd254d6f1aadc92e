/* The completion path: publish a job's result, then (lock dropped) wake and
 * notify; and the wait for completions. */
#include "aio/aio.h"

#include <errno.h>

#include "common/env.h"
#include "common/futex.h"

void kq_complete_locked(struct kq_job *j, ssize_t res, int err, struct kq_batch *b)
{
	struct aiocb *cb = j->cb;
	kq_fd_job_done(j);
	kq_list_del(&j->alink);
	/* Visible as done before anyone is told (invariant 3). */
	cb->__return_value = err ? -1 : res;
	__atomic_store_n(&cb->__error_code, err, __ATOMIC_RELEASE);
	kq_job_move(j, KQ_W_DONE);
	kq_list_add_tail(&kq_aio.done, &j->qlink);
	kq_stats_completed(j->op, res, err);
	kq_batch_add(b, &j->sev, j->kn, err, 0);
	if (j->watcher) {
		kq_batch_wake(b, j->watcher);
		j->watcher = NULL;
	}
	if (j->list) {
		kq_list_entry_done(j->list, err != 0, b);
		j->list = NULL;
	}
	__atomic_add_fetch(&kq_aio.seq, 1, __ATOMIC_SEQ_CST);
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

/* One per thread, not on the stack: a handler that longjmps out of a wait
 * leaves its jobs pointing here. armed: they may; the thread's next wait,
 * or its exit (a key's destructor, before its TLS goes), lets them go. */
static __thread struct kq_waiter me;
static __thread int armed, keyed;
static pthread_key_t me_key;
static pthread_once_t me_once = PTHREAD_ONCE_INIT;

/* Lock held. Every job still watched is unfinished, so on the active list. */
static void forget_me(void)
{
	for (struct kq_link *l = kq_aio.active.next; l != &kq_aio.active; l = l->next) {
		struct kq_job *j = kq_container_of(l, struct kq_job, alink);
		if (j->watcher == &me)
			j->watcher = NULL;
	}
	armed = 0;
}

static void me_exits(void *arg)
{
	(void)arg;
	if (!armed)
		return;
	pthread_mutex_lock(&kq_aio.lock);
	forget_me();
	pthread_mutex_unlock(&kq_aio.lock);
}

static void me_key_init(void)
{
	if (pthread_key_create(&me_key, me_exits))
		kq_debug("pthread_key_create failed: a thread that leaves a wait by longjmp and "
			 "exits may be written to after");
}

/* Sleeps on word until w is ready: 0, EAGAIN at the deadline (poll: look
 * once) or EINTR. The word, then the jobs: a completion after that look
 * changes the word (under the lock, before letting the job go), so the
 * sleep does not start. */
static int sleep_on(const struct kq_wait *w, uint32_t *word, const struct timespec *deadline,
		    int poll)
{
	for (;;) {
		uint32_t seen = __atomic_load_n(word, __ATOMIC_SEQ_CST);
		if (w->ready(w->arg))
			return 0;
		int err = poll ? ETIMEDOUT : kq_futex_wait(word, seen, deadline);
		if (err)
			return err == ETIMEDOUT ? EAGAIN : err;
	}
}

/* Sleeps on a word of its own while w->watch finds every job it waits for
 * watched by this thread alone: with many threads each waiting on its own
 * reads, a completion then wakes only the one it concerns. Returns what
 * sleep_on does, or -1: the jobs are shared, sleep on seq. */
static int wait_own(const struct kq_wait *w, const struct timespec *deadline)
{
	if (!keyed) {
		keyed = 1;
		pthread_once(&me_once, me_key_init);
		pthread_setspecific(me_key, &me); /* any non-NULL value */
	}
	pthread_mutex_lock(&kq_aio.lock);
	if (armed)
		forget_me(); /* an earlier wait was left without letting go */
	int mine = w->watch(w->arg, &me, 1);
	armed = mine > 0;
	pthread_mutex_unlock(&kq_aio.lock);
	if (mine <= 0)
		return mine < 0 ? 0 : -1; /* one is done already, or shared */
	int err = sleep_on(w, &me.word, deadline, 0);
	pthread_mutex_lock(&kq_aio.lock);
	w->watch(w->arg, &me, 0);
	armed = 0;
	pthread_mutex_unlock(&kq_aio.lock);
	return err;
}

int kq_wait_until(const struct kq_wait *w, const struct timespec *deadline, int poll, int nolock)
{
	int err;
	if (!nolock) {
		KQ_BE_EACH(flush);
		KQ_BE_EACH(collect);
		/* Work queued behind this thread's own jobs is its to do, not to
		 * sleep on. ready may take what it finds (aio_waitcomplete). */
		for (int i = 0; !poll && i < KQ_BE_N; i++)
			while (kq_aio.be[i] && kq_aio.be[i]->help && kq_aio.be[i]->help())
				if (w->ready(w->arg))
					return 0;
	}
	const struct kq_backend *be = kq_aio.be[KQ_BE_MAIN];
	int ring = !poll && !nolock && be->wait_begin ? be->wait_begin() : 0;
	if (ring) {
		/* Completions reach this thread straight from the kernel. */
		while (!(err = w->ready(w->arg) ? -1 : be->wait(deadline)))
			;
		be->wait_end();
		if (err != ESTALE) /* ESTALE: the backend took the wait from it */
			return err < 0 ? 0 : err == ETIMEDOUT ? EAGAIN : err;
	}
	/* Announce the waiter before looking, so a completion after the look
	 * either sees it and wakes it, or changes seq before it sleeps. */
	__atomic_add_fetch(&kq_aio.waiters, 1, __ATOMIC_SEQ_CST);
	if (!poll && !nolock)
		KQ_BE_EACH(sleeping); /* quiet jobs need the completion thread now */
	else if (nolock)
		KQ_BE_EACH(nudge);
	err = poll || nolock || !w->watch ? -1 : w->ready(w->arg) ? 0 : wait_own(w, deadline);
	if (err < 0) {
		__atomic_add_fetch(&kq_aio.broadcast, 1, __ATOMIC_SEQ_CST);
		err = sleep_on(w, &kq_aio.seq, deadline, poll);
		__atomic_sub_fetch(&kq_aio.broadcast, 1, __ATOMIC_SEQ_CST);
	}
	__atomic_sub_fetch(&kq_aio.waiters, 1, __ATOMIC_SEQ_CST);
	return err;
}
