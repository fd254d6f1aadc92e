/* Signals interrupting the waits: aio_suspend, lio_listio(LIO_WAIT) and aio_waitcomplete
 * return -1/EINTR when a handled signal arrives, with or without SA_RESTART, and the I/O
 * they were waiting for carries on and completes; and a handler that leaves a wait by
 * siglongjmp leaves no job stuck. */
#include "kqt.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

TestSuite(interrupt, .timeout = 30);

static volatile sig_atomic_t handled;

static void on_signal(int sig)
{
	(void)sig;
	handled++;
}

static void install(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	handled = 0;
}

/* A helper thread sends SIGUSR1 to the target every 20 ms until told to stop: the first
 * may arrive before the call under test has started to wait. If the call ignores signals,
 * after 5 s the helper writes to the pipe so that it returns and the test fails cleanly. */
struct pest {
	pthread_t target, thread;
	int process; /* kill() the process instead of pthread_kill() the thread */
	int unblock_fd;
	int stop;
	int sent;
};

static void *pest_run(void *arg)
{
	struct pest *p = arg;
	/* With kill(), this thread must not take the signal itself. */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	usleep(30 * 1000);
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		if (p->process)
			kill(getpid(), SIGUSR1);
		else
			pthread_kill(p->target, SIGUSR1);
		if (++p->sent == 250 && write(p->unblock_fd, "late", 4) != 4)
			abort();
		usleep(20 * 1000);
	}
	return NULL;
}

static void pest_start(struct pest *p, int process, int unblock_fd)
{
	memset(p, 0, sizeof *p);
	p->target = pthread_self();
	p->process = process;
	p->unblock_fd = unblock_fd;
	cr_assert_eq(pthread_create(&p->thread, NULL, pest_run, p), 0);
}

static void pest_stop(struct pest *p)
{
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_join(p->thread, NULL);
}

/* A read on an empty pipe: it waits until the test writes. */
static void pending_read(struct aiocb *cb, int p[2], char *buf, size_t n)
{
	cr_assert_eq(pipe(p), 0);
	kqt_cb(cb, p[0], buf, n, 0);
	cr_assert_eq(aio_read(cb), 0);
}

/* Writes to the pipe and checks that the read got it. */
static void finish_read(struct aiocb *cb, int p[2], char *buf)
{
	cr_assert_eq(aio_error(cb), EINPROGRESS, "the read ended while nothing was written");
	cr_assert_eq(write(p[1], "done", 4), 4);
	const struct aiocb *l[1] = {cb};
	struct timespec ts = {10, 0};
	int r;
	while ((r = aio_suspend(l, 1, &ts)) < 0 && errno == EINTR)
		;
	cr_assert_eq(r, 0, "aio_suspend: %s", strerror(errno));
	cr_assert_eq(aio_return(cb), 4);
	cr_assert(!memcmp(buf, "done", 4));
}

static void suspend_interrupted(int flags, int process, const struct timespec *timeout)
{
	install(flags);
	int p[2];
	char buf[8];
	struct aiocb cb;
	pending_read(&cb, p, buf, sizeof buf);
	struct pest pe;
	pest_start(&pe, process, p[1]);
	const struct aiocb *l[1] = {&cb};
	errno = 0;
	int r = aio_suspend(l, 1, timeout);
	int err = errno;
	pest_stop(&pe);
	cr_assert_eq(r, -1, "aio_suspend returned %d after %d signals", r, pe.sent);
	cr_assert_eq(err, EINTR, "aio_suspend: %s", strerror(err));
	cr_assert_gt(handled, 0);
	finish_read(&cb, p, buf);
}

Test(interrupt, suspend_is_interrupted_despite_sa_restart)
{
	suspend_interrupted(SA_RESTART, 0, NULL);
}

Test(interrupt, suspend_is_interrupted_without_sa_restart)
{
	suspend_interrupted(0, 0, NULL);
}

Test(interrupt, suspend_with_timeout_is_interrupted)
{
	struct timespec ts = {20, 0};
	suspend_interrupted(SA_RESTART, 0, &ts);
}

Test(interrupt, suspend_is_interrupted_by_a_process_directed_signal)
{
	/* kill() lets the kernel pick any thread that does not block the signal: the
	 * library's own threads must block it so that it reaches the waiting thread. */
	suspend_interrupted(SA_RESTART, 1, NULL);
}

static void lio_wait_interrupted(int flags)
{
	install(flags);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	int fd = kqt_file(1 << 16);
	char pbuf[8], fbuf[4096];
	struct aiocb pcb, fcb;
	kqt_cb(&pcb, p[0], pbuf, sizeof pbuf, 0);
	pcb.aio_lio_opcode = LIO_READ;
	kqt_cb(&fcb, fd, fbuf, sizeof fbuf, 4096);
	fcb.aio_lio_opcode = LIO_READ;
	struct aiocb *list[2] = {&fcb, &pcb};
	struct pest pe;
	pest_start(&pe, 0, p[1]);
	errno = 0;
	int r = lio_listio(LIO_WAIT, list, 2, NULL);
	int err = errno;
	pest_stop(&pe);
	cr_assert_eq(r, -1, "lio_listio returned %d after %d signals", r, pe.sent);
	cr_assert_eq(err, EINTR, "lio_listio: %s", strerror(err));
	/* The I/O goes on: the file read completes, the pipe read waits for data. */
	cr_assert(kqt_eventually(aio_error(&fcb) != EINPROGRESS, 10000));
	cr_assert_eq(aio_return(&fcb), 4096);
	cr_assert(kqt_check(fbuf, 4096, 4096));
	finish_read(&pcb, p, pbuf);
}

Test(interrupt, lio_wait_is_interrupted_and_io_continues)
{
	lio_wait_interrupted(SA_RESTART);
}

Test(interrupt, lio_wait_is_interrupted_without_sa_restart)
{
	lio_wait_interrupted(0);
}

static void waitcomplete_interrupted(struct timespec *timeout)
{
	install(SA_RESTART);
	int p[2];
	char buf[8];
	struct aiocb cb;
	pending_read(&cb, p, buf, sizeof buf);
	struct pest pe;
	pest_start(&pe, 0, p[1]);
	struct aiocb *got = (struct aiocb *)&got;
	errno = 0;
	ssize_t r = aio_waitcomplete(&got, timeout);
	int err = errno;
	pest_stop(&pe);
	cr_assert_eq(r, -1, "aio_waitcomplete returned %zd after %d signals", r, pe.sent);
	cr_assert_eq(err, EINTR, "aio_waitcomplete: %s", strerror(err));
	cr_assert_null(got);
	/* Nothing was taken: once data comes the job is there to collect. */
	cr_assert_eq(aio_error(&cb), EINPROGRESS);
	cr_assert_eq(write(p[1], "done", 4), 4);
	struct timespec ts = {10, 0};
	r = aio_waitcomplete(&got, &ts);
	cr_assert_eq(r, 4, "aio_waitcomplete: %zd (%s)", r, strerror(errno));
	cr_assert_eq(got, &cb);
	cr_assert(!memcmp(buf, "done", 4));
}

Test(interrupt, waitcomplete_without_timeout_is_interrupted)
{
	waitcomplete_interrupted(NULL);
}

Test(interrupt, waitcomplete_with_timeout_is_interrupted)
{
	struct timespec ts = {20, 0};
	waitcomplete_interrupted(&ts);
}

/* A thread that leaves aio_suspend by siglongjmp from a handler, goes on outside kqaio
 * until told, then waits once more. */
static __thread sigjmp_buf jump_buf;

static void jump_out(int sig)
{
	(void)sig;
	siglongjmp(jump_buf, 1);
}

struct leaver {
	pid_t tid;
	int ready, jumped, again, err, r;
	int go[2], p[2], q[2];
	struct aiocb cb, cb2;
	char buf[8], buf2[8];
};

static void *leaver_run(void *arg)
{
	struct leaver *l = arg;
	l->tid = gettid();
	const struct aiocb *list[1] = {&l->cb};
	struct timespec ts = {20, 0};
	kqt_cb(&l->cb, l->p[0], l->buf, 4, 0);
	if (aio_read(&l->cb)) {
		l->err = errno;
		return NULL;
	}
	if (!sigsetjmp(jump_buf, 1)) {
		__atomic_store_n(&l->ready, 1, __ATOMIC_RELEASE);
		aio_suspend(list, 1, &ts);
		l->err = -1; /* it returned: no jump */
		return NULL;
	}
	__atomic_store_n(&l->jumped, 1, __ATOMIC_RELEASE);
	char c;
	if (read(l->go[0], &c, 1) != 1)
		abort();
	kqt_cb(&l->cb2, l->q[0], l->buf2, 4, 0);
	if (aio_read(&l->cb2)) {
		l->err = errno;
		return NULL;
	}
	list[0] = &l->cb2;
	__atomic_store_n(&l->again, 1, __ATOMIC_RELEASE);
	l->r = aio_suspend(list, 1, &ts);
	if (l->r)
		l->err = errno;
	return NULL;
}

static void wait_flag(int *flag, const char *what)
{
	for (int i = 0; i < 2000 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	cr_assert(__atomic_load_n(flag, __ATOMIC_ACQUIRE), "%s", what);
}

Test(interrupt, a_wait_left_by_longjmp_leaves_no_job_stuck)
{
	/* On uring the thread asleep in the ring reaps for every thread: one that leaves
	 * by siglongjmp holds the ring's completions, and the leaver goes on elsewhere.
	 * Every other job must still end (32 reads of a disk file here), its own read
	 * too, and its next wait must sleep as a first one does (in the ring on uring),
	 * not as a signal handler's call inside the one it left. */
	const char *san = getenv("KQAIO_SAN");
	if (san && !strcmp(san, "tsan"))
		cr_skip_test("ThreadSanitizer holds a signal until an intercepted call returns, "
			     "and the futex and ring sleeps are not");
	static struct leaver l;
	memset(&l, 0, sizeof l);
	cr_assert_eq(pipe(l.go), 0);
	cr_assert_eq(pipe(l.p), 0);
	cr_assert_eq(pipe(l.q), 0);
	enum { N = 32 };
	int fd = kqt_file_in(kqt_disk_dir(), N * 4096);
	static char bufs[N][4096];
	struct aiocb cbs[N];
	kqt_cb(&cbs[0], fd, bufs[0], 4096, 0);
	cr_assert_eq(aio_read(&cbs[0]), 0);
	cr_assert_eq(kqt_wait(&cbs[0]), 4096); /* the ring is up */
	usleep(50 * 1000); /* and its completion thread asleep, not holding it */
	struct sigaction sa = {.sa_handler = jump_out}, old;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	int uring = !strcmp(kqaio_backend(), "uring");
	long in = uring ? SYS_io_uring_enter : SYS_futex;
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, leaver_run, &l), 0);
	wait_flag(&l.ready, "the thread never waited");
	if (kqt_sleeping_in(l.tid, in, in) != in)
		cr_skip_test("the thread never slept in syscall %ld", in);
	cr_assert_eq(pthread_kill(t, SIGUSR1), 0);
	wait_flag(&l.jumped, "the handler did not jump");
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 4096, (off_t)i * 4096);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	struct timespec ts = {10, 0};
	for (int i = 0; i < N; i++) {
		const struct aiocb *one[1] = {&cbs[i]};
		int r;
		while ((r = aio_suspend(one, 1, &ts)) < 0 && errno == EINTR)
			;
		cr_assert_eq(r, 0, "read %d did not end in 10 s: %s", i, strerror(errno));
		cr_assert_eq(aio_return(&cbs[i]), 4096);
		cr_assert(kqt_check(bufs[i], (off_t)i * 4096, 4096));
	}
	cr_assert_eq(write(l.p[1], "left", 4), 4);
	cr_assert_eq(kqt_wait(&l.cb), 4);
	usleep(50 * 1000);
	cr_assert_eq(write(l.go[1], "g", 1), 1);
	wait_flag(&l.again, "the thread did not wait again");
	long again = kqt_sleeping_in(l.tid, SYS_io_uring_enter, SYS_futex);
	cr_assert_eq(write(l.q[1], "more", 4), 4);
	pthread_join(t, NULL);
	cr_assert_eq(l.err, 0, "the thread: %d (%s)", l.err, l.err > 0 ? strerror(l.err) : "");
	cr_assert_eq(aio_return(&l.cb2), 4);
	cr_assert_eq(again, in, "its second wait slept in syscall %ld, not %ld", again, in);
	sigaction(SIGUSR1, &old, NULL);
	close(fd);
}
