/* kevent(): apply the changelist in order, then report what is ready, waiting
 * in epoll_pwait2() on the kq fd itself for as long as the timeout allows. */
#include "kq/kq.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/futex.h"
#include "common/taskwork.h"

#define KQ_EPOLL_BATCH 64   /* on the stack */
#define KQ_EPOLL_MAX   4096 /* at most, per epoll_wait() */

/* Fill out from kn and apply what reporting does to it: ONESHOT deletes,
 * DISPATCH disables, CLEAR resets, and a level-triggered knote stays. */
int kq_report(struct kq *kq, struct kq_knote *kn, struct kevent *out, uint32_t pass)
{
	kn->pass = pass;
	*out = (struct kevent){.ident = kn->ident,
			       .filter = kn->filter,
			       .flags = kn->flags | kn->eflags,
			       .fflags = kn->fflags,
			       .data = kn->data,
			       .udata = kn->udata};
	kn->status &= ~KN_FRESH;
	if ((kn->flags & EV_ONESHOT) || (kn->status & KN_ONCE)) {
		kq_knote_drop(kq, kn);
		return 1;
	}
	if (kn->flags & EV_CLEAR) {
		kq_knote_dequeue(kq, kn);
		if (kn->fop->clear)
			kn->fop->clear(kq, kn);
	}
	if (kn->flags & EV_DISPATCH) {
		kq_knote_dequeue(kq, kn);
		kn->status |= KN_DISABLED;
		if (kn->fop->enable)
			kn->fop->enable(kq, kn);
	}
	if (kn->fop->reported)
		kn->fop->reported(kq, kn);
	return 1;
}

/* Report queued knotes, oldest first; a level-triggered one goes to the back,
 * and is not reported twice in one call (pass). */
static int collect(struct kq *kq, struct kevent *ev, int room, uint32_t pass)
{
	int n = 0;
	struct kq_link *l = kq->active.next, *end = kq->active.prev;
	while (n < room && l != &kq->active) {
		struct kq_link *next = l->next;
		struct kq_knote *kn = kq_container_of(l, struct kq_knote, alink);
		bool last = l == end;
		if (kn->pass != pass) {
			kq_knote_dequeue(kq, kn);
			if (!kn->fop->event || kn->fop->event(kq, kn)) {
				if (!(kn->flags & (EV_ONESHOT | EV_CLEAR | EV_DISPATCH)))
					kq_knote_activate(kq, kn);
				n += kq_report(kq, kn, &ev[n], pass);
			}
		}
		if (last)
			break;
		l = next;
	}
	return n;
}

static int change(struct kq *kq, const struct kevent *kev)
{
	const struct kq_filter *fop = kq_filter_of(kev->filter);
	if (!fop)
		return EINVAL;
	if (kev->flags & (EV_FORCEONESHOT | EV_KEEPUDATA))
		return EINVAL;
	struct kq_knote *kn = kq_knote_find(kq, kev->ident, kev->filter);
	if (kev->filter == EVFILT_READ || kev->filter == EVFILT_WRITE) {
		/* On BSD closing an fd deletes its knotes: those of a closed fd, or
		 * of the file its number named before, are gone now. */
		int err = kn || !(kev->flags & EV_ADD) ? kq_fd_check(kq, kev->ident) : 0;
		if (err && kn) {
			kq_fd_forget(kq, kev->ident);
			kn = NULL;
		}
		if (err == EBADF)
			return EBADF;
	}
	if (kev->flags & EV_DELETE) {
		if (!kn)
			return ENOENT;
		kq_knote_drop(kq, kn);
		return 0;
	}
	if (!kn) {
		if (!(kev->flags & EV_ADD))
			return ENOENT;
		if (!fop->attach)
			return EPERM; /* AIO and LIO knotes come from the AIO engine only */
		kn = kq_knote_new(kq, kev, fop);
		if (!kn)
			return ENOMEM;
		int err = fop->attach(kq, kn, kev);
		if (err) {
			kq_knote_unref(kn);
			return err;
		}
		kq_knote_insert(kq, kn);
		return 0;
	}
	/* A change to an existing knote: new udata and parameters; an already
	 * triggered knote stays triggered. */
	kn->udata = kev->udata;
	unsigned short was = kn->status & KN_DISABLED;
	if (kev->flags & EV_DISABLE) {
		kn->status |= KN_DISABLED;
		kq_knote_dequeue(kq, kn);
	} else if (kev->flags & (EV_ENABLE | EV_ADD)) {
		kn->status &= ~KN_DISABLED;
	}
	int err = 0;
	if (fop->touch) {
		err = fop->touch(kq, kn, kev);
	} else if (kev->filter != EVFILT_AIO && kev->filter != EVFILT_LIO) {
		kn->sfflags = kev->fflags;
		kn->sdata = kev->data;
	}
	if (!err && (kn->status & KN_DISABLED) != was && fop->enable && !(kn->status & KN_DEAD))
		fop->enable(kq, kn);
	return err;
}

static bool bad_timeout(const struct timespec *ts)
{
	return ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000);
}

static int epoll_wait_ts(int epfd, struct epoll_event *evs, int n, const struct timespec *ts)
{
	/* A thread that submitted to io_uring sleeps in ppoll() instead, which the
	 * kernel restarts after task work and fails with EINTR only for a signal;
	 * epoll_wait() would fail for both. */
	static const struct timespec zero;
	if (kq_taskwork && (!ts || ts->tv_sec || ts->tv_nsec)) {
		struct pollfd p = {.fd = epfd, .events = POLLIN};
		int r = ppoll(&p, 1, ts, NULL);
		if (r <= 0)
			return r;
		if (p.revents & POLLNVAL)
			return errno = EBADF, -1;
		ts = &zero;
	}
#ifdef SYS_epoll_pwait2
	static int no_pwait2;
	if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
		int r = (int)syscall(SYS_epoll_pwait2, epfd, evs, n, ts, NULL, (size_t)8);
		if (r >= 0 || errno != ENOSYS)
			return r;
		__atomic_store_n(&no_pwait2, 1, __ATOMIC_RELAXED);
	}
#endif
	int ms = -1;
	if (ts)
		ms = ts->tv_sec > 1000000
			 ? 1000000000
			 : (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	return epoll_wait(epfd, evs, n, ms);
}

/* Turn what epoll returned into reports and queued knotes. */
static int handle(struct kq *kq, const struct epoll_event *evs, int nev, struct kevent *ev,
		  int room, uint32_t pass)
{
	int n = 0;
	for (int i = 0; i < nev; i++) {
		uint64_t t = evs[i].data.u64;
		switch (KQ_TOKEN_TAG(t)) {
		case KQ_TAG_FD:
			n += kq_fd_event(kq, KQ_TOKEN_KEY(t), KQ_TOKEN_GEN(t), evs[i].events,
					 ev + n, room - n, pass);
			break;
		case KQ_TAG_TIMER:
			kq_timer_expire(kq);
			break;
		case KQ_TAG_SIGNAL:
			kq_signal_scan(kq);
			break;
		case KQ_TAG_VNODE:
			kq_vnode_read(kq);
			break;
		case KQ_TAG_PROC:
			kq_proc_event(kq, KQ_TOKEN_KEY(t), KQ_TOKEN_GEN(t));
			break;
		default: /* KQ_TAG_WAKE: this wait took the edge; the queue is read below */
			kq->armed = false;
			break;
		}
	}
	return n;
}

KQ_API int kevent(int fd, const struct kevent *changes, int nchanges, struct kevent *events,
		  int nevents, const struct timespec *timeout)
{
	KQ_ENTER(nested);
	if (nchanges < 0 || nevents < 0 || bad_timeout(timeout))
		return errno = EINVAL, -1;
	if ((nchanges && !changes) || (nevents && !events))
		return errno = EFAULT, -1;
	struct kq *kq = kq_get(fd);
	if (!kq)
		return errno = EBADF, -1;
	/* The number may name something else since the kq was closed: neither
	 * changes nor a wait may touch it. One system call per kevent(). */
	if (!kq_alive(kq)) {
		kq_dead(kq);
		kq_put(kq);
		return errno = EBADF, -1;
	}
	if (nevents && !nested)
		kq_aio_flush();
	pthread_mutex_lock(&kq->lock);
	uint32_t pass = ++kq->pass;
	int n = 0, err = 0;
	for (int i = 0; i < nchanges; i++) {
		int e = change(kq, &changes[i]);
		if (!e && !(changes[i].flags & EV_RECEIPT))
			continue;
		if (n < nevents) {
			events[n] = changes[i];
			events[n].flags = EV_ERROR;
			events[n++].data = e;
		} else if (e) {
			err = e; /* no room to report it: the call fails, later changes are not
				    applied */
			break;
		}
	}
	if (n || err || !nevents) {
		kq_unlock(kq);
		kq_put(kq);
		return err ? (errno = err, -1) : n;
	}

	struct timespec deadline, left, *tsp = NULL;
	if (timeout) {
		kq_deadline(timeout, &deadline); /* saturates: a timeout near LONG_MAX */
		left = *timeout;
		tsp = &left;
	}
	static const struct timespec zero;
	/* One epoll_wait() returns each ready fd once, so it takes as many as
	 * the caller has room for: libevent sizes its list to what came last. */
	struct epoll_event stack[KQ_EPOLL_BATCH], *evs = stack;
	int cap = KQ_EPOLL_BATCH;
	if (nevents > cap) {
		int big = nevents < KQ_EPOLL_MAX ? nevents : KQ_EPOLL_MAX;
		struct epoll_event *heap = malloc(sizeof *heap * (size_t)big);
		if (heap) {
			evs = heap;
			cap = big;
		}
	}
	for (bool again = false;; again = true) {
		n += collect(kq, events + n, nevents - n, pass);
		kq_unlock(kq);
		/* Waited once already: the kq may have been closed meanwhile, and
		 * its number must not be waited on again. */
		if (again && !kq_alive(kq)) {
			err = EBADF;
			kq_dead(kq);
			break;
		}
		int want = nevents - n < cap ? nevents - n : cap;
		uint64_t swallowed = kq_signal_swallowed();
		int r = want ? epoll_wait_ts(kq->wfd, evs, want, n ? &zero : tsp) : 0;
		/* A watched signal the program ignores interrupted the wait through
		 * our counting handler: no EINTR for that, as on BSD. */
		if (r < 0 && errno == EINTR && kq_signal_swallowed() != swallowed)
			r = 0;
		if (r < 0) {
			err = errno == EBADF || errno == EINVAL ? EBADF : errno;
			if (err == EBADF)
				kq_dead(kq);
			break;
		}
		pthread_mutex_lock(&kq->lock);
		int before = n;
		n += handle(kq, evs, r, events + n, nevents - n, pass);
		if (r > 0)
			n += collect(kq, events + n, nevents - n, pass);
		/* More ready than KQ_EPOLL_MAX: with room left, look again at once,
		 * until a batch brings nothing new this call. */
		if (r == want && n > before && n < nevents)
			continue;
		if (n || (timeout && !timeout->tv_sec && !timeout->tv_nsec)) {
			kq_unlock(kq);
			break;
		}
		if (timeout) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = deadline.tv_sec - now.tv_sec;
			left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_sec--;
				left.tv_nsec += 1000000000;
			}
			if (left.tv_sec < 0) {
				kq_unlock(kq);
				break;
			}
		}
	}
	kq_put(kq);
	if (evs != stack)
		free(evs);
	if (err && !n)
		return errno = err, -1;
	return n;
}
