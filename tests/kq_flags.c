/* kqueue flags and the changelist: EV_ONESHOT, EV_CLEAR, EV_DISPATCH,
 * EV_ENABLE/EV_DISABLE, EV_RECEIPT, modification by EV_ADD, error entries and
 * failing calls, bad arguments, timeouts, EINTR, and the kq fd's own readiness
 * (poll, nesting in a kq and in epoll). */
#include "kqt.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/event.h>
#include <time.h>

TestSuite(kq_flags, .timeout = 30);

static int kq_open(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

/* One change, no event list: 0 or the errno kevent failed with. */
static int kchange(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		   int64_t data, void *udata)
{
	struct kevent c;
	EV_SET(&c, ident, filter, flags, fflags, data, udata);
	int r = kevent(kq, &c, 1, NULL, 0, NULL);
	cr_assert(r == 0 || r == -1, "kevent returned %d", r);
	return r == 0 ? 0 : errno;
}

static void kadd(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		 int64_t data, void *udata)
{
	int e = kchange(kq, ident, filter, flags, fflags, data, udata);
	cr_assert_eq(e, 0, "change of %d on %d: %s", (int)filter, (int)ident, strerror(e));
}

/* Waits up to ms milliseconds for events (ms < 0: no timeout). */
static int kwait(int kq, struct kevent *ev, int n, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	memset(ev, 0, sizeof *ev * (size_t)n);
	int r = kevent(kq, NULL, 0, ev, n, ms < 0 ? NULL : &ts);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

static void none(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 0);
	cr_assert_eq(n, 0, "expected no event, got %d: ident %d filter %d flags %#x data %lld", n,
		     (int)ev[0].ident, ev[0].filter, ev[0].flags, (long long)ev[0].data);
}

static void none_50ms(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 50);
	cr_assert_eq(n, 0, "expected no event, got %d: ident %d filter %d flags %#x data %lld", n,
		     (int)ev[0].ident, ev[0].filter, ev[0].flags, (long long)ev[0].data);
}

static void check_ev(const struct kevent *e, uintptr_t ident, short filter, unsigned short flags,
		     int64_t data, void *udata)
{
	cr_assert_eq(e->ident, ident, "ident %lu, want %lu", (unsigned long)e->ident,
		     (unsigned long)ident);
	cr_assert_eq(e->filter, filter, "filter %d, want %d", e->filter, filter);
	cr_assert_eq(e->flags, flags, "ident %lu filter %d: flags %#x, want %#x",
		     (unsigned long)ident, filter, e->flags, flags);
	cr_assert_eq(e->data, data, "ident %lu filter %d: data %lld, want %lld",
		     (unsigned long)ident, filter, (long long)e->data, (long long)data);
	cr_assert_eq(e->udata, udata, "ident %lu filter %d: udata %p, want %p",
		     (unsigned long)ident, filter, e->udata, udata);
}

/* Logs what came, for a failing count. */
static void dump(const struct kevent *ev, int n)
{
	for (int i = 0; i < n; i++)
		cr_log_info("event %d: ident %lu filter %d flags %#x fflags %#x data %lld udata %p",
			    i, (unsigned long)ev[i].ident, ev[i].filter, ev[i].flags, ev[i].fflags,
			    (long long)ev[i].data, ev[i].udata);
}

/* Exactly one event comes within 5 s, and it is this one. */
static void expect1(int kq, uintptr_t ident, short filter, unsigned short flags, int64_t data,
		    void *udata)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 5000);
	if (n != 1)
		dump(ev, n);
	cr_assert_eq(n, 1, "ident %lu filter %d: %d events, want 1", (unsigned long)ident, filter,
		     n);
	check_ev(&ev[0], ident, filter, flags, data, udata);
}

static void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

static void xread(int fd, size_t n)
{
	char buf[256];
	while (n) {
		ssize_t r = read(fd, buf, n < sizeof buf ? n : sizeof buf);
		cr_assert(r > 0, "read: %s", strerror(errno));
		n -= (size_t)r;
	}
}

static void xpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
}

/* Is fd readable right now (ms: how long poll may wait)? */
static int readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, ms);
	cr_assert(r >= 0, "poll: %s", strerror(errno));
	return r == 1 && (p.revents & POLLIN);
}

static int ua, ub, uc; /* udata markers */

/* ---- EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_DISABLE/EV_ENABLE ---- */

Test(kq_flags, oneshot_reported_once_then_gone)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, &ua);
	xwrite(p[1], "abc", 3);
	expect1(kq, p[0], EVFILT_READ, EV_ONESHOT, 3, &ua);
	none_50ms(kq);
	xwrite(p[1], "d", 1);
	none_50ms(kq);
	cr_assert_eq(kchange(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT);
	/* The same with a non-fd filter. */
	kadd(kq, 7, EVFILT_USER, EV_ADD | EV_ONESHOT, NOTE_TRIGGER, 0, &ub);
	expect1(kq, 7, EVFILT_USER, EV_ONESHOT, 0, &ub);
	none(kq);
	cr_assert_eq(kchange(kq, 7, EVFILT_USER, EV_DELETE, 0, 0, NULL), ENOENT);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, clear_reports_once_per_write)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &ua);
	none_50ms(kq);
	xwrite(p[1], "abc", 3);
	expect1(kq, p[0], EVFILT_READ, EV_CLEAR, 3, &ua);
	/* The bytes are still there, but nothing new happened. */
	none_50ms(kq);
	xwrite(p[1], "de", 2);
	expect1(kq, p[0], EVFILT_READ, EV_CLEAR, 5, &ua);
	none_50ms(kq);
	xread(p[0], 5);
	none(kq);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, level_triggered_reported_on_every_call)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "abc", 3);
	for (int i = 0; i < 4; i++)
		expect1(kq, p[0], EVFILT_READ, 0, 3, &ua);
	xread(p[0], 2);
	expect1(kq, p[0], EVFILT_READ, 0, 1, &ua);
	xread(p[0], 1);
	none_50ms(kq);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* However long a knote stays ready, one kevent() call reports it once. */
Test(kq_flags, knote_reported_once_per_call)
{
	int kq = kq_open();
	struct kevent ev[8];
	/* A user event without EV_CLEAR stays triggered. */
	kadd(kq, 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, &ua);
	for (int i = 0; i < 2; i++) {
		int n = kwait(kq, ev, 8, 5000);
		if (n != 1)
			dump(ev, n);
		cr_assert_eq(n, 1, "user event: %d events in one call", n);
		check_ev(&ev[0], 1, EVFILT_USER, 0, 0, &ua);
	}
	kadd(kq, 1, EVFILT_USER, EV_DELETE, 0, 0, NULL);
	/* A regular file is always readable. */
	int fd = kqt_file(10);
	kadd(kq, fd, EVFILT_READ, EV_ADD, 0, 0, &ub);
	for (int i = 0; i < 2; i++) {
		int n = kwait(kq, ev, 8, 5000);
		if (n != 1)
			dump(ev, n);
		cr_assert_eq(n, 1, "regular file: %d events in one call", n);
		check_ev(&ev[0], fd, EVFILT_READ, 0, 10, &ub);
	}
	kadd(kq, fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
	close(fd);
	/* An EV_CLEAR WRITE just added on a writable socket: one report. */
	int s[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, &uc);
	int n = kwait(kq, ev, 8, 5000);
	if (n != 1)
		dump(ev, n);
	cr_assert_eq(n, 1, "EV_CLEAR write: %d events in one call", n);
	cr_assert_eq(ev[0].ident, (uintptr_t)s[0]);
	cr_assert_eq(ev[0].filter, EVFILT_WRITE);
	cr_assert_eq(ev[0].flags, EV_CLEAR);
	cr_assert_gt(ev[0].data, 0);
	cr_assert_eq(ev[0].udata, &uc);
	none_50ms(kq);
	close(s[0]);
	close(s[1]);
	close(kq);
}

Test(kq_flags, dispatch_reports_once_until_enabled)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0, &ua);
	xwrite(p[1], "abc", 3);
	expect1(kq, p[0], EVFILT_READ, EV_DISPATCH, 3, &ua);
	none_50ms(kq);
	xwrite(p[1], "d", 1);
	none_50ms(kq);
	kadd(kq, p[0], EVFILT_READ, EV_ENABLE, 0, 0, &ub);
	expect1(kq, p[0], EVFILT_READ, EV_DISPATCH, 4, &ub);
	none_50ms(kq);
	/* Still there, disabled: it can be deleted. */
	kadd(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, disable_and_enable)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "abc", 3);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &ua);
	kadd(kq, p[0], EVFILT_READ, EV_DISABLE, 0, 0, &ua);
	none_50ms(kq);
	xwrite(p[1], "d", 1);
	none_50ms(kq);
	kadd(kq, p[0], EVFILT_READ, EV_ENABLE, 0, 0, &ua);
	expect1(kq, p[0], EVFILT_READ, 0, 4, &ua);
	expect1(kq, p[0], EVFILT_READ, 0, 4, &ua);
	/* A user event triggered while disabled comes when enabled. */
	kadd(kq, 3, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, &ub);
	kadd(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	kadd(kq, 3, EVFILT_USER, EV_DISABLE, 0, 0, &ub);
	kadd(kq, 3, EVFILT_USER, 0, NOTE_TRIGGER, 0, &ub);
	none_50ms(kq);
	kadd(kq, 3, EVFILT_USER, EV_ENABLE, 0, 0, &ub);
	expect1(kq, 3, EVFILT_USER, EV_CLEAR, 0, &ub);
	none(kq);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, add_disabled)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	xwrite(p[1], "abc", 3);
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_DISABLE, 0, 0, &ua);
	none_50ms(kq);
	kadd(kq, p[0], EVFILT_READ, EV_ENABLE, 0, 0, &ua);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &ua);
	/* EV_ADD|EV_DISABLE on an existing knote disables it. */
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_DISABLE, 0, 0, &ub);
	none_50ms(kq);
	/* A plain EV_ADD enables it again. */
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &uc);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, add_existing_modifies_without_duplicate)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "abc", 3);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &ua);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ub);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &ub);
	/* Twice in one changelist: still one knote, the last udata. */
	struct kevent c[2];
	EV_SET(&c[0], p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	EV_SET(&c[1], p[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	cr_assert_eq(kevent(kq, c, 2, NULL, 0, NULL), 0);
	expect1(kq, p[0], EVFILT_READ, 0, 3, &uc);
	/* One delete takes it all. */
	kadd(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	none_50ms(kq);
	cr_assert_eq(kchange(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT);
	/* A triggered user event re-added: one event, the new udata. */
	kadd(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_TRIGGER, 0, &ua);
	kadd(kq, 9, EVFILT_USER, EV_ADD, 0, 0, &ub);
	expect1(kq, 9, EVFILT_USER, EV_CLEAR, 0, &ub);
	none(kq);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* ---- the changelist: errors, receipts ---- */

Test(kq_flags, missing_knote_is_enoent_entry)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	struct kevent c[3], ev[4];
	EV_SET(&c[0], p[0], EVFILT_READ, EV_DELETE, 0, 0, &ua);
	EV_SET(&c[1], 1234, EVFILT_USER, EV_DELETE, 0, 0, &ub);
	EV_SET(&c[2], 1234, EVFILT_TIMER, EV_ENABLE, 0, 0, &uc);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, c, 3, ev, 4, NULL), 3);
	check_ev(&ev[0], p[0], EVFILT_READ, EV_ERROR, ENOENT, &ua);
	check_ev(&ev[1], 1234, EVFILT_USER, EV_ERROR, ENOENT, &ub);
	check_ev(&ev[2], 1234, EVFILT_TIMER, EV_ERROR, ENOENT, &uc);
	cr_assert_eq(kchange(kq, 1234, EVFILT_USER, EV_DISABLE, 0, 0, NULL), ENOENT);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* No room for the error: the call fails and the rest of the list is not applied. */
Test(kq_flags, error_without_room_fails_and_stops)
{
	int kq = kq_open();
	struct kevent c[3];
	EV_SET(&c[0], 1, EVFILT_USER, EV_ADD, 0, 0, &ua);
	EV_SET(&c[1], 2, EVFILT_USER, EV_DELETE, 0, 0, &ub);
	EV_SET(&c[2], 3, EVFILT_USER, EV_ADD, 0, 0, &uc);
	errno = 0;
	cr_assert_eq(kevent(kq, c, 3, NULL, 0, NULL), -1);
	cr_assert_eq(errno, ENOENT, "errno %d", errno);
	/* The change before the failure was applied, the one after was not. */
	struct kevent d[2], ev[4];
	EV_SET(&d[0], 1, EVFILT_USER, EV_DELETE, 0, 0, &ua);
	EV_SET(&d[1], 3, EVFILT_USER, EV_DELETE, 0, 0, &uc);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, d, 2, ev, 4, NULL), 1);
	check_ev(&ev[0], 3, EVFILT_USER, EV_ERROR, ENOENT, &uc);
	close(kq);
}

/* With room the error is an entry, later changes are applied, and the call
 * returns at once even with no timeout. */
Test(kq_flags, error_entry_does_not_stop_later_changes)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	struct kevent c[3], ev[4];
	EV_SET(&c[0], 2, EVFILT_USER, EV_DELETE, 0, 0, &ua);
	EV_SET(&c[1], 3, EVFILT_USER, EV_ADD, 0, 0, &ub);
	EV_SET(&c[2], p[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, c, 3, ev, 4, NULL), 1);
	check_ev(&ev[0], 2, EVFILT_USER, EV_ERROR, ENOENT, &ua);
	/* Both later changes took. */
	kadd(kq, 3, EVFILT_USER, 0, NOTE_TRIGGER, 0, &ub);
	expect1(kq, 3, EVFILT_USER, 0, 0, &ub);
	kadd(kq, 3, EVFILT_USER, EV_DELETE, 0, 0, NULL);
	xwrite(p[1], "xy", 2);
	expect1(kq, p[0], EVFILT_READ, 0, 2, &uc);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* An error entry is returned without the ready events beside it. */
Test(kq_flags, error_entry_returns_without_events)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "x", 1);
	struct kevent c, ev[4];
	EV_SET(&c, 5, EVFILT_USER, EV_DELETE, 0, 0, &ub);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, &c, 1, ev, 4, NULL), 1);
	check_ev(&ev[0], 5, EVFILT_USER, EV_ERROR, ENOENT, &ub);
	expect1(kq, p[0], EVFILT_READ, 0, 1, &ua);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, receipt_reports_each_change_and_does_not_wait)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	/* Something is ready: a receipt call still returns only the receipts. */
	xwrite(p[1], "abcd", 4);
	struct kevent c[3], ev[8];
	EV_SET(&c[0], p[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, &ua);
	EV_SET(&c[1], 11, EVFILT_USER, EV_ADD | EV_RECEIPT | EV_ONESHOT, NOTE_TRIGGER, 0, &ub);
	EV_SET(&c[2], 12, EVFILT_USER, EV_DELETE | EV_RECEIPT, 0, 0, &uc);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, c, 3, ev, 8, NULL), 3);
	check_ev(&ev[0], p[0], EVFILT_READ, EV_ERROR, 0, &ua);
	check_ev(&ev[1], 11, EVFILT_USER, EV_ERROR, 0, &ub);
	check_ev(&ev[2], 12, EVFILT_USER, EV_ERROR, ENOENT, &uc);
	/* The added knotes are live and report as usual, not as errors. */
	int seen_r = 0, seen_u = 0;
	for (int k = 0; k < 3 && !(seen_r && seen_u); k++) {
		struct kevent got[8];
		int n = kwait(kq, got, 8, 5000);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(got[i].flags & (EV_ERROR | EV_EOF), 0, "flags %#x",
				     got[i].flags);
			if (got[i].filter == EVFILT_READ) {
				cr_assert_eq(got[i].ident, (uintptr_t)p[0]);
				cr_assert_eq(got[i].data, 4);
				cr_assert_eq(got[i].udata, &ua);
				seen_r++;
			} else {
				cr_assert_eq(got[i].filter, EVFILT_USER);
				cr_assert_eq(got[i].ident, 11);
				cr_assert_eq(got[i].udata, &ub);
				cr_assert(got[i].flags & EV_ONESHOT, "flags %#x", got[i].flags);
				seen_u++;
			}
		}
	}
	cr_assert(seen_r >= 1, "no READ event");
	cr_assert_eq(seen_u, 1, "the oneshot user event came %d times", seen_u);
	/* A receipt-only call on an empty kq returns too (no timeout given). */
	int kq2 = kq_open();
	EV_SET(&c[0], 1, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, &uc);
	cr_assert_eq(kevent(kq2, c, 1, ev, 8, NULL), 1);
	check_ev(&ev[0], 1, EVFILT_USER, EV_ERROR, 0, &uc);
	close(kq2);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, unknown_filter_is_einval)
{
	int kq = kq_open();
	short bad[] = {-99, 5, 0, -(EVFILT_SYSCOUNT + 1)};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(kchange(kq, 1, bad[i], EV_ADD, 0, 0, NULL), EINVAL, "filter %d",
			     bad[i]);
		struct kevent c, ev[2];
		EV_SET(&c, 1, bad[i], EV_ADD, 0, 0, &ua);
		memset(ev, 0, sizeof ev);
		cr_assert_eq(kevent(kq, &c, 1, ev, 2, NULL), 1, "filter %d", bad[i]);
		check_ev(&ev[0], 1, bad[i], EV_ERROR, EINVAL, &ua);
	}
	none(kq);
	close(kq);
}

Test(kq_flags, aio_and_lio_add_is_eperm)
{
	int kq = kq_open();
	cr_assert_eq(kchange(kq, 1, EVFILT_AIO, EV_ADD, 0, 0, NULL), EPERM);
	cr_assert_eq(kchange(kq, 1, EVFILT_LIO, EV_ADD, 0, 0, NULL), EPERM);
	struct kevent c, ev[2];
	EV_SET(&c, 1, EVFILT_AIO, EV_ADD, 0, 0, &ua);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, &c, 1, ev, 2, NULL), 1);
	check_ev(&ev[0], 1, EVFILT_AIO, EV_ERROR, EPERM, &ua);
	none(kq);
	close(kq);
}

/* ---- bad kevent() calls ---- */

static void expect_fail(int kq, const struct kevent *c, int nc, int ne, const struct timespec *ts,
			int err)
{
	struct kevent ev[2];
	errno = 0;
	int r = kevent(kq, c, nc, ne > 0 ? ev : NULL, ne, ts);
	cr_assert_eq(r, -1, "kevent(%d, nchanges %d, nevents %d) returned %d", kq, nc, ne, r);
	cr_assert_eq(errno, err, "kevent(%d, nchanges %d, nevents %d): errno %d, want %d", kq, nc,
		     ne, errno, err);
}

Test(kq_flags, kevent_on_non_kq_fd_is_ebadf)
{
	static const struct timespec zero;
	struct kevent c;
	EV_SET(&c, 1, EVFILT_USER, EV_ADD, 0, 0, NULL);
	expect_fail(-1, NULL, 0, 1, &zero, EBADF);
	expect_fail(-1, &c, 1, 0, &zero, EBADF);
	/* A closed number. */
	int p[2];
	xpipe(p);
	close(p[0]);
	close(p[1]);
	expect_fail(p[0], NULL, 0, 1, &zero, EBADF);
	/* Not a kq. */
	int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert(dn >= 0);
	expect_fail(dn, NULL, 0, 1, &zero, EBADF);
	expect_fail(dn, &c, 1, 0, &zero, EBADF);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert(ep >= 0);
	expect_fail(ep, NULL, 0, 1, &zero, EBADF);
	expect_fail(ep, &c, 1, 0, &zero, EBADF);
	/* A closed kq, and its number reused by something else. */
	int kq = kq_open();
	close(kq);
	expect_fail(kq, NULL, 0, 1, &zero, EBADF);
	int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(other, kq, "/dev/null took fd %d, not %d", other, kq);
	expect_fail(kq, NULL, 0, 1, &zero, EBADF);
	close(other);
	/* A fresh kq on the number works. */
	kq = kq_open();
	cr_assert_eq(kq, other, "the new kq took fd %d, not %d", kq, other);
	cr_assert_eq(kevent(kq, &c, 1, NULL, 0, NULL), 0);
	close(kq);
	close(ep);
	close(dn);
}

Test(kq_flags, negative_counts_are_einval)
{
	int kq = kq_open();
	struct kevent c;
	EV_SET(&c, 1, EVFILT_USER, EV_ADD, 0, 0, NULL);
	static const struct timespec zero;
	struct kevent ev[2];
	errno = 0;
	cr_assert_eq(kevent(kq, &c, -1, ev, 2, &zero), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(kevent(kq, &c, 1, ev, -1, &zero), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(kevent(kq, NULL, 0, ev, -5, &zero), -1);
	cr_assert_eq(errno, EINVAL);
	close(kq);
}

Test(kq_flags, bad_timeout_is_einval)
{
	int kq = kq_open();
	struct timespec bad[] = {{0, 1000000000L}, {0, -1}, {1, 2000000000L}, {-1, 0}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_fail(kq, NULL, 0, 1, &bad[i], EINVAL);
	close(kq);
}

/* ---- timeouts ---- */

static void *write_later(void *arg)
{
	usleep(100 * 1000);
	int fd = *(int *)arg;
	cr_assert_eq(write(fd, "late", 4), 4);
	return NULL;
}

Test(kq_flags, timeouts)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	struct kevent ev[4];
	/* Zero: returns at once with nothing. */
	struct timespec zero = {0, 0};
	cr_assert_eq(kevent(kq, NULL, 0, ev, 4, &zero), 0);
	/* 50 ms: returns 0 once it passes. */
	struct timespec ms50 = {0, 50 * 1000000L};
	cr_assert_eq(kevent(kq, NULL, 0, ev, 4, &ms50), 0);
	/* None: waits for the write another thread makes. */
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, write_later, &p[1]), 0);
	memset(ev, 0, sizeof ev);
	int n = kevent(kq, NULL, 0, ev, 4, NULL);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(n, 1, "kevent returned %d (%s)", n, n < 0 ? strerror(errno) : "");
	check_ev(&ev[0], p[0], EVFILT_READ, 0, 4, &ua);
	close(p[0]);
	close(p[1]);
	close(kq);
}

static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

struct interrupter {
	pthread_t target;
	int wfd;
	volatile int done;
};

/* Signals the target every 100 ms until it says it is done; after 5 s gives
 * up and writes to the pipe so the test fails rather than hangs. */
static void *interrupt_loop(void *arg)
{
	struct interrupter *in = arg;
	for (int i = 0; i < 50 && !__atomic_load_n(&in->done, __ATOMIC_ACQUIRE); i++) {
		usleep(100 * 1000);
		if (!__atomic_load_n(&in->done, __ATOMIC_ACQUIRE))
			pthread_kill(in->target, SIGUSR1);
	}
	if (!__atomic_load_n(&in->done, __ATOMIC_ACQUIRE))
		cr_assert_eq(write(in->wfd, "x", 1), 1);
	return NULL;
}

Test(kq_flags, signal_interrupts_wait_with_eintr)
{
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	cr_assert_eq(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);

	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	struct interrupter in = {.target = pthread_self(), .wfd = p[1]};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, interrupt_loop, &in), 0);
	struct kevent ev[4];
	errno = 0;
	int r = kevent(kq, NULL, 0, ev, 4, NULL);
	int err = errno;
	__atomic_store_n(&in.done, 1, __ATOMIC_RELEASE);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(r, -1, "kevent returned %d, not -1/EINTR", r);
	cr_assert_eq(err, EINTR, "errno %d", err);
	cr_assert_geq(usr1_count, 1);
	/* The kq is fine afterwards. */
	none(kq);
	sigaction(SIGUSR1, &old, NULL);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* ---- the kq fd's own readiness ---- */

Test(kq_flags, kq_fd_polls_readable_while_event_pending)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	/* EV_CLEAR: readable until the event is taken. */
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &ua);
	/* doc/behaviour.md lets readiness lag until the next kevent() call. */
	none(kq);
	cr_assert_not(readable(kq, 0), "kq readable with nothing to report");
	xwrite(p[1], "ab", 2);
	cr_assert(readable(kq, 5000), "kq not readable with an event pending");
	cr_assert(readable(kq, 0));
	expect1(kq, p[0], EVFILT_READ, EV_CLEAR, 2, &ua);
	none(kq);
	cr_assert_not(readable(kq, 0), "kq readable with the event taken");
	kadd(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	xread(p[0], 2);

	/* EV_ONESHOT: the same. */
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0, &ub);
	cr_assert_not(readable(kq, 0));
	xwrite(p[1], "c", 1);
	cr_assert(readable(kq, 5000), "kq not readable with an event pending");
	expect1(kq, p[0], EVFILT_READ, EV_ONESHOT, 1, &ub);
	none(kq);
	cr_assert_not(readable(kq, 0), "kq readable with the oneshot event taken");

	/* Level-triggered: readable while the data waits, reported or not;
	 * deleting the knote ends it. */
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	cr_assert(readable(kq, 5000));
	expect1(kq, p[0], EVFILT_READ, 0, 1, &uc);
	cr_assert(readable(kq, 0), "kq not readable with a level event still pending");
	kadd(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	none(kq);
	cr_assert_not(readable(kq, 0), "kq readable with the knote deleted");

	/* A user event: triggered, readable; taken (EV_CLEAR), not. */
	kadd(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, &ua);
	cr_assert_not(readable(kq, 0));
	kadd(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, &ua);
	cr_assert(readable(kq, 5000));
	expect1(kq, 1, EVFILT_USER, EV_CLEAR, 0, &ua);
	none(kq);
	cr_assert_not(readable(kq, 0));
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_flags, kq_nested_in_kq)
{
	int inner = kq_open(), outer = kq_open(), p[2];
	xpipe(p);
	kadd(inner, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &ua);
	none(inner); /* readiness may lag until a kevent() call */
	kadd(outer, inner, EVFILT_READ, EV_ADD, 0, 0, &ub);
	none_50ms(outer);
	xwrite(p[1], "abc", 3);
	struct kevent ev[4];
	int n = kwait(outer, ev, 4, 5000);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].ident, (uintptr_t)inner);
	cr_assert_eq(ev[0].filter, EVFILT_READ);
	cr_assert_eq(ev[0].flags, 0, "flags %#x", ev[0].flags);
	cr_assert_eq(ev[0].udata, &ub);
	cr_log_info("nested kq: data %lld", (long long)ev[0].data);
	/* Level-triggered on the outer: still there until the inner is drained. */
	n = kwait(outer, ev, 4, 5000);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].ident, (uintptr_t)inner);
	expect1(inner, p[0], EVFILT_READ, EV_CLEAR, 3, &ua);
	none(inner);
	none_50ms(outer);
	close(p[0]);
	close(p[1]);
	close(outer);
	close(inner);
}

Test(kq_flags, kq_nested_in_epoll)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &ua);
	none(kq); /* readiness may lag until a kevent() call */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert(ep >= 0);
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = 77};
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, kq, &e), 0, "epoll_ctl: %s", strerror(errno));
	struct epoll_event out[2];
	cr_assert_eq(epoll_wait(ep, out, 2, 0), 0);
	xwrite(p[1], "abc", 3);
	int n = epoll_wait(ep, out, 2, 5000);
	cr_assert_eq(n, 1);
	cr_assert_eq(out[0].data.u64, 77);
	cr_assert(out[0].events & EPOLLIN);
	expect1(kq, p[0], EVFILT_READ, EV_CLEAR, 3, &ua);
	none(kq);
	cr_assert_eq(epoll_wait(ep, out, 2, 0), 0);
	/* A user event too. */
	kadd(kq, 4, EVFILT_USER, EV_ADD | EV_ONESHOT, NOTE_TRIGGER, 0, &ub);
	cr_assert_eq(epoll_wait(ep, out, 2, 5000), 1);
	expect1(kq, 4, EVFILT_USER, EV_ONESHOT, 0, &ub);
	none(kq);
	cr_assert_eq(epoll_wait(ep, out, 2, 0), 0);
	close(ep);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* ---- an empty kq ---- */

Test(kq_flags, empty_kq)
{
	int kq = kq_open();
	struct kevent ev[4];
	struct timespec zero = {0, 0};
	cr_assert_eq(kevent(kq, NULL, 0, ev, 4, &zero), 0);
	/* No events asked for: returns at once even with no timeout. */
	cr_assert_eq(kevent(kq, NULL, 0, NULL, 0, NULL), 0);
	cr_assert_eq(kevent(kq, NULL, 0, ev, 0, NULL), 0);
	cr_assert_not(readable(kq, 0));
	close(kq);
}
