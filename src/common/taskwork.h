/* Whether this thread's epoll waits can be interrupted by io_uring task work. */
#ifndef KQ_COMMON_TASKWORK_H
#define KQ_COMMON_TASKWORK_H

#include <stdbool.h>

/* The completion of an io_uring request is run as task work in the thread
 * that submitted it, and task work makes an epoll_wait() in that thread fail
 * with EINTR although no signal came. Set once the thread has submitted. */
extern __thread bool kq_taskwork __attribute__((tls_model("initial-exec")));

#endif
