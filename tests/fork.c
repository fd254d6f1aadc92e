/* fork() with AIO in flight: the child inherits no jobs (the parent's aiocbs name none there),
 * starts afresh with zeroed counters and working AIO, and the parent's jobs finish normally.
 * Criterion asserts do not work in a forked child: children report through their exit code. */
#include "kqt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(fork, .timeout = 30);

/* In the child: on failure, say where and exit with a non-zero code. */
#define CHILD_CHECK(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child %d: %s:%d: %s (errno %s)\n", (int)getpid(),         \
				__FILE__, __LINE__, #cond, strerror(errno));                       \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Child-side wait for cb, with a deadline; returns aio_return's value. */
static ssize_t child_wait(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	for (int i = 0; i < 1000 && aio_error(cb) == EINPROGRESS; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		aio_suspend(l, 1, &ts);
	}
	CHILD_CHECK(aio_error(cb) != EINPROGRESS);
	return aio_return(cb);
}

/* Parent side: the child must exit 0. */
static void reap_child(pid_t pid)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
	cr_assert(WIFEXITED(st), "child killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_eq(WEXITSTATUS(st), 0, "child failed (see its message above)");
}

static ssize_t wait_secs(struct aiocb *cb, int secs)
{
	const struct aiocb *l[1] = {cb};
	for (int i = 0; i < secs * 100 && aio_error(cb) == EINPROGRESS; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		aio_suspend(l, 1, &ts);
	}
	cr_assert_neq(aio_error(cb), EINPROGRESS, "job still in progress after %d s", secs);
	return aio_return(cb);
}

/* Starts the library's threads before a fork (one worker, kept for a minute, the
 * stream poller, and the copier that takes deep queues of tmpfs reads) so that no thread is being
 * created at the moment of fork(): a thread half-started at fork time can wedge a sanitizer
 * runtime's locks in the child, which is not what these tests are about. Jobs queued after this are
 * served by that one worker, so several stay in flight across the fork. */
static void start_threads(int fd)
{
	struct aioinit init = {.aio_threads = 1, .aio_idle_time = 60};
	aio_init(&init);
	char buf[64];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_secs(&cb, 10), (ssize_t)sizeof buf);
	struct aiocb deep[8];
	for (int i = 0; i < 8; i++) {
		kqt_cb(&deep[i], fd, buf, sizeof buf, 0);
		cr_assert_eq(aio_read(&deep[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		cr_assert_eq(wait_secs(&deep[i], 10), (ssize_t)sizeof buf);
	/* The copier names itself once it runs. */
	for (int ms = 0; ms < 2000 && kqt_count_threads("kqaio-copy") < 1; ms++)
		usleep(1000);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], "w", 1), 1);
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_secs(&cb, 10), 1);
	close(p[0]);
	close(p[1]);
}

/* The child checks that cb names no job of its own. */
static void child_sees_no_job(struct aiocb *cb)
{
	errno = 0;
	CHILD_CHECK(aio_error(cb) == -1 && errno == EINVAL);
	errno = 0;
	CHILD_CHECK(aio_return(cb) == -1 && errno == EINVAL);
	/* Nothing outstanding to cancel, nothing to wait for. */
	CHILD_CHECK(aio_cancel(cb->aio_fildes, cb) == AIO_ALLDONE);
	const struct aiocb *l[1] = {cb};
	struct timespec ts = {5, 0};
	CHILD_CHECK(aio_suspend(l, 1, &ts) == 0);
}

Test(fork, child_sees_parents_aiocbs_as_naming_no_job)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	int fd = kqt_file(1 << 16);
	start_threads(fd);
	char pbuf[16], fbuf[4096], dbuf[4096];
	struct aiocb pending, done, reaped;
	/* One waiting on a pipe, one finished but unreaped, one reaped. */
	kqt_cb(&pending, p[0], pbuf, sizeof pbuf, 0);
	cr_assert_eq(aio_read(&pending), 0);
	kqt_cb(&done, fd, fbuf, sizeof fbuf, 4096);
	cr_assert_eq(aio_read(&done), 0);
	cr_assert(kqt_eventually(aio_error(&done) != EINPROGRESS, 10000));
	kqt_cb(&reaped, fd, dbuf, sizeof dbuf, 0);
	cr_assert_eq(aio_read(&reaped), 0);
	cr_assert_eq(kqt_wait(&reaped), 4096);
	/* And a failed submission, whose errno the aiocb records. */
	struct aiocb bad;
	kqt_cb(&bad, -1, fbuf, 1, 0);
	cr_assert_eq(aio_read(&bad), -1);
	cr_assert_eq(aio_error(&bad), EBADF);

	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(20);
		child_sees_no_job(&pending);
		child_sees_no_job(&done);
		child_sees_no_job(&reaped);
		errno = 0;
		CHILD_CHECK(aio_error(&bad) == -1 && errno == EINVAL);
		/* aio_cancel(fd, NULL) finds nothing of the parent's either. */
		CHILD_CHECK(aio_cancel(p[0], NULL) == AIO_ALLDONE);
		/* aio_waitcomplete has nothing to take: the parent's done job is not ours. */
		struct aiocb *got = (struct aiocb *)1;
		struct timespec zero = {0, 0};
		CHILD_CHECK(aio_waitcomplete(&got, &zero) == -1 && errno == EAGAIN);
		CHILD_CHECK(got == NULL);
		_exit(0);
	}
	reap_child(pid);
	/* The parent's jobs are untouched by what the child did. */
	cr_assert_eq(aio_error(&pending), EINPROGRESS);
	cr_assert_eq(aio_error(&done), 0);
	cr_assert_eq(aio_error(&bad), EBADF);
	cr_assert_eq(write(p[1], "parent", 6), 6);
	cr_assert_eq(wait_secs(&pending, 10), 6);
	cr_assert(!memcmp(pbuf, "parent", 6));
	cr_assert_eq(aio_return(&done), 4096);
	cr_assert(kqt_check(fbuf, 4096, 4096));
}

Test(fork, child_uses_aio_afresh)
{
	int fd = kqt_file(1 << 20);
	start_threads(fd);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char pbuf[16];
	struct aiocb pending;
	kqt_cb(&pending, p[0], pbuf, sizeof pbuf, 0);
	cr_assert_eq(aio_read(&pending), 0);
	/* Jobs keep finishing around the fork. */
	enum { N = 32 };
	static struct aiocb cbs[N];
	static char bufs[N][8192];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 8192, (off_t)i * 8192);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(20);
		/* Reads of the file, reusing the parent's aiocbs (they name no job here). */
		char buf[8192];
		for (int i = 0; i < 4; i++) {
			kqt_cb(&cbs[i], fd, buf, sizeof buf, 100000 + i);
			CHILD_CHECK(aio_read(&cbs[i]) == 0);
			CHILD_CHECK(child_wait(&cbs[i]) == (ssize_t)sizeof buf);
			CHILD_CHECK(kqt_check(buf, 100000 + i, sizeof buf));
		}
		/* A write and a read-back on a file of its own. */
		int cfd = kqt_file(0);
		static char out[50000];
		kqt_fill(out, 3, sizeof out);
		struct aiocb w;
		kqt_cb(&w, cfd, out, sizeof out, 3);
		CHILD_CHECK(aio_write(&w) == 0);
		CHILD_CHECK(child_wait(&w) == (ssize_t)sizeof out);
		static char back[50000];
		CHILD_CHECK(pread(cfd, back, sizeof back, 3) == (ssize_t)sizeof back);
		CHILD_CHECK(kqt_check(back, 3, sizeof back));
		/* A stream read of its own, waiting for data, and the parent's pipe read
		 * reused as the child's own on a fresh pipe. */
		int q[2];
		CHILD_CHECK(pipe(q) == 0);
		char qbuf[16];
		kqt_cb(&pending, q[0], qbuf, sizeof qbuf, 0);
		CHILD_CHECK(aio_read(&pending) == 0);
		usleep(20 * 1000);
		CHILD_CHECK(aio_error(&pending) == EINPROGRESS);
		CHILD_CHECK(write(q[1], "child", 5) == 5);
		CHILD_CHECK(child_wait(&pending) == 5);
		CHILD_CHECK(!memcmp(qbuf, "child", 5));
		/* aio_waitcomplete in the child sees only the child's jobs. */
		struct aiocb r;
		kqt_cb(&r, fd, buf, 100, 0);
		CHILD_CHECK(aio_read(&r) == 0);
		struct aiocb *got;
		struct timespec ts = {10, 0};
		CHILD_CHECK(aio_waitcomplete(&got, &ts) == 100);
		CHILD_CHECK(got == &r);
		struct timespec zero = {0, 0};
		CHILD_CHECK(aio_waitcomplete(&got, &zero) == -1 && errno == EAGAIN);
		_exit(0);
	}
	reap_child(pid);
	/* The parent's in-flight jobs completed normally. */
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_secs(&cbs[i], 10), 8192, "parent job %d", i);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192, 8192), "parent job %d data", i);
	}
	cr_assert_eq(aio_error(&pending), EINPROGRESS);
	cr_assert_eq(write(p[1], "late", 4), 4);
	cr_assert_eq(wait_secs(&pending, 10), 4);
	cr_assert(!memcmp(pbuf, "late", 4));
}

Test(fork, stats_start_at_zero_in_the_child)
{
	int fd = kqt_file(1 << 16);
	start_threads(fd);
	char buf[1000];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 1000);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct aiocb pending;
	kqt_cb(&pending, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&pending), 0);
	struct kqaio_stats before;
	cr_assert_eq(kqaio_get_stats(&before, sizeof before), 0);
	cr_assert_geq(before.submitted, 4);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		alarm(20);
		struct kqaio_stats s;
		CHILD_CHECK(kqaio_get_stats(&s, sizeof s) == 0);
		CHILD_CHECK(s.submitted == 0);
		CHILD_CHECK(s.completed == 0);
		CHILD_CHECK(s.bytes_read == 0);
		char cbuf[500];
		struct aiocb c;
		kqt_cb(&c, fd, cbuf, sizeof cbuf, 0);
		CHILD_CHECK(aio_read(&c) == 0);
		CHILD_CHECK(child_wait(&c) == 500);
		CHILD_CHECK(kqaio_get_stats(&s, sizeof s) == 0);
		CHILD_CHECK(s.submitted == 1);
		CHILD_CHECK(s.completed == 1);
		CHILD_CHECK(s.bytes_read == 500);
		_exit(0);
	}
	reap_child(pid);
	/* The child's work does not count in the parent. */
	struct kqaio_stats after;
	cr_assert_eq(kqaio_get_stats(&after, sizeof after), 0);
	cr_assert_eq(after.submitted, before.submitted);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(wait_secs(&pending, 10), 1);
}

struct churn {
	int fd, stop, bad;
	long done;
};

static void *churner(void *arg)
{
	struct churn *c = arg;
	char buf[4096];
	struct aiocb cb;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		kqt_cb(&cb, c->fd, buf, sizeof buf, 8192);
		if (aio_read(&cb) != 0) {
			__atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		const struct aiocb *l[1] = {&cb};
		while (aio_error(&cb) == EINPROGRESS)
			aio_suspend(l, 1, NULL);
		if (aio_return(&cb) != (ssize_t)sizeof buf || !kqt_check(buf, 8192, sizeof buf)) {
			__atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		__atomic_add_fetch(&c->done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(fork, fork_while_jobs_complete_in_other_threads)
{
	/* Forks land at any point of submission and completion in two busy threads;
	 * every child must still find AIO usable (no lock left held). */
	int fd = kqt_file(1 << 16);
	start_threads(fd);
	struct churn c = {fd, 0, 0, 0};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churner, &c), 0);
	/* Both churners are running before the first fork. */
	cr_assert(kqt_eventually(__atomic_load_n(&c.done, __ATOMIC_RELAXED) >= 20, 10000));
	for (int k = 0; k < 20; k++) {
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			alarm(10);
			char buf[300];
			struct aiocb cb;
			kqt_cb(&cb, fd, buf, sizeof buf, 1000);
			CHILD_CHECK(aio_read(&cb) == 0);
			CHILD_CHECK(child_wait(&cb) == (ssize_t)sizeof buf);
			CHILD_CHECK(kqt_check(buf, 1000, sizeof buf));
			struct kqaio_stats s;
			CHILD_CHECK(kqaio_get_stats(&s, sizeof s) == 0 && s.submitted == 1);
			_exit(0);
		}
		reap_child(pid);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(c.bad, 0, "a parent thread's job failed around the forks");
	cr_assert_gt(c.done, 0);
}
