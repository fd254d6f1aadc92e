/* Scale: 100,000 timers and 50,000 fds on one kq. Costs are printed, never asserted: a
 * human compares the cost per add and delete at 1k and at the full count. */
#include "kqt.h"

#include <sys/event.h>
#include <sys/resource.h>
#include <time.h>

TestSuite(kq_scale, .timeout = 60);

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

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* One change per call, as a program adding knotes one at a time does. */
static void one_change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		       int64_t data, void *udata)
{
	struct kevent ch;
	EV_SET(&ch, ident, filter, flags, fflags, data, udata);
	int r = kevent(kq, &ch, 1, NULL, 0, NULL);
	cr_assert_eq(r, 0, "ident %lu filter %d flags %#x: %s", (unsigned long)ident, filter, flags,
		     strerror(errno));
}

static int receipt(int kq, uintptr_t ident, short filter, unsigned short flags)
{
	struct kevent ch, out;
	EV_SET(&ch, ident, filter, flags | EV_RECEIPT, 0, 0, NULL);
	cr_assert_eq(kevent(kq, &ch, 1, &out, 1, NULL), 1);
	cr_assert(out.flags & EV_ERROR);
	return (int)out.data;
}

Test(kq_scale, hundred_thousand_timers_then_a_thousand_short_ones)
{
	enum { N = 100000, W = 1000, SHORT = 1000 };
	int kq = kqueue();
	cr_assert(kq >= 0);
	/* ns spent on the first W adds (kq nearly empty) and the last W (kq nearly full) */
	int64_t add_lo = 0, add_hi = 0, del_hi = 0, del_lo = 0, t;
	for (int i = 0; i < N; i++) {
		t = now_ns();
		one_change(kq, 1 + i, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600 + i % 600,
			   (void *)(uintptr_t)i);
		t = now_ns() - t;
		if (i < W)
			add_lo += t;
		else if (i >= N - W)
			add_hi += t;
	}
	struct kevent ev[64];
	cr_assert_eq(kevent(kq, NULL, 0, ev, 64, &zero_ts), 0, "an hour-long timer fired");
	/* Delete in an order unlike the heap's. */
	for (int k = 0; k < N; k++) {
		int i = (int)(((long)k * 7919) % N);
		t = now_ns();
		one_change(kq, 1 + i, EVFILT_TIMER, EV_DELETE, 0, 0, NULL);
		t = now_ns() - t;
		if (k < W)
			del_hi += t;
		else if (k >= N - W)
			del_lo += t;
	}
	cr_log_info("kq_scale: timer add %.0f ns at 1k, %.0f ns at 100k; delete %.0f ns at "
		    "100k, %.0f ns at 1k",
		    (double)add_lo / W, (double)add_hi / W, (double)del_hi / W, (double)del_lo / W);
	cr_assert_eq(receipt(kq, 1, EVFILT_TIMER, EV_DELETE), ENOENT);
	cr_assert_eq(receipt(kq, N, EVFILT_TIMER, EV_DELETE), ENOENT);
	cr_assert_eq(kevent(kq, NULL, 0, ev, 64, &zero_ts), 0);

	/* 1000 one-shot timers of 1..20 ms: each fires exactly once. */
	struct kevent *ch = calloc(SHORT, sizeof *ch);
	unsigned char *seen = calloc(SHORT, 1);
	cr_assert(ch && seen);
	for (int i = 0; i < SHORT; i++)
		EV_SET(&ch[i], 500000 + i, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 1 + i % 20,
		       (void *)(uintptr_t)(i + 1));
	cr_assert_eq(kevent(kq, ch, SHORT, NULL, 0, NULL), 0, "adding %d timers: %s", SHORT,
		     strerror(errno));
	int got = 0;
	while (got < SHORT) {
		int r = kq_wait(kq, ev, 64, 5000);
		cr_assert_gt(r, 0, "%d of %d short timers fired (kevent %d: %s)", got, SHORT, r,
			     r < 0 ? strerror(errno) : "timed out");
		for (int k = 0; k < r; k++) {
			cr_assert_eq(ev[k].filter, EVFILT_TIMER);
			long i = (long)ev[k].ident - 500000;
			cr_assert(i >= 0 && i < SHORT, "ident %lu", (unsigned long)ev[k].ident);
			cr_assert_eq(ev[k].udata, (void *)(uintptr_t)(i + 1));
			cr_assert_eq(ev[k].data, 1, "timer %ld: data %ld", i, (long)ev[k].data);
			cr_assert_eq(seen[i], 0, "timer %ld reported twice", i);
			seen[i] = 1;
			got++;
		}
	}
	cr_assert_eq(kq_wait(kq, ev, 64, 50), 0, "a one-shot timer fired again");
	free(ch);
	free(seen);
	close(kq);
}

Test(kq_scale, fifty_thousand_fds_on_one_kq)
{
	enum { W = 1000, HOT = 100 };
	int NP = 25000;
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 60000) {
		struct rlimit want = {65536, rl.rlim_max > 65536 ? rl.rlim_max : 65536};
		if (setrlimit(RLIMIT_NOFILE, &want)) {
			/* Without CAP_SYS_RESOURCE the hard limit caps it: as many as it allows. */
			struct rlimit most = {rl.rlim_max, rl.rlim_max};
			cr_assert_eq(setrlimit(RLIMIT_NOFILE, &most), 0);
			NP = (int)((rl.rlim_max - 256) / 2);
			cr_assert_geq(NP, 4 * W, "RLIMIT_NOFILE hard limit %lu is too low",
				      (unsigned long)rl.rlim_max);
			cr_log_info("kq_scale: RLIMIT_NOFILE cannot pass its hard limit %lu (%s): "
				    "%d pipes, %d fds, instead of 50,000",
				    (unsigned long)rl.rlim_max, strerror(errno), NP, 2 * NP);
		}
	}
	int(*p)[2] = calloc(NP, sizeof *p);
	cr_assert(p);
	for (int i = 0; i < NP; i++)
		cr_assert_eq(pipe2(p[i], O_CLOEXEC | O_NONBLOCK), 0, "pipe %d: %s", i,
			     strerror(errno));
	int kq = kqueue();
	cr_assert(kq >= 0);
	int64_t add_lo = 0, add_hi = 0, del_hi = 0, del_lo = 0, t;
	for (int i = 0; i < NP; i++) {
		t = now_ns();
		one_change(kq, p[i][0], EVFILT_READ, EV_ADD, 0, 0, (void *)(uintptr_t)(i + 1));
		t = now_ns() - t;
		if (i < W)
			add_lo += t;
		else if (i >= NP - W)
			add_hi += t;
	}
	struct kevent ev[256];
	cr_assert_eq(kevent(kq, NULL, 0, ev, 256, &zero_ts), 0, "an empty pipe reported readable");

	/* 100 distinct pipes, chosen by a fixed LCG. */
	unsigned char *hot = calloc(NP, 1), *seen = calloc(NP, 1);
	cr_assert(hot && seen);
	unsigned x = 12345;
	for (int n = 0; n < HOT;) {
		x = x * 1103515245u + 12345u;
		int i = (int)((x >> 8) % NP);
		if (hot[i])
			continue;
		hot[i] = 1;
		n++;
		cr_assert_eq(write(p[i][1], "k", 1), 1);
	}
	int distinct = 0;
	while (distinct < HOT) {
		int r = kq_wait(kq, ev, 256, 5000);
		cr_assert_gt(r, 0, "%d of %d written pipes reported (kevent %d: %s)", distinct, HOT,
			     r, r < 0 ? strerror(errno) : "timed out");
		for (int k = 0; k < r; k++) {
			cr_assert_eq(ev[k].filter, EVFILT_READ);
			uintptr_t u = (uintptr_t)ev[k].udata;
			cr_assert(u >= 1 && u <= (uintptr_t)NP, "udata %p", ev[k].udata);
			int i = (int)u - 1;
			cr_assert_eq(ev[k].ident, (uintptr_t)p[i][0]);
			cr_assert(hot[i], "pipe %d was not written but reported (data %ld)", i,
				  (long)ev[k].data);
			cr_assert_eq(ev[k].data, 1);
			distinct += !seen[i];
			seen[i] = 1;
		}
	}
	/* Level-triggered: they are reported again, and only they. */
	int r = kq_wait(kq, ev, 256, 5000);
	cr_assert(r > 0 && r <= HOT, "a level-triggered call reported %d events", r);
	for (int k = 0; k < r; k++)
		cr_assert(hot[(uintptr_t)ev[k].udata - 1]);

	for (int i = 0; i < NP; i++) {
		t = now_ns();
		one_change(kq, p[i][0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
		t = now_ns() - t;
		if (i < W)
			del_hi += t;
		else if (i >= NP - W)
			del_lo += t;
	}
	cr_log_info("kq_scale: READ add %.0f ns at 1k, %.0f ns at %dk; delete %.0f ns at %dk, "
		    "%.0f ns at 1k",
		    (double)add_lo / W, (double)add_hi / W, NP / 1000, (double)del_hi / W,
		    NP / 1000, (double)del_lo / W);
	cr_assert_eq(kq_wait(kq, ev, 256, 50), 0, "a deleted knote reported");
	cr_assert_eq(receipt(kq, p[0][0], EVFILT_READ, EV_DELETE), ENOENT);
	close(kq);
	for (int i = 0; i < NP; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	free(p);
	free(hot);
	free(seen);
}
