/* Shared macros and an intrusive doubly-linked list used across kqaio. */
#ifndef KQ_COMMON_KQ_H
#define KQ_COMMON_KQ_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define KQ_API			 __attribute__((visibility("default")))
#define kq_likely(x)		 __builtin_expect(!!(x), 1)
#define kq_unlikely(x)		 __builtin_expect(!!(x), 0)
#define kq_container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* A node that is not on any list points at itself, so removal is idempotent. */
struct kq_link {
	struct kq_link *prev, *next;
};

static inline void kq_list_init(struct kq_link *l)
{
	l->prev = l->next = l;
}

static inline bool kq_list_empty(const struct kq_link *l)
{
	return l->next == l;
}

static inline void kq_list_add_tail(struct kq_link *head, struct kq_link *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void kq_list_del(struct kq_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	kq_list_init(n);
}

static inline struct kq_link *kq_list_first(struct kq_link *head)
{
	return kq_list_empty(head) ? NULL : head->next;
}

/* How deep this thread is in kqaio's public calls. One that finds itself
 * nested was called by a signal handler that may have interrupted a lock
 * holder on this thread: it takes no lock (aio_error, aio_return and
 * aio_suspend are async-signal-safe). A handler that left a call by
 * siglongjmp skipped kq_leave: a later call whose frame is no deeper than
 * the outermost one's, and near it, starts afresh, unless it runs on a
 * signal stack (kq_unwound). Near: within KQ_NEAR of it, where the frames
 * of one stack are; a stack that a handler runs on may lie anywhere, and one
 * set up with SS_AUTODISARM is not reported while the handler runs. Calls
 * from deeper frames stay nested: their waits take no lock, which is slower
 * but ends every job (the completion thread is told to look). */
enum { KQ_NEAR = 256 * 1024 };
extern __thread int kq_depth __attribute__((tls_model("initial-exec")));
extern __thread uintptr_t kq_frame __attribute__((tls_model("initial-exec")));
int kq_unwound(void);
static inline __attribute__((always_inline)) int kq_enter(void)
{
	uintptr_t f = (uintptr_t)__builtin_frame_address(0);
	int d = kq_depth;
	if (d && f >= kq_frame && f - kq_frame < KQ_NEAR && kq_unwound())
		d = 0;
	if (!d)
		kq_frame = f;
	kq_depth = d + 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return d;
}
static inline void kq_leave(int *d)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	kq_depth = *d;
}
/* At the top of a public function: nested is nonzero when it must not lock. */
#define KQ_ENTER(nested) __attribute__((cleanup(kq_leave), unused)) int nested = kq_enter()

/* glibc's close(), past ours (kqueue.c): our own fds are never kqueues, and
 * some are closed under the registry's lock. */
extern int __close(int fd);
static inline int kq_close(int fd)
{
	return __close(fd);
}

/* The program closes fd (src/aio/fd.c lets go of the file it kept for it).
 * Lock not held; not in a signal handler that interrupted the library. */
void kq_fd_closed(int fd);

#endif
