/* EVFILT_USER: NOTE_TRIGGER, level versus EV_CLEAR, the fflags editing
 * operations, data, EV_DISPATCH, and a trigger waking another thread. */
#include "kqt.h"

#include <sys/event.h>
#include <sys/syscall.h>

TestSuite(kq_user, .timeout = 30);

static const struct timespec ts_5s = {5, 0};
static const struct timespec ts_0 = {0, 0};

static int kq_new(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

/* Applies one EVFILT_USER change: 0, or the errno it failed with. */
static int chg(int kq, uintptr_t ident, unsigned short flags, unsigned fflags, int64_t data,
	       void *udata)
{
	struct kevent kev;
	EV_SET(&kev, ident, EVFILT_USER, flags, fflags, data, udata);
	int r = kevent(kq, &kev, 1, NULL, 0, NULL);
	if (r == 0)
		return 0;
	cr_assert_eq(r, -1, "kevent returned %d", r);
	return errno;
}

static void chg_ok(int kq, uintptr_t ident, unsigned short flags, unsigned fflags, int64_t data,
		   void *udata)
{
	int e = chg(kq, ident, flags, fflags, data, udata);
	cr_assert_eq(e, 0, "change to user event %lu (flags 0x%x fflags 0x%x): %s",
		     (unsigned long)ident, flags, fflags, strerror(e));
}

static int wait_ev(int kq, struct kevent *ev, int n, const struct timespec *ts)
{
	int r = kevent(kq, NULL, 0, ev, n, ts);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

/* Exactly one event, for ident, within 5 s. */
static struct kevent one(int kq, uintptr_t ident)
{
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1, "user event %lu: %d events, want 1", (unsigned long)ident, n);
	cr_assert_eq(ev[0].ident, ident);
	cr_assert_eq(ev[0].filter, EVFILT_USER);
	cr_assert_eq(ev[0].flags & (EV_ERROR | EV_EOF), 0, "flags 0x%x data %ld", ev[0].flags,
		     (long)ev[0].data);
	return ev[0];
}

static void none(int kq)
{
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, &ts_0);
	cr_assert_eq(n, 0, "unexpected event: ident %lu filter %d fflags 0x%x",
		     (unsigned long)ev[0].ident, ev[0].filter, ev[0].fflags);
}

Test(kq_user, trigger_reports_with_udata_not_before)
{
	int kq = kq_new();
	int cookie;
	chg_ok(kq, 1, EV_ADD | EV_CLEAR, 0, 0, &cookie);
	none(kq);
	chg_ok(kq, 1, 0, NOTE_TRIGGER, 0, &cookie);
	struct kevent ev = one(kq, 1);
	cr_assert_eq(ev.udata, (void *)&cookie);
	cr_assert_eq(ev.fflags, 0);
	cr_assert_eq(ev.data, 0);
	close(kq);
}

Test(kq_user, trigger_of_absent_knote_is_enoent)
{
	int kq = kq_new();
	cr_assert_eq(chg(kq, 77, 0, NOTE_TRIGGER, 0, NULL), ENOENT);
	cr_assert_eq(chg(kq, 77, EV_DELETE, 0, 0, NULL), ENOENT);
	none(kq);
	close(kq);
}

/* Level-triggered: reported by every kevent() call, but once per call, even
 * with room for more (FreeBSD's scan puts a marker behind the queue). */
Test(kq_user, without_clear_stays_reported_once_per_call)
{
	int kq = kq_new();
	chg_ok(kq, 2, EV_ADD, 0, 0, (void *)2);
	chg_ok(kq, 2, 0, NOTE_TRIGGER, 0, (void *)2);
	for (int i = 0; i < 3; i++) {
		struct kevent ev = one(kq, 2);
		cr_assert_eq(ev.udata, (void *)2);
		cr_assert_eq(ev.flags & EV_CLEAR, 0);
	}
	/* EV_DELETE ends it. */
	chg_ok(kq, 2, EV_DELETE, 0, 0, NULL);
	none(kq);
	close(kq);
}

Test(kq_user, with_clear_reported_once_per_trigger)
{
	int kq = kq_new();
	chg_ok(kq, 3, EV_ADD | EV_CLEAR, 0, 0, NULL);
	for (int i = 0; i < 3; i++) {
		chg_ok(kq, 3, 0, NOTE_TRIGGER, 0, NULL);
		struct kevent ev = one(kq, 3);
		cr_assert(ev.flags & EV_CLEAR, "flags 0x%x", ev.flags);
		none(kq);
	}
	/* Two triggers before a report: one report. */
	chg_ok(kq, 3, 0, NOTE_TRIGGER, 0, NULL);
	chg_ok(kq, 3, 0, NOTE_TRIGGER, 0, NULL);
	one(kq, 3);
	none(kq);
	close(kq);
}

/* Triggers with an fflags operation and returns the reported fflags. */
static unsigned trigger_ff(int kq, uintptr_t ident, unsigned op)
{
	chg_ok(kq, ident, 0, NOTE_TRIGGER | op, 0, NULL);
	struct kevent ev = one(kq, ident);
	none(kq);
	return ev.fflags;
}

Test(kq_user, fflags_copy_or_and_nop)
{
	int kq = kq_new();
	chg_ok(kq, 4, EV_ADD | EV_CLEAR, 0, 0, NULL);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFCOPY | 0x0f0), 0x0f0);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFOR | 0x00f), 0x0ff);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFAND | 0x03c), 0x03c);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFNOP | 0xabc), 0x03c);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFNOP), 0x03c);
	/* Every bit of NOTE_FFLAGSMASK is the user's; nothing above it is reported. */
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFCOPY | NOTE_FFLAGSMASK), NOTE_FFLAGSMASK);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFAND | 0x800001), 0x800001);
	cr_assert_eq(trigger_ff(kq, 4, NOTE_FFCOPY), 0);
	close(kq);
}

Test(kq_user, fflags_edited_without_trigger_are_kept)
{
	int kq = kq_new();
	chg_ok(kq, 5, EV_ADD | EV_CLEAR, 0, 0, NULL);
	/* An edit alone does not trigger. */
	chg_ok(kq, 5, 0, NOTE_FFCOPY | 0x11, 0, NULL);
	none(kq);
	chg_ok(kq, 5, 0, NOTE_FFOR | 0x100, 0, NULL);
	none(kq);
	cr_assert_eq(trigger_ff(kq, 5, NOTE_FFNOP), 0x111);
	close(kq);
}

Test(kq_user, data_of_the_trigger_is_reported)
{
	int kq = kq_new();
	chg_ok(kq, 6, EV_ADD | EV_CLEAR, 0, 0, NULL);
	chg_ok(kq, 6, 0, NOTE_TRIGGER, 42, NULL);
	struct kevent ev = one(kq, 6);
	cr_assert_eq(ev.data, 42);
	chg_ok(kq, 6, 0, NOTE_TRIGGER, -7, NULL);
	ev = one(kq, 6);
	cr_assert_eq(ev.data, -7);
	chg_ok(kq, 6, 0, NOTE_TRIGGER, INT64_MAX, NULL);
	ev = one(kq, 6);
	cr_assert_eq(ev.data, INT64_MAX);
	close(kq);
}

Test(kq_user, dispatch_disables_after_a_report)
{
	int kq = kq_new();
	chg_ok(kq, 7, EV_ADD | EV_CLEAR | EV_DISPATCH, 0, 0, (void *)7);
	chg_ok(kq, 7, 0, NOTE_TRIGGER, 1, (void *)7);
	struct kevent ev = one(kq, 7);
	cr_assert(ev.flags & EV_DISPATCH, "flags 0x%x", ev.flags);
	cr_assert_eq(ev.data, 1);
	none(kq);
	/* Disabled: a trigger is held, not reported ... */
	chg_ok(kq, 7, 0, NOTE_TRIGGER, 2, (void *)7);
	none(kq);
	/* ... until EV_ENABLE, which reports it once. */
	chg_ok(kq, 7, EV_ENABLE, 0, 0, (void *)7);
	ev = one(kq, 7);
	cr_assert_eq(ev.udata, (void *)7);
	none(kq);
	/* Still registered. */
	chg_ok(kq, 7, EV_DELETE, 0, 0, NULL);
	close(kq);
}

Test(kq_user, disable_and_enable)
{
	int kq = kq_new();
	chg_ok(kq, 8, EV_ADD | EV_CLEAR, 0, 0, NULL);
	chg_ok(kq, 8, EV_DISABLE, 0, 0, NULL);
	chg_ok(kq, 8, 0, NOTE_TRIGGER, 0, NULL);
	none(kq);
	chg_ok(kq, 8, EV_ENABLE, 0, 0, NULL);
	one(kq, 8);
	close(kq);
}

Test(kq_user, oneshot_is_deleted_by_its_report)
{
	int kq = kq_new();
	chg_ok(kq, 9, EV_ADD | EV_ONESHOT, 0, 0, NULL);
	chg_ok(kq, 9, 0, NOTE_TRIGGER, 0, NULL);
	struct kevent ev = one(kq, 9);
	cr_assert(ev.flags & EV_ONESHOT, "flags 0x%x", ev.flags);
	none(kq);
	cr_assert_eq(chg(kq, 9, 0, NOTE_TRIGGER, 0, NULL), ENOENT);
	close(kq);
}

Test(kq_user, add_with_trigger_triggers_at_once)
{
	int kq = kq_new();
	chg_ok(kq, 10, EV_ADD | EV_CLEAR, NOTE_TRIGGER, 0, (void *)10);
	struct kevent ev[4];
	int n = wait_ev(kq, ev, 4, &ts_0);
	cr_assert_eq(n, 1, "%d events right after EV_ADD with NOTE_TRIGGER", n);
	cr_assert_eq(ev[0].ident, 10);
	cr_assert_eq(ev[0].filter, EVFILT_USER);
	cr_assert_eq(ev[0].udata, (void *)10);
	cr_assert_eq(ev[0].fflags & NOTE_FFLAGSMASK, 0);
	none(kq);
	/* In the same call as the wait, too. */
	struct kevent add;
	EV_SET(&add, 11, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_TRIGGER, 0, (void *)11);
	n = kevent(kq, &add, 1, ev, 4, &ts_0);
	cr_assert_eq(n, 1);
	cr_assert_eq(ev[0].ident, 11);
	cr_assert_eq(ev[0].flags & EV_ERROR, 0);
	close(kq);
}

Test(kq_user, idents_are_independent)
{
	int kq = kq_new();
	chg_ok(kq, 1, EV_ADD | EV_CLEAR, 0, 0, (void *)1);
	chg_ok(kq, 2, EV_ADD | EV_CLEAR, 0, 0, (void *)2);
	chg_ok(kq, 2, 0, NOTE_TRIGGER, 0, (void *)2);
	struct kevent ev = one(kq, 2);
	cr_assert_eq(ev.udata, (void *)2);
	none(kq);
	close(kq);
}

struct waker {
	int kq;
	pid_t waiter;
	int state_seen; /* the waiter was seen asleep before the trigger */
};

/* The waiter's scheduler state from /proc: 'S' while blocked in kevent(). */
static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static void *waker_main(void *arg)
{
	struct waker *w = arg;
	/* Give the waiter time to block (seen asleep for a while), then trigger. */
	int asleep = 0;
	for (int i = 0; i < 2000 && asleep < 20; i++) {
		asleep = thread_state(w->waiter) == 'S' ? asleep + 1 : 0;
		usleep(1000);
	}
	w->state_seen = asleep >= 20;
	struct kevent kev;
	EV_SET(&kev, 12, EVFILT_USER, 0, NOTE_TRIGGER, 99, (void *)12);
	if (kevent(w->kq, &kev, 1, NULL, 0, NULL) != 0)
		return (void *)(intptr_t)errno;
	return NULL;
}

Test(kq_user, trigger_from_another_thread_wakes_a_blocked_waiter)
{
	int kq = kq_new();
	chg_ok(kq, 12, EV_ADD | EV_CLEAR, 0, 0, (void *)12);
	struct waker w = {.kq = kq, .waiter = (pid_t)syscall(SYS_gettid)};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, waker_main, &w), 0);
	struct kevent ev[4];
	int n;
	do
		n = kevent(kq, NULL, 0, ev, 4, NULL);
	while (n < 0 && errno == EINTR);
	void *ret;
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_null(ret, "trigger from the other thread: %s", strerror((int)(intptr_t)ret));
	cr_assert_eq(n, 1, "kevent(NULL timeout) returned %d: %s", n, strerror(errno));
	cr_assert_eq(ev[0].ident, 12);
	cr_assert_eq(ev[0].filter, EVFILT_USER);
	cr_assert_eq(ev[0].data, 99);
	cr_assert_eq(ev[0].udata, (void *)12);
	if (!w.state_seen)
		cr_log_info("the waiter was not seen blocked before the trigger");
	close(kq);
}
