/* aio_suspend: sleep until a listed job is done, on a futex of its own
 * while no other thread watches those jobs. */
#include "aio/aio.h"

#include <errno.h>

#include "common/futex.h"

struct watch {
	const struct aiocb *const *list;
	int n;
};

/* True once a listed job is done, or when none names an unfinished job. An
 * aiocb whose submission failed names no job: it never completes. */
static int any_done(void *arg)
{
	const struct watch *w = arg;
	int outstanding = 0;
	for (int i = 0; i < w->n; i++) {
		if (!w->list[i] || __atomic_load_n(&kq_priv((struct aiocb *)w->list[i])->magic,
						   __ATOMIC_ACQUIRE) == KQ_CB_FAILED)
			continue;
		int e = kq_error_of(w->list[i]);
		if (e >= 0 && e != EINPROGRESS)
			return 1;
		outstanding |= e == EINPROGRESS;
	}
	return !outstanding;
}

/* Lock held. Claims the listed jobs for w (on), or lets them go. */
static int watch(void *arg, struct kq_waiter *w, int on)
{
	const struct watch *l = arg;
	int i, mine = 1;
	for (i = 0; on && i < l->n && mine > 0; i++) {
		struct kq_job *j = l->list[i] ? kq_job_of((struct aiocb *)l->list[i]) : NULL;
		if (!j)
			continue; /* reaped, or never submitted: any_done decides */
		if (j->where == KQ_W_DONE)
			mine = -1;
		else if (j->watcher && j->watcher != w)
			mine = 0;
		else
			j->watcher = w;
	}
	/* Letting go, or a claim that failed: what this thread claimed. */
	for (int k = 0; k < (on ? (mine > 0 ? 0 : i) : l->n); k++) {
		struct kq_job *j = l->list[k] ? kq_job_of((struct aiocb *)l->list[k]) : NULL;
		if (j && j->watcher == w)
			j->watcher = NULL;
	}
	return mine;
}

KQ_API int aio_suspend(const struct aiocb *const list[], int nent, const struct timespec *timeout)
{
	KQ_ENTER(nested);
	struct timespec dl;
	if (nent < 0 || (nent && !list) || (timeout && kq_deadline(timeout, &dl))) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	struct watch l = {list, nent};
	struct kq_wait w = {any_done, watch, &l};
	int err = kq_wait_until(&w, timeout ? &dl : NULL, 0, nested);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
