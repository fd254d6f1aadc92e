/* Who collects completions: a thread asleep in aio_suspend is woken by jobs
 * that finish outside the ring, two sleepers share the work, batched reads
 * left in the SQ are issued with no call from their owner, and aio_waitcomplete's
 * poll sees a job nobody has taken from the ring. Each test hangs (and times
 * out) or fails if a completion is left in the ring or a submission in the SQ. */
#include "kqt.h"

#include <pthread.h>

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/event.h>
#include <sys/syscall.h>
#include <time.h>

TestSuite(reaping, .timeout = 30);

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

struct sleeper {
	struct aiocb *cb;
	ssize_t res;
};

static void *suspend_on(void *arg)
{
	struct sleeper *s = arg;
	s->res = kqt_wait(s->cb);
	return NULL;
}

/* The sleeper waits in the ring (uring backend): only a wake-up call from the
 * pipe's completion can end its sleep. */
Test(reaping, a_sleeper_wakes_for_a_job_outside_the_ring)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[16];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	struct sleeper s = {&cb, -2};
	pthread_t t;
	pthread_create(&t, NULL, suspend_on, &s);
	sleep_ms(100); /* let it fall asleep */
	cr_assert_eq(write(p[1], "hello", 5), 5);
	pthread_join(t, NULL);
	cr_assert_eq(s.res, 5);
	close(p[0]);
	close(p[1]);
}

/* Two threads asleep at once: one in the ring, one on the futex; each job's
 * completion must reach its own sleeper whichever of them collects it. */
Test(reaping, two_sleepers_each_get_their_job)
{
	int fd = kqt_file(1 << 20);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char pbuf[16], fbuf[4096];
	struct aiocb pcb, fcb;
	kqt_cb(&pcb, p[0], pbuf, sizeof pbuf, 0);
	cr_assert_eq(aio_read(&pcb), 0);
	struct sleeper ps = {&pcb, -2};
	pthread_t pt;
	pthread_create(&pt, NULL, suspend_on, &ps);
	sleep_ms(50);
	for (int i = 0; i < 200; i++) {
		kqt_cb(&fcb, fd, fbuf, sizeof fbuf, (off_t)i * 4096);
		cr_assert_eq(aio_read(&fcb), 0);
		struct sleeper fs = {&fcb, -2};
		pthread_t ft;
		pthread_create(&ft, NULL, suspend_on, &fs);
		pthread_join(ft, NULL);
		cr_assert_eq(fs.res, 4096, "round %d", i);
		cr_assert(kqt_check(fbuf, (off_t)i * 4096, 4096));
	}
	cr_assert_eq(write(p[1], "x", 1), 1);
	pthread_join(pt, NULL);
	cr_assert_eq(ps.res, 1);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* Reads left in the SQ to ride with later ones (KQAIO_BATCH) must still be
 * issued while their owner sleeps (no aio_* call at all): the buffers fill. */
Test(reaping, batched_submissions_are_issued_while_their_owner_sleeps)
{
	setenv("KQAIO_BATCH", "1", 1);		       /* read at first use, which is below */
	int fd = kqt_file_in(kqt_disk_dir(), 1 << 20); /* tmpfs reads never ride */
	enum { N = 16 };
	static char bufs[N][4096];
	memset(bufs, 0, sizeof bufs);
	struct aiocb cbs[N];
	for (int i = 0; i < N; i++) { /* all but the first may wait in the SQ */
		kqt_cb(&cbs[i], fd, bufs[i], 4096, (off_t)i * 8192 + 1);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	int filled = 0;
	for (int ms = 0; ms < 5000 && filled < N; ms += 10) {
		sleep_ms(10);
		filled = 0;
		for (int i = 0; i < N; i++)
			filled += kqt_check((const char *)(volatile char *)bufs[i],
					    (off_t)i * 8192 + 1, 4096);
	}
	cr_assert_eq(filled, N, "%d of %d reads happened with nobody asking", filled, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(kqt_wait(&cbs[i]), 4096);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192 + 1, 4096));
	}
	close(fd);
}

/* Counts this thread's io_uring_enter calls (a tracepoint, as root), or -1. */
static int enter_counter(void)
{
	FILE *f = fopen("/sys/kernel/tracing/events/syscalls/sys_enter_io_uring_enter/id", "r");
	unsigned long long id;
	int ok = f && fscanf(f, "%llu", &id) == 1;
	if (f)
		fclose(f);
	if (!ok)
		return -1;
	struct perf_event_attr a = {.type = PERF_TYPE_TRACEPOINT, .size = sizeof a, .config = id};
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

/* The enter-counting tests' O_DIRECT file, and *ctr counting this thread's
 * io_uring_enter calls; skips where the backend has no SQ or no counter. */
static int counted_file(int *ctr)
{
	unsetenv("KQAIO_BATCH");
	int dfd = kqt_direct_file(1 << 20);
	if (strcmp(kqaio_backend(), "uring"))
		cr_skip_test("the %s backend has no SQ", kqaio_backend());
	*ctr = enter_counter();
	if (*ctr < 0)
		cr_skip_test("no tracepoint to count io_uring_enter (not root?)");
	return dfd;
}

/* Makes n 4 KiB O_DIRECT reads back to back, counting the io_uring_enter
 * calls this thread makes (*enters, through ctr). Returns how many found
 * every earlier one done: those rightly go alone. */
static int counted_reads(int ctr, int dfd, struct aiocb *cbs, char (*bufs)[4096], int n,
			 uint64_t *enters)
{
	int idle = 0;
	cr_assert_eq(ioctl(ctr, PERF_EVENT_IOC_RESET, 0), 0);
	cr_assert_eq(ioctl(ctr, PERF_EVENT_IOC_ENABLE, 0), 0);
	for (int i = 0; i < n; i++) {
		int k = 0;
		while (k < i &&
		       __atomic_load_n(&cbs[k].__error_code, __ATOMIC_ACQUIRE) != EINPROGRESS)
			k++;
		idle += k == i;
		kqt_cb(&cbs[i], dfd, bufs[i], 4096, (off_t)i * 8192);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	cr_assert_eq(ioctl(ctr, PERF_EVENT_IOC_DISABLE, 0), 0);
	cr_assert_eq(read(ctr, enters, sizeof *enters), (ssize_t)sizeof *enters);
	return idle;
}

/* Waits for the reads counted_reads made, and checks what they read. */
static void counted_reads_end(struct aiocb *cbs, char (*bufs)[4096], int n)
{
	for (int i = 0; i < n; i++) {
		cr_assert_eq(kqt_wait(&cbs[i]), 4096);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192, 4096));
	}
}

/* By default a read made while others are in flight rides, but only until
 * the SQ holds an eighth of what is in flight (two at least): 64 O_DIRECT
 * reads made back to back cost their submitter some io_uring_enter calls,
 * more than one (an unbounded ride) and fewer than one each (no ride). */
Test(reaping, by_default_rides_are_short)
{
	int ctr;
	int dfd = counted_file(&ctr);
	enum { N = 64 };
	static char bufs[N][4096] __attribute__((aligned(4096)));
	struct aiocb cbs[N];
	uint64_t enters = 0;
	int idle = counted_reads(ctr, dfd, cbs, bufs, N, &enters);
	/* A read made on an idle ring goes alone, as it should: on a loaded
	 * machine (a sanitizer, a parallel test) the disk may keep up. */
	if (idle > N / 4)
		cr_skip_test("the disk kept up: %d of %d reads found the ring idle", idle, N);
	counted_reads_end(cbs, bufs, N);
	/* The completion thread may take a ride or two itself (its 1 ms nap);
	 * a bound of an eighth leaves the submitter about eight. */
	cr_assert(enters >= 4 && enters <= 48, "%llu io_uring_enter calls for %d reads",
		  (unsigned long long)enters, N);
	close(ctr);
	close(dfd);
}

static void *ring_sleeper(void *arg)
{
	const struct aiocb *l[1] = {arg};
	struct timespec ts = {20, 0};
	aio_suspend(l, 1, &ts);
	return NULL;
}

/* While another thread sleeps in the ring, a read made while others are in
 * flight rides past the eighth (up to 32): that thread wakes at the next
 * completion and sends the ride as it drains. The submitter of 64 O_DIRECT
 * reads makes few io_uring_enter calls beyond those of reads made on an
 * idle ring; the eighth gives 23-36. A preempted submitter finds the
 * ring idle more often than it can see (a job's end is published after its
 * CQE is taken), so the test takes the best of three tries. */
Test(reaping, rides_go_with_a_thread_sleeping_in_the_ring)
{
	int ctr;
	int dfd = counted_file(&ctr);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char hb[1];
	struct aiocb hc;
	kqt_cb(&hc, p[0], hb, 1, 0);
	cr_assert_eq(aio_read(&hc), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, ring_sleeper, &hc), 0);
	usleep(50 * 1000);
	enum { N = 64 };
	static char bufs[N][4096] __attribute__((aligned(4096)));
	struct aiocb cbs[N];
	uint64_t enters = 0;
	int idle = 0, ok = 0, kept_up = 0;
	for (int try = 0; try < 3 && !ok; try++) {
		idle = counted_reads(ctr, dfd, cbs, bufs, N, &enters);
		counted_reads_end(cbs, bufs, N);
		kept_up += idle > N / 4;
		ok = idle <= N / 4 && enters <= (uint64_t)idle + 3 * N / 16;
	}
	cr_assert_eq(write(p[1], "h", 1), 1);
	pthread_join(t, NULL);
	cr_assert_eq(aio_return(&hc), 1);
	if (!ok && kept_up == 3)
		cr_skip_test("the disk kept up: %d of %d reads found the ring idle", idle, N);
	cr_assert(ok, "%llu io_uring_enter calls for %d reads (%d idle), the best of 3",
		  (unsigned long long)enters, N, idle);
	close(ctr);
	close(dfd);
}

/* Requests that ask to be told (a kevent, a signal) ride too: each is
 * issued and told once while the owner only waits for the news. */
enum { TOLD_N = 16 };

static int disk_reads(struct aiocb *cbs, char (*bufs)[4096], const struct sigevent *sev)
{
	setenv("KQAIO_BATCH", "1", 1);
	int fd = kqt_file_in(kqt_disk_dir(), 1 << 20);
	for (int i = 0; i < TOLD_N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 4096, (off_t)i * 8192 + 1);
		cbs[i].aio_sigevent = *sev;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	return fd;
}

static void reap_disk_reads(struct aiocb *cbs, char (*bufs)[4096], int fd)
{
	for (int i = 0; i < TOLD_N; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 4096, "read %d", i);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192 + 1, 4096), "read %d", i);
	}
	close(fd);
}

Test(reaping, batched_kevent_requests_are_told_while_their_owner_waits_in_kevent)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	static char bufs[TOLD_N][4096];
	struct aiocb cbs[TOLD_N];
	struct sigevent sev = {.sigev_notify = SIGEV_KEVENT, .sigev_notify_kqueue = kq};
	int fd = disk_reads(cbs, bufs, &sev);
	int seen[TOLD_N] = {0}, got = 0;
	struct timespec ts = {10, 0};
	while (got < TOLD_N) {
		struct kevent ev[TOLD_N];
		int n = kevent(kq, NULL, 0, ev, TOLD_N, &ts);
		cr_assert_gt(n, 0, "%d of %d told: %s", got, TOLD_N,
			     n ? strerror(errno) : "timeout");
		for (int k = 0; k < n; k++) {
			cr_assert_eq(ev[k].filter, EVFILT_AIO);
			int i = (int)((struct aiocb *)ev[k].ident - cbs);
			cr_assert(i >= 0 && i < TOLD_N);
			cr_assert_eq(seen[i]++, 0, "read %d told twice", i);
			cr_assert_eq(aio_return(&cbs[i]), 4096, "read %d", i); /* its knote goes */
			cr_assert(kqt_check(bufs[i], (off_t)i * 8192 + 1, 4096), "read %d", i);
			got++;
		}
	}
	close(fd);
	close(kq);
}

Test(reaping, batched_signal_requests_are_told_while_their_owner_waits_for_signals)
{
	int sig = SIGRTMIN + 3;
	kqt_block_sig(sig);
	static char bufs[TOLD_N][4096];
	struct aiocb cbs[TOLD_N];
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
	int fd = disk_reads(cbs, bufs, &sev);
	int seen[TOLD_N] = {0};
	siginfo_t si;
	for (int k = 0; k < TOLD_N; k++) {
		cr_assert(kqt_take_sig(sig, &si, 10000), "%d of %d signals", k, TOLD_N);
		int i = si.si_value.sival_int;
		cr_assert(i >= 0 && i < TOLD_N);
		cr_assert_eq(seen[i]++, 0, "read %d told twice", i);
	}
	cr_assert_not(kqt_take_sig(sig, &si, 100), "a signal more, for %d", si.si_value.sival_int);
	reap_disk_reads(cbs, bufs, fd);
}

/* aio_waitcomplete with a zero timeout only looks: it must see a job the
 * kernel finished even if nobody has taken it from the ring yet. */
Test(reaping, waitcomplete_poll_sees_a_finished_job)
{
	int fd = kqt_file(1 << 20);
	char buf[4096];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 4096);
	cr_assert_eq(aio_read(&cb), 0);
	struct timespec zero = {0, 0};
	struct aiocb *got = NULL;
	ssize_t r = -1;
	for (int i = 0; i < 5000 && !got; i++) {
		r = aio_waitcomplete(&got, &zero);
		if (!got) {
			cr_assert_eq(errno, EAGAIN, "aio_waitcomplete: %s", strerror(errno));
			sleep_ms(1);
		}
	}
	cr_assert_eq(got, &cb);
	cr_assert_eq(r, 4096);
	cr_assert(kqt_check(buf, 4096, sizeof buf));
	close(fd);
}

static struct aiocb nested_cb;
static char nested_buf[4096];
static int nested_fd;
static volatile ssize_t nested_res = -2;

static void wait_in_handler(int sig)
{
	(void)sig;
	int saved = errno;
	kqt_cb(&nested_cb, nested_fd, nested_buf, sizeof nested_buf, 8192);
	if (aio_read(&nested_cb) == 0) {
		const struct aiocb *l[1] = {&nested_cb};
		while (aio_error(&nested_cb) == EINPROGRESS)
			aio_suspend(l, 1, NULL);
		nested_res = aio_return(&nested_cb);
	}
	errno = saved;
}

static void *interrupt_after(void *arg)
{
	sleep_ms(100);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

/* The thread sleeps in aio_suspend (in the ring, on the uring backend) when a
 * handler on it submits a read of fd and waits for it. A read of tmpfs is
 * done by the handler itself; one in the ring has its completion held by the
 * interrupted thread, and the handler's wait takes no lock, so the
 * completion thread takes the CQ from that thread (stole, in uring.c). */
static void handler_waits(int fd)
{
	/* ThreadSanitizer runs a handler when an intercepted call returns,
	 * which here is inside the library's own pthread_mutex_lock: a place
	 * no real signal reaches while the thread sleeps in aio_suspend. */
	const char *san = getenv("KQAIO_SAN");
	if (san && !strcmp(san, "tsan"))
		cr_skip_test("ThreadSanitizer delivers the signal inside the library's locks");
	nested_fd = fd;
	nested_res = -2;
	struct sigaction sa = {.sa_handler = wait_in_handler};
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[16];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	pthread_t self = pthread_self(), t;
	pthread_create(&t, NULL, interrupt_after, &self);
	const struct aiocb *l[1] = {&cb};
	while (nested_res == -2) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == -1 && errno == EINTR, "aio_suspend: %d (%s)", r, strerror(errno));
	}
	pthread_join(t, NULL);
	cr_assert_eq(nested_res, 4096);
	cr_assert(kqt_check(nested_buf, 8192, sizeof nested_buf));
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(kqt_wait(&cb), 1);
	close(p[0]);
	close(p[1]);
	close(nested_fd);
}

Test(reaping, a_signal_handler_can_wait_while_its_thread_reaps)
{
	handler_waits(kqt_file(1 << 20));
}

Test(reaping, a_signal_handler_can_wait_for_the_ring_while_its_thread_reaps)
{
	handler_waits(kqt_file_in(kqt_disk_dir(), 1 << 20));
}
