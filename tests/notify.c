/* Notification: SIGEV_SIGNAL, SIGEV_THREAD (with and without attributes),
 * SIGEV_THREAD_ID and SIGEV_NONE; the job is visibly done when it notifies
 * (invariant 3) and each job notifies only as its own sigevent asks (invariant 4). */
#include "kqt.h"

#include <sys/resource.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

TestSuite(notify, .timeout = 30);

/* Waits for cb without reaping it. */
static void wait_done(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == 0 || errno == EINTR, "aio_suspend: %s", strerror(errno));
	}
}

/* --- SIGEV_SIGNAL with an SA_SIGINFO handler that reads the result --- */

static struct aiocb *h_cb;
static volatile sig_atomic_t h_count;
static int h_code, h_err, h_reterr;
static pid_t h_pid;
static void *h_ptr;
static ssize_t h_ret;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	int saved = errno;
	if (!h_count) {
		h_code = si->si_code;
		h_ptr = si->si_value.sival_ptr;
		h_pid = si->si_pid;
		/* Invariant 3: by the time we are told, the job is done. */
		h_err = aio_error(h_cb);
		errno = 0;
		h_ret = aio_return(h_cb);
		h_reterr = errno;
	}
	h_count++;
	errno = saved;
}

Test(notify, signal_carries_value_and_finds_the_job_done)
{
	int sig = SIGRTMIN + 1;
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0);
	sigset_t blocked, during;
	sigemptyset(&blocked);
	sigaddset(&blocked, sig);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &blocked, &during), 0);
	sigdelset(&during, sig);

	int fd = kqt_file(1 << 16);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	static char buf[4096];
	static int marker;
	/* Once on a regular file (a worker completes it), once on a pipe (the
	 * stream poller completes it). */
	for (int k = 0; k < 2; k++) {
		struct aiocb cb;
		if (k == 0)
			kqt_cb(&cb, fd, buf, 3000, 500);
		else
			kqt_cb(&cb, p[0], buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = sig;
		cb.aio_sigevent.sigev_value.sival_ptr = &marker;
		h_cb = &cb;
		h_count = 0;
		h_ptr = NULL;
		cr_assert_eq(aio_read(&cb), 0);
		if (k == 1)
			cr_assert_eq(write(p[1], "pipe data", 9), 9);
		/* The handler runs only inside sigsuspend, where we hold no lock. */
		while (!h_count)
			sigsuspend(&during);
		const char *where = k ? "pipe" : "file";
		cr_assert_eq(h_code, SI_ASYNCIO, "%s: si_code %d", where, h_code);
		cr_assert_eq(h_ptr, &marker, "%s: si_value", where);
		cr_assert_eq(h_pid, getpid(), "%s: si_pid %d", where, (int)h_pid);
		cr_assert_neq(h_err, EINPROGRESS, "%s: notified before the job was done", where);
		cr_assert_eq(h_err, 0, "%s: aio_error in the handler %d", where, h_err);
		cr_assert_eq(h_ret, k ? 9 : 3000, "%s: aio_return in the handler %zd (%s)", where,
			     h_ret, strerror(h_reterr));
		cr_assert(k ? !memcmp(buf, "pipe data", 9) : kqt_check(buf, 500, 3000));
		/* The handler reaped it. */
		errno = 0;
		cr_assert_eq(aio_return(&cb), -1);
		cr_assert_eq(errno, EINVAL);
		/* Exactly one signal. */
		usleep(20000);
		siginfo_t si;
		cr_assert(!kqt_take_sig(sig, &si, 0), "%s: a second signal", where);
		cr_assert_eq(h_count, 1);
	}
}

/* --- SIGEV_THREAD --- */

static struct aiocb *t_cb;
static pthread_t t_main;
static int t_count, t_other, t_err, t_reterr;
static void *t_ptr;
static ssize_t t_ret;
static size_t t_stack;

static void on_thread(union sigval v)
{
	int other = !pthread_equal(pthread_self(), t_main);
	int err = aio_error(t_cb);
	errno = 0;
	ssize_t ret = aio_return(t_cb);
	int reterr = errno;
	size_t stack = 0;
	pthread_attr_t a;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, &stack);
		pthread_attr_destroy(&a);
	}
	if (__atomic_load_n(&t_count, __ATOMIC_RELAXED) == 0) {
		t_other = other;
		t_err = err;
		t_ret = ret;
		t_reterr = reterr;
		t_ptr = v.sival_ptr;
		t_stack = stack;
	}
	__atomic_add_fetch(&t_count, 1, __ATOMIC_RELEASE);
}

static void thread_case(pthread_attr_t *attr)
{
	int fd = kqt_file(1 << 16);
	static char buf[2000];
	static int marker;
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 4321);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = on_thread;
	cb.aio_sigevent.sigev_notify_attributes = attr;
	cb.aio_sigevent.sigev_value.sival_ptr = &marker;
	t_cb = &cb;
	t_main = pthread_self();
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&t_count, __ATOMIC_ACQUIRE) > 0, 5000),
		  "the callback never ran");
	cr_assert(t_other, "the callback ran on the submitting thread");
	cr_assert_eq(t_ptr, &marker, "sigev_value");
	cr_assert_neq(t_err, EINPROGRESS, "notified before the job was done");
	cr_assert_eq(t_err, 0);
	cr_assert_eq(t_ret, (ssize_t)sizeof buf, "aio_return in the callback: %zd (%s)", t_ret,
		     strerror(t_reterr));
	cr_assert(kqt_check(buf, 4321, sizeof buf));
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1, "the callback reaped it");
	cr_assert_eq(errno, EINVAL);
	usleep(20000);
	cr_assert_eq(__atomic_load_n(&t_count, __ATOMIC_ACQUIRE), 1, "callback ran %d times",
		     t_count);
}

Test(notify, thread_callback_runs_elsewhere_and_finds_the_job_done)
{
	thread_case(NULL);
}

Test(notify, thread_callback_honours_attributes)
{
	/* Ask for twice the default stack, so a thread that ignored the
	 * attributes would show it. */
	pthread_attr_t attr;
	cr_assert_eq(pthread_attr_init(&attr), 0);
	size_t def = 0;
	pthread_attr_getstacksize(&attr, &def);
	size_t want = def * 2 > (1u << 20) ? def * 2 : (1u << 20);
	cr_assert_eq(pthread_attr_setstacksize(&attr, want), 0);
	thread_case(&attr);
	cr_log_info("callback stack %zu, asked %zu", t_stack, want);
	cr_assert_geq(t_stack, want, "callback thread stack %zu, asked for %zu", t_stack, want);
	pthread_attr_destroy(&attr);
}

enum { MANY = 1000 };
static int m_calls[MANY];
static int m_total;

/* Each callback takes a moment, as real ones do: a design that starts a thread
 * per completion cannot hide behind callbacks that end at once. */
static void on_many(union sigval v)
{
	usleep(1000);
	__atomic_add_fetch(&m_calls[v.sival_int], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m_total, 1, __ATOMIC_RELEASE);
}

Test(notify, thousand_thread_callbacks_use_few_threads)
{
	int fd = kqt_file(MANY * 64);
	static struct aiocb cbs[MANY];
	static char bufs[MANY][64];
	int most = 0, n;
	for (int i = 0; i < MANY; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 64, (off_t)i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = on_many;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		cr_assert_eq(aio_read(&cbs[i]), 0, "%d: %s", i, strerror(errno));
		if (i % 50 == 0 && (n = kqt_count_threads(NULL)) > most)
			most = n;
	}
	for (int ms = 0; ms < 10000 && __atomic_load_n(&m_total, __ATOMIC_ACQUIRE) < MANY; ms++) {
		if ((n = kqt_count_threads(NULL)) > most)
			most = n;
		usleep(1000);
	}
	cr_assert_eq(__atomic_load_n(&m_total, __ATOMIC_ACQUIRE), MANY, "only %d callbacks ran",
		     m_total);
	usleep(50000);
	for (int i = 0; i < MANY; i++)
		cr_assert_eq(__atomic_load_n(&m_calls[i], __ATOMIC_RELAXED), 1,
			     "callback %d ran %d times", i, m_calls[i]);
	cr_log_info("at most %d threads during %d callbacks", most, MANY);
	cr_assert_lt(most, 300, "%d threads for %d callbacks", most, MANY);
	for (int i = 0; i < MANY; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 64, "%d", i);
		cr_assert(kqt_check(bufs[i], (off_t)i * 64, 64));
	}
}

/* --- SIGEV_THREAD_ID --- */

static pid_t tid_target;
static int tid_go, tid_got, tid_code;
static void *tid_ptr;

static void *tid_thread(void *arg)
{
	int sig = (int)(intptr_t)arg;
	__atomic_store_n(&tid_target, gettid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&tid_go, __ATOMIC_ACQUIRE))
		usleep(1000);
	siginfo_t si;
	if (kqt_take_sig(sig, &si, 5000)) {
		tid_code = si.si_code;
		tid_ptr = si.si_value.sival_ptr;
		tid_got = 1;
	}
	return NULL;
}

/* 1 if sig is in the pending mask named field ("SigPnd", "ShdPnd") of a status file. */
static int pending_in(const char *status, const char *field, int sig)
{
	FILE *f = fopen(status, "r");
	cr_assert(f, "%s: %s", status, strerror(errno));
	char line[256];
	unsigned long long mask = 0;
	size_t fl = strlen(field);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			mask = strtoull(line + fl + 1, NULL, 16);
	fclose(f);
	return (mask >> (sig - 1)) & 1;
}

Test(notify, thread_id_signal_goes_to_that_thread)
{
	int sig = SIGRTMIN + 3;
	kqt_block_sig(sig); /* here, and so in the thread, which waits for it */
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, tid_thread, (void *)(intptr_t)sig), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&tid_target, __ATOMIC_ACQUIRE), 5000));
	pid_t tid = tid_target;

	int fd = kqt_file(4096);
	static char buf[100];
	static int marker;
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
	cb.aio_sigevent.sigev_signo = sig;
	cb.aio_sigevent.sigev_notify_thread_id = tid;
	cb.aio_sigevent.sigev_value.sival_ptr = &marker;
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);

	/* Pending on that thread alone, not on the process nor on us. */
	char status[64];
	snprintf(status, sizeof status, "/proc/self/task/%d/status", (int)tid);
	cr_assert(kqt_eventually(pending_in(status, "SigPnd", sig), 5000),
		  "the signal is not pending on the named thread");
	cr_assert(!pending_in("/proc/self/status", "ShdPnd", sig), "sent to the whole process");
	snprintf(status, sizeof status, "/proc/self/task/%d/status", (int)gettid());
	cr_assert(!pending_in(status, "SigPnd", sig), "sent to the submitting thread");

	__atomic_store_n(&tid_go, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	cr_assert(tid_got, "the named thread got no signal");
	cr_assert_eq(tid_code, SI_ASYNCIO);
	cr_assert_eq(tid_ptr, &marker);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	siginfo_t si;
	cr_assert(!kqt_take_sig(sig, &si, 20), "a second signal");
}

/* --- SIGEV_NONE --- */

static int none_calls;

static void on_none(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&none_calls, 1, __ATOMIC_RELAXED);
}

Test(notify, sigev_none_raises_nothing)
{
	sigset_t all;
	sigfillset(&all);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
	int fd = kqt_file(4096);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[100];
	for (int k = 0; k < 2; k++) {
		struct aiocb cb;
		kqt_cb(&cb, k ? p[0] : fd, buf, sizeof buf, 0);
		/* Everything else filled in, as a careless program might. */
		cb.aio_sigevent.sigev_notify = SIGEV_NONE;
		cb.aio_sigevent.sigev_signo = SIGRTMIN + 4;
		cb.aio_sigevent.sigev_notify_function = on_none;
		cr_assert_eq(aio_read(&cb), 0);
		if (k)
			cr_assert_eq(write(p[1], "0123456789", 10), 10);
		cr_assert_eq(kqt_wait(&cb), k ? 10 : (ssize_t)sizeof buf);
	}
	usleep(50000);
	sigset_t pend;
	cr_assert_eq(sigpending(&pend), 0);
	for (int s = 1; s < NSIG; s++)
		cr_assert(!sigismember(&pend, s), "signal %d is pending", s);
	cr_assert_eq(__atomic_load_n(&none_calls, __ATOMIC_RELAXED), 0, "a callback ran");
}

/* --- invariant 4: each job its own way --- */

static int mix_calls;
static void *mix_ptr;

static void on_mix(union sigval v)
{
	mix_ptr = v.sival_ptr;
	__atomic_add_fetch(&mix_calls, 1, __ATOMIC_RELEASE);
}

Test(notify, each_job_notifies_only_its_own_way)
{
	int sig = SIGRTMIN + 2;
	kqt_block_sig(sig);
	int fd = kqt_file(1 << 16);
	char ba[512], bb[512];
	struct aiocb a, b;
	kqt_cb(&a, fd, ba, sizeof ba, 0);
	kqt_cb(&b, fd, bb, sizeof bb, 512);
	/* Each sigevent also carries the other mechanism's fields, unused. */
	a.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	a.aio_sigevent.sigev_signo = sig;
	a.aio_sigevent.sigev_value.sival_ptr = &a;
	a.aio_sigevent.sigev_notify_function = on_mix;
	b.aio_sigevent.sigev_notify = SIGEV_THREAD;
	b.aio_sigevent.sigev_signo = sig;
	b.aio_sigevent.sigev_value.sival_ptr = &b;
	b.aio_sigevent.sigev_notify_function = on_mix;
	cr_assert_eq(aio_read(&a), 0);
	cr_assert_eq(aio_read(&b), 0);
	wait_done(&a);
	wait_done(&b);

	siginfo_t si;
	cr_assert(kqt_take_sig(sig, &si, 5000), "job a's signal never came");
	cr_assert_eq(si.si_code, SI_ASYNCIO);
	cr_assert_eq(si.si_value.sival_ptr, &a, "the signal carries another job's value");
	cr_assert(kqt_eventually(__atomic_load_n(&mix_calls, __ATOMIC_ACQUIRE) > 0, 5000),
		  "job b's callback never ran");
	usleep(100000);
	cr_assert(!kqt_take_sig(sig, &si, 0), "a second signal (value %p; a=%p b=%p)",
		  si.si_value.sival_ptr, (void *)&a, (void *)&b);
	cr_assert_eq(__atomic_load_n(&mix_calls, __ATOMIC_ACQUIRE), 1, "%d callbacks", mix_calls);
	cr_assert_eq(mix_ptr, &b, "the callback ran for the wrong job");
	cr_assert_eq(aio_return(&a), 512);
	cr_assert_eq(aio_return(&b), 512);
	cr_assert(kqt_check(ba, 0, 512) && kqt_check(bb, 512, 512));
}

/* The queued signals of this user, from /proc/self/status "SigQ: n/limit". */
static long queued_signals(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	cr_assert(f);
	char line[256];
	long n = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "SigQ: %ld/", &n) == 1)
			break;
	fclose(f);
	cr_assert(n >= 0);
	return n;
}

Test(notify, full_signal_queue_makes_signals_late_not_lost)
{
	int sig = SIGRTMIN + 6;
	kqt_block_sig(sig);
	/* Room for only a few queued signals: the rest must wait, not vanish. */
	struct rlimit rl = {.rlim_cur = (rlim_t)queued_signals() + 4,
			    .rlim_max = (rlim_t)queued_signals() + 4};
	cr_assert_eq(setrlimit(RLIMIT_SIGPENDING, &rl), 0);
	enum { N = 20 };
	int fd = kqt_file(1 << 16);
	static struct aiocb cbs[N];
	static char bufs[N][64];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cbs[i].aio_sigevent.sigev_signo = sig;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	int seen[N] = {0};
	for (int got = 0; got < N; got++) {
		siginfo_t si;
		cr_assert(kqt_take_sig(sig, &si, 10000), "only %d of %d signals came", got, N);
		cr_assert_eq(si.si_code, SI_ASYNCIO);
		cr_assert(si.si_value.sival_int >= 0 && si.si_value.sival_int < N);
		cr_assert_eq(seen[si.si_value.sival_int]++, 0, "signal %d twice",
			     si.si_value.sival_int);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(kqt_wait(&cbs[i]), 64);
}
