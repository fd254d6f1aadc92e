/* Moving a job's bytes with plain system calls, resuming after short transfers. */
#include "aio/aio.h"

#include <errno.h>
#include <unistd.h>

void kq_job_advance(struct kq_job *j, size_t n)
{
	while (n && j->iovcnt) {
		if (n >= j->iov->iov_len) {
			n -= j->iov->iov_len;
			j->iov++;
			j->iovcnt--;
		} else {
			j->iov->iov_base = (char *)j->iov->iov_base + n;
			j->iov->iov_len -= n;
			n = 0;
		}
	}
}

int kq_job_io(struct kq_job *j, int nowait, ssize_t *res, int *err)
{
	if (j->op == KQ_OP_FSYNC || j->op == KQ_OP_FDSYNC) {
		int r = j->op == KQ_OP_FSYNC ? fsync(j->kfd) : fdatasync(j->kfd);
		*res = r;
		*err = r ? errno : 0;
		return 0;
	}
	int stream = j->flags & KQ_J_STREAM;
	int flags = nowait ? RWF_NOWAIT : 0;
	while (j->done < j->nbytes) {
		off_t off = stream ? -1 : j->off + (off_t)j->done;
		ssize_t n = j->op == KQ_OP_READ ? preadv2(j->kfd, j->iov, j->iovcnt, off, flags)
						: pwritev2(j->kfd, j->iov, j->iovcnt, off, flags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (nowait && (errno == EAGAIN || errno == EOPNOTSUPP))
				return errno;
			if (j->done)
				break; /* report what moved before the error */
			*res = -1;
			*err = errno;
			return 0;
		}
		if (n == 0)
			break; /* end of file */
		j->done += (size_t)n;
		kq_job_advance(j, (size_t)n);
		if (stream && j->op == KQ_OP_READ)
			break; /* a stream read returns what has arrived */
	}
	*res = (ssize_t)j->done;
	*err = 0;
	return 0;
}
