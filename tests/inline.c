/* Reads of tmpfs done by their submitter (KQAIO_INLINE): a read up to the
 * limit is over when aio_read returns, one above it is not, a list of them
 * still reports once, and KQAIO_INLINE=0 hands them all to the backend; with
 * many outstanding, the copier thread does them (KQAIO_COPIER), and a thread
 * that would wait does the queued ones. A buffer that stalls on first touch
 * (userfaultfd) shows which thread copies. */
#include "kqt.h"
#include "stall.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>

TestSuite(inline, .timeout = 30);

struct submitter {
	struct aiocb *cb;
	int ret, returned;
};

static void *submit_read(void *arg)
{
	struct submitter *s = arg;
	s->ret = aio_read(s->cb);
	__atomic_store_n(&s->returned, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Submits a read of len bytes into a stalled buffer from another thread, and
 * reports whether that thread was held inside aio_read while the buffer was. */
static int held_in_aio_read_of(int fd, size_t len)
{
	struct kqt_stall st;
	kqt_stall_init(&st, len);
	struct aiocb cb;
	kqt_cb(&cb, fd, st.buf, len, 0);
	struct submitter s = {.cb = &cb};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, submit_read, &s), 0);
	kqt_stall_wait_blocked(&st); /* someone, somewhere, is copying into it */
	usleep(100000);
	int held = !__atomic_load_n(&s.returned, __ATOMIC_ACQUIRE);
	kqt_stall_release(&st);
	pthread_join(t, NULL);
	cr_assert_eq(s.ret, 0);
	cr_assert_eq(kqt_wait(&cb), (ssize_t)len);
	close(fd);
	return held;
}

static int held_in_aio_read(size_t len)
{
	return held_in_aio_read_of(kqt_file(len), len);
}

Test(inline, a_small_read_of_tmpfs_is_done_by_its_submitter)
{
	cr_assert(held_in_aio_read(4096), "aio_read returned before the copy");
}

Test(inline, a_read_above_the_limit_is_not)
{
	cr_assert(!held_in_aio_read(128 * 1024), "a 128 KiB read held its submitter");
}

/* io_uring copies cached pages inside io_uring_enter: a large buffered read
 * goes to its workers instead, so aio_read and lio_listio(LIO_NOWAIT) return
 * before it is done (LTP aio_suspend/9-1 waited for one in flight). */
Test(inline, a_large_cached_read_of_a_disk_file_leaves_its_submitter)
{
	size_t len = 1 << 20;
	int fd = kqt_file_in(kqt_disk_dir(), len); /* just written: in the page cache */
	cr_assert(!held_in_aio_read_of(fd, len), "a 1 MiB cached read held its submitter");
}

Test(inline, kqaio_inline_0_turns_it_off, .init = kqt_stall_no_inline)
{
	cr_assert(!held_in_aio_read(4096), "KQAIO_INLINE=0 still copied in aio_read");
}

/* Done before aio_read returns: the result is there at once, with no wait. */
Test(inline, the_result_is_there_when_aio_read_returns)
{
	int fd = kqt_file(1 << 16);
	char buf[4096];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 8192);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_error(&cb), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	cr_assert(kqt_check(buf, 8192, sizeof buf));
	/* Past the end: the bytes that are there, then nothing. */
	kqt_cb(&cb, fd, buf, sizeof buf, (1 << 16) - 100);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_error(&cb), 0);
	cr_assert_eq(aio_return(&cb), 100);
	kqt_cb(&cb, fd, buf, sizeof buf, 1 << 20);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_return(&cb), 0);
	close(fd);
}

/* A list of inline reads and one that cannot finish yet (a pipe): every
 * entry's signal and the list's, each once, and the list's only after the
 * pipe's. The signal stays blocked and is taken with sigtimedwait, so each
 * queued one counts (a handler under ThreadSanitizer would merge them). */
Test(inline, a_list_of_inline_reads_notifies_each_once)
{
	int sig = SIGRTMIN + 2;
	kqt_block_sig(sig);
	enum { N = 40, LIST = 1000 }; /* more than one batch of completions */
	int fd = kqt_file(1 << 16), p[2];
	cr_assert_eq(pipe(p), 0);
	static char bufs[N][512], pbuf[8];
	struct aiocb cbs[N + 1];
	struct aiocb *list[N + 1];
	for (int i = 0; i <= N; i++) {
		if (i < N)
			kqt_cb(&cbs[i], fd, bufs[i], sizeof bufs[i], i * 1000);
		else
			kqt_cb(&cbs[i], p[0], pbuf, sizeof pbuf, 0);
		cbs[i].aio_lio_opcode = LIO_READ;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cbs[i].aio_sigevent.sigev_signo = sig;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		list[i] = &cbs[i];
	}
	struct sigevent lsev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = sig};
	lsev.sigev_value.sival_int = LIST;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, N + 1, &lsev), 0);
	int seen[N + 1] = {0};
	siginfo_t si;
	for (int k = 0; k < N; k++) {
		cr_assert(kqt_take_sig(sig, &si, 5000), "%d signals of %d", k, N);
		int v = si.si_value.sival_int;
		cr_assert(v >= 0 && v < N, "signal for %d before the pipe was fed", v);
		cr_assert_eq(seen[v]++, 0, "entry %d told twice", v);
	}
	cr_assert_not(kqt_take_sig(sig, &si, 100), "signal for %d", si.si_value.sival_int);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_return(&cbs[i]), (ssize_t)sizeof bufs[i], "entry %d", i);
		cr_assert(kqt_check(bufs[i], i * 1000, sizeof bufs[i]), "entry %d", i);
	}
	cr_assert_eq(write(p[1], "x", 1), 1);
	int list_seen = 0;
	for (int k = 0; k < 2; k++) {
		cr_assert(kqt_take_sig(sig, &si, 5000), "pipe entry and list: %d of 2", k);
		int v = si.si_value.sival_int;
		cr_assert(v == N || v == LIST, "signal for %d", v);
		cr_assert_eq(v == LIST ? list_seen++ : seen[N]++, 0, "%d told twice", v);
	}
	cr_assert_not(kqt_take_sig(sig, &si, 100), "signal for %d", si.si_value.sival_int);
	cr_assert_eq(kqt_wait(&cbs[N]), 1);
	close(p[0]);
	close(p[1]);
	close(fd);
}

static void *read_with_cancel_pending(void *arg)
{
	struct aiocb *cb = arg;
	pthread_cancel(pthread_self()); /* acts at the first cancellation point */
	aio_read(cb);
	pthread_testcancel();
	return NULL;
}

/* preadv is a cancellation point: a cancel that acts while aio_read does an
 * inline read must not leave the job unfinished. */
Test(inline, a_thread_cancelled_in_aio_read_leaves_no_job_behind)
{
	int fd = kqt_file(1 << 16);
	static char buf[4096];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 4096);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, read_with_cancel_pending, &cb), 0);
	void *r;
	pthread_join(t, &r);
	cr_assert_eq(r, PTHREAD_CANCELED);
	cr_assert(kqt_eventually(aio_error(&cb) != EINPROGRESS, 5000), "the job never ended");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	cr_assert(kqt_check(buf, 4096, sizeof buf));
	close(fd);
}

/* Two reads on one thread (the memory is per thread): a tmpfs file, then,
 * once the main thread has remounted, a file into a stalled buffer. */
struct remount {
	int fd, step; /* 1: first read done; 2: second fd ready; 3: second submitted */
	char *buf;
	struct aiocb first, second;
};

static void *two_reads(void *arg)
{
	struct remount *m = arg;
	static char small[64];
	kqt_cb(&m->first, m->fd, small, sizeof small, 0);
	if (aio_read(&m->first) == 0 && aio_error(&m->first) == 0)
		aio_return(&m->first);
	__atomic_store_n(&m->step, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&m->step, __ATOMIC_ACQUIRE) != 2)
		usleep(1000);
	kqt_cb(&m->second, m->fd, m->buf, 4096, 0);
	aio_read(&m->second);
	__atomic_store_n(&m->step, 3, __ATOMIC_RELEASE);
	return NULL;
}

/* Which file system is memory is remembered per mount, by a mount id that is
 * never reused: a device number is, once a tmpfs is unmounted. A read of a
 * file on whatever is mounted next (proc here, often on the same device
 * number) must go to the backend. Needs root for a mount namespace. */
Test(inline, a_new_mount_on_a_reused_device_number_is_asked_again)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		cr_skip_test("no mount namespace: %s", strerror(errno));
	char dir[] = "/tmp/kqaio-mnt-XXXXXX", path[64];
	cr_assert(mkdtemp(dir));
	cr_assert_eq(mount("kqaio", dir, "tmpfs", 0, "size=1m"), 0, "%s", strerror(errno));
	snprintf(path, sizeof path, "%s/f", dir);
	struct remount m = {.fd = open(path, O_RDWR | O_CREAT, 0600)};
	cr_assert(m.fd >= 0);
	cr_assert_eq(pwrite(m.fd, "data", 4, 0), 4);
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	m.buf = s.buf;
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, two_reads, &m), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&m.step, __ATOMIC_ACQUIRE) == 1, 5000));
	close(m.fd);
	struct stat st;
	cr_assert_eq(stat(dir, &st), 0);
	dev_t tmpfs_dev = st.st_dev;
	cr_assert_eq(umount(dir), 0, "%s", strerror(errno));
	cr_assert_eq(mount("proc", dir, "proc", 0, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(stat(dir, &st), 0);
	cr_log_info("tmpfs was on %u:%u, proc is on %u:%u", major(tmpfs_dev), minor(tmpfs_dev),
		    major(st.st_dev), minor(st.st_dev));
	snprintf(path, sizeof path, "%s/self/stat", dir);
	m.fd = open(path, O_RDONLY);
	cr_assert(m.fd >= 0);
	__atomic_store_n(&m.step, 2, __ATOMIC_RELEASE);
	kqt_stall_wait_blocked(&s);
	usleep(100000);
	int held = __atomic_load_n(&m.step, __ATOMIC_ACQUIRE) != 3;
	kqt_stall_release(&s);
	pthread_join(t, NULL);
	cr_assert_not(held, "a read of proc was done inline");
	cr_assert_gt(kqt_wait(&m.second), 0);
	close(m.fd);
	umount(dir);
	rmdir(dir);
}

/* A program that keeps many reads outstanding (fio at iodepth 32) has them
 * copied beside it: DEEP finished, unreaped reads make the next ones deep. */
enum { DEEP_N = 8 };
struct deep {
	int fd;
	char buf[DEEP_N][64];
	struct aiocb cb[DEEP_N];
};

static void deep_begin(struct deep *d)
{
	d->fd = kqt_file(4096);
	for (int i = 0; i < DEEP_N; i++) {
		kqt_cb(&d->cb[i], d->fd, d->buf[i], sizeof d->buf[i], 64 * i);
		cr_assert_eq(aio_read(&d->cb[i]), 0);
	}
	for (int i = 0; i < DEEP_N; i++) {
		const struct aiocb *l[1] = {&d->cb[i]};
		while (aio_error(&d->cb[i]) == EINPROGRESS)
			aio_suspend(l, 1, NULL);
	}
}

static void deep_end(struct deep *d)
{
	for (int i = 0; i < DEEP_N; i++) {
		cr_assert_eq(aio_return(&d->cb[i]), 64);
		cr_assert(kqt_check(d->buf[i], 64 * i, 64));
	}
	close(d->fd);
}

Test(inline, with_many_outstanding_the_copier_does_it)
{
	struct deep d;
	deep_begin(&d);
	cr_assert(!held_in_aio_read(4096), "aio_read copied with %d reads outstanding", DEEP_N);
	deep_end(&d);
}

static void no_copier(void)
{
	setenv("KQAIO_COPIER", "0", 1);
}

Test(inline, kqaio_copier_0_keeps_it_on_the_submitter, .init = no_copier)
{
	struct deep d;
	deep_begin(&d);
	cr_assert(held_in_aio_read(4096), "KQAIO_COPIER=0 still handed the copy over");
	deep_end(&d);
}

/* The copier held on a stalled buffer; reads queued behind it. */
struct behind {
	struct deep d;
	struct kqt_stall st;
	struct aiocb stalled;
};

static void stall_the_copier(struct behind *b)
{
	deep_begin(&b->d);
	kqt_stall_init(&b->st, 4096);
	int fd = kqt_file(4096);
	kqt_cb(&b->stalled, fd, b->st.buf, 4096, 0);
	cr_assert_eq(aio_read(&b->stalled), 0);
	kqt_stall_wait_blocked(&b->st);
}

static void release_the_copier(struct behind *b)
{
	kqt_stall_release(&b->st);
	cr_assert_eq(kqt_wait(&b->stalled), 4096);
	close(b->stalled.aio_fildes);
	deep_end(&b->d);
}

/* Reads the copier runs after aio_read returned still read the file their fd
 * named then, though the number names another file by the time. */
Test(inline, a_read_left_to_the_copier_keeps_its_file)
{
	struct behind b;
	stall_the_copier(&b);
	enum { N = 32 };
	static char buf[N][64];
	struct aiocb cb[N];
	int fa = kqt_file(4096);
	for (int i = 0; i < N; i++) {
		kqt_cb(&cb[i], fa, buf[i], sizeof buf[i], 64 * i);
		cr_assert_eq(aio_read(&cb[i]), 0);
	}
	cr_assert_eq(aio_error(&cb[0]), EINPROGRESS, "not queued behind the stalled copy");
	close(fa);
	int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	cr_assert(z >= 0);
	if (z != fa) {
		cr_assert_eq(dup2(z, fa), fa);
		close(z);
	}
	release_the_copier(&b);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(kqt_wait(&cb[i]), 64, "read %d: %s", i, strerror(errno));
		cr_assert(kqt_check(buf[i], 64 * i, 64), "read %d has another file's bytes", i);
	}
	close(fa);
}

/* A thread that would wait for a read still queued does it itself. */
Test(inline, a_waiting_thread_does_a_queued_copy)
{
	struct behind b;
	stall_the_copier(&b);
	static char buf[64];
	struct aiocb cb;
	int fd = kqt_file(4096);
	kqt_cb(&cb, fd, buf, sizeof buf, 128);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_error(&cb), EINPROGRESS, "not queued behind the stalled copy");
	const struct aiocb *l[1] = {&cb};
	struct timespec ts = {5, 0};
	cr_assert_eq(aio_suspend(l, 1, &ts), 0, "aio_suspend: %s", strerror(errno));
	cr_assert_eq(aio_error(&b.stalled), EINPROGRESS);
	cr_assert_eq(aio_return(&cb), 64);
	cr_assert(kqt_check(buf, 128, 64));
	close(fd);
	release_the_copier(&b);
}
