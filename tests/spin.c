/* A waiter in the ring spins on it before sleeping (KQAIO_SPIN): through a
 * disk read it does not sleep at all, and on a wait longer than the window it
 * stops spinning and sleeps, so a slow job costs no CPU. */
#include "kqt.h"

#include <sys/resource.h>
#include <time.h>

TestSuite(spin, .timeout = 30);

static void need_uring(void)
{
	if (strcmp(kqaio_backend(), "uring"))
		cr_skip_test("the %s backend has no ring to spin on", kqaio_backend());
}

static long voluntary_switches(void)
{
	struct rusage u;
	cr_assert_eq(getrusage(RUSAGE_THREAD, &u), 0);
	return u.ru_nvcsw;
}

/* O_DIRECT reads one at a time, each waited for in aio_suspend: with a 10 ms
 * window the waiter never sleeps (a sleep is a voluntary context switch);
 * with KQAIO_SPIN=0 it sleeps for nearly each. */
static long sleeps_for_reads(const char *spin, int *waits)
{
	setenv("KQAIO_SPIN", spin, 1); /* read at first use, which is below */
	int dfd = kqt_direct_file(1 << 20);
	need_uring();
	enum { N = 100 };
	static char buf[4096] __attribute__((aligned(4096)));
	struct aiocb cb;
	long before = 0;
	for (int i = 0; i <= N; i++) {
		if (i == 1)
			before = voluntary_switches(); /* after the first: threads start there */
		kqt_cb(&cb, dfd, buf, sizeof buf, (off_t)i * 8192 % (1 << 20));
		cr_assert_eq(aio_read(&cb), 0);
		*waits += i && aio_error(&cb) == EINPROGRESS;
		cr_assert_eq(kqt_wait(&cb), 4096);
		cr_assert(kqt_check(buf, (off_t)i * 8192 % (1 << 20), sizeof buf));
	}
	close(dfd);
	return voluntary_switches() - before;
}

Test(spin, a_waiter_spins_through_a_disk_read)
{
	int waits = 0;
	long n = sleeps_for_reads("10000", &waits);
	if (waits < 50)
		cr_skip_test("only %d of 100 reads were still going when waited for", waits);
	cr_assert(n < 50, "the waiter slept %ld times for 100 reads", n);
}

Test(spin, kqaio_spin_0_sleeps_at_once)
{
	int waits = 0;
	long n = sleeps_for_reads("0", &waits);
	if (waits < 50)
		cr_skip_test("only %d of 100 reads were still going when waited for", waits);
	/* A read may be done before its wait begins: most are not. */
	cr_assert(n >= 50, "the waiter slept only %ld times for 100 reads", n);
}

static void start_ring(void)
{
	int fd = kqt_file_in(kqt_disk_dir(), 4096); /* a read that starts the ring */
	char buf[4096];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 4096);
	close(fd);
	/* Its completion thread names itself once it runs. */
	for (int ms = 0; ms < 2000 && kqt_count_threads("kqaio-uring") != 1; ms++)
		nanosleep(&(struct timespec){0, 1000000L}, NULL);
	cr_assert_eq(kqt_count_threads("kqaio-uring"), 1, "the ring did not start");
}

static long cpu_ms(void)
{
	struct timespec t;
	cr_assert_eq(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t), 0);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *write_later(void *arg)
{
	int *p = arg;
	struct timespec t = {0, 20 * 1000000L};
	nanosleep(&t, NULL);
	cr_assert_eq(write(p[1], "x", 1), 1);
	return NULL;
}

/* Ten waits of 20 ms each (a pipe written by another thread) with a 3 ms
 * window: after the first, the waiter knows its waits are long and sleeps
 * at once, instead of spinning 3 ms each time. */
Test(spin, a_waiter_whose_waits_are_long_stops_spinning)
{
	setenv("KQAIO_SPIN", "3000", 1);
	need_uring();
	start_ring();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	long used = 0;
	for (int i = 0; i < 10; i++) {
		char c;
		struct aiocb cb;
		kqt_cb(&cb, p[0], &c, 1, 0);
		cr_assert_eq(aio_read(&cb), 0);
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, write_later, p), 0);
		long a = cpu_ms();
		cr_assert_eq(kqt_wait(&cb), 1);
		used += cpu_ms() - a;
		pthread_join(t, NULL);
	}
	cr_assert(used < 15, "the waiter used %ld ms of CPU in ten waits", used);
	close(p[0]);
	close(p[1]);
}

/* A wait of 300 ms on a pipe that nobody writes: the waiter spins at most its
 * 10 ms window, then sleeps. */
Test(spin, a_long_wait_spins_no_longer_than_the_window)
{
	setenv("KQAIO_SPIN", "10000", 1);
	need_uring();
	start_ring();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char c;
	struct aiocb cb;
	kqt_cb(&cb, p[0], &c, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	const struct aiocb *l[1] = {&cb};
	struct timespec tmo = {0, 300 * 1000000L};
	long a = cpu_ms();
	cr_assert_eq(aio_suspend(l, 1, &tmo), -1);
	cr_assert_eq(errno, EAGAIN);
	long ms = cpu_ms() - a;
	cr_assert(ms < 150, "the waiter used %ld ms of CPU in a 300 ms wait", ms);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(kqt_wait(&cb), 1);
	close(p[0]);
	close(p[1]);
}

static void on_usr1(int sig)
{
	(void)sig;
}

struct kick {
	pthread_t waiter;
	int wfd;
};

static void *signal_then_write(void *arg)
{
	struct kick *k = arg;
	struct timespec t = {0, 2 * 1000000L};
	nanosleep(&t, NULL);
	pthread_kill(k->waiter, SIGUSR1); /* inside the 10 ms window */
	t.tv_sec = 2;
	t.tv_nsec = 0;
	nanosleep(&t, NULL);
	cr_assert_eq(write(k->wfd, "x", 1), 1); /* ends a wait the signal did not */
	return NULL;
}

/* One signal while the waiter spins: aio_suspend still fails with EINTR,
 * as if it had come while the waiter slept. */
Test(spin, a_signal_while_spinning_interrupts_the_wait)
{
	setenv("KQAIO_SPIN", "10000", 1);
	need_uring();
	start_ring();
	struct sigaction sa = {.sa_handler = on_usr1};
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char c;
	struct aiocb cb;
	kqt_cb(&cb, p[0], &c, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	struct kick k = {pthread_self(), p[1]};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, signal_then_write, &k), 0);
	const struct aiocb *l[1] = {&cb};
	int r = aio_suspend(l, 1, NULL);
	int e = errno;
	pthread_join(t, NULL);
	cr_assert(r == -1 && e == EINTR, "aio_suspend gave %d (%s), not EINTR", r, strerror(e));
	cr_assert_eq(kqt_wait(&cb), 1);
	close(p[0]);
	close(p[1]);
}
