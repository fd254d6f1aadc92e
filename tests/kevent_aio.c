/* AIO completions through kqueue (SIGEV_KEVENT, EVFILT_AIO, EVFILT_LIO): the issue-4 tests.
 * Each numbered test guards one invariant of doc/design.md, one FreeBSD once broke; the rest pin
 * the event fields and the knote flags doc/behaviour.md lists. */
#include "kqt_kevent.h"
#include "stall.h"

#include <limits.h>
#include <sys/event.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>

TestSuite(kevent_aio, .timeout = 30);

/* --- helpers --- */

static void sev_kq(struct sigevent *s, int kq, int flags, void *udata)
{
	memset(s, 0, sizeof *s);
	s->sigev_notify = SIGEV_KEVENT;
	s->sigev_notify_kqueue = kq;
	s->sigev_notify_kevent_flags = flags;
	s->sigev_value.sival_ptr = udata;
}

/* kcb: an aiocb (opcode op for lists) that notifies kq with flags and udata. */
static void kcb(struct aiocb *cb, int fd, void *buf, size_t n, off_t off, int op, int kq, int flags,
		void *udata)
{
	kqt_cb(cb, fd, buf, n, off);
	cb->aio_lio_opcode = op;
	sev_kq(&cb->aio_sigevent, kq, flags, udata);
}

/* Exactly one event is reported (waiting up to 5 s for it). */
static void one_event(int kq, struct kevent *out, const char *what)
{
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, 5000);
	cr_assert_neq(r, 0, "%s: no event within 5 s", what);
	cr_assert_eq(r, 1, "%s: %d events, the second " EVFMT, what, r, EVARG(&ev[1]));
	*out = ev[0];
}

static void expect_aio(const struct kevent *e, const struct aiocb *cb, int flags, int64_t data,
		       void *udata, const char *what)
{
	cr_assert(
	    e->ident == (uintptr_t)cb && e->filter == EVFILT_AIO && e->flags == (EV_EOF | flags) &&
		e->fflags == 0 && e->data == data && e->udata == udata,
	    "%s: got " EVFMT ", want ident %p filter %d flags %#x fflags 0 data %lld udata %p",
	    what, EVARG(e), (void *)cb, EVFILT_AIO, EV_EOF | flags, (long long)data, udata);
}

static void expect_lio(const struct kevent *e, const void *list, void *udata, const char *what)
{
	cr_assert(e->ident == (uintptr_t)list && e->filter == EVFILT_LIO && e->flags == 0 &&
		      e->fflags == 0 && e->data == 0 && e->udata == udata,
		  "%s: got " EVFMT ", want ident %p filter %d flags 0 fflags 0 data 0 udata %p",
		  what, EVARG(e), list, EVFILT_LIO, udata);
}

/* aio_return's value and errno (0 on success). */
static ssize_t reap(struct aiocb *cb, int *err)
{
	errno = 0;
	ssize_t r = aio_return(cb);
	*err = r < 0 ? errno : 0;
	return r;
}

static void expect_return(struct aiocb *cb, ssize_t want, int want_err, const char *what)
{
	int err;
	ssize_t r = reap(cb, &err);
	cr_assert(r == want && err == want_err, "%s: aio_return %zd (%s), want %zd (%s)", what, r,
		  strerror(err), want, strerror(want_err));
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* A cheap pattern for large buffers: 8-byte words that name their offset. */
static void big_fill(void *buf, size_t n, uint64_t seed)
{
	uint64_t *w = buf;
	for (size_t i = 0; i < n / 8; i++)
		w[i] = (i + seed) * 0x9e3779b97f4a7c15ull;
}

static void *xmmap(size_t n, int prot)
{
	void *p = mmap(NULL, n, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert(p != MAP_FAILED, "mmap %zu: %s", n, strerror(errno));
	return p;
}

/* --- 1. the list count --- */

/* A list whose entries finish at once (a pipe with data, a tiny write, a small read) before
 * one held in flight (a pipe read fed later, or a read into a stalled buffer). */
static void list_with_slow_last(int kq, int fd, int use_stall)
{
	static int lmark, emark;
	int fast[2], slow[2];
	xpipe(fast);
	xpipe(slow);
	struct kqt_stall st = {.uffd = -1};
	if (use_stall)
		kqt_stall_init(&st, 4096);
	char pbuf[16], wbuf[] = "tiny write", rbuf[100], sbuf[16];
	xwrite(fast[1], "instant", 7);
	struct aiocb e0, e1, e2, e3;
	/* Entries that finish at once: a pipe with data waiting, a tiny write, a small read. */
	kcb(&e0, fast[0], pbuf, sizeof pbuf, 0, LIO_READ, kq, EV_ONESHOT, &emark);
	kqt_cb(&e1, fd, wbuf, sizeof wbuf, 1024);
	e1.aio_lio_opcode = LIO_WRITE;
	kqt_cb(&e2, fd, rbuf, sizeof rbuf, 5000);
	e2.aio_lio_opcode = LIO_READ;
	/* And last, one held in flight. */
	if (use_stall)
		kqt_cb(&e3, fd, st.buf, 4096, 8192);
	else
		kqt_cb(&e3, slow[0], sbuf, sizeof sbuf, 0);
	e3.aio_lio_opcode = LIO_READ;
	struct aiocb *list[4] = {&e0, &e1, &e2, &e3};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 4, &sig), 0, "lio_listio: %s", strerror(errno));
	if (use_stall)
		kqt_stall_wait_blocked(&st);
	wait_done(&e0);
	wait_done(&e1);
	wait_done(&e2);
	struct kevent ev;
	one_event(kq, &ev, "the first entry's own event");
	expect_aio(&ev, &e0, EV_ONESHOT, 0, &emark, "the first entry's own event");
	no_events(kq, 50, "three of four entries done: the list must not be reported");
	cr_assert_eq(aio_error(&e3), EINPROGRESS);
	if (use_stall)
		kqt_stall_release(&st);
	else
		xwrite(slow[1], "slow", 4);
	one_event(kq, &ev, "the list event");
	expect_lio(&ev, list, &lmark, "the list event");
	for (int i = 0; i < 4; i++)
		cr_assert_neq(aio_error(list[i]), EINPROGRESS,
			      "entry %d in progress when its list was reported", i);
	expect_return(&e0, 7, 0, "pipe entry");
	cr_assert(!memcmp(pbuf, "instant", 7));
	expect_return(&e1, sizeof wbuf, 0, "write entry");
	expect_return(&e2, sizeof rbuf, 0, "read entry");
	cr_assert(kqt_check(rbuf, 5000, sizeof rbuf));
	expect_return(&e3, use_stall ? 4096 : 4, 0, "held entry");
	no_events(kq, 0, "every entry reaped");
	if (use_stall) {
		cr_assert(kqt_check(st.buf, 8192, 4096));
		munmap(st.buf, st.len);
		close(st.uffd);
	}
	close_all(fast, 2);
	close_all(slow, 2);
}

/* Guards invariant 1: a list completes at finished == requested, not == queued so far. */
Test(kevent_aio, list_event_waits_for_its_last_entry, .init = kqt_stall_no_inline)
{
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	for (int round = 0; round < 6; round++)
		list_with_slow_last(kq, fd, 0);
	list_with_slow_last(kq, fd, 1);
	close(fd);
	close(kq);
}

/* --- 2. a job done in parts --- */

/* Guards invariant 2: a job done in parts notifies once, after its last part. */
Test(kevent_aio, split_job_notifies_once_after_its_last_part)
{
	static int mark;
	int kq = xkqueue();
	struct kevent ev;
	struct aiocb cb;

	/* 64 MiB from tmpfs, one event (EV_CLEAR: a second completion would show). */
	size_t big = 64u << 20;
	int fd = kqt_file(0);
	char *out = xmmap(big, PROT_READ | PROT_WRITE), *in = xmmap(big, PROT_READ | PROT_WRITE);
	big_fill(out, big, 1);
	cr_assert_eq(pwrite(fd, out, big, 0), (ssize_t)big);
	kcb(&cb, fd, in, big, 0, LIO_READ, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	one_event(kq, &ev, "64 MiB read");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "64 MiB read");
	cr_assert_eq(aio_error(&cb), 0);
	no_events(kq, 50, "64 MiB read: a second event");
	expect_return(&cb, (ssize_t)big, 0, "64 MiB read");
	cr_assert(!memcmp(in, out, big), "64 MiB read: wrong data");
	munmap(out, big);
	munmap(in, big);
	close(fd);

	/* 3 GiB to /dev/null: the kernel moves at most MAX_RW_COUNT (2 GiB - 4 KiB) per call,
	 * so the job is at least two transfers. The buffer is never touched: no memory. */
	size_t huge = 3ul << 30;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cr_assert(fd >= 0);
	char *z = xmmap(huge, PROT_READ);
	kcb(&cb, fd, z, huge, 0, LIO_WRITE, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_write(&cb), 0, "aio_write: %s", strerror(errno));
	one_event(kq, &ev, "3 GiB write");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "3 GiB write");
	no_events(kq, 50, "3 GiB write: a second event");
	expect_return(&cb, (ssize_t)huge, 0, "3 GiB write to /dev/null");
	munmap(z, huge);
	close(fd);

	/* 1 MiB into a 64 KiB pipe: it cannot be done before the reader has taken all but
	 * the pipe's capacity, and then it is reported once. */
	int p[2];
	xpipe(p);
	cr_assert_eq(fcntl(p[1], F_SETPIPE_SZ, 65536), 65536);
	size_t cap = (size_t)fcntl(p[1], F_GETPIPE_SZ), total = 1u << 20;
	unsigned char *wbuf = malloc(total), *rbuf = malloc(total);
	cr_assert(wbuf && rbuf);
	kqt_fill(wbuf, 0, total);
	kcb(&cb, p[1], wbuf, total, 0, LIO_WRITE, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_write(&cb), 0, "aio_write: %s", strerror(errno));
	size_t got = 0;
	while (got < total) {
		if (got + cap < total) {
			no_events(kq, 0, "pipe write: reported before its last part");
			cr_assert_eq(aio_error(&cb), EINPROGRESS,
				     "pipe write done with %zu bytes "
				     "not yet in the pipe",
				     total - got - cap);
		}
		ssize_t r = read(p[0], rbuf + got, 16384);
		cr_assert_gt(r, 0, "read: %s", strerror(errno));
		got += (size_t)r;
	}
	one_event(kq, &ev, "pipe write");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "pipe write");
	no_events(kq, 50, "pipe write: a second event");
	expect_return(&cb, (ssize_t)total, 0, "pipe write");
	cr_assert(kqt_check(rbuf, 0, total), "pipe write: wrong data");

	/* A pipe read fed in two pieces ends as read(2) would, with what had arrived;
	 * either way it is one event and aio_return says how much. */
	memset(rbuf, 0, 8192);
	kcb(&cb, p[0], rbuf, 8192, 0, LIO_READ, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	xwrite(p[1], wbuf, 4096);
	usleep(20000);
	xwrite(p[1], wbuf + 4096, 4096);
	one_event(kq, &ev, "pipe read in pieces");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "pipe read in pieces");
	no_events(kq, 50, "pipe read in pieces: a second event");
	ssize_t n = aio_return(&cb);
	cr_assert(n >= 4096 && n <= 8192 && n % 4096 == 0, "pipe read: %zd", n);
	cr_assert(kqt_check(rbuf, 0, (size_t)n));
	ssize_t rest = read(p[0], rbuf + n, 8192);
	cr_assert_eq(rest, 8192 - n, "the bytes the read did not take are still in the pipe");
	cr_assert(kqt_check(rbuf, 0, 8192));
	free(wbuf);
	free(rbuf);
	close_all(p, 2);
	close(kq);
}

/* A loop device (root only) for requests larger than its largest single I/O. */
static char loopdev[64];
static int loop_fd = -1;

static void loop_fini(void)
{
	if (loop_fd >= 0)
		close(loop_fd);
	loop_fd = -1;
	kqt_loop_detach(loopdev);
}

static size_t loop_setup(size_t size)
{
	kqt_loop_attach("kqaio-kev-loop", (off_t)size, loopdev, sizeof loopdev);
	loop_fd = open(loopdev, O_RDWR | O_CLOEXEC);
	cr_assert(loop_fd >= 0, "open %s: %s", loopdev, strerror(errno));
	char q[128];
	snprintf(q, sizeof q, "/sys/block/%s/queue/max_sectors_kb", loopdev + 5);
	FILE *mf = fopen(q, "r");
	cr_assert(mf, "%s: %s", q, strerror(errno));
	unsigned long kb = 0;
	cr_assert_eq(fscanf(mf, "%lu", &kb), 1);
	fclose(mf);
	cr_assert_gt(kb, 0);
	return kb * 1024;
}

/* Guards invariants 2 and 7 on a loop device: a read beyond its max I/O size. */
Test(kevent_aio, read_beyond_device_max_io_notifies_once, .fini = loop_fini)
{
	static int mark;
	size_t dev_size = 64u << 20;
	size_t max = loop_setup(dev_size);
	size_t n = 4 * max > (16u << 20) ? (16u << 20) : 4 * max;
	cr_assert_gt(n, max);
	unsigned char *out = NULL, *in = NULL;
	cr_assert_eq(posix_memalign((void **)&out, 4096, n), 0);
	cr_assert_eq(posix_memalign((void **)&in, 4096, n), 0);
	off_t off = 8 << 20;
	kqt_fill(out, off, n);
	cr_assert_eq(pwrite(loop_fd, out, n, off), (ssize_t)n);
	cr_assert_eq(fsync(loop_fd), 0);
	int kq = xkqueue();
	for (int direct = 0; direct < 2; direct++) {
		int fd = open(loopdev, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
		cr_assert(fd >= 0, "open %s: %s", loopdev, strerror(errno));
		memset(in, 0, n);
		struct aiocb cb;
		kcb(&cb, fd, in, n, off, LIO_READ, kq, EV_CLEAR, &mark);
		cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
		struct kevent ev;
		one_event(kq, &ev, direct ? "O_DIRECT read" : "buffered read");
		expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "device read");
		no_events(kq, 50, "device read: a second event");
		expect_return(&cb, (ssize_t)n, 0, direct ? "O_DIRECT read" : "buffered read");
		cr_assert(kqt_check(in, off, n), "device read: wrong data");
		close(fd);
	}
	free(out);
	free(in);
	close(kq);
}

/* --- 3. notified only once visibly done --- */

/* One round of job_is_done_when_its_kevent_is_read. */
static void done_when_read(int kq, int fd, int p[2])
{
	static int mark;
	char fbuf[3000], pbuf[16], cbuf[16];
	struct aiocb file, pipe_rd, cancelled, bad;
	kcb(&file, fd, fbuf, sizeof fbuf, 500, LIO_READ, kq, 0, &mark);
	kcb(&pipe_rd, p[0], pbuf, sizeof pbuf, 0, LIO_READ, kq, 0, &mark);
	kcb(&bad, fd, (void *)8, 100, 0, LIO_READ, kq, 0, &mark); /* EFAULT when it runs */
	cr_assert_eq(aio_read(&file), 0);
	cr_assert_eq(aio_read(&pipe_rd), 0);
	cr_assert_eq(aio_read(&bad), 0, "a bad buffer is found when the job runs");
	/* A second read queued behind the first on the pipe, then cancelled. */
	kcb(&cancelled, p[0], cbuf, sizeof cbuf, 0, LIO_READ, kq, 0, &mark);
	cr_assert_eq(aio_read(&cancelled), 0);
	cr_assert_eq(aio_cancel(p[0], &cancelled), AIO_CANCELED);
	xwrite(p[1], "pipe data", 9);
	struct {
		struct aiocb *cb;
		ssize_t res;
		int err;
	} want[4] = {
	    {&file, 3000, 0}, {&pipe_rd, 9, 0}, {&cancelled, -1, ECANCELED}, {&bad, -1, EFAULT}};
	int left = 4;
	while (left) {
		struct kevent ev[8];
		int r = kev_get(kq, ev, 8, 5000);
		cr_assert_gt(r, 0, "%d job(s) never reported", left);
		for (int i = 0; i < r; i++) {
			int k = 0;
			while (k < 4 && (uintptr_t)want[k].cb != ev[i].ident)
				k++;
			cr_assert_lt(k, 4, "an event for no job of ours (or a reaped one): " EVFMT,
				     EVARG(&ev[i]));
			int e = aio_error(want[k].cb);
			cr_assert_neq(e, EINPROGRESS, "job %d reported while in progress", k);
			cr_assert_eq(e, want[k].err, "job %d: aio_error %d", k, e);
			expect_aio(&ev[i], want[k].cb, 0, want[k].err, &mark, "reported job");
			expect_return(want[k].cb, want[k].res, want[k].err, "reported job");
			want[k].cb = NULL;
			left--;
		}
	}
	cr_assert(kqt_check(fbuf, 500, sizeof fbuf));
	cr_assert(!memcmp(pbuf, "pipe data", 9));
	no_events(kq, 0, "all reaped");
}

/* Guards invariant 3: notified only once visibly done, in a kevent loop. */
Test(kevent_aio, job_is_done_when_its_kevent_is_read)
{
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	for (int round = 0; round < 20; round++)
		done_when_read(kq, fd, p);
	close_all(p, 2);
	close(fd);
	close(kq);
}

static struct aiocb *h_cb;
static int h_count, h_code, h_err, h_reterr;
static ssize_t h_ret;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	int saved = errno;
	if (!h_count++) {
		h_code = si->si_code;
		h_err = aio_error(h_cb);
		errno = 0;
		h_ret = aio_return(h_cb);
		h_reterr = h_ret < 0 ? errno : 0;
	}
	errno = saved;
}

/* Guards invariant 3: notified only once visibly done, in a signal handler. */
Test(kevent_aio, job_is_done_when_its_signal_is_handled)
{
	int sig = SIGRTMIN + 2;
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0);
	sigset_t block, during;
	sigemptyset(&block);
	sigaddset(&block, sig);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &block, &during), 0);
	sigdelset(&during, sig);
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[4096];
	for (int k = 0; k < 2; k++) {
		struct aiocb cb;
		if (k == 0)
			kqt_cb(&cb, fd, buf, 2000, 100);
		else
			kqt_cb(&cb, p[0], buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = sig;
		h_cb = &cb;
		h_count = 0;
		cr_assert_eq(aio_read(&cb), 0);
		if (k == 1)
			xwrite(p[1], "signalled", 9);
		/* The handler runs only inside sigsuspend, where this thread holds no lock. */
		while (!h_count)
			sigsuspend(&during);
		const char *what = k ? "pipe" : "file";
		cr_assert_eq(h_code, SI_ASYNCIO, "%s", what);
		cr_assert_neq(h_err, EINPROGRESS, "%s: signalled while in progress", what);
		cr_assert_eq(h_err, 0, "%s: aio_error %d in the handler", what, h_err);
		cr_assert_eq(h_ret, k ? 9 : 2000, "%s: aio_return %zd (%s) in the handler", what,
			     h_ret, strerror(h_reterr));
		cr_assert(k ? !memcmp(buf, "signalled", 9) : kqt_check(buf, 100, 2000));
	}
	close_all(p, 2);
	close(fd);
}

static struct aiocb *t_cb;
static int t_done, t_err, t_reterr;
static ssize_t t_ret;

static void on_thread(union sigval v)
{
	struct aiocb *cb = v.sival_ptr;
	int err = aio_error(cb);
	errno = 0;
	ssize_t ret = aio_return(cb);
	t_reterr = ret < 0 ? errno : 0;
	t_err = err;
	t_ret = ret;
	__atomic_store_n(&t_done, cb == t_cb ? 1 : -1, __ATOMIC_RELEASE);
}

/* Guards invariant 3: notified only once visibly done, in a thread callback. */
Test(kevent_aio, job_is_done_when_its_thread_callback_runs)
{
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[4096];
	for (int k = 0; k < 2; k++) {
		struct aiocb cb;
		if (k == 0)
			kqt_cb(&cb, fd, buf, 3000, 77);
		else
			kqt_cb(&cb, p[0], buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		cb.aio_sigevent.sigev_notify_function = on_thread;
		cb.aio_sigevent.sigev_value.sival_ptr = &cb;
		t_cb = &cb;
		__atomic_store_n(&t_done, 0, __ATOMIC_RELEASE);
		cr_assert_eq(aio_read(&cb), 0);
		if (k == 1)
			xwrite(p[1], "threaded", 8);
		cr_assert(kqt_eventually(__atomic_load_n(&t_done, __ATOMIC_ACQUIRE), 5000),
			  "no callback");
		cr_assert_eq(__atomic_load_n(&t_done, __ATOMIC_ACQUIRE), 1, "callback value");
		const char *what = k ? "pipe" : "file";
		cr_assert_neq(t_err, EINPROGRESS, "%s: callback while in progress", what);
		cr_assert_eq(t_err, 0, "%s: aio_error %d in the callback", what, t_err);
		cr_assert_eq(t_ret, k ? 8 : 3000, "%s: aio_return %zd (%s) in the callback", what,
			     t_ret, strerror(t_reterr));
		cr_assert(k ? !memcmp(buf, "threaded", 8) : kqt_check(buf, 77, 3000));
	}
	close_all(p, 2);
	close(fd);
}

/* A list notification's handler finds every entry done. */
static struct aiocb *const *l_list;
static int l_n, l_count, l_inprogress;

static void count_inprogress(void)
{
	int n = 0;
	for (int i = 0; i < l_n; i++)
		n += aio_error(l_list[i]) == EINPROGRESS;
	l_inprogress = n;
}

static void on_list_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	int saved = errno;
	if (!l_count++)
		count_inprogress();
	errno = saved;
}

static void on_list_thread(union sigval v)
{
	(void)v;
	count_inprogress();
	__atomic_add_fetch(&l_count, 1, __ATOMIC_RELEASE);
}

/* Guards invariant 3 for lists: no entry in progress when any kind of list notice comes. */
Test(kevent_aio, list_is_done_when_notified_by_any_kind)
{
	int sig = SIGRTMIN + 3;
	struct sigaction sa = {.sa_sigaction = on_list_sig, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0);
	sigset_t block, during;
	sigemptyset(&block);
	sigaddset(&block, sig);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &block, &during), 0);
	sigdelset(&during, sig);
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	for (int kind = 0; kind < 3; kind++) {
		char b0[100], b1[100], b2[8];
		struct aiocb e0, e1, e2;
		kqt_cb(&e0, fd, b0, sizeof b0, 0);
		e0.aio_lio_opcode = LIO_READ;
		kqt_cb(&e1, fd, b1, sizeof b1, 100);
		e1.aio_lio_opcode = LIO_READ;
		kqt_cb(&e2, p[0], b2, sizeof b2, 0);
		e2.aio_lio_opcode = LIO_READ;
		struct aiocb *list[3] = {&e0, &e1, &e2};
		l_list = list;
		l_n = 3;
		l_inprogress = -1;
		__atomic_store_n(&l_count, 0, __ATOMIC_RELEASE);
		struct sigevent sev;
		memset(&sev, 0, sizeof sev);
		if (kind == 0) {
			sev_kq(&sev, kq, 0, &mark);
		} else if (kind == 1) {
			sev.sigev_notify = SIGEV_SIGNAL;
			sev.sigev_signo = sig;
		} else {
			sev.sigev_notify = SIGEV_THREAD;
			sev.sigev_notify_function = on_list_thread;
		}
		cr_assert_eq(lio_listio(LIO_NOWAIT, list, 3, &sev), 0);
		wait_done(&e0);
		wait_done(&e1);
		xwrite(p[1], "last", 4);
		if (kind == 0) {
			struct kevent ev;
			one_event(kq, &ev, "list by kevent");
			expect_lio(&ev, list, &mark, "list by kevent");
			count_inprogress();
		} else if (kind == 1) {
			while (!l_count)
				sigsuspend(&during);
		} else {
			cr_assert(kqt_eventually(__atomic_load_n(&l_count, __ATOMIC_ACQUIRE), 5000),
				  "no list callback");
		}
		cr_assert_eq(l_inprogress, 0, "kind %d: %d entries in progress when notified", kind,
			     l_inprogress);
		expect_return(&e0, 100, 0, "entry 0");
		expect_return(&e1, 100, 0, "entry 1");
		expect_return(&e2, 4, 0, "entry 2");
		cr_assert_eq(__atomic_load_n(&l_count, __ATOMIC_ACQUIRE), kind ? 1 : 0);
	}
	no_events(kq, 0, "lists reaped");
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* --- 4. each job its own way --- */

static int usr1_count;

/* Counts every SIGUSR1, however sent: nothing but the jobs here sends one. */
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	__atomic_add_fetch(&usr1_count, 1, __ATOMIC_RELAXED);
}

static int t4_calls;

static void t4_thread(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&t4_calls, 1, __ATOMIC_RELEASE);
}

/* Guards invariant 4: each job notifies only the way its own sigevent asks. */
Test(kevent_aio, each_job_notifies_only_the_way_it_asked)
{
	struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[256];
	struct aiocb cb;
	struct kevent ev;
	for (int k = 0; k < 2; k++) { /* a worker job and a pipe job */
		int src = k ? p[0] : fd;
		const char *what = k ? "pipe" : "file";
		/* SIGEV_KEVENT: one event, no signal. */
		kcb(&cb, src, buf, 100, 0, LIO_READ, kq, 0, &mark);
		cr_assert_eq(aio_read(&cb), 0);
		if (k)
			xwrite(p[1], buf, 100);
		one_event(kq, &ev, what);
		expect_aio(&ev, &cb, 0, 0, &mark, what);
		expect_return(&cb, 100, 0, what);
		usleep(50000);
		cr_assert_eq(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED), 0,
			     "%s: a kevent job raised a signal", what);
		/* SIGEV_SIGNAL: one signal, no event. */
		kqt_cb(&cb, src, buf, 100, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = SIGUSR1;
		cr_assert_eq(aio_read(&cb), 0);
		if (k)
			xwrite(p[1], buf, 100);
		cr_assert(kqt_eventually(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED) == 1, 5000),
			  "%s: no signal", what);
		no_events(kq, 50, "a signal job posted a kevent");
		expect_return(&cb, 100, 0, what);
		__atomic_store_n(&usr1_count, 0, __ATOMIC_RELAXED);
		/* SIGEV_THREAD: one call, no event, no signal. */
		kqt_cb(&cb, src, buf, 100, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		cb.aio_sigevent.sigev_notify_function = t4_thread;
		__atomic_store_n(&t4_calls, 0, __ATOMIC_RELAXED);
		cr_assert_eq(aio_read(&cb), 0);
		if (k)
			xwrite(p[1], buf, 100);
		cr_assert(kqt_eventually(__atomic_load_n(&t4_calls, __ATOMIC_ACQUIRE) == 1, 5000),
			  "%s: no callback", what);
		no_events(kq, 50, "a thread job posted a kevent");
		cr_assert_eq(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED), 0);
		expect_return(&cb, 100, 0, what);
		/* SIGEV_NONE: nothing. */
		kqt_cb(&cb, src, buf, 100, 0);
		cr_assert_eq(aio_read(&cb), 0);
		if (k)
			xwrite(p[1], buf, 100);
		wait_done(&cb);
		no_events(kq, 50, "a SIGEV_NONE job posted a kevent");
		cr_assert_eq(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED), 0);
		cr_assert_eq(__atomic_load_n(&t4_calls, __ATOMIC_ACQUIRE), 1);
		expect_return(&cb, 100, 0, what);
	}
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* Guards invariants 4 and 5 in lists: a SIGEV_NONE entry posts nothing of its own. */
Test(kevent_aio, list_entries_notify_only_as_each_asked)
{
	struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	static int lmark, m0, m1;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char b[3][64];
	struct aiocb e[3];
	struct aiocb *list[3] = {&e[0], &e[1], &e[2]};
	struct kevent ev;

	/* SIGEV_NONE entries (one with a zeroed sigevent: signal 0) in a kevent list. */
	for (int i = 0; i < 3; i++) {
		kqt_cb(&e[i], fd, b[i], 64, i * 64);
		e[i].aio_lio_opcode = LIO_READ;
	}
	memset(&e[2].aio_sigevent, 0, sizeof e[2].aio_sigevent);
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 3, &sig), 0);
	one_event(kq, &ev, "silent entries");
	expect_lio(&ev, list, &lmark, "silent entries");
	for (int i = 0; i < 3; i++)
		expect_return(&e[i], 64, 0, "silent entry");
	no_events(kq, 50, "silent entries reaped");

	/* Kevent entries in a signal list: two entry events, one signal, no list event. */
	kcb(&e[0], fd, b[0], 64, 0, LIO_READ, kq, EV_ONESHOT, &m0);
	kcb(&e[1], fd, b[1], 64, 64, LIO_READ, kq, EV_ONESHOT, &m1);
	kqt_cb(&e[2], fd, b[2], 64, 128);
	e[2].aio_lio_opcode = LIO_NOP;
	memset(&sig, 0, sizeof sig);
	sig.sigev_notify = SIGEV_SIGNAL;
	sig.sigev_signo = SIGUSR1;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 3, &sig), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED) == 1, 5000),
		  "no list signal");
	int seen0 = 0, seen1 = 0;
	while (seen0 + seen1 < 2) {
		struct kevent evs[4];
		int r = kev_get(kq, evs, 4, 5000);
		cr_assert_gt(r, 0, "entry events of a signal list missing");
		for (int k = 0; k < r; k++) {
			if (evs[k].ident == (uintptr_t)&e[0]) {
				expect_aio(&evs[k], &e[0], EV_ONESHOT, 0, &m0, "entry 0");
				seen0++;
			} else {
				expect_aio(&evs[k], &e[1], EV_ONESHOT, 0, &m1, "entry 1");
				seen1++;
			}
		}
	}
	cr_assert(seen0 == 1 && seen1 == 1);
	no_events(kq, 50, "a signal list posted a kevent");
	cr_assert_eq(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED), 1, "one list signal");
	expect_return(&e[0], 64, 0, "entry 0");
	expect_return(&e[1], 64, 0, "entry 1");

	/* Kevent entries in a list without sig: their events, nothing for the list. */
	kcb(&e[0], fd, b[0], 64, 0, LIO_READ, kq, EV_ONESHOT, &m0);
	kcb(&e[1], fd, b[1], 64, 64, LIO_READ, kq, EV_ONESHOT, &m1);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, NULL), 0);
	struct kevent two[4];
	int got = 0;
	while (got < 2) {
		int r = kev_get(kq, two + got, 4 - got, 5000);
		cr_assert_gt(r, 0, "entry events missing");
		got += r;
	}
	cr_assert_eq(got, 2);
	for (int i = 0; i < 2; i++)
		cr_assert(two[i].filter == EVFILT_AIO && (two[i].ident == (uintptr_t)&e[0] ||
							  two[i].ident == (uintptr_t)&e[1]),
			  "unexpected " EVFMT, EVARG(&two[i]));
	cr_assert_neq(two[0].ident, two[1].ident);
	no_events(kq, 50, "a list without sig");
	expect_return(&e[0], 64, 0, "entry 0");
	expect_return(&e[1], 64, 0, "entry 1");
	cr_assert_eq(__atomic_load_n(&usr1_count, __ATOMIC_RELAXED), 1);
	close(fd);
	close(kq);
}

/* --- 5. one entry is not the list --- */

/* Guards invariant 5: no list event after a single entry completes (or is reaped). */
Test(kevent_aio, no_list_event_after_a_single_entry)
{
	static int lmark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	for (int early_reap = 0; early_reap < 2; early_reap++) {
		char b0[512], b1[8];
		struct aiocb e0, e1;
		kqt_cb(&e0, fd, b0, sizeof b0, 512);
		e0.aio_lio_opcode = LIO_READ;
		kqt_cb(&e1, p[0], b1, sizeof b1, 0);
		e1.aio_lio_opcode = LIO_READ;
		struct aiocb *list[2] = {&e0, &e1};
		struct sigevent sig;
		sev_kq(&sig, kq, 0, &lmark);
		cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, &sig), 0);
		wait_done(&e0);
		no_events(kq, 50, "one of two entries done");
		if (early_reap) {
			expect_return(&e0, 512, 0, "first entry");
			no_events(kq, 50, "one of two entries reaped");
		}
		cr_assert_eq(aio_error(&e1), EINPROGRESS);
		xwrite(p[1], "second", 6);
		struct kevent ev;
		one_event(kq, &ev, "both entries done");
		expect_lio(&ev, list, &lmark, "both entries done");
		if (!early_reap)
			expect_return(&e0, 512, 0, "first entry");
		expect_return(&e1, 6, 0, "second entry");
		no_events(kq, 0, "both reaped");
	}
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* --- 6. nothing after reaping --- */

enum { R_JOBS = 8, R_PIPES = R_JOBS };

struct rjob {
	struct aiocb cb;
	char buf[64];
	int pipe;   /* index of its pipe, or -1 for a file read */
	int flags;  /* sigev_notify_kevent_flags */
	int reaped; /* aio_return done */
	int seen;   /* events reported */
	int cancelled;
	uintptr_t token; /* udata: this round's number and the job's index */
};

static struct rjob rj[R_JOBS];
static int r_n, r_list, r_lio_seen;
static uintptr_t r_lio_token;
static struct aiocb *r_entries[R_JOBS];

/* Checks one event against what this round has done so far. */
static void r_check(const struct kevent *e)
{
	if (e->filter == EVFILT_LIO) {
		cr_assert(r_list, "a list event in a round without a list: " EVFMT, EVARG(e));
		cr_assert((uintptr_t)e->udata == r_lio_token && e->ident == (uintptr_t)r_entries &&
			      e->flags == 0 && e->fflags == 0 && e->data == 0,
			  "stale or malformed list event " EVFMT, EVARG(e));
		int unreaped = 0;
		for (int i = 0; i < r_n; i++) {
			if (rj[i].reaped)
				continue;
			unreaped++;
			cr_assert_neq(aio_error(&rj[i].cb), EINPROGRESS,
				      "list reported with entry %d in progress", i);
		}
		cr_assert_gt(unreaped, 0, "list reported after its last entry was reaped");
		r_lio_seen++;
		return;
	}
	cr_assert_eq(e->filter, EVFILT_AIO, "unexpected " EVFMT, EVARG(e));
	int i = 0;
	while (i < r_n && e->ident != (uintptr_t)&rj[i].cb)
		i++;
	cr_assert_lt(i, r_n, "an event for no job of this round: " EVFMT, EVARG(e));
	struct rjob *j = &rj[i];
	cr_assert_eq((uintptr_t)e->udata, j->token,
		     "a stale event (an earlier round's) for job %d: " EVFMT, i, EVARG(e));
	cr_assert(!j->reaped, "job %d reported after it was reaped: " EVFMT, i, EVARG(e));
	int err = aio_error(&j->cb);
	cr_assert_neq(err, EINPROGRESS, "job %d reported while in progress", i);
	cr_assert(e->flags == (EV_EOF | j->flags) && e->fflags == 0 && e->data == err,
		  "job %d (flags %#x, aio_error %d): " EVFMT, i, j->flags, err, EVARG(e));
	if (j->flags)
		cr_assert_eq(j->seen, 0, "job %d (flags %#x) reported twice", i, j->flags);
	j->seen++;
}

static int r_drain(int kq, long ms)
{
	struct kevent ev[16];
	int r = kev_get(kq, ev, 16, ms);
	for (int i = 0; i < r; i++)
		r_check(&ev[i]);
	return r;
}

static void r_reap(int i)
{
	struct rjob *j = &rj[i];
	wait_done(&j->cb);
	int err;
	ssize_t r = reap(&j->cb, &err);
	if (j->cancelled && err == ECANCELED)
		cr_assert_eq(r, -1);
	else
		cr_assert(r == 64 && err == 0, "job %d: aio_return %zd (%s)", i, r, strerror(err));
	j->reaped = 1;
}

/* Guards invariant 6: no event ever after reaping (random jobs, flags, cancels, reaps). */
Test(kevent_aio, no_event_after_reaping)
{
	static const int kflags[4] = {0, EV_ONESHOT, EV_CLEAR, EV_DISPATCH};
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int pp[R_PIPES][2];
	for (int i = 0; i < R_PIPES; i++)
		xpipe(pp[i]);
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	cr_log_info("no_event_after_reaping: seed %u", seed);
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int round = 0;
	long cancels = 0, early = 0, lists = 0;
	for (; round < 3000; round++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 2500)
			break;
		r_n = 1 + rand_r(&seed) % R_JOBS;
		r_list = rand_r(&seed) % 4 == 0;
		r_lio_seen = 0;
		r_lio_token = ((uintptr_t)round << 8) | 0xff;
		for (int i = 0; i < r_n; i++) {
			struct rjob *j = &rj[i];
			j->pipe = rand_r(&seed) % 3 == 0 ? i : -1;
			j->flags = kflags[rand_r(&seed) % 4];
			j->reaped = j->seen = j->cancelled = 0;
			j->token = ((uintptr_t)round << 8) | (uintptr_t)i;
			int src = j->pipe >= 0 ? pp[j->pipe][0] : fd;
			off_t off = (off_t)(rand_r(&seed) % 1000) * 64;
			kcb(&j->cb, src, j->buf, 64, j->pipe >= 0 ? 0 : off, LIO_READ, kq, j->flags,
			    (void *)j->token);
			r_entries[i] = &j->cb;
		}
		if (r_list) {
			struct sigevent sig;
			sev_kq(&sig, kq, 0, (void *)r_lio_token);
			cr_assert_eq(lio_listio(LIO_NOWAIT, r_entries, r_n, &sig), 0,
				     "lio_listio: %s", strerror(errno));
			lists++;
		} else {
			for (int i = 0; i < r_n; i++)
				cr_assert_eq(aio_read(&rj[i].cb), 0, "aio_read: %s",
					     strerror(errno));
		}
		r_drain(kq, 0);
		/* Random cancels; pipes whose read was not taken back get its data. */
		for (int i = 0; i < r_n; i++) {
			struct rjob *j = &rj[i];
			int c = -1;
			if (rand_r(&seed) % 4 == 0) {
				c = aio_cancel(j->cb.aio_fildes, &j->cb);
				cr_assert(c == AIO_CANCELED || c == AIO_NOTCANCELED ||
					      c == AIO_ALLDONE,
					  "aio_cancel: %d (%s)", c, strerror(errno));
				j->cancelled = c == AIO_CANCELED;
				cancels += j->cancelled;
				if (j->cancelled)
					cr_assert_eq(aio_error(&j->cb), ECANCELED);
			}
			if (j->pipe >= 0 && !j->cancelled)
				xwrite(pp[j->pipe][1],
				       "0123456789abcdef0123456789abcdef"
				       "0123456789abcdef0123456789abcdef",
				       64);
			if (rand_r(&seed) % 3 == 0)
				r_drain(kq, 0);
		}
		/* Random early reaps, each followed by a look at the queue. */
		for (int i = 0; i < r_n; i++)
			if (rand_r(&seed) % 3 == 0) {
				r_reap(i);
				early++;
				r_drain(kq, 0);
			}
		/* Every job not reaped yet is reported (and its list, once all are done). */
		for (;;) {
			int missing = 0, all_reaped = 1;
			for (int i = 0; i < r_n; i++) {
				missing += !rj[i].reaped && !rj[i].seen;
				all_reaped &= rj[i].reaped;
			}
			if (r_list && !all_reaped && !r_lio_seen)
				missing++;
			if (!missing)
				break;
			cr_assert_gt(r_drain(kq, 5000), 0, "round %d: %d notification(s) missing",
				     round, missing);
		}
		/* Reap the rest in random order, looking in between. */
		int left = 0;
		for (int i = 0; i < r_n; i++)
			left += !rj[i].reaped;
		while (left) {
			int i = rand_r(&seed) % r_n;
			if (rj[i].reaped)
				continue;
			r_reap(i);
			left--;
			if (rand_r(&seed) % 2)
				r_drain(kq, 0);
		}
		struct kevent ev[4];
		int r = kev_get(kq, ev, 4, 0);
		cr_assert_eq(r, 0, "round %d: all reaped, yet " EVFMT, round, EVARG(&ev[0]));
	}
	cr_log_info("no_event_after_reaping: %d rounds, %ld cancels, %ld early reaps, %ld lists",
		    round, cancels, early, lists);
	cr_assert_gt(round, 0);
	no_events(kq, 50, "after the last round");
	for (int i = 0; i < R_PIPES; i++)
		close_all(pp[i], 2);
	close(fd);
	close(kq);
}

/* --- 7. any size --- */

/* Guards invariant 7: any size completes with the right count and one event. */
Test(kevent_aio, odd_and_large_sizes_complete_with_the_right_count)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	static char buf[8192];
	struct {
		int write;
		size_t n;
		off_t off;
		ssize_t want;
	} cases[] = {
	    {0, 0, 0, 0},
	    {0, 1, 0, 1},
	    {0, 4097, 0, 4097},
	    {0, 7000, 12345, 7000},
	    {0, 4096, 65536 - 100, 100},
	    {0, 4096, 65536, 0},
	    {0, 4096, 1 << 20, 0},
	    {1, 0, 3, 0},
	    {1, 1, 70001, 1},
	    {1, 4097, 777, 4097},
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		struct aiocb cb;
		if (cases[k].write)
			kqt_fill(buf, cases[k].off, cases[k].n);
		kcb(&cb, fd, buf, cases[k].n, cases[k].off, 0, kq, EV_CLEAR, &mark);
		cr_assert_eq(cases[k].write ? aio_write(&cb) : aio_read(&cb), 0, "case %zu: %s", k,
			     strerror(errno));
		struct kevent ev;
		char what[64];
		snprintf(what, sizeof what, "case %zu (%s %zu at %lld)", k,
			 cases[k].write ? "write" : "read", cases[k].n, (long long)cases[k].off);
		one_event(kq, &ev, what);
		expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, what);
		expect_return(&cb, cases[k].want, 0, what);
		if (!cases[k].write)
			cr_assert(kqt_check(buf, cases[k].off, (size_t)cases[k].want), "%s", what);
	}
	no_events(kq, 0, "small sizes reaped");
	close(fd);

	/* 100 MiB written and read back on tmpfs. */
	size_t big = 100u << 20;
	fd = kqt_file(0);
	char *out = xmmap(big, PROT_READ | PROT_WRITE), *in = xmmap(big, PROT_READ | PROT_WRITE);
	big_fill(out, big, 7);
	struct aiocb cb;
	struct kevent ev;
	kcb(&cb, fd, out, big, 0, 0, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_write(&cb), 0);
	one_event(kq, &ev, "100 MiB write");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "100 MiB write");
	no_events(kq, 50, "100 MiB write: a second event");
	expect_return(&cb, (ssize_t)big, 0, "100 MiB write");
	kcb(&cb, fd, in, big, 0, 0, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	one_event(kq, &ev, "100 MiB read");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mark, "100 MiB read");
	no_events(kq, 50, "100 MiB read: a second event");
	expect_return(&cb, (ssize_t)big, 0, "100 MiB read");
	cr_assert(!memcmp(in, out, big), "100 MiB: wrong data");
	munmap(out, big);
	munmap(in, big);
	close(fd);
	close(kq);
}

/* Guards invariant 7: a size beyond SSIZE_MAX is refused at submission, posts nothing. */
Test(kevent_aio, oversized_request_is_refused_at_submission)
{
	static int mark, lmark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb cb;
	size_t sizes[2] = {(size_t)SSIZE_MAX + 1, SIZE_MAX};
	for (int k = 0; k < 2; k++) {
		for (int w = 0; w < 2; w++) {
			kcb(&cb, fd, buf, sizes[k], 0, 0, kq, 0, &mark);
			errno = 0;
			cr_assert_eq(w ? aio_write(&cb) : aio_read(&cb), -1, "%zu bytes accepted",
				     sizes[k]);
			cr_assert_eq(errno, EINVAL, "%zu bytes: %s", sizes[k], strerror(errno));
			cr_assert_eq(aio_error(&cb), EINVAL);
			expect_return(&cb, -1, EINVAL, "refused request");
		}
	}
	/* Vectored: pieces that add up beyond SSIZE_MAX, or more pieces than IOV_MAX. */
	struct iovec iov[2] = {{buf, SSIZE_MAX}, {buf, 2}};
	kcb(&cb, fd, iov, 2, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_readv(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EINVAL);
	kcb(&cb, fd, iov, (size_t)IOV_MAX + 1, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_writev(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	no_events(kq, 50, "refused requests");
	/* In a list: the good entry runs and notifies, the list fails with EIO and is
	 * reported once the good entry is done. */
	struct aiocb good, big;
	kcb(&good, fd, buf, sizeof buf, 64, LIO_READ, kq, 0, &mark);
	kcb(&big, fd, buf, (size_t)SSIZE_MAX + 1, 0, LIO_READ, kq, 0, &mark);
	struct aiocb *list[2] = {&big, &good};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, &sig), -1);
	cr_assert_eq(errno, EIO, "lio_listio: %s", strerror(errno));
	cr_assert_eq(aio_error(&big), EINVAL);
	wait_done(&good);
	struct kevent ev[4];
	int aio = 0, lio = 0;
	while (!aio || !lio) {
		int r = kev_get(kq, ev, 4, 5000);
		cr_assert_gt(r, 0, "events missing");
		for (int i = 0; i < r; i++) {
			if (ev[i].filter == EVFILT_LIO) {
				expect_lio(&ev[i], list, &lmark, "list with a refused entry");
				lio++;
			} else {
				expect_aio(&ev[i], &good, 0, 0, &mark, "the good entry");
				aio++;
			}
		}
	}
	expect_return(&good, 64, 0, "good entry");
	expect_return(&big, -1, EINVAL, "refused entry");
	no_events(kq, 50, "list reaped");
	close(fd);
	close(kq);
}

/* --- 8. empty is normal --- */

/* Guards invariant 8: an empty list gets its event at once, reported once. */
Test(kevent_aio, empty_list_reports_its_event_once)
{
	static int lmark;
	int kq = xkqueue();
	struct aiocb *list[1] = {NULL};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 0, &sig), 0, "lio_listio: %s", strerror(errno));
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, 0);
	cr_assert_eq(r, 1, "an empty list: %d events at once", r);
	no_events(kq, 50, "an empty list's event reported again");
	expect_lio(&ev[0], list, &lmark, "empty list");
	close(kq);
}

/* Guards invariant 8: a list of NULLs and LIO_NOPs gets its event at once, once. */
Test(kevent_aio, list_of_nulls_and_nops_reports_its_event_once)
{
	static int lmark;
	int kq = xkqueue();
	char buf[16];
	struct aiocb nop1, nop2;
	kqt_cb(&nop1, -1, buf, sizeof buf, 0); /* a NOP's fields do not matter */
	nop1.aio_lio_opcode = LIO_NOP;
	kcb(&nop2, 0, buf, sizeof buf, 0, LIO_NOP, kq, 0, &lmark); /* nor its sigevent */
	struct aiocb *list[5] = {NULL, &nop1, NULL, &nop2, NULL};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 5, &sig), 0, "lio_listio: %s", strerror(errno));
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, 0);
	cr_assert_eq(r, 1, "a list of NULLs and NOPs: %d events at once", r);
	no_events(kq, 50, "its event reported again");
	expect_lio(&ev[0], list, &lmark, "NULLs and NOPs");
	errno = 0;
	cr_assert_eq(aio_error(&nop1), -1, "a NOP names no job");
	cr_assert_eq(errno, EINVAL);
	close(kq);
}

/* Guards invariant 8: every entry fails: -1/EIO, the list event at once, once. */
Test(kevent_aio, list_where_every_entry_fails_reports_its_event_once)
{
	static int lmark, emark;
	int kq = xkqueue();
	int p[2];
	xpipe(p);
	char buf[16];
	struct aiocb badfd, wronly, badop;
	kcb(&badfd, 1000, buf, sizeof buf, 0, LIO_READ, kq, 0, &emark);
	kcb(&wronly, p[1], buf, sizeof buf, 0, LIO_READ, kq, 0, &emark); /* read a write end */
	kcb(&badop, p[0], buf, sizeof buf, 0, 99, kq, 0, &emark);
	struct aiocb *list[3] = {&badfd, &wronly, &badop};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 3, &sig), -1);
	cr_assert_eq(errno, EIO, "lio_listio: %s", strerror(errno));
	cr_assert_eq(aio_error(&badfd), EBADF);
	cr_assert_eq(aio_error(&wronly), EBADF);
	cr_assert_eq(aio_error(&badop), EINVAL);
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, 0);
	cr_assert_eq(r, 1, "a list of failures: %d events at once", r);
	no_events(kq, 50, "its event reported again, or an entry posted");
	expect_lio(&ev[0], list, &lmark, "every entry failed");
	for (int i = 0; i < 3; i++)
		expect_return(list[i], -1, EINVAL, "a failed entry names no job");
	close_all(p, 2);
	close(kq);
}

/* Guards doc/behaviour.md, lio_listio: LIO_WAIT ignores sig; entries still post their own events.
 */
Test(kevent_aio, lio_wait_ignores_sig)
{
	static int lmark, emark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &lmark);
	struct aiocb *none[1] = {NULL};
	cr_assert_eq(lio_listio(LIO_WAIT, none, 0, &sig), 0);
	cr_assert_eq(lio_listio(LIO_WAIT, none, 1, &sig), 0);
	no_events(kq, 50, "an empty LIO_WAIT list");
	char b0[100], b1[100];
	struct aiocb e0, e1;
	kcb(&e0, fd, b0, sizeof b0, 0, LIO_READ, kq, 0, &emark);
	kqt_cb(&e1, fd, b1, sizeof b1, 100);
	e1.aio_lio_opcode = LIO_READ;
	struct aiocb *list[2] = {&e0, &e1};
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, &sig), 0, "lio_listio: %s", strerror(errno));
	cr_assert_eq(aio_error(&e0), 0);
	cr_assert_eq(aio_error(&e1), 0);
	struct kevent ev;
	one_event(kq, &ev, "a LIO_WAIT entry's own event");
	expect_aio(&ev, &e0, 0, 0, &emark, "a LIO_WAIT entry's own event");
	expect_return(&e0, 100, 0, "entry 0");
	expect_return(&e1, 100, 0, "entry 1");
	no_events(kq, 50, "LIO_WAIT list");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md, lio_listio: a bad kq in sig is -1/EBADF and queues nothing. */
Test(kevent_aio, list_with_bad_kqueue_queues_nothing)
{
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb e0;
	kcb(&e0, fd, buf, sizeof buf, 0, LIO_READ, kq, 0, NULL);
	struct aiocb *list[1] = {&e0};
	struct sigevent sig;
	sev_kq(&sig, fd, 0, NULL); /* a file, not a kqueue */
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sig), -1);
	cr_assert_eq(errno, EBADF, "lio_listio: %s", strerror(errno));
	errno = 0;
	cr_assert_eq(aio_error(&e0), -1, "an entry was queued");
	cr_assert_eq(errno, EINVAL);
	sev_kq(&sig, -1, 0, NULL);
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sig), -1);
	cr_assert_eq(errno, EBADF);
	no_events(kq, 50, "nothing was queued");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md, lio_listio: sig's kevent flags are ignored (flags 0, level-triggered).
 */
Test(kevent_aio, list_sig_kevent_flags_are_ignored)
{
	static int lmark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb e0;
	kqt_cb(&e0, fd, buf, sizeof buf, 0);
	e0.aio_lio_opcode = LIO_READ;
	struct aiocb *list[1] = {&e0};
	struct sigevent sig;
	sev_kq(&sig, kq, EV_ONESHOT, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sig), 0, "lio_listio: %s", strerror(errno));
	struct kevent ev;
	one_event(kq, &ev, "list with EV_ONESHOT in sig");
	expect_lio(&ev, list, &lmark, "list with EV_ONESHOT in sig");
	one_event(kq, &ev, "list with EV_ONESHOT in sig, again");
	expect_lio(&ev, list, &lmark, "list with EV_ONESHOT in sig, again");
	expect_return(&e0, 64, 0, "entry");
	no_events(kq, 0, "entry reaped");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md, lio_listio: flags a job could not have are no error in a list's sig. */
Test(kevent_aio, list_sig_other_kevent_flags_are_no_error)
{
	static int lmark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb e0;
	kqt_cb(&e0, fd, buf, sizeof buf, 0);
	e0.aio_lio_opcode = LIO_READ;
	struct aiocb *list[1] = {&e0};
	struct sigevent sig;
	struct kevent ev;
	sev_kq(&sig, kq, EV_ADD | EV_RECEIPT, &lmark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sig), 0, "lio_listio: %s", strerror(errno));
	one_event(kq, &ev, "list with EV_ADD in sig");
	expect_lio(&ev, list, &lmark, "list with EV_ADD in sig");
	expect_return(&e0, 64, 0, "entry");
	no_events(kq, 0, "entry reaped");
	close(fd);
	close(kq);
}

/* --- event fields and knote flags --- */

/* Guards doc/behaviour.md's event table: ident, filter, flags, fflags, data, udata exactly. */
Test(kevent_aio, event_fields_are_exact)
{
	static int m1, m2, m3;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[64];
	struct aiocb cb;
	struct kevent ev;
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &m1);
	cr_assert_eq(aio_read(&cb), 0);
	one_event(kq, &ev, "success");
	expect_aio(&ev, &cb, 0, 0, &m1, "success");
	expect_return(&cb, 64, 0, "success");
	kcb(&cb, p[0], buf, sizeof buf, 0, 0, kq, EV_ONESHOT, &m2);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_cancel(p[0], &cb), AIO_CANCELED);
	one_event(kq, &ev, "cancelled");
	expect_aio(&ev, &cb, EV_ONESHOT, ECANCELED, &m2, "cancelled");
	expect_return(&cb, -1, ECANCELED, "cancelled");
	kcb(&cb, fd, (void *)8, sizeof buf, 0, 0, kq, EV_DISPATCH, &m3);
	cr_assert_eq(aio_read(&cb), 0);
	one_event(kq, &ev, "failed");
	expect_aio(&ev, &cb, EV_DISPATCH, EFAULT, &m3, "failed");
	expect_return(&cb, -1, EFAULT, "failed");
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, EV_CLEAR, NULL);
	cr_assert_eq(aio_write(&cb), 0);
	one_event(kq, &ev, "NULL udata");
	expect_aio(&ev, &cb, EV_CLEAR, 0, NULL, "NULL udata");
	expect_return(&cb, 64, 0, "write");
	no_events(kq, 0, "all reaped");
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md: level-triggered by default, reported by every kevent() until reaped. */
Test(kevent_aio, level_triggered_until_reaped)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb cb;
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	struct kevent ev;
	for (int i = 0; i < 4; i++) {
		one_event(kq, &ev, "level-triggered");
		expect_aio(&ev, &cb, 0, 0, &mark, "level-triggered");
	}
	/* The kq fd polls readable while the event is there. */
	struct pollfd pfd = {.fd = kq, .events = POLLIN};
	cr_assert_eq(poll(&pfd, 1, 0), 1, "kq fd not readable with an event pending");
	expect_return(&cb, 64, 0, "level");
	no_events(kq, 0, "reaped");
	pfd.revents = 0;
	cr_assert_eq(poll(&pfd, 1, 0), 0, "kq fd still readable after the event went");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md: EV_ONESHOT and EV_CLEAR report once; aio_return still works. */
Test(kevent_aio, oneshot_and_clear_report_once)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	int flags[2] = {EV_ONESHOT, EV_CLEAR};
	for (int k = 0; k < 2; k++) {
		struct aiocb cb;
		kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, flags[k], &mark);
		cr_assert_eq(aio_read(&cb), 0);
		struct kevent ev;
		one_event(kq, &ev, "once");
		expect_aio(&ev, &cb, flags[k], 0, &mark, "once");
		no_events(kq, 50, k ? "EV_CLEAR reported twice" : "EV_ONESHOT reported twice");
		cr_assert_eq(aio_error(&cb), 0);
		expect_return(&cb, 64, 0, "once");
		no_events(kq, 0, "reaped");
	}
	close(fd);
	close(kq);
}

/* Applies one change with EV_RECEIPT; its outcome must be want (0 or an errno). As on
 * FreeBSD, a change to an existing knote also sets its udata. */
static void change(int kq, uintptr_t ident, short filter, unsigned short flags, void *udata,
		   int64_t want)
{
	struct kevent ch, out;
	EV_SET(&ch, ident, filter, flags | EV_RECEIPT, 0, 0, udata);
	struct timespec zero = {0, 0};
	int r = kevent(kq, &ch, 1, &out, 1, &zero);
	cr_assert_eq(r, 1, "change flags %#x on filter %d: kevent %d (%s)", flags, filter, r,
		     strerror(errno));
	cr_assert(out.flags & EV_ERROR, "change flags %#x on filter %d: no receipt: " EVFMT, flags,
		  filter, EVARG(&out));
	cr_assert_eq(out.data, want, "change flags %#x on filter %d: %s, want %s", flags, filter,
		     strerror((int)out.data), strerror((int)want));
}

/* Guards doc/behaviour.md: EV_DISPATCH once until EV_ENABLE re-delivers; EV_DISABLE silences. */
Test(kevent_aio, dispatch_reports_once_until_enabled)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	struct aiocb cb;
	struct kevent ev;
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, EV_DISPATCH, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	one_event(kq, &ev, "dispatch");
	expect_aio(&ev, &cb, EV_DISPATCH, 0, &mark, "dispatch");
	no_events(kq, 50, "dispatch: reported while disabled");
	for (int i = 0; i < 2; i++) {
		change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_ENABLE, &mark, 0);
		one_event(kq, &ev, "dispatch re-enabled");
		expect_aio(&ev, &cb, EV_DISPATCH, 0, &mark, "dispatch re-enabled");
		no_events(kq, 50, "dispatch: reported twice after one EV_ENABLE");
	}
	expect_return(&cb, 64, 0, "dispatch");
	/* Reaped: the knote is gone, so EV_ENABLE finds nothing. */
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_ENABLE, &mark, ENOENT);
	no_events(kq, 0, "reaped");

	/* Level-triggered, disabled then enabled. */
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_DISABLE, &mark, 0);
	no_events(kq, 50, "disabled");
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_ENABLE, &mark, 0);
	one_event(kq, &ev, "enabled");
	expect_aio(&ev, &cb, 0, 0, &mark, "enabled");
	one_event(kq, &ev, "enabled, level");
	expect_aio(&ev, &cb, 0, 0, &mark, "enabled, level");
	expect_return(&cb, 64, 0, "level");
	no_events(kq, 0, "reaped");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md: a user EV_ADD of EVFILT_AIO or EVFILT_LIO is EPERM. */
Test(kevent_aio, user_cannot_add_aio_or_lio)
{
	int kq = xkqueue();
	static struct aiocb cb;
	short filters[2] = {EVFILT_AIO, EVFILT_LIO};
	for (int k = 0; k < 2; k++) {
		change(kq, (uintptr_t)&cb, filters[k], EV_ADD, NULL, EPERM);
		struct kevent ch;
		EV_SET(&ch, (uintptr_t)&cb, filters[k], EV_ADD | EV_ONESHOT, 0, 0, NULL);
		errno = 0;
		cr_assert_eq(kevent(kq, &ch, 1, NULL, 0, NULL), -1);
		cr_assert_eq(errno, EPERM, "filter %d: %s", filters[k], strerror(errno));
		change(kq, (uintptr_t)&cb, filters[k], EV_DELETE, NULL, ENOENT);
	}
	no_events(kq, 0, "nothing was added");
	close(kq);
}

/* Guards doc/behaviour.md: a user EV_DELETE of an AIO or LIO knote works; aio_return still does. */
Test(kevent_aio, user_delete_of_aio_and_lio_knotes)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[64];
	struct aiocb cb;
	/* Before completion. */
	kcb(&cb, p[0], buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_DELETE, &mark, 0);
	xwrite(p[1], "deleted", 7);
	wait_done(&cb);
	no_events(kq, 50, "deleted before completion");
	expect_return(&cb, 7, 0, "deleted before completion");
	/* After completion, before it is read. */
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_DELETE, &mark, 0);
	no_events(kq, 50, "deleted after completion");
	change(kq, (uintptr_t)&cb, EVFILT_AIO, EV_DELETE, &mark, ENOENT);
	expect_return(&cb, 64, 0, "deleted after completion");
	/* A list's knote, while its entry is held. */
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cb.aio_lio_opcode = LIO_READ;
	struct aiocb *list[1] = {&cb};
	struct sigevent sig;
	sev_kq(&sig, kq, 0, &mark);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sig), 0);
	change(kq, (uintptr_t)list, EVFILT_LIO, EV_DELETE, NULL, 0);
	xwrite(p[1], "list", 4);
	wait_done(&cb);
	no_events(kq, 50, "list knote deleted");
	expect_return(&cb, 4, 0, "list entry");
	no_events(kq, 0, "reaped");
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md, submission: a bad kq fd is EBADF, recorded in the aiocb. */
Test(kevent_aio, bad_kqueue_is_ebadf_at_submission)
{
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int closed = xkqueue();
	close(closed);
	char buf[64];
	int bad[4] = {-1, fd, closed, 100000};
	for (int k = 0; k < 4; k++) {
		struct aiocb cb;
		kcb(&cb, fd, buf, sizeof buf, 0, 0, bad[k], 0, NULL);
		errno = 0;
		cr_assert_eq(aio_read(&cb), -1, "kqueue %d accepted", bad[k]);
		cr_assert_eq(errno, EBADF, "kqueue %d: %s", bad[k], strerror(errno));
		cr_assert_eq(aio_error(&cb), EBADF);
		expect_return(&cb, -1, EINVAL, "refused");
		kcb(&cb, fd, NULL, 0, 0, 0, bad[k], 0, NULL);
		errno = 0;
		cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
		cr_assert_eq(errno, EBADF);
		cr_assert_eq(aio_error(&cb), EBADF);
	}
	no_events(kq, 0, "nothing queued");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md, submission: kevent flags beyond ONESHOT, CLEAR, DISPATCH are EINVAL. */
Test(kevent_aio, bad_kevent_flags_are_einval)
{
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[64];
	int bad[5] = {EV_ADD, EV_DELETE, EV_RECEIPT, EV_EOF, EV_ONESHOT | EV_ENABLE};
	for (int k = 0; k < 5; k++) {
		struct aiocb cb;
		kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, bad[k], NULL);
		errno = 0;
		cr_assert_eq(aio_read(&cb), -1, "flags %#x accepted", bad[k]);
		cr_assert_eq(errno, EINVAL, "flags %#x: %s", bad[k], strerror(errno));
		cr_assert_eq(aio_error(&cb), EINVAL);
	}
	struct aiocb cb;
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, EV_ONESHOT | EV_CLEAR | EV_DISPATCH, NULL);
	cr_assert_eq(aio_read(&cb), 0, "all three allowed flags at once: %s", strerror(errno));
	struct kevent ev;
	one_event(kq, &ev, "three flags");
	expect_aio(&ev, &cb, EV_ONESHOT | EV_CLEAR | EV_DISPATCH, 0, NULL, "three flags");
	expect_return(&cb, 64, 0, "three flags");
	no_events(kq, 50, "refused ones posted");
	close(fd);
	close(kq);
}

/* Guards doc/behaviour.md: aio_readv, aio_writev, aio_fsync and vectored entries post events. */
Test(kevent_aio, readv_writev_fsync_post_events)
{
	static int mv, mw, mf;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char a[100], b[3000];
	kqt_fill(a, 4096, sizeof a);
	kqt_fill(b, 4096 + sizeof a, sizeof b);
	struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
	struct aiocb cb;
	struct kevent ev;
	kcb(&cb, fd, iov, 2, 4096, 0, kq, 0, &mw);
	cr_assert_eq(aio_writev(&cb), 0, "aio_writev: %s", strerror(errno));
	one_event(kq, &ev, "aio_writev");
	expect_aio(&ev, &cb, 0, 0, &mw, "aio_writev");
	expect_return(&cb, sizeof a + sizeof b, 0, "aio_writev");
	kcb(&cb, fd, NULL, 0, 0, 0, kq, EV_ONESHOT, &mf);
	cr_assert_eq(aio_fsync(O_SYNC, &cb), 0, "aio_fsync: %s", strerror(errno));
	one_event(kq, &ev, "aio_fsync");
	expect_aio(&ev, &cb, EV_ONESHOT, 0, &mf, "aio_fsync");
	expect_return(&cb, 0, 0, "aio_fsync");
	kcb(&cb, fd, NULL, 0, 0, 0, kq, 0, &mf);
	cr_assert_eq(aio_fsync(O_DSYNC, &cb), 0, "aio_fsync O_DSYNC: %s", strerror(errno));
	one_event(kq, &ev, "aio_fsync O_DSYNC");
	expect_aio(&ev, &cb, 0, 0, &mf, "aio_fsync O_DSYNC");
	expect_return(&cb, 0, 0, "aio_fsync O_DSYNC");
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	kcb(&cb, fd, iov, 2, 4096, 0, kq, EV_CLEAR, &mv);
	cr_assert_eq(aio_readv(&cb), 0, "aio_readv: %s", strerror(errno));
	one_event(kq, &ev, "aio_readv");
	expect_aio(&ev, &cb, EV_CLEAR, 0, &mv, "aio_readv");
	expect_return(&cb, sizeof a + sizeof b, 0, "aio_readv");
	cr_assert(kqt_check(a, 4096, sizeof a) && kqt_check(b, 4096 + sizeof a, sizeof b));
	/* And as list entries. */
	struct aiocb e0, e1;
	char c[50];
	kqt_fill(c, 0, sizeof c);
	struct iovec wiov[1] = {{c, sizeof c}};
	kcb(&e0, fd, iov, 2, 4096, LIO_READV, kq, 0, &mv);
	kcb(&e1, fd, wiov, 1, 0, LIO_WRITEV, kq, 0, &mw);
	struct aiocb *list[2] = {&e0, &e1};
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), 0, "lio_listio: %s", strerror(errno));
	int seen = 0;
	while (seen != 3) {
		struct kevent evs[4];
		int r = kev_get(kq, evs, 4, 5000);
		cr_assert_gt(r, 0);
		for (int i = 0; i < r; i++) {
			if (evs[i].ident == (uintptr_t)&e0) {
				expect_aio(&evs[i], &e0, 0, 0, &mv, "LIO_READV");
				seen |= 1;
			} else {
				expect_aio(&evs[i], &e1, 0, 0, &mw, "LIO_WRITEV");
				seen |= 2;
			}
		}
	}
	expect_return(&e0, sizeof a + sizeof b, 0, "LIO_READV");
	expect_return(&e1, sizeof c, 0, "LIO_WRITEV");
	no_events(kq, 0, "reaped");
	close(fd);
	close(kq);
}

/* Guards invariant 6 for aio_waitcomplete (deletes the knote); aio_suspend works. */
Test(kevent_aio, suspend_and_waitcomplete_work_for_kevent_jobs)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[64];
	struct aiocb cb;
	kcb(&cb, p[0], buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	const struct aiocb *l[1] = {&cb};
	struct timespec short_wait = {0, 20 * 1000 * 1000};
	errno = 0;
	cr_assert_eq(aio_suspend(l, 1, &short_wait), -1);
	cr_assert_eq(errno, EAGAIN);
	xwrite(p[1], "suspended", 9);
	struct timespec five = {5, 0};
	cr_assert_eq(aio_suspend(l, 1, &five), 0, "aio_suspend: %s", strerror(errno));
	cr_assert_eq(aio_error(&cb), 0);
	struct aiocb *got;
	struct timespec wait = {5, 0};
	cr_assert_eq(aio_waitcomplete(&got, &wait), 9, "aio_waitcomplete: %s", strerror(errno));
	cr_assert_eq(got, &cb);
	no_events(kq, 50, "aio_waitcomplete reaped it: its event must go");
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);

	/* Read once, then taken by aio_waitcomplete. */
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&cb), 0);
	struct kevent ev;
	one_event(kq, &ev, "before aio_waitcomplete");
	expect_aio(&ev, &cb, 0, 0, &mark, "before aio_waitcomplete");
	cr_assert_eq(aio_waitcomplete(&got, &wait), 64);
	cr_assert_eq(got, &cb);
	no_events(kq, 50, "after aio_waitcomplete");
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* Guards invariant 6: a reused aiocb starts clean (its old unread event goes). */
Test(kevent_aio, reused_aiocb_replaces_an_unreaped_event)
{
	static int m1, m2;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	char buf[64];
	struct aiocb cb;
	kcb(&cb, fd, buf, sizeof buf, 0, 0, kq, 0, &m1);
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);
	kcb(&cb, p[0], buf, sizeof buf, 0, 0, kq, 0, &m2);
	cr_assert_eq(aio_read(&cb), 0, "resubmitting a done, unreaped aiocb: %s", strerror(errno));
	no_events(kq, 50, "the first job's event after its aiocb was reused");
	xwrite(p[1], "second", 6);
	struct kevent ev;
	one_event(kq, &ev, "the second job");
	expect_aio(&ev, &cb, 0, 0, &m2, "the second job");
	expect_return(&cb, 6, 0, "the second job");
	no_events(kq, 0, "reaped");
	close_all(p, 2);
	close(fd);
	close(kq);
}

/* Guards kevent(): EINTR only when a signal arrived, never from AIO completions. */
Test(kevent_aio, completions_do_not_interrupt_kevent)
{
	int kq = xkqueue();
	size_t n = 1u << 20;
	int fd = kqt_file(n);
	char *buf = malloc(n);
	cr_assert(buf);
	int eintr = 0, first = -1;
	for (int i = 0; i < 200; i++) {
		struct aiocb cb;
		kcb(&cb, fd, buf, n, 0, LIO_READ, kq, 0, NULL);
		cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
		struct kevent ev;
		struct timespec ts = {10, 0};
		int r;
		while ((r = kevent(kq, NULL, 0, &ev, 1, &ts)) < 0 && errno == EINTR) {
			eintr++;
			if (first < 0)
				first = i;
		}
		cr_assert_eq(r, 1, "kevent: %d (%s)", r, strerror(errno));
		expect_aio(&ev, &cb, 0, 0, NULL, "1 MiB read");
		expect_return(&cb, (ssize_t)n, 0, "1 MiB read");
	}
	cr_assert_eq(eintr, 0,
		     "kevent() failed with EINTR %d times in 200 waits (first in wait %d), yet no "
		     "signal was sent",
		     eintr, first);
	free(buf);
	close(fd);
	close(kq);
}
