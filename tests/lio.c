/* lio_listio: LIO_WAIT and LIO_NOWAIT, the list notification (once, only when every
 * entry is done: invariants 1 and 5), entries keeping their own sigevents and errors,
 * empty lists (invariant 8), failures, vectored entries, and a long list. */
#include "kqt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>

TestSuite(lio, .timeout = 30);

/* Waits for cb without reaping it. */
static void wait_done(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == 0 || errno == EINTR, "aio_suspend: %s", strerror(errno));
	}
}

static void entry(struct aiocb *cb, int op, int fd, void *buf, size_t n, off_t off)
{
	kqt_cb(cb, fd, buf, n, off);
	cb->aio_lio_opcode = op;
}

/* cb was refused: aio_error says err, aio_return -1/EINVAL. */
static void expect_refused(struct aiocb *cb, int err, const char *what)
{
	int e = aio_error(cb);
	cr_assert_eq(e, err, "%s: aio_error %d (%s), want %s", what, e, e > 0 ? strerror(e) : "-",
		     strerror(err));
	errno = 0;
	cr_assert_eq(aio_return(cb), -1, "%s", what);
	cr_assert_eq(errno, EINVAL, "%s: aio_return errno %s", what, strerror(errno));
}

/* cb names no job at all. */
static void expect_no_job(struct aiocb *cb, const char *what)
{
	errno = 0;
	cr_assert_eq(aio_error(cb), -1, "%s became a job", what);
	cr_assert_eq(errno, EINVAL);
}

/* A list notification by thread: how many times, with what value, and how many
 * of the list's entries were still in progress when it ran. */
static int lt_calls, lt_unfinished;
static void *lt_ptr;
static struct aiocb *const *lt_list;
static int lt_n;

static void on_list(union sigval v)
{
	int unfinished = 0;
	for (int i = 0; i < lt_n; i++)
		if (lt_list[i] && aio_error(lt_list[i]) == EINPROGRESS)
			unfinished++;
	__atomic_add_fetch(&lt_unfinished, unfinished, __ATOMIC_RELAXED);
	lt_ptr = v.sival_ptr;
	__atomic_add_fetch(&lt_calls, 1, __ATOMIC_RELEASE);
}

static int lt_count(void)
{
	return __atomic_load_n(&lt_calls, __ATOMIC_ACQUIRE);
}

Test(lio, wait_does_reads_and_writes)
{
	int src = kqt_file(1 << 16), dst = kqt_file(0);
	enum { N = 6 };
	static char rbuf[N][777], wbuf[N][4096];
	struct aiocb cbs[2 * N];
	struct aiocb *list[2 * N];
	for (int i = 0; i < N; i++) {
		entry(&cbs[i], LIO_READ, src, rbuf[i], 777, i * 1000 + 7);
		kqt_fill(wbuf[i], i * 4096, 4096);
		entry(&cbs[N + i], LIO_WRITE, dst, wbuf[i], 4096, i * 4096);
	}
	for (int i = 0; i < 2 * N; i++)
		list[i] = &cbs[(i % 2) * N + i / 2]; /* interleaved */
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2 * N, NULL), 0, "%s", strerror(errno));
	/* Everything is done on return. */
	for (int i = 0; i < 2 * N; i++)
		cr_assert_eq(aio_error(list[i]), 0, "entry %d not done after LIO_WAIT", i);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 777);
		cr_assert(kqt_check(rbuf[i], i * 1000 + 7, 777), "read %d", i);
		cr_assert_eq(aio_return(&cbs[N + i]), 4096);
	}
	static char back[N * 4096];
	cr_assert_eq(pread(dst, back, sizeof back, 0), (ssize_t)sizeof back);
	cr_assert(kqt_check(back, 0, sizeof back));
	/* Reaped one by one: each only once. */
	for (int i = 0; i < 2 * N; i++) {
		errno = 0;
		cr_assert_eq(aio_return(list[i]), -1);
		cr_assert_eq(errno, EINVAL);
	}
}

/* Invariant 1: instantly finishing entries ahead of one that waits for a pipe;
 * the list notifies only after the pipe entry is done, and once. */
static void list_waits_for_last_entry(int by_thread)
{
	int sig = SIGRTMIN + 1;
	kqt_block_sig(sig);
	int fd = kqt_file(1 << 16);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	enum { FAST = 64 };
	static char bufs[FAST][16], pbuf[32];
	struct aiocb cbs[FAST + 1];
	struct aiocb *list[FAST + 1];
	for (int i = 0; i < FAST; i++) {
		entry(&cbs[i], LIO_READ, fd, bufs[i], 16, i * 16);
		list[i] = &cbs[i];
	}
	entry(&cbs[FAST], LIO_READ, p[0], pbuf, sizeof pbuf, 0);
	list[FAST] = &cbs[FAST];
	static int marker;
	struct sigevent sev = {0};
	sev.sigev_value.sival_ptr = &marker;
	if (by_thread) {
		sev.sigev_notify = SIGEV_THREAD;
		sev.sigev_notify_function = on_list;
		lt_list = list;
		lt_n = FAST + 1;
	} else {
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = sig;
	}
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, FAST + 1, &sev), 0, "%s", strerror(errno));

	for (int i = 0; i < FAST; i++)
		wait_done(&cbs[i]);
	usleep(200000);
	siginfo_t si;
	if (by_thread)
		cr_assert_eq(lt_count(), 0, "the list notified while an entry was in progress");
	else
		cr_assert(!kqt_take_sig(sig, &si, 0),
			  "the list signal came while an entry was in progress");
	cr_assert_eq(aio_error(&cbs[FAST]), EINPROGRESS);
	/* Reaping finished entries early does not disturb the list. */
	for (int i = 0; i < FAST; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 16, "entry %d", i);
		cr_assert(kqt_check(bufs[i], i * 16, 16), "entry %d", i);
	}

	cr_assert_eq(write(p[1], "the last one", 12), 12);
	if (by_thread) {
		cr_assert(kqt_eventually(lt_count() > 0, 5000), "the list never notified");
		cr_assert_eq(lt_ptr, &marker);
		cr_assert_eq(__atomic_load_n(&lt_unfinished, __ATOMIC_RELAXED), 0,
			     "entries still in progress when the list notified");
	} else {
		cr_assert(kqt_take_sig(sig, &si, 5000), "the list signal never came");
		cr_assert_eq(si.si_code, SI_ASYNCIO);
		cr_assert_eq(si.si_value.sival_ptr, &marker);
		cr_assert_neq(aio_error(&cbs[FAST]), EINPROGRESS,
			      "signalled before the last entry");
	}
	wait_done(&cbs[FAST]);
	cr_assert_eq(aio_return(&cbs[FAST]), 12);
	cr_assert(!memcmp(pbuf, "the last one", 12));
	usleep(50000);
	if (by_thread)
		cr_assert_eq(lt_count(), 1, "the list notified %d times", lt_count());
	else
		cr_assert(!kqt_take_sig(sig, &si, 0), "a second list signal");
}

Test(lio, nowait_signal_only_when_every_entry_is_done)
{
	list_waits_for_last_entry(0);
}

Test(lio, nowait_thread_only_when_every_entry_is_done)
{
	list_waits_for_last_entry(1);
}

static int own_calls;
static void *own_ptr;

static void on_entry(union sigval v)
{
	own_ptr = v.sival_ptr;
	__atomic_add_fetch(&own_calls, 1, __ATOMIC_RELEASE);
}

Test(lio, entries_keep_their_own_sigevents)
{
	int lsig = SIGRTMIN + 1, esig = SIGRTMIN + 2;
	kqt_block_sig(lsig);
	kqt_block_sig(esig);
	int fd = kqt_file(1 << 16);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char b0[100], b1[100], b2[100], b3[16];
	struct aiocb c0, c1, c2, c3;
	entry(&c0, LIO_READ, fd, b0, sizeof b0, 0);
	c0.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	c0.aio_sigevent.sigev_signo = esig;
	c0.aio_sigevent.sigev_value.sival_ptr = &c0;
	entry(&c1, LIO_READ, fd, b1, sizeof b1, 100);
	c1.aio_sigevent.sigev_notify = SIGEV_THREAD;
	c1.aio_sigevent.sigev_notify_function = on_entry;
	c1.aio_sigevent.sigev_value.sival_ptr = &c1;
	entry(&c2, LIO_READ, fd, b2, sizeof b2, 200); /* SIGEV_NONE */
	entry(&c3, LIO_READ, p[0], b3, sizeof b3, 0); /* holds the list open */
	struct aiocb *list[4] = {&c0, &c1, &c2, &c3};
	static int marker;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = lsig};
	sev.sigev_value.sival_ptr = &marker;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 4, &sev), 0, "%s", strerror(errno));

	/* The entries' own notifications come while the list is still open. */
	siginfo_t si;
	cr_assert(kqt_take_sig(esig, &si, 5000), "entry 0's own signal never came");
	cr_assert_eq(si.si_code, SI_ASYNCIO);
	cr_assert_eq(si.si_value.sival_ptr, &c0);
	cr_assert(kqt_eventually(__atomic_load_n(&own_calls, __ATOMIC_ACQUIRE) > 0, 5000),
		  "entry 1's own callback never ran");
	cr_assert_eq(own_ptr, &c1);
	wait_done(&c2);
	usleep(100000);
	cr_assert(!kqt_take_sig(lsig, &si, 0), "the list signalled on an entry's completion");

	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert(kqt_take_sig(lsig, &si, 5000), "the list signal never came");
	cr_assert_eq(si.si_code, SI_ASYNCIO);
	cr_assert_eq(si.si_value.sival_ptr, &marker);
	usleep(50000);
	cr_assert(!kqt_take_sig(lsig, &si, 0), "a second list signal");
	cr_assert(!kqt_take_sig(esig, &si, 0), "a second entry signal");
	cr_assert_eq(__atomic_load_n(&own_calls, __ATOMIC_ACQUIRE), 1);
	cr_assert_eq(aio_return(&c0), 100);
	cr_assert_eq(aio_return(&c1), 100);
	cr_assert_eq(aio_return(&c2), 100);
	wait_done(&c3);
	cr_assert_eq(aio_return(&c3), 1);
	cr_assert(kqt_check(b0, 0, 100) && kqt_check(b1, 100, 100) && kqt_check(b2, 200, 100));
}

/* Invariant 8: a list that queues nothing. LIO_WAIT returns 0 at once; LIO_NOWAIT
 * returns 0 and its notification (signal, then thread) comes once, at once. */
static void empty_case(struct aiocb *const *list, int n, const char *what)
{
	int sig = SIGRTMIN + 1;
	kqt_block_sig(sig);
	cr_assert_eq(lio_listio(LIO_WAIT, list, n, NULL), 0, "%s, LIO_WAIT: %s", what,
		     strerror(errno));
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, n, NULL), 0, "%s, LIO_NOWAIT without sig: %s",
		     what, strerror(errno));
	static int marker;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
	sev.sigev_value.sival_ptr = &marker;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, n, &sev), 0, "%s, LIO_NOWAIT: %s", what,
		     strerror(errno));
	siginfo_t si;
	cr_assert(kqt_take_sig(sig, &si, 5000), "%s: the list signal never came", what);
	cr_assert_eq(si.si_code, SI_ASYNCIO, "%s", what);
	cr_assert_eq(si.si_value.sival_ptr, &marker, "%s", what);

	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_list;
	lt_list = list;
	lt_n = n;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, n, &sev), 0, "%s, LIO_NOWAIT: %s", what,
		     strerror(errno));
	cr_assert(kqt_eventually(lt_count() > 0, 5000), "%s: the list callback never ran", what);
	cr_assert_eq(lt_ptr, &marker, "%s", what);
	usleep(50000);
	cr_assert(!kqt_take_sig(sig, &si, 0), "%s: a second list signal", what);
	cr_assert_eq(lt_count(), 1, "%s: the list callback ran %d times", what, lt_count());
}

Test(lio, empty_list)
{
	struct aiocb *list[1] = {NULL};
	empty_case(list, 0, "nent 0");
}

Test(lio, list_of_nulls)
{
	struct aiocb *list[4] = {NULL, NULL, NULL, NULL};
	empty_case(list, 4, "four NULLs");
}

Test(lio, list_of_nops)
{
	struct aiocb cbs[4];
	struct aiocb *list[5];
	for (int i = 0; i < 4; i++) {
		memset(&cbs[i], 0, sizeof cbs[i]);
		cbs[i].aio_fildes = -1; /* a NOP is not validated */
		cbs[i].aio_lio_opcode = LIO_NOP;
		list[i] = &cbs[i];
	}
	list[4] = NULL;
	empty_case(list, 5, "LIO_NOPs and a NULL");
	for (int i = 0; i < 4; i++)
		expect_no_job(&cbs[i], "a LIO_NOP entry");
}

Test(lio, every_entry_failing_is_eio_and_still_notifies)
{
	int sig = SIGRTMIN + 1;
	kqt_block_sig(sig);
	int fd = kqt_file(4096);
	char buf[16];
	struct aiocb cbs[3];
	entry(&cbs[0], LIO_READ, -1, buf, sizeof buf, 0);
	entry(&cbs[1], LIO_WRITE, 999999, buf, sizeof buf, 0);
	entry(&cbs[2], LIO_READ, fd, buf, sizeof buf, -5);
	struct aiocb *list[3] = {&cbs[0], &cbs[1], &cbs[2]};
	static int marker;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
	sev.sigev_value.sival_ptr = &marker;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 3, &sev), -1);
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	siginfo_t si;
	cr_assert(kqt_take_sig(sig, &si, 5000), "the list signal never came");
	cr_assert_eq(si.si_code, SI_ASYNCIO);
	cr_assert_eq(si.si_value.sival_ptr, &marker);
	expect_refused(&cbs[0], EBADF, "fd -1");
	expect_refused(&cbs[1], EBADF, "fd 999999");
	expect_refused(&cbs[2], EINVAL, "offset -5");

	errno = 0;
	cr_assert_eq(lio_listio(LIO_WAIT, list, 3, NULL), -1);
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	expect_refused(&cbs[0], EBADF, "fd -1, LIO_WAIT");
	usleep(50000);
	cr_assert(!kqt_take_sig(sig, &si, 0), "a second list signal");
}

static void mixed_case(int mode)
{
	int sig = SIGRTMIN + 1;
	kqt_block_sig(sig);
	int src = kqt_file(1 << 16), dst = kqt_file(0);
	char r0[300], r4[300], w2[500], bad[16];
	kqt_fill(w2, 1000, sizeof w2);
	struct aiocb cbs[5];
	entry(&cbs[0], LIO_READ, src, r0, sizeof r0, 10);
	entry(&cbs[1], LIO_READ, -1, bad, sizeof bad, 0);
	entry(&cbs[2], LIO_WRITE, dst, w2, sizeof w2, 1000);
	entry(&cbs[3], LIO_WRITE, dst, bad, sizeof bad, -1);
	entry(&cbs[4], LIO_READ, src, r4, sizeof r4, 4000);
	struct aiocb *list[5] = {&cbs[0], &cbs[1], &cbs[2], &cbs[3], &cbs[4]};
	static int marker;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
	sev.sigev_value.sival_ptr = &marker;
	errno = 0;
	cr_assert_eq(lio_listio(mode, list, 5, &sev), -1);
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	siginfo_t si;
	if (mode == LIO_WAIT) {
		/* LIO_WAIT waited for the entries that were queued. */
		cr_assert_eq(aio_error(&cbs[0]), 0, "LIO_WAIT returned before entry 0 was done");
		cr_assert_eq(aio_error(&cbs[2]), 0, "LIO_WAIT returned before entry 2 was done");
		cr_assert_eq(aio_error(&cbs[4]), 0, "LIO_WAIT returned before entry 4 was done");
		usleep(50000);
		cr_assert(!kqt_take_sig(sig, &si, 0), "LIO_WAIT must ignore sig");
	} else {
		cr_assert(kqt_take_sig(sig, &si, 5000), "the list signal never came");
		cr_assert_eq(si.si_value.sival_ptr, &marker);
		for (int i = 0; i < 5; i += 2)
			cr_assert_neq(aio_error(&cbs[i]), EINPROGRESS,
				      "signalled before entry %d was done", i);
	}
	expect_refused(&cbs[1], EBADF, "fd -1");
	expect_refused(&cbs[3], EINVAL, "offset -1");
	cr_assert_eq(aio_return(&cbs[0]), 300);
	cr_assert_eq(aio_return(&cbs[2]), 500);
	cr_assert_eq(aio_return(&cbs[4]), 300);
	cr_assert(kqt_check(r0, 10, 300) && kqt_check(r4, 4000, 300));
	char back[500];
	cr_assert_eq(pread(dst, back, sizeof back, 1000), 500);
	cr_assert(kqt_check(back, 1000, 500));
	usleep(20000);
	cr_assert(!kqt_take_sig(sig, &si, 0), "a second list signal");
}

Test(lio, mixed_good_and_bad_entries_nowait)
{
	mixed_case(LIO_NOWAIT);
}

Test(lio, mixed_good_and_bad_entries_wait)
{
	mixed_case(LIO_WAIT);
}

Test(lio, wait_with_an_entry_failing_at_completion_is_eio)
{
	int fd = kqt_file(1 << 16);
	char a[100], c[100];
	struct aiocb cbs[3];
	entry(&cbs[0], LIO_READ, fd, a, sizeof a, 0);
	entry(&cbs[1], LIO_READ, fd, (void *)1, 4096, 0); /* EFAULT when it runs */
	entry(&cbs[2], LIO_READ, fd, c, sizeof c, 200);
	struct aiocb *list[3] = {&cbs[0], &cbs[1], &cbs[2]};
	errno = 0;
	cr_assert_eq(lio_listio(LIO_WAIT, list, 3, NULL), -1, "POSIX: EIO when any entry failed");
	cr_assert_eq(errno, EIO, "%s", strerror(errno));
	cr_assert_eq(aio_error(&cbs[1]), EFAULT);
	errno = 0;
	cr_assert_eq(aio_return(&cbs[1]), -1);
	cr_assert_eq(errno, EFAULT);
	cr_assert_eq(aio_return(&cbs[0]), 100);
	cr_assert_eq(aio_return(&cbs[2]), 100);
	cr_assert(kqt_check(a, 0, 100) && kqt_check(c, 200, 100));

	/* LIO_NOWAIT: queueing succeeded, so the call itself succeeds. */
	entry(&cbs[1], LIO_READ, fd, (void *)1, 4096, 0);
	struct aiocb *one[1] = {&cbs[1]};
	cr_assert_eq(lio_listio(LIO_NOWAIT, one, 1, NULL), 0, "%s", strerror(errno));
	wait_done(&cbs[1]);
	cr_assert_eq(aio_error(&cbs[1]), EFAULT);
	errno = 0;
	cr_assert_eq(aio_return(&cbs[1]), -1);
	cr_assert_eq(errno, EFAULT);
}

Test(lio, bad_mode_and_nent_are_einval)
{
	int fd = kqt_file(4096);
	char buf[16];
	struct aiocb cb;
	entry(&cb, LIO_READ, fd, buf, sizeof buf, 0);
	struct aiocb *list[1] = {&cb};
	static const int modes[] = {-1, 2, 7, 12345};
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		if (modes[i] == LIO_WAIT || modes[i] == LIO_NOWAIT)
			continue;
		errno = 0;
		cr_assert_eq(lio_listio(modes[i], list, 1, NULL), -1, "mode %d", modes[i]);
		cr_assert_eq(errno, EINVAL, "mode %d: %s", modes[i], strerror(errno));
		expect_no_job(&cb, "an entry of a list with a bad mode");
	}
	errno = 0;
	cr_assert_eq(lio_listio(LIO_WAIT, list, -1, NULL), -1);
	cr_assert_eq(errno, EINVAL, "%s", strerror(errno));
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, -1, NULL), -1);
	cr_assert_eq(errno, EINVAL, "%s", strerror(errno));
	expect_no_job(&cb, "an entry of a list with nent -1");
}

Test(lio, bad_opcode_fails_that_entry)
{
	int fd = kqt_file(4096);
	char a[64], b[64];
	static const int ops[] = {99, -1, 3, 4, 7};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		struct aiocb good, bad;
		entry(&good, LIO_READ, fd, a, sizeof a, 64);
		entry(&bad, ops[i], fd, b, sizeof b, 0);
		struct aiocb *list[2] = {&bad, &good};
		errno = 0;
		cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), -1, "opcode %d", ops[i]);
		cr_assert_eq(errno, EIO, "opcode %d: %s", ops[i], strerror(errno));
		char what[32];
		snprintf(what, sizeof what, "opcode %d", ops[i]);
		expect_refused(&bad, EINVAL, what);
		cr_assert_eq(aio_return(&good), 64, "%s: the good entry", what);
		cr_assert(kqt_check(a, 64, 64));
	}
}

Test(lio, readv_and_writev_entries)
{
	int src = kqt_file(1 << 16), dst = kqt_file(0);
	char w0[10], w1[3000], w2[1];
	kqt_fill(w0, 100, 10);
	kqt_fill(w1, 110, 3000);
	kqt_fill(w2, 3110, 1);
	struct iovec wiov[3] = {{w0, 10}, {w1, 3000}, {w2, 1}};
	char r0[7], r1[5000];
	struct iovec riov[2] = {{r0, 7}, {r1, 5000}};
	struct aiocb wv, rv;
	entry(&wv, LIO_WRITEV, dst, wiov, 3, 100);
	entry(&rv, LIO_READV, src, riov, 2, 999);
	struct aiocb *list[2] = {&wv, &rv};
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(aio_return(&wv), 3011);
	cr_assert_eq(aio_return(&rv), 5007);
	cr_assert(kqt_check(r0, 999, 7) && kqt_check(r1, 1006, 5000));
	/* Read what the writev put there back with a readv entry, NOWAIT this time. */
	char b0[11], b1[3000];
	struct iovec biov[2] = {{b0, 11}, {b1, 3000}};
	entry(&rv, LIO_READV, dst, biov, 2, 100);
	struct aiocb *one[1] = {&rv};
	cr_assert_eq(lio_listio(LIO_NOWAIT, one, 1, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(kqt_wait(&rv), 3011);
	cr_assert(kqt_check(b0, 100, 11) && kqt_check(b1, 111, 3000));
}

Test(lio, thousand_entries)
{
	enum { N = 1000, SZ = 64 };
	int src = kqt_file(N * SZ), dst = kqt_file(0);
	static struct aiocb cbs[N];
	static struct aiocb *list[N];
	static char bufs[N][SZ];
	for (int i = 0; i < N; i++) {
		if (i % 2) {
			kqt_fill(bufs[i], (off_t)i * SZ, SZ);
			entry(&cbs[i], LIO_WRITE, dst, bufs[i], SZ, (off_t)i * SZ);
		} else {
			entry(&cbs[i], LIO_READ, src, bufs[i], SZ, (off_t)i * SZ);
		}
		list[i] = &cbs[i];
	}
	cr_assert_eq(lio_listio(LIO_WAIT, list, N, NULL), 0, "%s", strerror(errno));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_return(&cbs[i]), SZ, "entry %d", i);
		if (i % 2 == 0)
			cr_assert(kqt_check(bufs[i], (off_t)i * SZ, SZ), "entry %d", i);
		else {
			char back[SZ];
			cr_assert_eq(pread(dst, back, SZ, (off_t)i * SZ), SZ);
			cr_assert(kqt_check(back, (off_t)i * SZ, SZ), "entry %d", i);
		}
	}

	/* The same thousand reads as one LIO_NOWAIT list: one notification, after all. */
	for (int i = 0; i < N; i++)
		entry(&cbs[i], LIO_READ, src, bufs[i], SZ, (off_t)i * SZ);
	static int marker;
	struct sigevent sev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_list};
	sev.sigev_value.sival_ptr = &marker;
	lt_list = list;
	lt_n = N;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, N, &sev), 0, "%s", strerror(errno));
	cr_assert(kqt_eventually(lt_count() > 0, 10000), "the list never notified");
	cr_assert_eq(lt_ptr, &marker);
	cr_assert_eq(__atomic_load_n(&lt_unfinished, __ATOMIC_RELAXED), 0,
		     "%d entries still in progress when the list notified", lt_unfinished);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_return(&cbs[i]), SZ, "entry %d", i);
		cr_assert(kqt_check(bufs[i], (off_t)i * SZ, SZ), "entry %d", i);
	}
	usleep(50000);
	cr_assert_eq(lt_count(), 1, "the list notified %d times", lt_count());
}
