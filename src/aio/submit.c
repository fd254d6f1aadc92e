/* Submission: validate a request, bind it to a job, route it (aio_read, aio_write,
 * aio_readv, aio_writev, aio_fsync; lio_listio entries come through here too). */
#include "aio/aio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kq/post.h"

enum { SUB_READ, SUB_WRITE, SUB_READV, SUB_WRITEV, SUB_FSYNC, SUB_FDSYNC };
enum { LARGE = 64 * 1024 };

_Static_assert(sizeof(struct aiocb) == 168, "glibc struct aiocb layout");
_Static_assert(offsetof(struct aiocb, __glibc_reserved) == 136, "glibc struct aiocb layout");
_Static_assert(sizeof(struct kq_cbpriv) <= sizeof(((struct aiocb *)0)->__glibc_reserved),
	       "our state fits the reserved bytes");

struct req {
	int op, flags;
	size_t nbytes;
	int iovcnt;
	const struct iovec *uiov;
};

/* Checks done without the lock; fills r. Returns 0 or the errno. */
static int validate(struct aiocb *cb, int sub, struct req *r, struct kq_fdinfo *fi)
{
	/* aio_fsync looks at aio_fildes and aio_sigevent alone (POSIX). */
	int sync = sub == SUB_FSYNC || sub == SUB_FDSYNC;
	if (!sync && (cb->aio_reqprio < 0 || cb->aio_reqprio > AIO_PRIO_DELTA_MAX))
		return EINVAL;
	int err = kq_sigevent_check(&cb->aio_sigevent);
	if (err)
		return err;
	/* Once per fd per call: a lio_listio of many entries on one fd costs
	 * two system calls, not two each. */
	if ((err = kq_fd_describe(cb->aio_fildes, fi, sub == SUB_WRITE || sub == SUB_WRITEV)))
		return err;
	r->flags = 0;
	r->iovcnt = 0;
	r->uiov = NULL;
	r->nbytes = 0;
	if (sync) {
		r->op = sub == SUB_FSYNC ? KQ_OP_FSYNC : KQ_OP_FDSYNC;
		return 0;
	}
	int rd = sub == SUB_READ || sub == SUB_READV;
	r->op = rd ? KQ_OP_READ : KQ_OP_WRITE;
	int acc = fi->fl & O_ACCMODE;
	if (rd ? acc == O_WRONLY : acc == O_RDONLY)
		return EBADF;
	if (fi->kind == KQ_FD_SEEKABLE) {
		if (cb->aio_offset < 0)
			return EINVAL;
		if (!rd && (fi->fl & O_APPEND))
			r->flags |= KQ_J_ORDERED;
	} else {
		r->flags |= KQ_J_STREAM | KQ_J_ORDERED;
	}
	if (sub == SUB_READV || sub == SUB_WRITEV) {
		if (cb->aio_nbytes > IOV_MAX)
			return EINVAL;
		r->iovcnt = (int)cb->aio_nbytes;
		r->uiov = (const struct iovec *)cb->aio_buf;
		if (r->iovcnt && !r->uiov)
			return EFAULT;
		for (int i = 0; i < r->iovcnt; i++) {
			if (r->uiov[i].iov_len > SSIZE_MAX - r->nbytes)
				return EINVAL;
			r->nbytes += r->uiov[i].iov_len;
		}
	} else {
		if (cb->aio_nbytes > SSIZE_MAX)
			return EINVAL;
		r->nbytes = cb->aio_nbytes;
	}
	if (rd && fi->mem && r->nbytes <= (size_t)kq_config.inline_max)
		r->flags |= KQ_J_INLINE;
	/* A copy from or to the page cache of more than 64 KiB is left to a
	 * worker: io_uring would make it inside io_uring_enter when the pages
	 * are there, and aio_read or lio_listio(LIO_NOWAIT) would return only
	 * once it is done (LTP aio_suspend/9-1 waits for one to be in flight). */
	if (fi->kind == KQ_FD_SEEKABLE && !(fi->fl & O_DIRECT) && r->nbytes > LARGE)
		r->flags |= KQ_J_LARGE;
	return 0;
}

static void record_failure(struct aiocb *cb, int err)
{
	struct kq_cbpriv *p = kq_priv(cb);
	cb->__return_value = -1;
	__atomic_store_n(&cb->__error_code, err, __ATOMIC_RELAXED);
	__atomic_store_n(&p->epoch, __atomic_load_n(&kq_epoch, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	p->job = NULL;
	__atomic_store_n(&p->magic, KQ_CB_FAILED, __ATOMIC_RELEASE);
}

/* Lock held. A cb whose earlier job has finished but was never reaped starts
 * clean: that job is reaped now. One still in flight cannot be reused. */
static int claim_cb(struct aiocb *cb)
{
	kq_job_drain();
	struct kq_job *old = kq_job_of(cb);
	if (!old)
		return 0;
	if (old->where != KQ_W_DONE)
		return EINVAL;
	if (kq_job_claim(cb)) /* else a handler's aio_return took it just now */
		kq_job_reap(old);
	return 0;
}

/* Lock held: fill j from the request and bind it to cb. */
static int bind_job(struct kq_job *j, struct aiocb *cb, const struct req *r, struct kq_list *list)
{
	j->cb = cb;
	j->op = (uint8_t)r->op;
	j->flags = (uint8_t)r->flags;
	j->fd = cb->aio_fildes;
	j->off = cb->aio_offset;
	j->nbytes = r->nbytes;
	j->sev = cb->aio_sigevent;
	if (r->uiov) {
		j->iov = j->iov_inline;
		if (r->iovcnt > KQ_IOV_INLINE) {
			j->iov_heap = malloc(sizeof(struct iovec) * (size_t)r->iovcnt);
			if (!j->iov_heap)
				return EAGAIN;
			j->iov = j->iov_heap;
		}
		memcpy(j->iov, r->uiov, sizeof(struct iovec) * (size_t)r->iovcnt);
		j->iovcnt = r->iovcnt;
	} else {
		j->iov_inline[0].iov_base = (void *)cb->aio_buf;
		j->iov_inline[0].iov_len = r->nbytes;
		j->iov = j->iov_inline;
		j->iovcnt = 1;
	}
	if (list)
		kq_list_entry_add(list, j);
	struct kq_cbpriv *p = kq_priv(cb);
	cb->__return_value = 0;
	__atomic_store_n(&cb->__error_code, EINPROGRESS, __ATOMIC_RELAXED);
	p->job = j;
	p->gen = j->gen;
	__atomic_store_n(&p->epoch, __atomic_load_n(&kq_epoch, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	__atomic_store_n(&p->magic, KQ_CB_JOB, __ATOMIC_RELEASE);
	kq_list_add_tail(&kq_aio.active, &j->alink);
	return 0;
}

int kq_submit(struct aiocb *cb, int sub, struct kq_list *list, struct kq_fdinfo *fi, int *errp)
{
	struct req r = {0};
	struct kq_fdinfo own = {.fd = -1, .fl = -1};
	if (!fi)
		fi = &own;
	int err = validate(cb, sub, &r, fi);
	/* A job bound for the pool is accepted only where a thread can run it. */
	if (!err && kq_aio.be[r.flags & KQ_J_STREAM ? KQ_BE_STREAM : KQ_BE_MAIN]->workers)
		err = kq_tpool_ensure(&kq_aio.workers);
	pthread_mutex_lock(&kq_aio.lock);
	int busy = claim_cb(cb);
	if (busy) {
		pthread_mutex_unlock(&kq_aio.lock);
		kq_stats_rejected();
		*errp = busy;
		return -1;
	}
	struct kq_job *j = NULL;
	if (!err) {
		j = kq_job_alloc();
		if (!j)
			err = EAGAIN;
	}
	if (!err && cb->aio_sigevent.sigev_notify == SIGEV_KEVENT) {
		/* After claim_cb: a refused resubmission must not touch the knote
		 * of the job still running on this aiocb. */
		const struct sigevent *s = &cb->aio_sigevent;
		j->kn = kq_post_attach(s->sigev_notify_kqueue, EVFILT_AIO, (uintptr_t)cb,
				       s->sigev_value.sival_ptr,
				       (unsigned)s->sigev_notify_kevent_flags, &err);
		if (err)
			kq_job_free(j);
	}
	if (!err) {
		err = bind_job(j, cb, &r, list);
		if (!err)
			err = kq_fd_enqueue(j, fi);
		if (err) {
			/* Nothing was queued: undo the binding, record the failure. */
			kq_list_entry_undo(j);
			kq_list_del(&j->alink);
			kq_job_free(j);
		}
	}
	if (err)
		record_failure(cb, err);
	else if (list)
		kq_list_entry_queued(list);
	pthread_mutex_unlock(&kq_aio.lock);
	if (err) {
		kq_stats_rejected();
		*errp = err;
		return -1;
	}
	kq_stats_submitted();
	/* A job may ride with later ones: its owner's next AIO call or kevent()
	 * submits what waits, and so does the next completion, or the
	 * completion thread within a millisecond (a signal or a thread may be
	 * all the owner waits for). */
	KQ_BE_EACH(submitted, kq_config.batch);
	return 0;
}

static int submit_cb(struct aiocb *cb, int sub)
{
	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	kq_aio_init();
	int err;
	if (kq_submit(cb, sub, NULL, NULL, &err) < 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Not inside another public call's KQ_ENTER: inlined there, its frame would
 * be that call's, as if that call had been left (kq_enter). */
static int submit1(struct aiocb *cb, int sub)
{
	KQ_ENTER(nested);
	return submit_cb(cb, sub);
}

KQ_API int aio_read(struct aiocb *cb)
{
	return submit1(cb, SUB_READ);
}

KQ_API int aio_write(struct aiocb *cb)
{
	return submit1(cb, SUB_WRITE);
}

KQ_API int aio_readv(struct aiocb *cb)
{
	return submit1(cb, SUB_READV);
}

KQ_API int aio_writev(struct aiocb *cb)
{
	return submit1(cb, SUB_WRITEV);
}

KQ_API int aio_fsync(int op, struct aiocb *cb)
{
	KQ_ENTER(nested);
	if (op != O_SYNC && op != O_DSYNC) {
		if (cb) {
			kq_aio_init();
			kq_record_failure(cb, EINVAL);
		}
		errno = EINVAL;
		return -1;
	}
	return submit_cb(cb, op == O_SYNC ? SUB_FSYNC : SUB_FDSYNC);
}

/* lio_listio's opcodes to submission kinds; -1 for a bad opcode, -2 for NOP. */
int kq_lio_sub(int opcode)
{
	switch (opcode) {
	case LIO_READ:
		return SUB_READ;
	case LIO_WRITE:
		return SUB_WRITE;
	case LIO_READV:
		return SUB_READV;
	case LIO_WRITEV:
		return SUB_WRITEV;
	case LIO_NOP:
		return -2;
	default:
		return -1;
	}
}

/* Records a failure for an entry that never reaches kq_submit. */
void kq_record_failure(struct aiocb *cb, int err)
{
	pthread_mutex_lock(&kq_aio.lock);
	if (!kq_job_of(cb))
		record_failure(cb, err);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_stats_rejected();
}
