/* aio_suspend: sleep on the completion futex until a listed job is done. */
#include "aio/aio.h"

#include <errno.h>

#include "common/futex.h"

/* 1: done, 0: outstanding, -1: names no job of ours. */
static int state(const struct aiocb *cb)
{
	int e = aio_error(cb);
	if (e < 0)
		return -1;
	return e != EINPROGRESS;
}

KQ_API int aio_suspend(const struct aiocb *const list[], int nent, const struct timespec *timeout)
{
	struct timespec dl;
	if (nent < 0 || (nent && !list) || (timeout && kq_deadline(timeout, &dl))) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	int err = 0;
	for (;;) {
		uint32_t seen = kq_wait_begin();
		int outstanding = 0, done = 0;
		for (int i = 0; i < nent && !done; i++) {
			if (!list[i])
				continue;
			int s = state(list[i]);
			done = s == 1;
			outstanding |= s == 0;
		}
		if (done || !outstanding)
			break;
		int r = kq_wait(seen, timeout ? &dl : NULL);
		if (r) {
			err = r == ETIMEDOUT ? EAGAIN : r;
			break;
		}
		kq_wait_end();
	}
	kq_wait_end();
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
