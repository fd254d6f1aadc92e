/* kqueue(): the kq object, the registry from fd number to kq, and its end.
 *
 * The user closes a kq with close(), which we interpose: a thread asleep in
 * kevent() on it is woken and fails with EBADF, as on FreeBSD. A close we
 * never see (a raw system call, dup2 over it) is found later: when its fd
 * number comes back from epoll_create1() for a new kq, when kevent() finds
 * the number no longer names its epoll, or in a sweep once the registry has
 * doubled; its own fds are closed then, never the user's. Its epoll calls
 * go to a duplicate of the user's fd, so that the user's close never races
 * with one of them. */
#include "kq/kq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kq **reg;
static size_t reg_cap, reg_live, reg_sweep_at = 64;

static void destroy(struct kq *kq)
{
	pthread_mutex_lock(&kq->lock);
	kq_knote_free_all(kq);
	pthread_mutex_unlock(&kq->lock);
	kq_close(kq->wfd);
	kq_close(kq->evfd);
	if (kq->tmfd >= 0)
		kq_close(kq->tmfd);
	if (kq->inofd >= 0)
		kq_close(kq->inofd);
	free(kq->fds);
	free(kq->heap);
	pthread_mutex_destroy(&kq->lock);
	free(kq);
}

/* Atomic, so a reference can go under any lock but the kq's own: the last
 * put (which destroys) never happens under it, since whoever holds the kq
 * lock holds a reference too. */
void kq_put(struct kq *kq)
{
	if (__atomic_sub_fetch(&kq->refs, 1, __ATOMIC_ACQ_REL) == 0)
		destroy(kq);
}

/* Called with reg_lock held: the registry lets go of a closed kq. Its posted
 * AIO and LIO knotes go too, or an unread one would keep it alive forever. */
static void forget_locked(struct kq *kq)
{
	if ((size_t)kq->epfd >= reg_cap || reg[kq->epfd] != kq)
		return;
	reg[kq->epfd] = NULL;
	__atomic_sub_fetch(&reg_live, 1, __ATOMIC_RELAXED); /* close() looks without the lock */
	__atomic_add_fetch(&kq->refs, 1, __ATOMIC_RELAXED);
	kq_put(kq); /* the registry's */
	kq_drop_posted(kq);
	kq_put(kq);
}

void kq_dead(struct kq *kq)
{
	pthread_mutex_lock(&reg_lock);
	forget_locked(kq);
	pthread_mutex_unlock(&reg_lock);
}

/* Does the user's number still name kq's epoll? Adding the wake eventfd
 * again answers EEXIST only there; anything else means the number was closed
 * or reused. The system call is made raw: the probe is meant to meet a
 * concurrent close, which ThreadSanitizer's fd model would call a race. */
bool kq_alive(struct kq *kq)
{
	/* No events asked: if the number is someone else's epoll, the moment the
	 * eventfd spends in it before the DEL queues nothing there. */
	struct epoll_event ev = {.events = 0, .data.u64 = KQ_TOKEN(KQ_TAG_WAKE, 0, 0)};
	if (syscall(SYS_epoll_ctl, kq->epfd, EPOLL_CTL_ADD, kq->evfd, &ev) == 0) {
		/* someone else's epoll */
		syscall(SYS_epoll_ctl, kq->epfd, EPOLL_CTL_DEL, kq->evfd, NULL);
		return false;
	}
	return errno == EEXIST;
}

struct kq *kq_get(int fd)
{
	struct kq *kq = NULL;
	pthread_mutex_lock(&reg_lock);
	if (fd >= 0 && (size_t)fd < reg_cap && (kq = reg[fd]))
		__atomic_add_fetch(&kq->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&reg_lock);
	return kq;
}

/* Forget every registered kq whose fd is gone; called with reg_lock held. */
static void sweep_locked(void)
{
	for (size_t i = 0; i < reg_cap; i++) {
		struct kq *kq = reg[i];
		if (kq && !kq_alive(kq))
			forget_locked(kq); /* destroy() takes no registry lock */
	}
	reg_sweep_at = reg_live * 2 > 64 ? reg_live * 2 : 64;
}

static int reg_grow(size_t need)
{
	size_t cap = reg_cap ? reg_cap : 64;
	while (cap <= need)
		cap *= 2;
	struct kq **r = realloc(reg, cap * sizeof *r);
	if (!r)
		return ENOMEM;
	memset(r + reg_cap, 0, (cap - reg_cap) * sizeof *r);
	reg = r;
	reg_cap = cap;
	return 0;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < reg_cap; i++)
		if (reg[i])
			pthread_mutex_lock(&reg[i]->lock);
	kq_signal_fork_prepare();
}

static void fork_parent(void)
{
	kq_signal_fork_parent();
	for (size_t i = 0; i < reg_cap; i++)
		if (reg[i])
			pthread_mutex_unlock(&reg[i]->lock);
	pthread_mutex_unlock(&reg_lock);
}

/* The child's kqs, abandoned: kept reachable, never used again. */
static struct kq *abandoned;

/* A forked child inherits no kqueue, as on BSD: it closes the copies it got.
 * Only closing: its epoll, timerfd and inotify fds share their open files
 * with the parent's, so any epoll_ctl, timerfd_settime or inotify_rm_watch
 * here would change the parent's kq. Signal handlers are per process. */
static void fork_child(void)
{
	kq_signal_fork_child();
	for (size_t i = 0; i < reg_cap; i++) {
		struct kq *kq = reg[i];
		if (!kq)
			continue;
		reg[i] = NULL;
		kq_close(kq->epfd);
		kq_close(kq->wfd);
		kq_close(kq->evfd);
		if (kq->tmfd >= 0)
			kq_close(kq->tmfd);
		if (kq->inofd >= 0)
			kq_close(kq->inofd);
		kq_proc_fork_child(kq);
		kq_signal_forget(kq);
		pthread_mutex_unlock(&kq->lock);
		kq->next_abandoned = abandoned;
		abandoned = kq;
	}
	__atomic_store_n(&reg_live, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&reg_lock);
}

/* Registered at load, before the AIO engine registers its own handlers at
 * first use: prepare handlers run in reverse, so the engine's lock is taken
 * before the kq locks, the order in which the engine nests them. */
__attribute__((constructor)) static void reg_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static int create(unsigned flags)
{
	(void)flags; /* every kq fd is close-on-exec: its state would not survive exec */
	struct kq *kq = calloc(1, sizeof *kq);
	if (!kq)
		return errno = ENOMEM, -1;
	pthread_mutex_init(&kq->lock, NULL);
	kq_list_init(&kq->active);
	kq_list_init(&kq->sigs);
	kq_list_init(&kq->vnodes);
	kq->tmfd = kq->inofd = -1;
	kq->refs = 1;
	kq->epfd = epoll_create1(EPOLL_CLOEXEC);
	kq->wfd = kq->epfd < 0 ? -1 : fcntl(kq->epfd, F_DUPFD_CLOEXEC, 0);
	kq->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET,
				 .data.u64 = KQ_TOKEN(KQ_TAG_WAKE, 0, 0)};
	int err = 0;
	if (kq->wfd < 0 || kq->evfd < 0 || epoll_ctl(kq->wfd, EPOLL_CTL_ADD, kq->evfd, &ev))
		err = errno;
	if (!err) {
		pthread_mutex_lock(&reg_lock);
		err = (size_t)kq->epfd >= reg_cap ? reg_grow((size_t)kq->epfd) : 0;
		struct kq *old = NULL;
		if (!err) {
			/* The number is ours again, so whatever had it was closed. */
			old = reg[kq->epfd];
			if (old)
				forget_locked(old);
			if (reg_live >= reg_sweep_at)
				sweep_locked();
			reg[kq->epfd] = kq;
			__atomic_add_fetch(&reg_live, 1, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&reg_lock);
	}
	if (err) {
		if (kq->epfd >= 0)
			kq_close(kq->epfd);
		if (kq->wfd >= 0)
			kq_close(kq->wfd);
		if (kq->evfd >= 0)
			kq_close(kq->evfd);
		pthread_mutex_destroy(&kq->lock);
		free(kq);
		return errno = err, -1;
	}
	return kq->epfd;
}

KQ_API int kqueue(void)
{
	KQ_ENTER(nested);
	return create(0);
}

KQ_API int kqueuex(unsigned int flags)
{
	KQ_ENTER(nested);
	if (flags & ~KQUEUE_CLOEXEC)
		return errno = EINVAL, -1;
	return create(flags);
}

KQ_API int close(int fd)
{
	KQ_ENTER(nested);
	if (!nested)
		kq_fd_closed(fd); /* before: after, the number may be another file's */
	struct kq *kq = __atomic_load_n(&reg_live, __ATOMIC_RELAXED) ? kq_get(fd) : NULL;
	int r = kq_close(fd);
	if (kq) {
		if (r == 0) {
			/* The sleepers look again, and find the number gone. */
			kq_dead(kq);
			uint64_t v = 1;
			ssize_t w = write(kq->evfd, &v, sizeof v);
			(void)w;
		}
		kq_put(kq);
	}
	return r;
}
