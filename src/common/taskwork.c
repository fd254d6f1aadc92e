/* The flag that tells kevent() a thread's epoll waits can be cut by task work. */
#include "common/taskwork.h"

__thread bool kq_taskwork;
