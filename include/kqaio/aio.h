/* kqaio <aio.h>: the system's POSIX AIO header plus FreeBSD's extensions. */
#ifndef KQAIO_AIO_H
#define KQAIO_AIO_H

#include_next <aio.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <signal.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Vectored list opcodes, numbered as on FreeBSD (no clash with glibc's 0..2). */
#ifndef LIO_WRITEV
#define LIO_WRITEV 5
#define LIO_READV  6
#endif

/* FreeBSD 13: a vectored request keeps its iovec array and count here. */
#ifndef aio_iov
#define aio_iov	   aio_buf
#define aio_iovcnt aio_nbytes
#endif

/* Completion through a kqueue: the request's event goes to the kqueue whose
 * descriptor is in sigev_notify_kqueue (FreeBSD aliases it to sigev_signo). */
#ifndef SIGEV_KEVENT
#define SIGEV_KEVENT 3
#endif
#ifndef sigev_notify_kqueue
#define sigev_notify_kqueue	  sigev_signo
#define sigev_notify_kevent_flags _sigev_un._pad[0]
#endif
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

int aio_readv(struct aiocb *aiocbp);
int aio_writev(struct aiocb *aiocbp);
ssize_t aio_waitcomplete(struct aiocb **aiocbpp, struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif
