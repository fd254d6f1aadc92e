/* Reuse and waiting: one aiocb submitted again and again (reaped or not), and
 * aio_waitcomplete (oldest first, reaps, polls, times out) and aio_suspend
 * (any done, skipped entries, time-outs, bad arguments). */
#include "kqt.h"

#include <pthread.h>
#include <signal.h>

TestSuite(reuse, .timeout = 30);

/* Waits for cb without reaping it. */
static void wait_done(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == 0 || errno == EINTR, "aio_suspend: %s", strerror(errno));
	}
}

/* Nothing left to reap. */
static void expect_nothing_done(const char *what)
{
	struct aiocb *got = (struct aiocb *)1;
	struct timespec poll = {0, 0};
	errno = 0;
	ssize_t r = aio_waitcomplete(&got, &poll);
	cr_assert_eq(r, -1, "%s: aio_waitcomplete returned %zd for %p", what, r, (void *)got);
	cr_assert_eq(errno, EAGAIN, "%s: %s", what, strerror(errno));
	cr_assert_null(got, "%s", what);
}

Test(reuse, same_aiocb_a_thousand_times)
{
	int fd = kqt_file(1 << 16);
	char buf[256];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, 0, 0);
	for (int i = 0; i < 1000; i++) {
		/* Only the request fields change; our reserved bytes stay as they were. */
		size_t n = 1 + (size_t)(i * 37) % sizeof buf;
		off_t off = (off_t)(i * 61) % 60000;
		cb.aio_nbytes = n;
		cb.aio_offset = off;
		if (i % 3 == 2) {
			kqt_fill(buf, off, n);
			cr_assert_eq(aio_write(&cb), 0, "round %d: %s", i, strerror(errno));
			cr_assert_eq(kqt_wait(&cb), (ssize_t)n, "round %d", i);
		} else {
			memset(buf, 0, sizeof buf);
			cr_assert_eq(aio_read(&cb), 0, "round %d: %s", i, strerror(errno));
			cr_assert_eq(kqt_wait(&cb), (ssize_t)n, "round %d", i);
			cr_assert(kqt_check(buf, off, n), "round %d", i);
		}
		errno = 0;
		cr_assert_eq(aio_return(&cb), -1, "round %d: reaped twice", i);
		cr_assert_eq(errno, EINVAL);
	}
	expect_nothing_done("after the last round");
}

Test(reuse, finished_but_unreaped_aiocb_can_be_resubmitted)
{
	/* Few jobs allowed, so unreaped old jobs that lingered would run us out. */
	setenv("KQAIO_MAX_JOBS", "8", 1);
	int fd = kqt_file(1 << 16);
	char buf[512];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, 100, 0);
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);
	cr_assert_eq(aio_error(&cb), 0);
	for (int i = 1; i <= 100; i++) {
		/* As many glibc programs do: aio_error says done, and no aio_return. */
		cb.aio_offset = i * 300;
		cb.aio_nbytes = 100 + (size_t)i;
		memset(buf, 0, sizeof buf);
		cr_assert_eq(aio_read(&cb), 0, "round %d: %s", i, strerror(errno));
		wait_done(&cb);
		cr_assert_eq(aio_error(&cb), 0, "round %d", i);
		cr_assert(kqt_check(buf, i * 300, 100 + (size_t)i), "round %d", i);
	}
	/* The last job behaves normally: its result, reaped once. */
	cr_assert_eq(aio_return(&cb), 200);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	/* The replaced jobs left nothing behind. */
	expect_nothing_done("after resubmitting unreaped aiocbs");

	/* An unreaped failed job too: the new one starts clean. */
	kqt_cb(&cb, fd, (void *)1, 100, 0);
	cr_assert_eq(aio_read(&cb), 0);
	wait_done(&cb);
	cr_assert_eq(aio_error(&cb), EFAULT);
	cb.aio_buf = buf;
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 100);
	cr_assert(kqt_check(buf, 0, 100));
	/* And one that was refused at submission. */
	cb.aio_fildes = -1;
	cr_assert_eq(aio_read(&cb), -1);
	cr_assert_eq(aio_error(&cb), EBADF);
	cb.aio_fildes = fd;
	cr_assert_eq(aio_read(&cb), 0, "%s", strerror(errno));
	cr_assert_eq(kqt_wait(&cb), 100);
	expect_nothing_done("at the end");
}

Test(reuse, waitcomplete_polls_and_times_out)
{
	expect_nothing_done("nothing submitted");
	/* With a job outstanding that will not finish. */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[8];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	expect_nothing_done("a job in progress");
	struct aiocb *got = (struct aiocb *)1;
	struct timespec ts = {0, 50 * 1000000L};
	errno = 0;
	cr_assert_eq(aio_waitcomplete(&got, &ts), -1);
	cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
	cr_assert_null(got);
	/* A refused submission is no job to wait for. */
	struct aiocb refused;
	kqt_cb(&refused, -1, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&refused), -1);
	expect_nothing_done("a refused submission");

	cr_assert_eq(write(p[1], "ok", 2), 2);
	ts = (struct timespec){10, 0};
	cr_assert_eq(aio_waitcomplete(&got, &ts), 2, "%s", strerror(errno));
	cr_assert_eq(got, &cb);
	cr_assert(!memcmp(buf, "ok", 2));
}

Test(reuse, waitcomplete_takes_the_oldest_completed_first)
{
	int pa[2], pb[2];
	cr_assert_eq(pipe(pa), 0);
	cr_assert_eq(pipe(pb), 0);
	char ba[8], bb[8];
	struct aiocb a, b;
	kqt_cb(&a, pa[0], ba, sizeof ba, 0);
	kqt_cb(&b, pb[0], bb, sizeof bb, 0);
	/* b is submitted first, a completes first. */
	cr_assert_eq(aio_read(&b), 0);
	cr_assert_eq(aio_read(&a), 0);
	cr_assert_eq(write(pa[1], "A", 1), 1);
	wait_done(&a);
	cr_assert_eq(aio_error(&b), EINPROGRESS);
	cr_assert_eq(write(pb[1], "BB", 2), 2);
	wait_done(&b);

	struct aiocb *got = NULL;
	struct timespec poll = {0, 0};
	cr_assert_eq(aio_waitcomplete(&got, &poll), 1, "%s", strerror(errno));
	cr_assert_eq(got, &a, "not the oldest completed job");
	errno = 0;
	cr_assert_eq(aio_return(&a), -1, "aio_waitcomplete did not reap it");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_waitcomplete(&got, NULL), 2, "%s", strerror(errno));
	cr_assert_eq(got, &b);
	errno = 0;
	cr_assert_eq(aio_return(&b), -1, "aio_waitcomplete did not reap it");
	cr_assert_eq(errno, EINVAL);
	expect_nothing_done("after both");

	/* Regular files as well: eight completions, each returned once, in completion order. */
	int fd = kqt_file(1 << 16);
	enum { N = 8 };
	struct aiocb cbs[N];
	char bufs[N][100];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 100, i * 100);
		cr_assert_eq(aio_read(&cbs[i]), 0);
		wait_done(&cbs[i]); /* so each completes before the next */
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_waitcomplete(&got, &poll), 100, "%s", strerror(errno));
		cr_assert_eq(got, &cbs[i], "got #%d, want #%d", (int)(got - cbs), i);
		cr_assert(kqt_check(bufs[i], i * 100, 100));
	}
	expect_nothing_done("after eight");
}

Test(reuse, waitcomplete_reports_a_failed_job)
{
	int fd = kqt_file(8192);
	struct aiocb cb;
	kqt_cb(&cb, fd, (void *)1, 4096, 0);
	cr_assert_eq(aio_read(&cb), 0);
	struct aiocb *got = NULL;
	struct timespec ts = {10, 0};
	errno = 0;
	cr_assert_eq(aio_waitcomplete(&got, &ts), -1);
	cr_assert_eq(errno, EFAULT, "%s", strerror(errno));
	cr_assert_eq(got, &cb, "*cbp must be set for a failed job");
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1, "aio_waitcomplete did not reap it");
	cr_assert_eq(errno, EINVAL);
	expect_nothing_done("after the failed job");
}

static int late_fd;

static void *write_later(void *arg)
{
	(void)arg;
	usleep(100000);
	if (write(late_fd, "late", 4) != 4)
		abort();
	return NULL;
}

Test(reuse, suspend_returns_when_any_listed_job_is_done)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	int fd = kqt_file(4096);
	char pbuf[8], fbuf[100];
	struct aiocb slow, fast, never;
	kqt_cb(&slow, p[0], pbuf, sizeof pbuf, 0);
	kqt_cb(&fast, fd, fbuf, sizeof fbuf, 0);
	memset(&never, 0, sizeof never);
	cr_assert_eq(aio_read(&slow), 0);
	cr_assert_eq(aio_read(&fast), 0);
	wait_done(&fast);
	const struct aiocb *l[4] = {NULL, &slow, &never, &fast};
	struct timespec ts = {10, 0};
	cr_assert_eq(aio_suspend(l, 4, &ts), 0, "%s", strerror(errno));
	cr_assert_eq(aio_suspend(l, 4, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(aio_return(&fast), 100);

	/* Only the slow one is outstanding now (fast is reaped: skipped). */
	struct timespec shortwait = {0, 50 * 1000000L};
	errno = 0;
	cr_assert_eq(aio_suspend(l, 4, &shortwait), -1, "no listed job is done");
	cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
	struct timespec zero = {0, 0};
	errno = 0;
	cr_assert_eq(aio_suspend(l, 4, &zero), -1);
	cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));

	/* It wakes when the job finishes while it sleeps. */
	late_fd = p[1];
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, write_later, NULL), 0);
	cr_assert_eq(aio_suspend(l, 4, &ts), 0, "%s", strerror(errno));
	cr_assert_neq(aio_error(&slow), EINPROGRESS);
	pthread_join(t, NULL);
	cr_assert_eq(aio_return(&slow), 4);
}

Test(reuse, suspend_skips_nulls_and_aiocbs_without_jobs)
{
	int fd = kqt_file(4096);
	char buf[16];
	struct aiocb never, reaped, refused;
	memset(&never, 0, sizeof never);
	kqt_cb(&refused, -1, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&refused), -1);
	kqt_cb(&reaped, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&reaped), 0);
	cr_assert_eq(kqt_wait(&reaped), 16);
	const struct aiocb *l[5] = {NULL, &never, NULL, &reaped, &refused};
	/* Nothing outstanding: returns 0 at once rather than waiting out the time. */
	struct timespec ts = {10, 0};
	cr_assert_eq(aio_suspend(l, 5, &ts), 0, "%s", strerror(errno));
	cr_assert_eq(aio_suspend(l, 5, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(aio_suspend(l, 0, NULL), 0, "%s", strerror(errno));
}

Test(reuse, suspend_bad_arguments_are_einval)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[8];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	const struct aiocb *l[1] = {&cb};
	errno = 0;
	cr_assert_eq(aio_suspend(l, -1, NULL), -1);
	cr_assert_eq(errno, EINVAL, "%s", strerror(errno));
	static const struct timespec bad[] = {{0, 2000000000L}, {0, 1000000000L}, {0, -1}, {1, -5}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aio_suspend(l, 1, &bad[i]), -1, "timeout {%ld, %ld}",
			     (long)bad[i].tv_sec, bad[i].tv_nsec);
		cr_assert_eq(errno, EINVAL, "timeout {%ld, %ld}: %s", (long)bad[i].tv_sec,
			     bad[i].tv_nsec, strerror(errno));
	}
	/* The job is untouched. */
	cr_assert_eq(aio_error(&cb), EINPROGRESS);
	cr_assert_eq(write(p[1], "z", 1), 1);
	cr_assert_eq(kqt_wait(&cb), 1);
}
