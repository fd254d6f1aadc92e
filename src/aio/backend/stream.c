/* Streams (pipes, sockets, ttys): a job waits for readiness in one epoll set
 * served by one thread, not in a blocked worker, so it stays cancellable. A
 * write is tried before it waits: readiness can say no where a write would
 * go through (an AF_UNIX datagram socket is writable to poll only while a
 * quarter of its send buffer is free). */
#include "aio/backend/backend.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/env.h"

static struct kq_job *head_in(struct kq_link *q)
{
	struct kq_link *l = kq_list_first(q);
	struct kq_job *j = l ? kq_container_of(l, struct kq_job, qlink) : NULL;
	return j && j->where == KQ_W_POLL ? j : NULL;
}

/* Lock held. Runs j's non-blocking transfer with the lock dropped. */
static void try_io(struct kq_job *j, struct kq_batch *b)
{
	kq_job_move(j, KQ_W_RUNNING);
	pthread_mutex_unlock(&kq_aio.lock);
	ssize_t res;
	int err;
	int r = kq_job_io(j, 1, &res, &err);
	pthread_mutex_lock(&kq_aio.lock);
	if (r == EAGAIN) {
		kq_job_move(j, KQ_W_POLL);
	} else if (r == EOPNOTSUPP) {
		j->flags |= KQ_J_BLOCKING; /* no RWF_NOWAIT here (a tty): block in a worker */
		kq_pool_submit(j);
	} else {
		kq_complete_locked(j, res, err, b);
	}
}

static int kick_fd = -1;     /* an eventfd in the set: kicked has work */
static struct kq_fd *kicked; /* lock held: write heads to try, each held */

static void arm(struct kq_fd *f);

/* Tries the write heads kick() queued; waits for those that must. */
static void run_kicked(int epfd)
{
	uint64_t v;
	if (read(kick_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&kq_aio.lock);
	struct kq_fd *f;
	while (kq_aio.epfd == epfd && (f = kicked)) {
		kicked = f->next_free;
		f->kicked = 0;
		struct kq_batch b;
		kq_batch_init(&b);
		struct kq_job *j = head_in(&f->wq);
		if (j)
			try_io(j, &b);
		arm(f);
		kq_fd_put(f);
		pthread_mutex_unlock(&kq_aio.lock);
		kq_batch_flush(&b);
		pthread_mutex_lock(&kq_aio.lock);
	}
	pthread_mutex_unlock(&kq_aio.lock);
}

static void *poller(void *arg)
{
	int epfd = (int)(intptr_t)arg;
	pthread_setname_np(pthread_self(), "kqaio-poll");
	struct epoll_event ev[64];
	for (;;) {
		int n = epoll_wait(epfd, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			struct kq_fd *f = ev[i].data.ptr;
			if (!f) {
				run_kicked(epfd);
				continue;
			}
			uint32_t e = ev[i].events;
			int any = e & (EPOLLERR | EPOLLHUP);
			struct kq_batch b;
			kq_batch_init(&b);
			pthread_mutex_lock(&kq_aio.lock);
			if (kq_aio.epfd != epfd) { /* a forked child's copy of us never runs */
				pthread_mutex_unlock(&kq_aio.lock);
				return NULL;
			}
			f->armed = 0;
			struct kq_job *j;
			if ((any || (e & EPOLLIN)) && (j = head_in(&f->rq)))
				try_io(j, &b);
			if ((any || (e & EPOLLOUT)) && (j = head_in(&f->wq)))
				try_io(j, &b);
			arm(f);
			pthread_mutex_unlock(&kq_aio.lock);
			kq_batch_flush(&b);
		}
	}
	return NULL;
}

static int start(void)
{
	if (kq_aio.epfd >= 0)
		return 0;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = 0;
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (kick_fd < 0 || epoll_ctl(fd, EPOLL_CTL_ADD, kick_fd, &ev) < 0)
		err = errno;
	if (!err)
		err = kq_thread_start(NULL, 64 * 1024, poller, (void *)(intptr_t)fd);
	if (err) {
		kq_close(fd);
		if (kick_fd >= 0)
			kq_close(kick_fd);
		kick_fd = -1;
		return err;
	}
	kq_aio.epfd = fd;
	return 0;
}

static void kick(struct kq_fd *f)
{
	if (f->kicked)
		return;
	if (start()) {
		arm(f); /* falls back to workers */
		return;
	}
	f->kicked = 1;
	f->refs++;
	f->next_free = kicked;
	kicked = f;
	uint64_t one = 1;
	if (write(kick_fd, &one, sizeof one) < 0)
		kq_debug("kick: %s", strerror(errno));
}

/* Lock held: the fd cannot be waited on; its head jobs block in workers. */
static void to_workers(struct kq_fd *f)
{
	struct kq_job *j;
	if ((j = head_in(&f->rq))) {
		j->flags |= KQ_J_BLOCKING;
		kq_pool_submit(j);
	}
	if ((j = head_in(&f->wq))) {
		j->flags |= KQ_J_BLOCKING;
		kq_pool_submit(j);
	}
}

static void arm(struct kq_fd *f)
{
	uint32_t want = (head_in(&f->rq) ? EPOLLIN : 0) | (head_in(&f->wq) ? EPOLLOUT : 0);
	if (!want || (want & f->armed) == want)
		return;
	int err = start();
	if (err) {
		kq_debug("no epoll for streams (%d); blocking in workers", err);
		to_workers(f);
		return;
	}
	struct epoll_event ev = {.events = want | EPOLLONESHOT, .data.ptr = f};
	int r = epoll_ctl(kq_aio.epfd, f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, f->kfd, &ev);
	if (r < 0 && (errno == ENOENT || errno == EEXIST))
		r = epoll_ctl(kq_aio.epfd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, f->kfd,
			      &ev);
	if (r < 0) {
		/* EPERM: the file cannot be polled (/dev/zero, a regular file). EBADF: the
		 * fd was closed; the worker's transfer will report it. */
		to_workers(f);
		return;
	}
	f->registered = 1;
	f->armed = want;
}

static void fork_child(void)
{
	if (kq_aio.epfd >= 0) {
		kq_close(kq_aio.epfd);
		kq_close(kick_fd);
	}
	kq_aio.epfd = kick_fd = -1;
	kicked = NULL;
}

/* Held: a stream job that can be polled waits for readiness; a write is
 * tried first. */
static int queue(struct kq_job *j)
{
	if ((j->flags & (KQ_J_STREAM | KQ_J_BLOCKING)) != KQ_J_STREAM)
		return EOPNOTSUPP;
	kq_job_move(j, KQ_W_POLL);
	j->be = &kq_be_stream;
	if (j->op == KQ_OP_WRITE)
		kick(j->fdst);
	else
		arm(j->fdst);
	return 0;
}

const struct kq_backend kq_be_stream = {
    .name = "stream",
    .workers = 1, /* a stream that cannot be polled blocks in a worker */
    .queue = queue,
    .fork_child = fork_child,
};
