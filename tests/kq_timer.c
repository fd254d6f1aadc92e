/* EVFILT_TIMER: units, periodic counts, one-shot and absolute timers, re-adding,
 * deleting, disabling, many timers on one kq, and the flags reported. */
#include "kqt.h"

#include <sys/event.h>
#include <time.h>

TestSuite(kq_timer, .timeout = 30);

static const struct timespec ts_5s = {5, 0};
static const struct timespec ts_0 = {0, 0};
static const struct timespec ts_50ms = {0, 50 * 1000000L};
static const struct timespec ts_100ms = {0, 100 * 1000000L};

static int kq_new(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

/* Applies one change: 0, or the errno it failed with. */
static int chg(int kq, uintptr_t ident, unsigned short flags, unsigned fflags, int64_t data,
	       void *udata)
{
	struct kevent kev;
	EV_SET(&kev, ident, EVFILT_TIMER, flags, fflags, data, udata);
	int r = kevent(kq, &kev, 1, NULL, 0, NULL);
	if (r == 0)
		return 0;
	cr_assert_eq(r, -1, "kevent returned %d", r);
	return errno;
}

static void add_ok(int kq, uintptr_t ident, unsigned short flags, unsigned fflags, int64_t data,
		   void *udata)
{
	int e = chg(kq, ident, EV_ADD | flags, fflags, data, udata);
	cr_assert_eq(e, 0, "EV_ADD timer %lu: %s", (unsigned long)ident, strerror(e));
}

static int wait_ev(int kq, struct kevent *ev, int n, const struct timespec *ts)
{
	int r = kevent(kq, NULL, 0, ev, n, ts);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

/* Waits (up to 5 s) for exactly one event, the timer ident, and returns it. */
static struct kevent one_fire(int kq, uintptr_t ident)
{
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1, "timer %lu: %d events in 5 s, want 1", (unsigned long)ident, n);
	cr_assert_eq(ev[0].ident, ident);
	cr_assert_eq(ev[0].filter, EVFILT_TIMER);
	cr_assert_eq(ev[0].flags & EV_ERROR, 0, "EV_ERROR, data %ld", (long)ev[0].data);
	cr_assert_geq(ev[0].data, 1);
	return ev[0];
}

static void nothing_within(int kq, const struct timespec *ts)
{
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, ts);
	cr_assert_eq(n, 0, "unexpected event: ident %lu filter %d data %ld",
		     (unsigned long)ev[0].ident, ev[0].filter, (long)ev[0].data);
}

/* A timer of the given length that must not have fired after 100 ms, then must fire. */
static void late_then_fires(unsigned fflags, int64_t data)
{
	int kq = kq_new();
	add_ok(kq, 11, EV_ONESHOT, fflags, data, (void *)0x11);
	nothing_within(kq, &ts_100ms);
	struct kevent ev = one_fire(kq, 11);
	cr_assert_eq(ev.data, 1);
	cr_assert_eq(ev.udata, (void *)0x11);
	close(kq);
}

Test(kq_timer, default_unit_is_milliseconds)
{
	/* 300 units: microseconds or nanoseconds would have fired, seconds would not fire. */
	late_then_fires(0, 300);
}

Test(kq_timer, note_mseconds)
{
	late_then_fires(NOTE_MSECONDS, 300);
}

Test(kq_timer, note_seconds_one_second)
{
	late_then_fires(NOTE_SECONDS, 1);
}

Test(kq_timer, note_useconds)
{
	int kq = kq_new();
	add_ok(kq, 5, EV_ONESHOT, NOTE_USECONDS, 20000, NULL);
	struct kevent ev = one_fire(kq, 5);
	cr_assert_eq(ev.data, 1);
	close(kq);
	/* 300000 us is 300 ms, not 300 us. */
	late_then_fires(NOTE_USECONDS, 300000);
}

Test(kq_timer, note_nseconds)
{
	int kq = kq_new();
	add_ok(kq, 6, EV_ONESHOT, NOTE_NSECONDS, 20000000, NULL);
	struct kevent ev = one_fire(kq, 6);
	cr_assert_eq(ev.data, 1);
	close(kq);
	late_then_fires(NOTE_NSECONDS, 300000000);
}

Test(kq_timer, periodic_counts_expirations_since_last_report)
{
	int kq = kq_new();
	add_ok(kq, 1, 0, NOTE_MSECONDS, 10, (void *)0xabc);
	usleep(60 * 1000); /* about 6 periods */
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1, "%d events, want one carrying the count", n);
	cr_assert_eq(ev[0].ident, 1);
	cr_assert_eq(ev[0].filter, EVFILT_TIMER);
	cr_assert_eq(ev[0].udata, (void *)0xabc);
	cr_assert_geq(ev[0].data, 2, "data %ld after ~6 periods", (long)ev[0].data);
	/* Periodic: it keeps firing. */
	struct kevent again = one_fire(kq, 1);
	cr_assert_geq(again.data, 1);
	close(kq);
}

Test(kq_timer, reported_flags_include_ev_clear)
{
	int kq = kq_new();
	add_ok(kq, 2, 0, 0, 200, NULL); /* EV_CLEAR not asked for */
	struct kevent ev = one_fire(kq, 2);
	cr_assert(ev.flags & EV_CLEAR, "flags 0x%x lack EV_CLEAR", ev.flags);
	cr_assert_eq(ev.flags & (EV_ADD | EV_ERROR | EV_EOF), 0, "flags 0x%x", ev.flags);
	/* Cleared by the report: right after it, nothing until the next period. */
	nothing_within(kq, &ts_0);
	close(kq);
}

Test(kq_timer, oneshot_fires_once_and_is_gone)
{
	int kq = kq_new();
	add_ok(kq, 3, EV_ONESHOT, 0, 10, (void *)3);
	struct kevent ev = one_fire(kq, 3);
	cr_assert_eq(ev.data, 1);
	cr_assert(ev.flags & EV_ONESHOT, "flags 0x%x", ev.flags);
	cr_assert_eq(ev.udata, (void *)3);
	nothing_within(kq, &ts_50ms);
	cr_assert_eq(chg(kq, 3, EV_DELETE, 0, 0, NULL), ENOENT);
	close(kq);
}

Test(kq_timer, abstime_realtime_deadline_fires_once)
{
	int kq = kq_new();
	struct timespec now;
	cr_assert_eq(clock_gettime(CLOCK_REALTIME, &now), 0);
	int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 50;
	/* EV_CLEAR given: FreeBSD does not force it on absolute timers. */
	add_ok(kq, 4, EV_CLEAR, NOTE_ABSTIME | NOTE_MSECONDS, ms, (void *)4);
	struct kevent ev = one_fire(kq, 4);
	cr_assert_eq(ev.data, 1);
	cr_assert_eq(ev.udata, (void *)4);
	struct timespec after;
	cr_assert_eq(clock_gettime(CLOCK_REALTIME, &after), 0);
	int64_t after_ms = (int64_t)after.tv_sec * 1000 + after.tv_nsec / 1000000;
	cr_assert_geq(after_ms, ms, "fired %ld ms before its deadline", (long)(ms - after_ms));
	/* Not periodic: nothing more. */
	nothing_within(kq, &ts_100ms);
	/* Still registered, as on FreeBSD: only EV_ONESHOT deletes on report. */
	cr_assert_eq(chg(kq, 4, EV_DELETE, 0, 0, NULL), 0);
	close(kq);
}

Test(kq_timer, abstime_in_seconds_and_past_deadline_fires_at_once)
{
	int kq = kq_new();
	struct timespec now;
	cr_assert_eq(clock_gettime(CLOCK_REALTIME, &now), 0);
	/* A deadline one second ago: due already. */
	add_ok(kq, 9, EV_CLEAR, NOTE_ABSTIME | NOTE_SECONDS, (int64_t)now.tv_sec - 1, NULL);
	struct kevent ev = one_fire(kq, 9);
	cr_assert_eq(ev.data, 1);
	nothing_within(kq, &ts_50ms);
	close(kq);
}

Test(kq_timer, readd_changes_the_period)
{
	int kq = kq_new();
	add_ok(kq, 7, 0, 0, 10000, (void *)1); /* 10 s */
	nothing_within(kq, &ts_50ms);
	add_ok(kq, 7, 0, 0, 10, (void *)2); /* now 10 ms */
	struct kevent ev = one_fire(kq, 7);
	cr_assert_eq(ev.udata, (void *)2, "udata not updated by the re-add");
	/* And the other way: a fast timer re-added as a slow one stops firing soon. */
	add_ok(kq, 7, 0, NOTE_SECONDS, 10, (void *)3);
	nothing_within(kq, &ts_100ms);
	close(kq);
}

Test(kq_timer, delete_stops_it)
{
	int kq = kq_new();
	add_ok(kq, 8, 0, 0, 10, NULL);
	one_fire(kq, 8);
	cr_assert_eq(chg(kq, 8, EV_DELETE, 0, 0, NULL), 0);
	nothing_within(kq, &ts_100ms);
	cr_assert_eq(chg(kq, 8, EV_DELETE, 0, 0, NULL), ENOENT);
	close(kq);
}

Test(kq_timer, delete_drops_a_pending_report)
{
	int kq = kq_new();
	add_ok(kq, 8, 0, 0, 5, NULL);
	usleep(30 * 1000); /* expired, not yet reported */
	cr_assert_eq(chg(kq, 8, EV_DELETE, 0, 0, NULL), 0);
	nothing_within(kq, &ts_50ms);
	close(kq);
}

Test(kq_timer, negative_data_is_einval)
{
	int kq = kq_new();
	cr_assert_eq(chg(kq, 12, EV_ADD, 0, -1, NULL), EINVAL);
	cr_assert_eq(chg(kq, 12, EV_ADD, NOTE_SECONDS, -5, NULL), EINVAL);
	/* Nothing was registered. */
	cr_assert_eq(chg(kq, 12, EV_DELETE, 0, 0, NULL), ENOENT);
	/* Reported as EV_ERROR when there is room for it. */
	struct kevent kev, out;
	EV_SET(&kev, 12, EVFILT_TIMER, EV_ADD, 0, -1, (void *)12);
	cr_assert_eq(kevent(kq, &kev, 1, &out, 1, &ts_0), 1);
	cr_assert_eq(out.flags, EV_ERROR);
	cr_assert_eq(out.data, EINVAL);
	cr_assert_eq(out.ident, 12);
	cr_assert_eq(out.filter, EVFILT_TIMER);
	cr_assert_eq(out.udata, (void *)12);
	close(kq);
}

Test(kq_timer, two_units_at_once_is_einval)
{
	int kq = kq_new();
	cr_assert_eq(chg(kq, 13, EV_ADD, NOTE_SECONDS | NOTE_MSECONDS, 10, NULL), EINVAL);
	cr_assert_eq(chg(kq, 13, EV_DELETE, 0, 0, NULL), ENOENT);
	close(kq);
}

Test(kq_timer, unknown_fflags_are_einval)
{
	/* FreeBSD accepts only the unit bits and NOTE_ABSTIME. */
	int kq = kq_new();
	cr_assert_eq(chg(kq, 14, EV_ADD, 0x100, 10, NULL), EINVAL);
	cr_assert_eq(chg(kq, 14, EV_DELETE, 0, 0, NULL), ENOENT);
	close(kq);
}

Test(kq_timer, disable_then_enable)
{
	int kq = kq_new();
	add_ok(kq, 20, 0, 0, 10, (void *)20);
	cr_assert_eq(chg(kq, 20, EV_DISABLE, 0, 0, (void *)20), 0);
	nothing_within(kq, &ts_100ms);
	cr_assert_eq(chg(kq, 20, EV_ENABLE, 0, 0, (void *)20), 0);
	struct kevent ev = one_fire(kq, 20);
	cr_assert_eq(ev.udata, (void *)20);
	cr_assert_eq(ev.flags & EV_DISABLE, 0);
	/* Enabled again: periodic, it keeps firing. */
	one_fire(kq, 20);
	close(kq);
}

Test(kq_timer, dispatch_reports_once_until_enabled)
{
	int kq = kq_new();
	add_ok(kq, 21, EV_DISPATCH, 0, 10, NULL);
	struct kevent ev = one_fire(kq, 21);
	cr_assert(ev.flags & EV_DISPATCH, "flags 0x%x", ev.flags);
	nothing_within(kq, &ts_100ms);
	cr_assert_eq(chg(kq, 21, EV_ENABLE, 0, 0, NULL), 0);
	one_fire(kq, 21);
	close(kq);
}

#define MANY 1000

Test(kq_timer, thousand_timers_all_fire_and_each_is_reported)
{
	int kq = kq_new();
	static struct kevent ch[MANY];
	for (int i = 0; i < MANY; i++)
		EV_SET(&ch[i], 100000 + i, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 1 + i % 50,
		       (void *)(intptr_t)i);
	cr_assert_eq(kevent(kq, ch, MANY, NULL, 0, NULL), 0, "kevent: %s", strerror(errno));
	static unsigned char seen[MANY];
	memset(seen, 0, sizeof seen);
	int got = 0;
	while (got < MANY) {
		struct kevent ev[256];
		int n = wait_ev(kq, ev, 256, &ts_5s);
		cr_assert_gt(n, 0, "only %d of %d timers reported within 5 s", got, MANY);
		for (int j = 0; j < n; j++) {
			cr_assert_eq(ev[j].filter, EVFILT_TIMER);
			cr_assert(ev[j].ident >= 100000 && ev[j].ident < 100000 + MANY, "ident %lu",
				  (unsigned long)ev[j].ident);
			int i = (int)(ev[j].ident - 100000);
			cr_assert_eq(ev[j].udata, (void *)(intptr_t)i);
			cr_assert_eq(ev[j].data, 1);
			cr_assert_eq(seen[i], 0, "timer %d reported twice", i);
			seen[i] = 1;
			got++;
		}
	}
	nothing_within(kq, &ts_50ms);
	close(kq);
}
