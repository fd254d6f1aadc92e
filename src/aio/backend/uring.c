/* The uring backend: regular files and block devices through one io_uring per
 * process. Submitters prepare SQEs under a small lock and submit them in one
 * io_uring_enter when they drop the engine lock (a whole lio_listio at once);
 * one completion thread resumes short transfers and ends jobs. */
#include "aio/aio.h"

#include <errno.h>
#include <liburing.h>
#include <string.h>

#include "common/env.h"
#include "common/taskwork.h"

/* The CQ holds as many completions as there can be jobs (KQAIO_MAX_JOBS'
 * default), so it never overflows and submission never waits on it. */
enum { SQ_DEPTH = 256, CQ_DEPTH = 65536 };

static struct {
	pthread_mutex_t lock; /* the submission queue */
	struct io_uring ring;
	int ready;
	uint32_t pending; /* SQEs prepared but not yet submitted */
} U = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The lio_listio in this thread is still queueing: submit once it is done. */
static __thread int plugged;

static void prep(struct io_uring_sqe *sqe, struct kq_job *j)
{
	off_t off = j->off + (off_t)j->done;
	switch (j->op) {
	case KQ_OP_READ:
		io_uring_prep_readv(sqe, j->fd, j->iov, (unsigned)j->iovcnt, (__u64)off);
		break;
	case KQ_OP_WRITE:
		io_uring_prep_writev(sqe, j->fd, j->iov, (unsigned)j->iovcnt, (__u64)off);
		break;
	default:
		io_uring_prep_fsync(sqe, j->fd, j->op == KQ_OP_FDSYNC ? IORING_FSYNC_DATASYNC : 0);
	}
	io_uring_sqe_set_data(sqe, j);
}

/* U.lock held. */
static void submit_locked(void)
{
	while (U.pending) {
		int r = io_uring_submit(&U.ring);
		if (r > 0)
			kq_taskwork = true;
		if (r >= 0) {
			__atomic_store_n(&U.pending, io_uring_sq_ready(&U.ring), __ATOMIC_RELAXED);
			if (r == 0)
				break;
		} else if (r == -EBUSY || r == -EAGAIN || r == -EINTR) {
			/* The completion thread is draining a full CQ: let it. */
			pthread_mutex_unlock(&U.lock);
			sched_yield();
			pthread_mutex_lock(&U.lock);
		} else {
			kq_debug("io_uring_submit: %s", strerror(-r));
			break;
		}
	}
}

/* U.lock held. */
static void queue_locked(struct kq_job *j)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&U.ring)))
		submit_locked(); /* the SQ is full: send what is there */
	prep(sqe, j);
	__atomic_store_n(&U.pending, U.pending + 1, __ATOMIC_RELAXED);
}

/* Jobs whose last part is done, ended together under one engine lock. */
struct ended {
	int n;
	struct {
		struct kq_job *j;
		ssize_t res;
		int err;
	} e[KQ_BATCH_JOBS];
};

static void end_all(struct ended *d)
{
	if (!d->n)
		return;
	struct kq_batch b;
	kq_batch_init(&b);
	pthread_mutex_lock(&kq_aio.lock);
	for (int i = 0; i < d->n; i++)
		kq_complete_locked(d->e[i].j, d->e[i].res, d->e[i].err, &b);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_batch_flush(&b);
	d->n = 0;
}

static void end(struct ended *d, struct kq_job *j, int res)
{
	ssize_t r = (ssize_t)j->done;
	int err = 0;
	if (j->op == KQ_OP_FSYNC || j->op == KQ_OP_FDSYNC)
		r = res < 0 ? -1 : 0, err = res < 0 ? -res : 0;
	else if (res < 0 && !j->done)
		r = -1, err = -res; /* an error after some bytes moved reports the bytes */
	d->e[d->n].j = j;
	d->e[d->n].res = r;
	d->e[d->n].err = err;
	if (++d->n == KQ_BATCH_JOBS)
		end_all(d);
}

/* A CQE for j: the job is over, or the rest goes back in (invariant 2). */
static void reap_cqe(struct ended *d, struct kq_job *j, int res)
{
	int again = res == -EINTR || res == -EAGAIN;
	if (res > 0 && j->op <= KQ_OP_WRITE) {
		j->done += (size_t)res;
		kq_job_advance(j, (size_t)res);
		again = j->done < j->nbytes; /* short: resubmit the remainder */
	}
	if (again) {
		pthread_mutex_lock(&U.lock);
		queue_locked(j);
		pthread_mutex_unlock(&U.lock);
		return;
	}
	end(d, j, res);
}

static void *completer(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "kqaio-uring");
	for (;;) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&U.ring, &cqe);
		if (r < 0) {
			if (r == -EINTR || r == -EAGAIN)
				continue;
			kq_debug("io_uring_wait_cqe: %s", strerror(-r));
			return NULL;
		}
		/* The kernel orders each submission before its CQE; taking the lock
		 * that submissions are made under shows that order to ThreadSanitizer
		 * for the CQEs already there (not ones that arrive meanwhile). */
		unsigned ready = io_uring_cq_ready(&U.ring);
		pthread_mutex_lock(&U.lock);
		pthread_mutex_unlock(&U.lock);
		struct ended d = {0};
		unsigned head, n = 0;
		io_uring_for_each_cqe(&U.ring, head, cqe)
		{
			if (n == ready)
				break;
			reap_cqe(&d, io_uring_cqe_get_data(cqe), cqe->res);
			n++;
		}
		io_uring_cq_advance(&U.ring, n);
		end_all(&d);
		kq_uring_flush();
	}
	return NULL;
}

/* U.lock held. */
static int start_locked(void)
{
	if (U.ready)
		return 0;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_DEPTH;
	int r = io_uring_queue_init_params(SQ_DEPTH, &U.ring, &p);
	if (r < 0)
		return -r;
	r = kq_thread_start(NULL, 64 * 1024, completer, NULL);
	if (r) {
		io_uring_queue_exit(&U.ring);
		return r;
	}
	__atomic_store_n(&U.pending, 0, __ATOMIC_RELAXED);
	U.ready = 1;
	return 0;
}

int kq_uring_start(void)
{
	pthread_mutex_lock(&U.lock);
	int err = start_locked();
	pthread_mutex_unlock(&U.lock);
	return err;
}

int kq_uring_queue(struct kq_job *j)
{
	pthread_mutex_lock(&U.lock);
	int err = start_locked(); /* a forked child makes its ring here */
	if (!err) {
		j->where = KQ_W_RUNQ;
		j->flags |= KQ_J_URING;
		queue_locked(j);
	}
	pthread_mutex_unlock(&U.lock);
	return err;
}

void kq_uring_flush(void)
{
	if (plugged || !__atomic_load_n(&U.pending, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&U.lock);
	submit_locked();
	pthread_mutex_unlock(&U.lock);
}

void kq_uring_plug(int on)
{
	plugged = on;
	if (!on)
		kq_uring_flush();
}

void kq_uring_fork_prepare(void)
{
	pthread_mutex_lock(&U.lock);
}

void kq_uring_fork_parent(void)
{
	pthread_mutex_unlock(&U.lock);
}

void kq_uring_fork_child(void)
{
	/* The rings are shared with the parent: unmap them, never touch them. */
	if (U.ready)
		io_uring_queue_exit(&U.ring);
	U.ready = 0;
	__atomic_store_n(&U.pending, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&U.lock);
}
