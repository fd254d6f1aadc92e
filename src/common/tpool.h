/* A thread pool: one FIFO of work items, threads started on demand, idle ones exit. */
#ifndef KQ_COMMON_TPOOL_H
#define KQ_COMMON_TPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/kq.h"

struct kq_work {
	struct kq_link link;
	void (*fn)(struct kq_work *w);
};

struct kq_tpool {
	const char *name; /* the threads' name, as top -H shows it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kq_link queue;
	int queued, nthreads, nidle;
	int max;	   /* threads at most */
	int idle_ms;	   /* an idle thread exits after this long */
	size_t stack_size; /* 0: the system default */
};

void kq_tpool_init(struct kq_tpool *p, const char *name, int max, int idle_ms, size_t stack_size);
/* Queues w. Returns 0, or EAGAIN when no thread exists and none could start
 * (w stays queued: the next push tries again). */
int kq_tpool_push(struct kq_tpool *p, struct kq_work *w);
/* Makes sure one thread exists. Returns 0 or EAGAIN. */
int kq_tpool_ensure(struct kq_tpool *p);
/* Takes w back if no thread has picked it up yet; true if it did. */
bool kq_tpool_remove(struct kq_tpool *p, struct kq_work *w);
void kq_tpool_tune(struct kq_tpool *p, int max, int idle_ms);

/* fork(): lock before, unlock in the parent, start empty in the child. */
void kq_tpool_fork_prepare(struct kq_tpool *p);
void kq_tpool_fork_parent(struct kq_tpool *p);
void kq_tpool_fork_child(struct kq_tpool *p);

/* Starts a detached thread with every signal blocked. attr may be NULL. */
int kq_thread_start(const pthread_attr_t *attr, size_t stack_size, void *(*fn)(void *), void *arg);

#endif
