/* glibc's *64 names: the same functions, since off_t is 64-bit on LP64 Linux.
 * Built without _GNU_SOURCE so that <aio.h> does not declare them with aiocb64. */
#undef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#include <aio.h>

#include "common/kq.h"

KQ_API int aio_read64(struct aiocb *cb);
KQ_API int aio_write64(struct aiocb *cb);
KQ_API int aio_fsync64(int op, struct aiocb *cb);
KQ_API int aio_error64(const struct aiocb *cb);
KQ_API ssize_t aio_return64(struct aiocb *cb);
KQ_API int aio_suspend64(const struct aiocb *const list[], int n, const struct timespec *t);
KQ_API int aio_cancel64(int fd, struct aiocb *cb);
KQ_API int lio_listio64(int mode, struct aiocb *const list[], int n, struct sigevent *sig);

_Static_assert(sizeof(off_t) == 8, "aiocb and aiocb64 must be the same");

int aio_read64(struct aiocb *cb)
{
	return aio_read(cb);
}
int aio_write64(struct aiocb *cb)
{
	return aio_write(cb);
}
int aio_fsync64(int op, struct aiocb *cb)
{
	return aio_fsync(op, cb);
}
int aio_error64(const struct aiocb *cb)
{
	return aio_error(cb);
}
ssize_t aio_return64(struct aiocb *cb)
{
	return aio_return(cb);
}
int aio_suspend64(const struct aiocb *const list[], int n, const struct timespec *t)
{
	return aio_suspend(list, n, t);
}
int aio_cancel64(int fd, struct aiocb *cb)
{
	return aio_cancel(fd, cb);
}
int lio_listio64(int mode, struct aiocb *const list[], int n, struct sigevent *sig)
{
	return lio_listio(mode, list, n, sig);
}
