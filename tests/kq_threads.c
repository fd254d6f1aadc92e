/* Several threads on one kq: waiters woken by another thread's changes, each event taken
 * once, and a producer/consumer stress with knotes added and deleted underneath. */
#include "kqt.h"

#include <sys/event.h>
#include <sys/syscall.h>
#include <time.h>

TestSuite(kq_threads, .timeout = 30);

static const struct timespec zero_ts = {0, 0};

static int kq_wait(int kq, struct kevent *ev, int n, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int r;
	do
		r = kevent(kq, NULL, 0, ev, n, &ts);
	while (r < 0 && errno == EINTR);
	return r;
}

/* One change with EV_RECEIPT; returns its error (0: applied). */
static int kq_change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		     int64_t data, void *udata)
{
	struct kevent ch, out;
	EV_SET(&ch, ident, filter, flags | EV_RECEIPT, fflags, data, udata);
	int r = kevent(kq, &ch, 1, &out, 1, NULL);
	if (r != 1 || !(out.flags & EV_ERROR))
		return r < 0 ? errno : -1;
	return (int)out.data;
}

static void kq_add(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		   int64_t data, void *udata)
{
	int e = kq_change(kq, ident, filter, EV_ADD | flags, fflags, data, udata);
	cr_assert_eq(e, 0, "EV_ADD ident %lu filter %d: %s", (unsigned long)ident, filter,
		     e > 0 ? strerror(e) : "no receipt");
}

static void xpipe(int p[2], int flags)
{
	cr_assert_eq(pipe2(p, O_CLOEXEC | flags), 0, "pipe2: %s", strerror(errno));
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* State letter of a thread of this process ('S' when blocked in a wait). */
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

/* Waits (best effort) until the thread whose tid is published at *tidp sleeps. */
static void wait_blocked(const pid_t *tidp)
{
	pid_t tid = 0;
	cr_assert(kqt_eventually((tid = __atomic_load_n(tidp, __ATOMIC_ACQUIRE)), 5000));
	cr_assert(kqt_eventually(thread_state(tid) == 'S', 5000), "thread %d never blocked",
		  (int)tid);
	usleep(10 * 1000); /* from the sleep in kevent's lock to the one in epoll */
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A thread's failure, recorded for the main thread to assert on. */
struct fault {
	int bad;
	char why[200];
};

#define FAULT(f, ...)                                                                              \
	do {                                                                                       \
		if (__atomic_fetch_add(&(f)->bad, 1, __ATOMIC_ACQ_REL) == 0)                       \
			snprintf((f)->why, sizeof(f)->why, __VA_ARGS__);                           \
	} while (0)

/* ---- 4 waiters, 4 triggers: each ident once ---- */

enum { NW = 4, STOP_IDENT = 100 };

struct waiters {
	int kq;
	pid_t tid[NW];
	int count[NW + 1]; /* by ident 1..NW */
	int total, timeouts;
	struct fault f;
};

struct warg {
	struct waiters *w;
	int i;
};

static void *user_waiter(void *arg)
{
	struct warg *a = arg;
	struct waiters *w = a->w;
	__atomic_store_n(&w->tid[a->i], my_tid(), __ATOMIC_RELEASE);
	for (int stop = 0; !stop;) {
		struct kevent ev[NW + 1];
		int r = kq_wait(w->kq, ev, NW + 1, 5000);
		if (r < 0) {
			FAULT(&w->f, "kevent: %s", strerror(errno));
			return NULL;
		}
		if (r == 0) {
			__atomic_add_fetch(&w->timeouts, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		for (int k = 0; k < r; k++) {
			if (ev[k].filter != EVFILT_USER || (ev[k].flags & EV_ERROR))
				FAULT(&w->f, "filter %d flags %#x", ev[k].filter, ev[k].flags);
			else if (ev[k].ident == STOP_IDENT)
				stop = 1;
			else if (ev[k].ident < 1 || ev[k].ident > NW)
				FAULT(&w->f, "unknown ident %lu", (unsigned long)ev[k].ident);
			else if (ev[k].udata != (void *)(ev[k].ident * 16))
				FAULT(&w->f, "ident %lu udata %p", (unsigned long)ev[k].ident,
				      ev[k].udata);
			else {
				__atomic_add_fetch(&w->count[ev[k].ident], 1, __ATOMIC_RELAXED);
				__atomic_add_fetch(&w->total, 1, __ATOMIC_RELEASE);
			}
		}
	}
	return NULL;
}

Test(kq_threads, four_waiters_four_triggers_each_ident_once)
{
	struct waiters w = {.kq = kqueue()};
	cr_assert(w.kq >= 0);
	for (int i = 1; i <= NW; i++)
		kq_add(w.kq, i, EVFILT_USER, EV_CLEAR, 0, 0, (void *)(uintptr_t)(i * 16));
	kq_add(w.kq, STOP_IDENT, EVFILT_USER, 0, 0, 0, NULL); /* level: wakes every thread */
	pthread_t t[NW];
	struct warg a[NW];
	for (int i = 0; i < NW; i++) {
		a[i] = (struct warg){&w, i};
		cr_assert_eq(pthread_create(&t[i], NULL, user_waiter, &a[i]), 0);
	}
	for (int i = 0; i < NW; i++)
		wait_blocked(&w.tid[i]);
	for (int i = 1; i <= NW; i++)
		cr_assert_eq(kq_change(w.kq, i, EVFILT_USER, 0, NOTE_TRIGGER, 0,
				       (void *)(uintptr_t)(i * 16)),
			     0);
	cr_assert(kqt_eventually(__atomic_load_n(&w.total, __ATOMIC_ACQUIRE) >= NW, 5000),
		  "only %d of %d triggers were reported",
		  __atomic_load_n(&w.total, __ATOMIC_ACQUIRE), NW);
	usleep(50 * 1000); /* a duplicate would show up now */
	cr_assert_eq(kq_change(w.kq, STOP_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), 0);
	for (int i = 0; i < NW; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	cr_assert_eq(w.f.bad, 0, "%s", w.f.why);
	cr_assert_eq(w.timeouts, 0, "%d waiters timed out before the stop trigger", w.timeouts);
	for (int i = 1; i <= NW; i++)
		cr_assert_eq(w.count[i], 1, "ident %d reported %d times", i, w.count[i]);
	cr_assert_eq(w.total, NW);
	/* EV_CLEAR: none of them is pending any more. */
	kq_change(w.kq, STOP_IDENT, EVFILT_USER, EV_DELETE, 0, 0, NULL);
	struct kevent ev[8];
	cr_assert_eq(kevent(w.kq, NULL, 0, ev, 8, &zero_ts), 0);
	close(w.kq);
}

/* ---- a change in one thread wakes a waiter in another ---- */

struct sleeper {
	int kq;
	pid_t tid;
	int r, err, done;
	struct kevent ev[4];
};

static void *null_timeout_waiter(void *arg)
{
	struct sleeper *s = arg;
	__atomic_store_n(&s->tid, my_tid(), __ATOMIC_RELEASE);
	int r;
	do
		r = kevent(s->kq, NULL, 0, s->ev, 4, NULL);
	while (r < 0 && errno == EINTR);
	s->r = r;
	s->err = errno;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void start_sleeper(struct sleeper *s, pthread_t *t)
{
	cr_assert_eq(pthread_create(t, NULL, null_timeout_waiter, s), 0);
	wait_blocked(&s->tid);
	cr_assert_eq(__atomic_load_n(&s->done, __ATOMIC_ACQUIRE), 0,
		     "kevent(NULL timeout) returned %d with nothing to report", s->r);
}

static void join_sleeper(struct sleeper *s, pthread_t t, const char *what)
{
	cr_assert(kqt_eventually(__atomic_load_n(&s->done, __ATOMIC_ACQUIRE), 5000),
		  "%s did not wake the thread blocked in kevent(NULL timeout)", what);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(s->r, 1, "%s: the woken kevent returned %d (%s)", what, s->r,
		     s->r < 0 ? strerror(s->err) : "events");
}

Test(kq_threads, another_threads_change_wakes_a_blocked_waiter)
{
	/* EV_ADD of an already-readable pipe, on a kq with no knote at all. */
	{
		int p[2];
		xpipe(p, 0);
		cr_assert_eq(write(p[1], "hello", 5), 5);
		struct sleeper s = {.kq = kqueue()};
		cr_assert(s.kq >= 0);
		pthread_t t;
		start_sleeper(&s, &t);
		kq_add(s.kq, p[0], EVFILT_READ, 0, 0, 0, (void *)0xa1);
		join_sleeper(&s, t, "EV_ADD of a readable pipe");
		cr_assert_eq(s.ev[0].ident, (uintptr_t)p[0]);
		cr_assert_eq(s.ev[0].filter, EVFILT_READ);
		cr_assert_eq(s.ev[0].data, 5);
		cr_assert_eq(s.ev[0].udata, (void *)0xa1);
		close(s.kq);
		close(p[0]);
		close(p[1]);
	}
	/* The same with EV_CLEAR (edge-triggered inside). */
	{
		int p[2];
		xpipe(p, 0);
		cr_assert_eq(write(p[1], "hey", 3), 3);
		struct sleeper s = {.kq = kqueue()};
		cr_assert(s.kq >= 0);
		kq_add(s.kq, 1, EVFILT_TIMER, 0, NOTE_SECONDS, 3600, NULL);
		pthread_t t;
		start_sleeper(&s, &t);
		kq_add(s.kq, p[0], EVFILT_READ, EV_CLEAR, 0, 0, (void *)0xa2);
		join_sleeper(&s, t, "EV_ADD|EV_CLEAR of a readable pipe");
		cr_assert_eq(s.ev[0].ident, (uintptr_t)p[0]);
		cr_assert_eq(s.ev[0].filter, EVFILT_READ);
		cr_assert_eq(s.ev[0].data, 3);
		cr_assert_eq(s.ev[0].udata, (void *)0xa2);
		close(s.kq);
		close(p[0]);
		close(p[1]);
	}
	/* A USER trigger, with fflags copied in by the trigger. */
	{
		struct sleeper s = {.kq = kqueue()};
		cr_assert(s.kq >= 0);
		kq_add(s.kq, 3, EVFILT_USER, EV_CLEAR, 0, 0, (void *)0xb3);
		pthread_t t;
		start_sleeper(&s, &t);
		cr_assert_eq(kq_change(s.kq, 3, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFCOPY | 0x11,
				       0, (void *)0xb3),
			     0);
		join_sleeper(&s, t, "NOTE_TRIGGER");
		cr_assert_eq(s.ev[0].ident, 3);
		cr_assert_eq(s.ev[0].filter, EVFILT_USER);
		cr_assert_eq(s.ev[0].fflags, 0x11);
		cr_assert_eq(s.ev[0].udata, (void *)0xb3);
		close(s.kq);
	}
	/* A first TIMER (the kq's timerfd is made while the thread waits). */
	{
		struct sleeper s = {.kq = kqueue()};
		cr_assert(s.kq >= 0);
		pthread_t t;
		start_sleeper(&s, &t);
		kq_add(s.kq, 7, EVFILT_TIMER, EV_ONESHOT, 0, 2, (void *)0xc7);
		join_sleeper(&s, t, "EV_ADD of a 2 ms TIMER");
		cr_assert_eq(s.ev[0].ident, 7);
		cr_assert_eq(s.ev[0].filter, EVFILT_TIMER);
		cr_assert_eq(s.ev[0].data, 1);
		cr_assert_eq(s.ev[0].udata, (void *)0xc7);
		close(s.kq);
	}
}

/* ---- stress: producers, consumers, and knotes churned underneath ---- */

enum { NP = 16, CHURN_SLOTS = 32, TIMER_BASE = 1000, USER_BASE = 2000 };

struct stress {
	int kq;
	int rd[NP], wr[NP];
	long produced[NP], consumed[NP];
	int stop, producing;
	long timers, users, churns, reads;
	struct fault f;
};

struct parg {
	struct stress *s;
	unsigned seed;
};

static void *producer(void *arg)
{
	struct parg *a = arg;
	struct stress *s = a->s;
	unsigned seed = a->seed;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int n = 0; n < 200000 && ms_since(&t0) < 1000; n++) {
		int i = (int)(rand_r(&seed) % NP);
		char buf[64];
		size_t len = 1 + rand_r(&seed) % sizeof buf;
		memset(buf, 'A' + i, len);
		ssize_t w = write(s->wr[i], buf, len);
		if (w > 0)
			__atomic_add_fetch(&s->produced[i], w, __ATOMIC_RELEASE);
		else if (errno == EAGAIN)
			sched_yield();
		else
			FAULT(&s->f, "write pipe %d: %s", i, strerror(errno));
	}
	__atomic_sub_fetch(&s->producing, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *consumer(void *arg)
{
	struct stress *s = arg;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct kevent ev[8];
		int r = kq_wait(s->kq, ev, 8, 50);
		if (r < 0) {
			FAULT(&s->f, "kevent: %s", strerror(errno));
			return NULL;
		}
		for (int k = 0; k < r; k++) {
			const struct kevent *e = &ev[k];
			if (e->flags & EV_ERROR) {
				FAULT(&s->f, "EV_ERROR %ld ident %lu", (long)e->data,
				      (unsigned long)e->ident);
			} else if (e->filter == EVFILT_TIMER) {
				if (e->ident < TIMER_BASE || e->ident >= TIMER_BASE + CHURN_SLOTS ||
				    e->data < 1)
					FAULT(&s->f, "timer ident %lu data %ld",
					      (unsigned long)e->ident, (long)e->data);
				__atomic_add_fetch(&s->timers, 1, __ATOMIC_RELAXED);
			} else if (e->filter == EVFILT_USER) {
				if (e->ident < USER_BASE || e->ident >= USER_BASE + CHURN_SLOTS)
					FAULT(&s->f, "user ident %lu", (unsigned long)e->ident);
				__atomic_add_fetch(&s->users, 1, __ATOMIC_RELAXED);
			} else if (e->filter == EVFILT_READ) {
				intptr_t i = (intptr_t)e->udata - 1;
				if (i < 0 || i >= NP || e->ident != (uintptr_t)s->rd[i]) {
					FAULT(&s->f, "READ ident %lu udata %p",
					      (unsigned long)e->ident, e->udata);
					continue;
				}
				if (!!(e->flags & EV_CLEAR) != (i % 2 == 0))
					FAULT(&s->f, "pipe %ld flags %#x", (long)i, e->flags);
				__atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
				char buf[4096];
				ssize_t n;
				while ((n = read(s->rd[i], buf, sizeof buf)) > 0) {
					for (ssize_t b = 0; b < n; b++)
						if (buf[b] != 'A' + i) {
							FAULT(&s->f, "pipe %ld: byte %#x", (long)i,
							      buf[b]);
							break;
						}
					__atomic_add_fetch(&s->consumed[i], n, __ATOMIC_RELEASE);
				}
				if (n == 0 || errno != EAGAIN)
					FAULT(&s->f, "read pipe %ld: %s", (long)i,
					      n == 0 ? "EOF" : strerror(errno));
			} else {
				FAULT(&s->f, "filter %d", e->filter);
			}
		}
	}
	return NULL;
}

/* Adds a periodic TIMER and a triggered USER knote in slot j % 32 and deletes the pair
 * added 16 steps before: each delete names a knote that must exist. */
static void *churner(void *arg)
{
	struct stress *s = arg;
	long j = 0;
	for (; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); j++) {
		int slot = (int)(j % CHURN_SLOTS);
		struct kevent ch[2], out[2];
		EV_SET(&ch[0], TIMER_BASE + slot, EVFILT_TIMER, EV_ADD | EV_RECEIPT, 0,
		       1 + slot % 3, NULL);
		EV_SET(&ch[1], USER_BASE + slot, EVFILT_USER, EV_ADD | EV_CLEAR | EV_RECEIPT,
		       NOTE_TRIGGER, 0, NULL);
		int r = kevent(s->kq, ch, 2, out, 2, NULL);
		if (r != 2 || out[0].data || out[1].data) {
			FAULT(&s->f, "churn add %ld: r %d (%s) data %ld %ld", j, r, strerror(errno),
			      r > 0 ? (long)out[0].data : 0L, r > 1 ? (long)out[1].data : 0L);
			return NULL;
		}
		if (j >= CHURN_SLOTS / 2) {
			int old = (int)((j - CHURN_SLOTS / 2) % CHURN_SLOTS);
			EV_SET(&ch[0], TIMER_BASE + old, EVFILT_TIMER, EV_DELETE | EV_RECEIPT, 0, 0,
			       NULL);
			EV_SET(&ch[1], USER_BASE + old, EVFILT_USER, EV_DELETE | EV_RECEIPT, 0, 0,
			       NULL);
			r = kevent(s->kq, ch, 2, out, 2, NULL);
			if (r != 2 || out[0].data || out[1].data) {
				FAULT(&s->f, "churn delete %ld: r %d data %ld %ld", j, r,
				      r > 0 ? (long)out[0].data : 0L,
				      r > 1 ? (long)out[1].data : 0L);
				return NULL;
			}
		}
		usleep(100);
	}
	__atomic_store_n(&s->churns, j, __ATOMIC_RELEASE);
	return NULL;
}

static long sum(const long *v, int n)
{
	long t = 0;
	for (int i = 0; i < n; i++)
		t += __atomic_load_n(&v[i], __ATOMIC_ACQUIRE);
	return t;
}

Test(kq_threads, producers_consumers_and_churn_on_one_kq)
{
	struct stress s = {.kq = kqueue(), .producing = 2};
	cr_assert(s.kq >= 0);
	for (int i = 0; i < NP; i++) {
		int p[2];
		xpipe(p, O_NONBLOCK);
		s.rd[i] = p[0];
		s.wr[i] = p[1];
		/* even pipes edge-triggered (EV_CLEAR), odd ones level-triggered */
		kq_add(s.kq, p[0], EVFILT_READ, i % 2 == 0 ? EV_CLEAR : 0, 0, 0,
		       (void *)(intptr_t)(i + 1));
	}
	pthread_t cons[2], prod[2], churn;
	struct parg pa[2] = {{&s, 1}, {&s, 2}};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&cons[i], NULL, consumer, &s), 0);
	cr_assert_eq(pthread_create(&churn, NULL, churner, &s), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&prod[i], NULL, producer, &pa[i]), 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_join(prod[i], NULL), 0);
	long produced = sum(s.produced, NP);
	int drained = kqt_eventually(sum(s.consumed, NP) == produced, 5000);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_join(cons[i], NULL), 0);
	cr_assert_eq(pthread_join(churn, NULL), 0);
	cr_log_info("kq_threads: %ld bytes through %d pipes, %ld READ events, %ld timer and %ld "
		    "user events, %ld churn steps",
		    produced, NP, s.reads, s.timers, s.users, s.churns);
	cr_assert_eq(s.f.bad, 0, "%d faults; first: %s", s.f.bad, s.f.why);
	cr_assert_gt(produced, 0);
	for (int i = 0; i < NP; i++)
		cr_assert_eq(s.consumed[i], s.produced[i], "pipe %d (%s): %ld of %ld bytes read", i,
			     i % 2 ? "level" : "EV_CLEAR", s.consumed[i], s.produced[i]);
	cr_assert(drained);
	cr_assert_gt(s.churns, CHURN_SLOTS / 2, "the churn thread barely ran");
	for (int i = 0; i < NP; i++) {
		char c;
		cr_assert_eq(read(s.rd[i], &c, 1), -1, "pipe %d still holds data", i);
		cr_assert_eq(errno, EAGAIN);
	}
	/* The churner's last 16 pairs are still there; everything else was deleted. */
	for (long j = s.churns - CHURN_SLOTS / 2; j < s.churns; j++) {
		int slot = (int)(j % CHURN_SLOTS);
		cr_assert_eq(
		    kq_change(s.kq, TIMER_BASE + slot, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), 0,
		    "timer slot %d", slot);
		cr_assert_eq(kq_change(s.kq, USER_BASE + slot, EVFILT_USER, EV_DELETE, 0, 0, NULL),
			     0, "user slot %d", slot);
	}
	for (int slot = 0; slot < CHURN_SLOTS; slot++)
		cr_assert_eq(
		    kq_change(s.kq, TIMER_BASE + slot, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ENOENT,
		    "timer slot %d left behind", slot);
	for (int i = 0; i < NP; i++) {
		close(s.rd[i]);
		close(s.wr[i]);
	}
	close(s.kq);
}

/* ---- EV_ONESHOT with two threads watching ---- */

struct oneshot {
	int kq, rfd;
	int stop, count;
	pid_t tid[2];
	struct fault f;
};

struct oarg {
	struct oneshot *o;
	int i;
};

static void *oneshot_waiter(void *arg)
{
	struct oarg *a = arg;
	struct oneshot *o = a->o;
	__atomic_store_n(&o->tid[a->i], my_tid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)) {
		struct kevent ev[4];
		int r = kq_wait(o->kq, ev, 4, 20);
		if (r < 0) {
			FAULT(&o->f, "kevent: %s", strerror(errno));
			return NULL;
		}
		for (int k = 0; k < r; k++) {
			if (ev[k].ident != (uintptr_t)o->rfd || ev[k].filter != EVFILT_READ ||
			    !(ev[k].flags & EV_ONESHOT) || ev[k].data != 1 ||
			    ev[k].udata != (void *)0x1)
				FAULT(&o->f, "ident %lu filter %d flags %#x data %ld",
				      (unsigned long)ev[k].ident, ev[k].filter, ev[k].flags,
				      (long)ev[k].data);
			__atomic_add_fetch(&o->count, 1, __ATOMIC_ACQ_REL);
		}
	}
	return NULL;
}

Test(kq_threads, oneshot_watched_by_two_threads_is_reported_once)
{
	enum { ROUNDS = 200 };
	int p[2];
	xpipe(p, O_NONBLOCK);
	struct oneshot o = {.kq = kqueue(), .rfd = p[0]};
	cr_assert(o.kq >= 0);
	pthread_t t[2];
	struct oarg a[2] = {{&o, 0}, {&o, 1}};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, oneshot_waiter, &a[i]), 0);
	for (int i = 0; i < 2; i++)
		wait_blocked(&o.tid[i]);
	for (int round = 1; round <= ROUNDS; round++) {
		/* Odd rounds: added while empty, then written; even: added already readable. */
		if (round % 2)
			kq_add(o.kq, p[0], EVFILT_READ, EV_ONESHOT, 0, 0, (void *)0x1);
		cr_assert_eq(write(p[1], "x", 1), 1);
		if (round % 2 == 0)
			kq_add(o.kq, p[0], EVFILT_READ, EV_ONESHOT, 0, 0, (void *)0x1);
		cr_assert(
		    kqt_eventually(__atomic_load_n(&o.count, __ATOMIC_ACQUIRE) >= round, 5000),
		    "round %d: the one-shot event was not reported", round);
		char c;
		cr_assert_eq(read(p[0], &c, 1), 1, "round %d: nothing to read, %d reports so far",
			     round, __atomic_load_n(&o.count, __ATOMIC_ACQUIRE));
		cr_assert_eq(__atomic_load_n(&o.count, __ATOMIC_ACQUIRE), round,
			     "round %d: reported %d times in all", round,
			     __atomic_load_n(&o.count, __ATOMIC_ACQUIRE));
	}
	usleep(50 * 1000);
	__atomic_store_n(&o.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	cr_assert_eq(o.f.bad, 0, "%s", o.f.why);
	cr_assert_eq(o.count, ROUNDS, "%d reports for %d one-shot knotes", o.count, ROUNDS);
	cr_assert_eq(kq_change(o.kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT,
		     "the one-shot knote outlived its report");
	close(o.kq);
	close(p[0]);
	close(p[1]);
}
