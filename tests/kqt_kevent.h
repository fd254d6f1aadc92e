/* Shared helpers for the tests of AIO completions through kqueue (kevent_aio, kevent_life):
 * event formatting, waiting for events or for a job, and checked pipe/write/kqueue. */
#ifndef KQT_KEVENT_H
#define KQT_KEVENT_H

#include <sys/event.h>
#include <time.h>

#include "kqt.h"

#define EVFMT "ident %#lx filter %d flags %#x fflags %#x data %lld udata %p"
#define EVARG(e)                                                                                   \
	(unsigned long)(e)->ident, (e)->filter, (e)->flags, (e)->fflags, (long long)(e)->data,     \
	    (e)->udata

/* Up to n events within ms milliseconds. */
static inline int kev_get(int kq, struct kevent *ev, int n, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int r;
	do
		r = kevent(kq, NULL, 0, ev, n, &ts);
	while (r < 0 && errno == EINTR);
	cr_assert_geq(r, 0, "kevent: %s", strerror(errno));
	return r;
}

/* Nothing is reported within ms milliseconds. */
static inline void no_events(int kq, long ms, const char *what)
{
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, ms);
	cr_assert_eq(r, 0, "%s: %d event(s), the first " EVFMT, what, r, EVARG(&ev[0]));
}

/* Waits (up to 10 s) until cb is done, without reaping it. */
static inline void wait_done(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	for (int i = 0; i < 1000 && aio_error(cb) == EINPROGRESS; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		aio_suspend(l, 1, &ts);
	}
	cr_assert_neq(aio_error(cb), EINPROGRESS, "job on fd %d still in progress after 10 s",
		      cb->aio_fildes);
}

static inline void xpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
}

static inline void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

static inline int xkqueue(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

#endif
