/* Many threads at once: submitting and reaping on shared and separate files, several
 * aio_waitcomplete callers sharing the done queue, waiters on one job, cancel racing
 * completion, and aio_init tuning the worker pool. Every job ends exactly once. */
#include "kqt.h"

#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

TestSuite(threads, .timeout = 30);

enum { NT = 8 };

static ssize_t th_wait(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	for (int i = 0; i < 2000 && aio_error(cb) == EINPROGRESS; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		aio_suspend(l, 1, &ts);
	}
	return aio_error(cb) == EINPROGRESS ? -2 : aio_return(cb);
}

/* Worker threads record their first failure here; the test asserts on it. */
struct failure {
	pthread_mutex_t lock;
	char msg[200];
};

static struct failure fail = {PTHREAD_MUTEX_INITIALIZER, ""};

#define TH_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			pthread_mutex_lock(&fail.lock);                                            \
			if (!fail.msg[0])                                                          \
				snprintf(fail.msg, sizeof fail.msg, __VA_ARGS__);                  \
			pthread_mutex_unlock(&fail.lock);                                          \
			return NULL;                                                               \
		}                                                                                  \
	} while (0)

static void no_failure(void)
{
	cr_assert_eq(fail.msg[0], 0, "%s", fail.msg);
}

struct rwarg {
	int fd, id;
	off_t base; /* this thread's region (shared file) */
};

/* Writes its region in batches, reads it back in batches; checks every result. */
static void *rw_thread(void *arg)
{
	struct rwarg *a = arg;
	enum { B = 16, SZ = 4096, ROUNDS = 8 };
	/* On the heap: a large __thread array would be in every thread's static TLS. */
	char(*bufs)[SZ] = malloc(sizeof(char[B][SZ]));
	TH_CHECK(bufs, "malloc");
	struct aiocb cbs[B];
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < B; i++) {
			off_t off = a->base + (off_t)(r * B + i) * SZ;
			kqt_fill(bufs[i], off, SZ);
			kqt_cb(&cbs[i], a->fd, bufs[i], SZ, off);
			TH_CHECK(aio_write(&cbs[i]) == 0, "thread %d aio_write: %s", a->id,
				 strerror(errno));
		}
		for (int i = 0; i < B; i++) {
			ssize_t n = th_wait(&cbs[i]);
			TH_CHECK(n == SZ, "thread %d write %d: %zd", a->id, i, n);
			errno = 0;
			TH_CHECK(aio_return(&cbs[i]) == -1 && errno == EINVAL,
				 "thread %d write %d reaped twice", a->id, i);
		}
		for (int i = 0; i < B; i++) {
			off_t off = a->base + (off_t)(r * B + i) * SZ;
			memset(bufs[i], 0, SZ);
			kqt_cb(&cbs[i], a->fd, bufs[i], SZ, off);
			TH_CHECK(aio_read(&cbs[i]) == 0, "thread %d aio_read: %s", a->id,
				 strerror(errno));
		}
		for (int i = 0; i < B; i++) {
			ssize_t n = th_wait(&cbs[i]);
			TH_CHECK(n == SZ, "thread %d read %d: %zd", a->id, i, n);
			TH_CHECK(kqt_check(bufs[i], cbs[i].aio_offset, SZ),
				 "thread %d read %d: wrong data", a->id, i);
		}
	}
	free(bufs);
	return NULL;
}

static void run_rw(int shared)
{
	struct rwarg a[NT];
	pthread_t t[NT];
	int sfd = shared ? kqt_file(0) : -1;
	for (int i = 0; i < NT; i++) {
		a[i].id = i;
		a[i].fd = shared ? sfd : kqt_file(0);
		a[i].base = shared ? (off_t)i * (1 << 20) : 0;
		cr_assert_eq(pthread_create(&t[i], NULL, rw_thread, &a[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	no_failure();
	struct kqaio_stats s;
	cr_assert_eq(kqaio_get_stats(&s, sizeof s), 0);
	cr_assert_eq(s.completed, s.submitted);
	cr_assert_eq(s.submitted, (uint64_t)NT * 8 * 16 * 2);
	if (shared) {
		/* Everything landed where it was meant to. */
		static char back[8 * 16 * 4096];
		for (int i = 0; i < NT; i++) {
			cr_assert_eq(pread(sfd, back, sizeof back, a[i].base),
				     (ssize_t)sizeof back);
			cr_assert(kqt_check(back, a[i].base, sizeof back), "region %d", i);
		}
	}
}

Test(threads, submit_and_reap_on_separate_files)
{
	run_rw(0);
}

Test(threads, submit_and_reap_on_one_shared_file)
{
	run_rw(1);
}

enum { WC_JOBS = 2000, WC_COLLECTORS = 4, WC_SUBMITTERS = 2 };

struct wc {
	int fd;
	struct aiocb *cbs;
	char (*bufs)[512];
	int seen[WC_JOBS];
	int submitted, collected;
};

static void *wc_submitter(void *arg)
{
	struct wc *w = arg;
	for (;;) {
		int i = __atomic_fetch_add(&w->submitted, 1, __ATOMIC_RELAXED);
		if (i >= WC_JOBS)
			break;
		kqt_cb(&w->cbs[i], w->fd, w->bufs[i], 512, (off_t)i * 512);
		TH_CHECK(aio_read(&w->cbs[i]) == 0, "aio_read %d: %s", i, strerror(errno));
	}
	return NULL;
}

static void *wc_collector(void *arg)
{
	struct wc *w = arg;
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 20;
	while (__atomic_load_n(&w->collected, __ATOMIC_ACQUIRE) < WC_JOBS) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		TH_CHECK(now.tv_sec < end.tv_sec, "collected only %d of %d jobs",
			 __atomic_load_n(&w->collected, __ATOMIC_RELAXED), WC_JOBS);
		struct aiocb *cb;
		struct timespec ts = {0, 50 * 1000 * 1000};
		ssize_t n = aio_waitcomplete(&cb, &ts);
		if (n < 0 && errno == EAGAIN && !cb)
			continue;
		TH_CHECK(cb, "aio_waitcomplete: %zd, %s, no aiocb", n, strerror(errno));
		long i = cb - w->cbs;
		TH_CHECK(i >= 0 && i < WC_JOBS, "aio_waitcomplete returned a stranger %p",
			 (void *)cb);
		TH_CHECK(__atomic_add_fetch(&w->seen[i], 1, __ATOMIC_RELAXED) == 1,
			 "job %ld returned twice", i);
		TH_CHECK(n == 512, "job %ld: %zd (%s)", i, n, strerror(errno));
		TH_CHECK(kqt_check(w->bufs[i], (off_t)i * 512, 512), "job %ld: wrong data", i);
		__atomic_add_fetch(&w->collected, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(threads, waitcomplete_from_several_threads_takes_each_job_once)
{
	static struct wc w;
	static struct aiocb cbs[WC_JOBS];
	static char bufs[WC_JOBS][512];
	w.fd = kqt_file(WC_JOBS * 512);
	w.cbs = cbs;
	w.bufs = bufs;
	pthread_t c[WC_COLLECTORS], s[WC_SUBMITTERS];
	/* Collectors are waiting before the first job exists. */
	for (int i = 0; i < WC_COLLECTORS; i++)
		cr_assert_eq(pthread_create(&c[i], NULL, wc_collector, &w), 0);
	for (int i = 0; i < WC_SUBMITTERS; i++)
		cr_assert_eq(pthread_create(&s[i], NULL, wc_submitter, &w), 0);
	for (int i = 0; i < WC_SUBMITTERS; i++)
		pthread_join(s[i], NULL);
	for (int i = 0; i < WC_COLLECTORS; i++)
		pthread_join(c[i], NULL);
	no_failure();
	cr_assert_eq(w.collected, WC_JOBS);
	for (int i = 0; i < WC_JOBS; i++)
		cr_assert_eq(w.seen[i], 1, "job %d seen %d times", i, w.seen[i]);
	/* The done queue is empty now, and the aiocbs name no job. */
	struct aiocb *cb;
	struct timespec zero = {0, 0};
	cr_assert_eq(aio_waitcomplete(&cb, &zero), -1);
	cr_assert_eq(errno, EAGAIN);
	errno = 0;
	cr_assert_eq(aio_return(&cbs[0]), -1);
	cr_assert_eq(errno, EINVAL);
}

struct susp {
	struct aiocb *cb;
	int r, err;
};

static void *susp_thread(void *arg)
{
	struct susp *s = arg;
	const struct aiocb *l[1] = {s->cb};
	struct timespec ts = {20, 0};
	s->r = aio_suspend(l, 1, &ts);
	s->err = errno;
	return NULL;
}

Test(threads, several_threads_suspended_on_one_job_all_wake)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[8];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	static struct susp s[NT];
	pthread_t t[NT];
	for (int i = 0; i < NT; i++) {
		s[i] = (struct susp){&cb, -2, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, susp_thread, &s[i]), 0);
	}
	usleep(50 * 1000);
	cr_assert_eq(write(p[1], "wake", 4), 4);
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(s[i].r, 0, "waiter %d: %d (%s)", i, s[i].r, strerror(s[i].err));
	}
	cr_assert_eq(aio_return(&cb), 4);
}

/* Sleeps in aio_suspend on its own pipe read, counting the sleeps it took. */
struct own {
	struct aiocb *cb;
	int r, err;
	long sleeps;
	void *tls; /* where the thread's TLS was */
};
static __thread int tls_probe;

static void *own_thread(void *arg)
{
	struct own *o = arg;
	o->tls = &tls_probe;
	const struct aiocb *l[1] = {o->cb};
	struct timespec ts = {20, 0};
	struct rusage u0, u1;
	getrusage(RUSAGE_THREAD, &u0);
	o->r = aio_suspend(l, 1, &ts);
	o->err = errno;
	getrusage(RUSAGE_THREAD, &u1);
	o->sleeps = u1.ru_nvcsw - u0.ru_nvcsw; /* a sleep is a voluntary switch */
	return NULL;
}

Test(threads, a_completion_wakes_only_the_thread_waiting_for_it)
{
	/* One thread waits on its own read while this one completes 30 of its
	 * own: the sleeper is not woken for them (it would be, once each, if
	 * every completion woke every sleeper). A third thread holds the ring's
	 * sleep (uring backend), so both others sleep on futexes. */
	enum { ROUNDS = 30 };
	int ph[2], pb[2], pa[2];
	cr_assert_eq(pipe(ph), 0);
	cr_assert_eq(pipe(pb), 0);
	cr_assert_eq(pipe(pa), 0);
	char bh[4], bb[4], ba[4];
	struct aiocb ch, cbb, ca;
	kqt_cb(&ch, ph[0], bh, 1, 0);
	kqt_cb(&cbb, pb[0], bb, 1, 0);
	cr_assert_eq(aio_read(&ch), 0);
	cr_assert_eq(aio_read(&cbb), 0);
	static struct own h, b;
	h = (struct own){&ch, -2, 0, 0};
	b = (struct own){&cbb, -2, 0, 0};
	pthread_t th, tb;
	cr_assert_eq(pthread_create(&th, NULL, own_thread, &h), 0);
	usleep(50 * 1000);
	cr_assert_eq(pthread_create(&tb, NULL, own_thread, &b), 0);
	usleep(50 * 1000);
	for (int i = 0; i < ROUNDS; i++) {
		kqt_cb(&ca, pa[0], ba, 1, 0);
		cr_assert_eq(aio_read(&ca), 0);
		cr_assert_eq(write(pa[1], "a", 1), 1);
		cr_assert_eq(kqt_wait(&ca), 1, "round %d", i);
	}
	cr_assert_eq(write(pb[1], "b", 1), 1);
	pthread_join(tb, NULL);
	cr_assert_eq(b.r, 0, "aio_suspend: %d (%s)", b.r, strerror(b.err));
	cr_assert_eq(aio_return(&cbb), 1);
	cr_assert_lt(b.sleeps, ROUNDS / 3, "the waiter slept %ld times", b.sleeps);
	cr_assert_eq(write(ph[1], "h", 1), 1);
	pthread_join(th, NULL);
	cr_assert_eq(h.r, 0);
	cr_assert_eq(aio_return(&ch), 1);
}

/* A thread that leaves aio_suspend by siglongjmp from a handler, then exits. */
enum { LJ_JOBS = 20 };
static __thread sigjmp_buf lj_jump;

static void lj_handler(int sig)
{
	(void)sig;
	siglongjmp(lj_jump, 1);
}

struct lj {
	int fd;
	struct aiocb cbs[LJ_JOBS];
	char bufs[LJ_JOBS];
	void *tls;
	int jumped, ready;
	pid_t tid;
};

static void *lj_thread(void *arg)
{
	struct lj *a = arg;
	a->tls = &tls_probe;
	a->tid = gettid();
	const struct aiocb *l[LJ_JOBS];
	for (int i = 0; i < LJ_JOBS; i++) {
		kqt_cb(&a->cbs[i], a->fd, &a->bufs[i], 1, 0);
		TH_CHECK(aio_read(&a->cbs[i]) == 0, "aio_read %d: %s", i, strerror(errno));
		l[i] = &a->cbs[i];
	}
	struct timespec ts = {20, 0};
	if (!sigsetjmp(lj_jump, 1)) {
		__atomic_store_n(&a->ready, 1, __ATOMIC_RELEASE);
		aio_suspend(l, LJ_JOBS, &ts);
	} else {
		a->jumped = 1;
	}
	return NULL;
}

Test(threads, a_wait_left_by_longjmp_leaves_no_trace_once_its_thread_exits)
{
	/* A thread sleeping in aio_suspend on 20 reads leaves it by siglongjmp
	 * and exits; a new thread gets its stack and TLS. The 20 reads then
	 * complete, one at a time: they must not bump the dead thread's wait
	 * word, which is now the new thread's (a wake for each while it
	 * sleeps on a read of its own, and a write into freed memory had the
	 * stack been unmapped). A third thread holds the ring's sleep. */
	const char *san = getenv("KQAIO_SAN");
	if (san && !strcmp(san, "tsan"))
		cr_skip_test("ThreadSanitizer holds a signal until an intercepted call returns, "
			     "and the futex sleep is not one");
	int ph[2], pj[2], pk[2];
	cr_assert_eq(pipe(ph), 0);
	cr_assert_eq(pipe(pj), 0);
	cr_assert_eq(pipe(pk), 0);
	struct sigaction sa = {.sa_handler = lj_handler}, old;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	char bh[1], bk[1];
	struct aiocb ch, ck;
	kqt_cb(&ch, ph[0], bh, 1, 0);
	cr_assert_eq(aio_read(&ch), 0);
	static struct own h, k;
	h = (struct own){&ch, -2, 0, 0};
	pthread_t th, tt, tk;
	cr_assert_eq(pthread_create(&th, NULL, own_thread, &h), 0);
	usleep(50 * 1000);
	static struct lj a;
	memset(&a, 0, sizeof a);
	a.fd = pj[0];
	cr_assert_eq(pthread_create(&tt, NULL, lj_thread, &a), 0);
	while (!__atomic_load_n(&a.ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	if (kqt_sleeping_in(a.tid, SYS_futex, SYS_futex) != SYS_futex)
		cr_skip_test("the waiter never slept on a futex");
	cr_assert_eq(pthread_kill(tt, SIGUSR1), 0);
	pthread_join(tt, NULL);
	no_failure();
	cr_assert(a.jumped, "the handler did not jump");
	kqt_cb(&ck, pk[0], bk, 1, 0);
	cr_assert_eq(aio_read(&ck), 0);
	k = (struct own){&ck, -2, 0, 0};
	cr_assert_eq(pthread_create(&tk, NULL, own_thread, &k), 0);
	usleep(50 * 1000);
	for (int i = 0; i < LJ_JOBS; i++) {
		cr_assert_eq(write(pj[1], "j", 1), 1);
		usleep(5 * 1000);
	}
	for (int i = 0; i < LJ_JOBS; i++)
		cr_assert_eq(kqt_wait(&a.cbs[i]), 1, "read %d", i);
	cr_assert_eq(write(pk[1], "k", 1), 1);
	pthread_join(tk, NULL);
	cr_assert_eq(k.r, 0, "aio_suspend: %d (%s)", k.r, strerror(k.err));
	cr_assert_eq(aio_return(&ck), 1);
	if (k.tls != a.tls)
		cr_skip_test("the new thread did not get the exited thread's TLS");
	cr_assert_lt(k.sleeps, LJ_JOBS / 2, "the new thread slept %ld times", k.sleeps);
	cr_assert_eq(write(ph[1], "h", 1), 1);
	pthread_join(th, NULL);
	cr_assert_eq(aio_return(&ch), 1);
	sigaction(SIGUSR1, &old, NULL);
}

enum { CR_JOBS = 300 };

struct cancel_race {
	int rfd, wfd;
	struct aiocb cbs[CR_JOBS];
	char bufs[CR_JOBS][16];
	int stop;
};

static void *cr_canceller(void *arg)
{
	struct cancel_race *c = arg;
	for (int i = CR_JOBS - 1; i >= 0; i -= 2) {
		int r = aio_cancel(c->rfd, &c->cbs[i]);
		TH_CHECK(r == AIO_CANCELED || r == AIO_ALLDONE || r == AIO_NOTCANCELED,
			 "aio_cancel %d: %d (%s)", i, r, strerror(errno));
	}
	return NULL;
}

static void *cr_writer(void *arg)
{
	struct cancel_race *c = arg;
	char rec[16];
	memset(rec, 'w', sizeof rec);
	for (int i = 0; i < CR_JOBS / 2; i++)
		TH_CHECK(write(c->wfd, rec, sizeof rec) == (ssize_t)sizeof rec, "write: %s",
			 strerror(errno));
	return NULL;
}

Test(threads, cancel_racing_completion_ends_each_job_once)
{
	/* Reads on a pipe while one thread writes records and another cancels: every
	 * job ends exactly once, cancelled or with a record, and no byte is lost. */
	static struct cancel_race c;
	int p[2];
	cr_assert_eq(pipe(p), 0);
	c.rfd = p[0];
	c.wfd = p[1];
	for (int i = 0; i < CR_JOBS; i++) {
		kqt_cb(&c.cbs[i], p[0], c.bufs[i], 16, 0);
		cr_assert_eq(aio_read(&c.cbs[i]), 0);
	}
	pthread_t tw, tc;
	cr_assert_eq(pthread_create(&tw, NULL, cr_writer, &c), 0);
	cr_assert_eq(pthread_create(&tc, NULL, cr_canceller, &c), 0);
	pthread_join(tw, NULL);
	pthread_join(tc, NULL);
	no_failure();
	/* Close the writer: reads still waiting get EOF. */
	close(p[1]);
	long bytes = 0;
	int ncancel = 0;
	for (int i = 0; i < CR_JOBS; i++) {
		const struct aiocb *l[1] = {&c.cbs[i]};
		for (int k = 0; k < 1000 && aio_error(&c.cbs[i]) == EINPROGRESS; k++) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			aio_suspend(l, 1, &ts);
		}
		int e = aio_error(&c.cbs[i]);
		cr_assert_neq(e, EINPROGRESS, "job %d never ended", i);
		errno = 0;
		ssize_t n = aio_return(&c.cbs[i]);
		if (e == ECANCELED) {
			cr_assert_eq(n, -1);
			cr_assert_eq(errno, ECANCELED);
			cr_assert(i % 2 == 1, "job %d was not targeted but was cancelled", i);
			ncancel++;
		} else {
			cr_assert_eq(e, 0, "job %d: %s", i, strerror(e));
			cr_assert(n >= 0 && n <= 16, "job %d: %zd", i, n);
			bytes += n;
		}
		errno = 0;
		cr_assert_eq(aio_return(&c.cbs[i]), -1, "job %d reaped twice", i);
		cr_assert_eq(errno, EINVAL);
	}
	/* Every byte written went to exactly one read (none left in the pipe). */
	char rest[16];
	ssize_t left = read(p[0], rest, sizeof rest);
	cr_assert_eq(left, 0, "%zd bytes left in the pipe", left);
	cr_assert_eq(bytes, CR_JOBS / 2 * 16, "reads got %ld of %d bytes (%d cancelled)", bytes,
		     CR_JOBS / 2 * 16, ncancel);
	struct kqaio_stats s;
	cr_assert_eq(kqaio_get_stats(&s, sizeof s), 0);
	cr_assert_eq(s.completed, CR_JOBS);
	cr_assert_eq(s.cancelled, (uint64_t)ncancel);
}

Test(threads, aio_init_with_one_thread_completes_100_jobs)
{
	setenv("KQAIO_BACKEND", "pool", 1); /* about the pool's threads */
	setenv("KQAIO_INLINE", "0", 1);	    /* reads of tmpfs too */
	struct aioinit init = {.aio_threads = 1, .aio_num = 100, .aio_idle_time = 60};
	aio_init(&init);
	int fd = kqt_file(1 << 20);
	enum { N = 100 };
	static struct aiocb cbs[N];
	static char bufs[N][8192];
	/* One job first: its worker (kept for a minute) counts in the baseline. */
	kqt_cb(&cbs[0], fd, bufs[0], 1, 0);
	cr_assert_eq(aio_read(&cbs[0]), 0);
	cr_assert_eq(th_wait(&cbs[0]), 1);
	cr_assert_eq(kqt_count_threads("kqaio-io"), 1);
	/* Reads and writes mixed, all queued at once behind one worker. */
	for (int i = 0; i < N; i++) {
		off_t off = (off_t)i * 8192;
		if (i % 2) {
			kqt_fill(bufs[i], off, 8192);
			kqt_cb(&cbs[i], fd, bufs[i], 8192, off);
			cr_assert_eq(aio_write(&cbs[i]), 0);
		} else {
			kqt_cb(&cbs[i], fd, bufs[i], 8192, off);
			cr_assert_eq(aio_read(&cbs[i]), 0);
		}
	}
	int most = kqt_count_threads("kqaio-io");
	for (int i = 0; i < N; i++) {
		cr_assert_eq(th_wait(&cbs[i]), 8192, "job %d", i);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192, 8192), "job %d data", i);
		int now = kqt_count_threads("kqaio-io");
		most = now > most ? now : most;
	}
	/* 100 queued jobs would start many workers; with aio_threads = 1 none is added. */
	cr_assert_eq(most, 1, "%d I/O threads with aio_threads = 1", most);
	/* Tuning again later, upwards, keeps things working. */
	init.aio_threads = 8;
	aio_init(&init);
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 8192, (off_t)(N - 1 - i) * 8192);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(th_wait(&cbs[i]), 8192, "job %d", i);
		cr_assert(kqt_check(bufs[i], (off_t)(N - 1 - i) * 8192, 8192), "job %d data", i);
	}
}

Test(threads, threads_start_under_a_large_static_tls)
{
	const char *b = getenv("KQAIO_BUILD");
	cr_assert(b, "KQAIO_BUILD is not set (run through make check)");
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/tests/big-tls >/dev/null", b);
	int st = system(cmd);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "big-tls exited with %d", st);
}

struct exiter {
	int fd, first, n, write;
	long stride; /* bytes between requests */
	struct aiocb *cbs;
	char (*bufs)[4096];
};

static void *submit_and_exit(void *arg)
{
	struct exiter *e = arg;
	for (int i = e->first; i < e->first + e->n; i++) {
		off_t off = (off_t)i * e->stride;
		if (e->write)
			kqt_fill(e->bufs[i], off, 4096);
		kqt_cb(&e->cbs[i], e->fd, e->bufs[i], 4096, off);
		if (e->write ? aio_write(&e->cbs[i]) : aio_read(&e->cbs[i]))
			return (void *)(intptr_t)errno;
	}
	return NULL; /* at once: its requests may not have started */
}

/* T threads each submit PER requests on fd and exit at once; each ends well. */
static void submit_from_exiting_threads(int fd, int write, long stride, int round)
{
	enum { T = 4, PER = 16, N = T * PER };
	static struct aiocb cbs[N];
	static char bufs[N][4096];
	struct exiter e[T];
	pthread_t t[T];
	for (int k = 0; k < T; k++) {
		e[k] = (struct exiter){fd, k * PER, PER, write, stride, cbs, bufs};
		cr_assert_eq(pthread_create(&t[k], NULL, submit_and_exit, &e[k]), 0);
	}
	for (int k = 0; k < T; k++) {
		void *err;
		pthread_join(t[k], &err);
		cr_assert_null(err, "submission: %s", strerror((int)(intptr_t)err));
	}
	for (int i = 0; i < N; i++) {
		ssize_t n = th_wait(&cbs[i]);
		cr_assert_eq(n, 4096, "round %d %s %d: %zd (%s)", round, write ? "write" : "read",
			     i, n, n == -1 ? strerror(cbs[i].__error_code) : "");
		if (!write)
			cr_assert(kqt_check(bufs[i], (off_t)i * stride, 4096), "round %d read %d",
				  round, i);
	}
}

/* A request outlives the thread that made it. When that thread exits, the
 * kernel drops io_uring work queued for its workers before it starts
 * (ECANCELED: tmpfs writes wait there), and fails a read that waited for the
 * page cache (EFAULT: a cold disk file). Every request must end well. */
Test(threads, jobs_outlive_the_thread_that_submitted_them, .timeout = 60)
{
	enum { ROUNDS = 50, STRIDE = 256 << 10 };
	static char back[64 * 4096];
	for (int r = 0; r < ROUNDS; r++) {
		int fd = kqt_file(0);
		submit_from_exiting_threads(fd, 1, 4096, r);
		cr_assert_eq(pread(fd, back, sizeof back, 0), (ssize_t)sizeof back);
		cr_assert(kqt_check(back, 0, sizeof back), "round %d", r);
		close(fd);
	}
	int fd = kqt_file_in(kqt_disk_dir(), 64L * STRIDE);
	cr_assert_eq(fsync(fd), 0);
	for (int r = 0; r < ROUNDS / 5; r++) {
		cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0); /* cold again */
		submit_from_exiting_threads(fd, 0, STRIDE, r);
	}
	close(fd);
}
