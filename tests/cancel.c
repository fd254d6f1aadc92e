/* aio_cancel: queued jobs are taken back and still end (ECANCELED) and notify;
 * running ones are not; a whole fd at once; the errno cases. */
#include "stall.h"

#include <pthread.h>
#include <signal.h>

TestSuite(cancel, .timeout = 30);

/* These tests hold the pool's only worker to keep jobs queued behind it. */
static void one_worker(void)
{
	setenv("KQAIO_BACKEND", "pool", 1);
	struct aioinit in = {.aio_threads = 1, .aio_idle_time = 1};
	aio_init(&in);
}

Test(cancel, queued_job_is_cancelled_running_one_is_not, .init = kqt_stall_no_inline)
{
	one_worker();
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file(1 << 16);
	struct aiocb held, queued;
	kqt_cb(&held, fd, s.buf, 4096, 0);
	cr_assert_eq(aio_read(&held), 0);
	kqt_stall_wait_blocked(&s); /* the only worker is inside held's read */
	char buf[100];
	kqt_cb(&queued, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&queued), 0);
	cr_assert_eq(aio_cancel(fd, &queued), AIO_CANCELED);
	cr_assert_eq(aio_error(&queued), ECANCELED);
	errno = 0;
	cr_assert_eq(aio_return(&queued), -1);
	cr_assert_eq(errno, ECANCELED);
	cr_assert_eq(aio_cancel(fd, &held), AIO_NOTCANCELED);
	cr_assert_eq(aio_error(&held), EINPROGRESS);
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&held), 4096);
	cr_assert(kqt_check(s.buf, 0, 4096));
	cr_assert_eq(aio_cancel(fd, &held), AIO_ALLDONE, "a reaped job is all done");
}

static volatile sig_atomic_t got_sig;
static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_code == SI_ASYNCIO && si->si_value.sival_int == 42)
		got_sig++;
}

Test(cancel, a_cancelled_job_still_notifies, .init = kqt_stall_no_inline)
{
	one_worker();
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
	sigaction(SIGRTMIN + 3, &sa, NULL);
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file(1 << 16);
	struct aiocb held, queued;
	kqt_cb(&held, fd, s.buf, 4096, 0);
	cr_assert_eq(aio_read(&held), 0);
	kqt_stall_wait_blocked(&s);
	char buf[100];
	kqt_cb(&queued, fd, buf, sizeof buf, 0);
	queued.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	queued.aio_sigevent.sigev_signo = SIGRTMIN + 3;
	queued.aio_sigevent.sigev_value.sival_int = 42;
	cr_assert_eq(aio_read(&queued), 0);
	cr_assert_eq(aio_cancel(fd, &queued), AIO_CANCELED);
	cr_assert(kqt_eventually(got_sig == 1, 5000));
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&held), 4096);
	usleep(50000);
	cr_assert_eq(got_sig, 1, "exactly one notification");
}

Test(cancel, whole_fd_cancels_all_queued_and_reports_notcanceled, .init = kqt_stall_no_inline)
{
	one_worker();
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file(1 << 16), other = kqt_file(1 << 16);
	struct aiocb held, q[10], elsewhere;
	char buf[10][64], obuf[64];
	kqt_cb(&held, fd, s.buf, 4096, 0);
	cr_assert_eq(aio_read(&held), 0);
	kqt_stall_wait_blocked(&s);
	for (int i = 0; i < 10; i++) {
		kqt_cb(&q[i], fd, buf[i], 64, i * 64);
		cr_assert_eq(aio_read(&q[i]), 0);
	}
	kqt_cb(&elsewhere, other, obuf, 64, 0);
	cr_assert_eq(aio_read(&elsewhere), 0);
	/* held is running, so not all could be cancelled. */
	cr_assert_eq(aio_cancel(fd, NULL), AIO_NOTCANCELED);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(aio_error(&q[i]), ECANCELED);
		cr_assert_eq(aio_return(&q[i]), -1);
	}
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&held), 4096);
	cr_assert_eq(kqt_wait(&elsewhere), 64, "another fd's job is untouched");
	cr_assert_eq(aio_cancel(fd, NULL), AIO_ALLDONE);
}

Test(cancel, whole_fd_all_cancelled)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct aiocb r[3];
	char buf[3][16];
	for (int i = 0; i < 3; i++) {
		kqt_cb(&r[i], p[0], buf[i], 16, 0);
		cr_assert_eq(aio_read(&r[i]), 0);
	}
	cr_assert_eq(aio_cancel(p[0], NULL), AIO_CANCELED);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(kqt_wait(&r[i]), -1);
	/* Nothing is left waiting: data written now stays in the pipe. */
	cr_assert_eq(write(p[1], "abc", 3), 3);
	usleep(100000);
	char back[8];
	cr_assert_eq(read(p[0], back, sizeof back), 3);
}

Test(cancel, stream_queue_cancel_keeps_order_of_the_rest)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct aiocb r[3];
	char buf[3][2];
	for (int i = 0; i < 3; i++) {
		kqt_cb(&r[i], p[0], buf[i], 2, 0);
		cr_assert_eq(aio_read(&r[i]), 0);
	}
	cr_assert_eq(aio_cancel(p[0], &r[1]), AIO_CANCELED);
	cr_assert_eq(write(p[1], "aabb", 4), 4);
	cr_assert_eq(kqt_wait(&r[0]), 2);
	cr_assert_eq(kqt_wait(&r[2]), 2);
	cr_assert(!memcmp(buf[0], "aa", 2) && !memcmp(buf[2], "bb", 2));
	cr_assert_eq(kqt_wait(&r[1]), -1);
}

Test(cancel, started_stream_write_is_not_cancelled)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	size_t n = 1 << 20;
	char *big = malloc(n);
	kqt_fill(big, 0, n);
	struct aiocb w;
	kqt_cb(&w, p[1], big, n, 0);
	cr_assert_eq(aio_write(&w), 0);
	/* Once the pipe is full part of the write has gone: it must finish. */
	int avail = 0;
	cr_assert(kqt_eventually((ioctl(p[0], FIONREAD, &avail), avail > 0), 5000));
	cr_assert_eq(aio_cancel(p[1], &w), AIO_NOTCANCELED);
	char *back = malloc(n);
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(p[0], back + got, n - got);
		cr_assert(r > 0);
		got += (size_t)r;
	}
	cr_assert_eq(kqt_wait(&w), (ssize_t)n);
	cr_assert(kqt_check(back, 0, n));
}

Test(cancel, errors)
{
	struct aiocb cb;
	kqt_cb(&cb, 0, NULL, 0, 0);
	errno = 0;
	cr_assert_eq(aio_cancel(-1, NULL), -1);
	cr_assert_eq(errno, EBADF);
	int fd = kqt_file(100);
	close(fd);
	cr_assert_eq(aio_cancel(fd, NULL), -1);
	cr_assert_eq(errno, EBADF);
	int fd2 = kqt_file(100), fd3 = kqt_file(100);
	kqt_cb(&cb, fd2, NULL, 0, 0);
	cr_assert_eq(aio_cancel(fd3, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_cancel(fd2, &cb), AIO_ALLDONE, "never submitted");
	cr_assert_eq(aio_cancel(fd2, NULL), AIO_ALLDONE, "nothing on the fd");
}

Test(cancel, uring_job_in_flight_is_not_cancelled, .init = kqt_stall_no_inline)
{
	/* io_uring cannot promise to take a request back: kqaio does not try. */
	if (strcmp(kqaio_backend(), "uring"))
		cr_skip_test("backend is %s", kqaio_backend());
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file(1 << 16);
	struct aiocb cb;
	kqt_cb(&cb, fd, s.buf, 4096, 4096);
	cr_assert_eq(aio_read(&cb), 0);
	kqt_stall_wait_blocked(&s);
	cr_assert_eq(aio_cancel(fd, &cb), AIO_NOTCANCELED);
	cr_assert_eq(aio_cancel(fd, NULL), AIO_NOTCANCELED);
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&cb), 4096);
	cr_assert(kqt_check(s.buf, 4096, 4096));
}
