/* What the backends share among themselves, and the tables init.c puts in
 * kq_aio.be; nothing else includes this. */
#ifndef KQ_AIO_BACKEND_H
#define KQ_AIO_BACKEND_H

#include "aio/aio.h"

extern const struct kq_backend kq_be_inline, kq_be_stream, kq_be_uring, kq_be_pool;

int kq_uring_start(void);	       /* probe: 0 or the errno io_uring gave */
void kq_pool_submit(struct kq_job *j); /* held: the pool takes every job */

#endif
