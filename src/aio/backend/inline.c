/* Reads of memory-backed files (tmpfs, ramfs), done by the thread that
 * submits them once it has let go of the engine lock. */
#include "aio/backend/backend.h"

#include <errno.h>

/* A copy out of memory never waits for a device, and costs less than a
 * trip through io_uring, which hands tmpfs reads to a kernel worker (tmpfs
 * refuses RWF_NOWAIT) and an interrupt back. Jobs wait here from dispatch,
 * under the lock, to the end of the call that submitted them. */
enum { PENDING_MAX = 64 };
static __thread struct kq_job *pending[PENDING_MAX];
static __thread int npending, held;

static int take(struct kq_job *j)
{
	if (!(j->flags & KQ_J_INLINE) || npending == PENDING_MAX)
		return EAGAIN;
	kq_job_move(j, KQ_W_RUNNING); /* nothing in between can take it back */
	j->be = &kq_be_inline;
	pending[npending++] = j;
	return 0;
}

static void fork_child(void)
{
	npending = held = 0; /* a fork from a handler that interrupted a list */
}

static void run(void)
{
	if (held || !npending)
		return;
	/* preadv is a cancellation point: a job taken off must still end. */
	int cs;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	int n = npending;
	struct {
		struct kq_job *j;
		ssize_t res;
		int err;
	} r[PENDING_MAX];
	for (int i = 0; i < n; i++)
		r[i].j = pending[i];
	npending = 0;
	for (int i = 0; i < n; i++)
		kq_job_io(r[i].j, 0, &r[i].res, &r[i].err);
	for (int i = 0; i < n; i += KQ_BATCH_JOBS) { /* as many as a batch holds */
		struct kq_batch b;
		kq_batch_init(&b);
		pthread_mutex_lock(&kq_aio.lock);
		for (int k = i; k < n && k < i + KQ_BATCH_JOBS; k++)
			kq_complete_locked(r[k].j, r[k].res, r[k].err, &b);
		pthread_mutex_unlock(&kq_aio.lock);
		kq_batch_flush(&b);
	}
	pthread_setcancelstate(cs, NULL);
}

static void hold(int on)
{
	held = on;
	run();
}

static void submitted(int lazy)
{
	(void)lazy; /* the submitter is the one to do them, now */
	run();
}

const struct kq_backend kq_be_inline = {
    .name = "inline",
    .queue = take,
    .submitted = submitted,
    .hold = hold,
    .fork_child = fork_child,
};
