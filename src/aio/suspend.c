/* aio_suspend: sleep on the completion futex until a listed job is done. */
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
		int e = aio_error(w->list[i]);
		if (e >= 0 && e != EINPROGRESS)
			return 1;
		outstanding |= e == EINPROGRESS;
	}
	return !outstanding;
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
	struct watch w = {list, nent};
	int err = kq_wait_until(any_done, &w, timeout ? &dl : NULL, 0, nested);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
