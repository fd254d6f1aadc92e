/* Per-fd state: submission order for streams and O_APPEND writes, and the
 * write list that makes aio_fsync a barrier for earlier writes on its fd. */
#include "aio/aio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct kq_fd *fd_get(int fd)
{
	if (fd >= kq_aio.nfds) {
		int n = kq_aio.nfds ? kq_aio.nfds : 64;
		while (n <= fd)
			n *= 2;
		struct kq_fd **t = realloc(kq_aio.fds, sizeof *t * (size_t)n);
		if (!t)
			return NULL;
		memset(t + kq_aio.nfds, 0, sizeof *t * (size_t)(n - kq_aio.nfds));
		kq_aio.fds = t;
		kq_aio.nfds = n;
	}
	struct kq_fd *f = kq_aio.fds[fd];
	if (!f) {
		f = calloc(1, sizeof *f);
		if (!f)
			return NULL;
		f->fd = fd;
		kq_list_init(&f->rq);
		kq_list_init(&f->wq);
		kq_list_init(&f->wb);
		kq_aio.fds[fd] = f;
	}
	return f;
}

void kq_fd_reset(void)
{
	/* After fork the table describes the parent's jobs: start a new one. */
	kq_aio.fds = NULL;
	kq_aio.nfds = 0;
}

static int is_sync(const struct kq_job *j)
{
	return j->op == KQ_OP_FSYNC || j->op == KQ_OP_FDSYNC;
}

int kq_fd_enqueue(struct kq_job *j)
{
	int sync = is_sync(j);
	if (!(j->flags & KQ_J_ORDERED) && j->op != KQ_OP_WRITE && !sync) {
		kq_dispatch(j);
		return 0;
	}
	struct kq_fd *f = fd_get(j->fd);
	if (!f)
		return EAGAIN;
	j->fdst = f;
	if (sync && !kq_list_empty(&f->wb)) {
		/* Only a write can head the list: fsyncs leave it as they reach the head. */
		kq_list_add_tail(&f->wb, &j->wlink);
		j->where = KQ_W_BARRIER;
		return 0;
	}
	if (j->op == KQ_OP_WRITE)
		kq_list_add_tail(&f->wb, &j->wlink);
	if (j->flags & KQ_J_ORDERED) {
		struct kq_link *q = j->op == KQ_OP_READ ? &f->rq : &f->wq;
		int head = kq_list_empty(q);
		kq_list_add_tail(q, &j->qlink);
		if (!head) {
			j->where = KQ_W_ORDER;
			return 0;
		}
	}
	kq_dispatch(j);
	return 0;
}

void kq_fd_job_done(struct kq_job *j)
{
	struct kq_fd *f = j->fdst;
	if (!f)
		return;
	if (!kq_list_empty(&j->wlink)) {
		kq_list_del(&j->wlink);
		struct kq_link *l;
		while ((l = kq_list_first(&f->wb))) {
			struct kq_job *s = kq_container_of(l, struct kq_job, wlink);
			if (!is_sync(s))
				break;
			kq_list_del(l);
			kq_dispatch(s);
		}
	}
	if (j->flags & KQ_J_ORDERED) {
		struct kq_link *q = j->op == KQ_OP_READ ? &f->rq : &f->wq;
		int was_head = q->next == &j->qlink;
		kq_list_del(&j->qlink);
		struct kq_link *l = kq_list_first(q);
		if (was_head && l)
			kq_dispatch(kq_container_of(l, struct kq_job, qlink));
	}
}
