/* Reads of memory-backed files (tmpfs, ramfs), done by the thread that
 * submits them once it has let go of the engine lock. */
#include "aio/aio.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

/* A copy out of memory never waits for a device, and costs less than a
 * trip through io_uring, which hands tmpfs reads to a kernel worker (tmpfs
 * refuses RWF_NOWAIT) and an interrupt back. Jobs wait here from dispatch,
 * under the lock, to the end of the call that submitted them. */
enum { PENDING_MAX = 64 };
static __thread struct kq_job *pending[PENDING_MAX];
static __thread int npending, held;

/* The last mount asked about, per thread: most programs read from one. Only
 * a unique mount id (never reused) may key this; without one, ask each time. */
static __thread uint64_t last_mnt;
static __thread int last_mem = -1;

int kq_inline_memfs(int fd, const struct statx *sx)
{
	int unique = !!(sx->stx_mask & KQ_STATX_MNT_ID_UNIQUE);
	if (unique && last_mem >= 0 && sx->stx_mnt_id == last_mnt)
		return last_mem;
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return 0;
	int mem = sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
	if (unique) {
		last_mnt = sx->stx_mnt_id;
		last_mem = mem;
	}
	return mem;
}

int kq_inline_take(struct kq_job *j)
{
	if (npending == PENDING_MAX)
		return 0;
	j->where = KQ_W_RUNNING; /* nothing in between can take it back */
	pending[npending++] = j;
	return 1;
}

void kq_inline_fork_child(void)
{
	npending = held = 0; /* a fork from a handler that interrupted a list */
}

void kq_inline_hold(int on)
{
	held = on;
	kq_inline_run();
}

void kq_inline_run(void)
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
