/* Errors: every submission errno (doc/behaviour.md "Submission") for aio_read, aio_write,
 * aio_readv, aio_writev, aio_fsync and lio_listio entries, as the call's errno and then
 * through aio_error/aio_return; aio_error/aio_return on aiocbs that name no job;
 * failures at completion (EFAULT, ENOSPC); resubmitting an aiocb still in flight. */
#include "kqt.h"

#include <sys/event.h>

#include <limits.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/uio.h>

TestSuite(errors, .timeout = 30);

/* The ways a request can be submitted; L* are single lio_listio entries. */
enum { R, W, RV, WV, FS, LR, LW, LRV, LWV, NOPS };
static const char *const opname[NOPS] = {
    [R] = "aio_read",	    [W] = "aio_write",	     [RV] = "aio_readv",
    [WV] = "aio_writev",    [FS] = "aio_fsync",	     [LR] = "lio LIO_READ",
    [LW] = "lio LIO_WRITE", [LRV] = "lio LIO_READV", [LWV] = "lio LIO_WRITEV",
};

static int is_lio(int op)
{
	return op >= LR;
}

static int is_vec(int op)
{
	return op == RV || op == WV || op == LRV || op == LWV;
}

static int is_read(int op)
{
	return op == R || op == RV || op == LR || op == LRV;
}

static int is_write(int op)
{
	return op == W || op == WV || op == LW || op == LWV;
}

static char ebuf[64];
static struct iovec eiov[2];

/* A fresh aiocb for op on fd: 16 bytes at offset 0 (one iovec for vectored ops). */
static void prep(struct aiocb *cb, int op, int fd)
{
	kqt_cb(cb, fd, ebuf, 16, 0);
	if (is_vec(op)) {
		eiov[0] = (struct iovec){ebuf, 16};
		cb->aio_iov = eiov;
		cb->aio_iovcnt = 1;
	}
}

static int lio_opcode(int op)
{
	return op == LR ? LIO_READ : op == LW ? LIO_WRITE : op == LRV ? LIO_READV : LIO_WRITEV;
}

static int submit(int op, struct aiocb *cb)
{
	switch (op) {
	case R:
		return aio_read(cb);
	case W:
		return aio_write(cb);
	case RV:
		return aio_readv(cb);
	case WV:
		return aio_writev(cb);
	case FS:
		return aio_fsync(O_SYNC, cb);
	default: {
		cb->aio_lio_opcode = lio_opcode(op);
		struct aiocb *l[1] = {cb};
		return lio_listio(LIO_WAIT, l, 1, NULL);
	}
	}
}

/* The call fails with err (a list with EIO), aio_error then says err, and
 * aio_return says -1/EINVAL because no job was queued. */
static void expect_fail(int op, struct aiocb *cb, int err, const char *what)
{
	errno = 0;
	int r = submit(op, cb);
	int e = errno;
	cr_assert_eq(r, -1, "%s, %s: returned %d, want -1", opname[op], what, r);
	cr_assert_eq(e, is_lio(op) ? EIO : err, "%s, %s: errno %s, want %s", opname[op], what,
		     strerror(e), strerror(is_lio(op) ? EIO : err));
	int ae = aio_error(cb);
	cr_assert_eq(ae, err, "%s, %s: aio_error %d (%s), want %s", opname[op], what, ae,
		     ae > 0 ? strerror(ae) : "-", strerror(err));
	errno = 0;
	ssize_t rr = aio_return(cb);
	e = errno;
	cr_assert(rr == -1 && e == EINVAL, "%s, %s: aio_return %zd/%s, want -1/EINVAL", opname[op],
		  what, rr, strerror(e));
}

/* A regular tmpfs file opened read-write. */
static int rw_file(void)
{
	return kqt_file(4096);
}

static int reopen(int fd, int flags)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int r = open(path, flags);
	cr_assert(r >= 0, "reopen: %s", strerror(errno));
	return r;
}

Test(errors, bad_fd_is_ebadf)
{
	kqaio_backend(); /* start-up may open fds: let it, before one is closed */
	int fd = rw_file();
	int closed = dup(fd);
	cr_assert(closed >= 0);
	close(closed);
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		prep(&cb, op, closed);
		expect_fail(op, &cb, EBADF, "closed fd");
		prep(&cb, op, -1);
		expect_fail(op, &cb, EBADF, "fd -1");
	}
}

Test(errors, wrong_access_mode_is_ebadf)
{
	int fd = rw_file();
	int ro = reopen(fd, O_RDONLY), wo = reopen(fd, O_WRONLY);
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		if (is_read(op)) {
			prep(&cb, op, wo);
			expect_fail(op, &cb, EBADF, "read from an O_WRONLY fd");
		} else if (is_write(op)) {
			prep(&cb, op, ro);
			expect_fail(op, &cb, EBADF, "write to an O_RDONLY fd");
		}
	}
	/* The right direction on the same fds is accepted. */
	prep(&cb, R, ro);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 16);
	prep(&cb, W, wo);
	cr_assert_eq(aio_write(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 16);
}

Test(errors, negative_offset_on_a_regular_file_is_einval)
{
	int fd = rw_file();
	static const off_t offs[] = {-1, -4096, INT64_MIN};
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		if (op == FS)
			continue;
		for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
			prep(&cb, op, fd);
			cb.aio_offset = offs[i];
			expect_fail(op, &cb, EINVAL, "negative offset");
		}
	}
}

Test(errors, too_many_bytes_is_einval)
{
	int fd = rw_file();
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		if (op == FS)
			continue;
		if (!is_vec(op)) {
			prep(&cb, op, fd);
			cb.aio_nbytes = (size_t)SSIZE_MAX + 1;
			expect_fail(op, &cb, EINVAL, "aio_nbytes SSIZE_MAX+1");
			prep(&cb, op, fd);
			cb.aio_nbytes = SIZE_MAX;
			expect_fail(op, &cb, EINVAL, "aio_nbytes SIZE_MAX");
			continue;
		}
		/* Vectored: aio_iovcnt (aio_nbytes) above IOV_MAX, or lengths summing
		 * past SSIZE_MAX. */
		prep(&cb, op, fd);
		cb.aio_iovcnt = IOV_MAX + 1;
		expect_fail(op, &cb, EINVAL, "aio_iovcnt IOV_MAX+1");
		prep(&cb, op, fd);
		cb.aio_iovcnt = (size_t)SSIZE_MAX + 1;
		expect_fail(op, &cb, EINVAL, "aio_iovcnt SSIZE_MAX+1");
		prep(&cb, op, fd);
		eiov[0] = (struct iovec){ebuf, SSIZE_MAX};
		eiov[1] = (struct iovec){ebuf, 2};
		cb.aio_iovcnt = 2;
		expect_fail(op, &cb, EINVAL, "iovec lengths summing past SSIZE_MAX");
	}
}

Test(errors, bad_sigevent_is_einval)
{
	int fd = rw_file();
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = 99;
		expect_fail(op, &cb, EINVAL, "sigev_notify 99");
		/* SIGEV_KEVENT: flags other than ONESHOT, CLEAR, DISPATCH are EINVAL;
		 * a descriptor that is no kqueue is EBADF. */
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_KEVENT;
		cb.aio_sigevent.sigev_notify_kqueue = fd;
		cb.aio_sigevent.sigev_notify_kevent_flags = EV_ADD;
		expect_fail(op, &cb, EINVAL, "SIGEV_KEVENT flags EV_ADD");
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_KEVENT;
		cb.aio_sigevent.sigev_notify_kqueue = fd;
		expect_fail(op, &cb, EBADF, "SIGEV_KEVENT to a file, not a kqueue");
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_KEVENT;
		cb.aio_sigevent.sigev_notify_kqueue = -1;
		expect_fail(op, &cb, EBADF, "SIGEV_KEVENT to kqueue -1");
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = 65;
		expect_fail(op, &cb, EINVAL, "SIGEV_SIGNAL signal 65");
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = -1;
		expect_fail(op, &cb, EINVAL, "SIGEV_SIGNAL signal -1");
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
		cb.aio_sigevent.sigev_signo = 65;
		cb.aio_sigevent.sigev_notify_thread_id = gettid();
		expect_fail(op, &cb, EINVAL, "SIGEV_THREAD_ID signal 65");
	}
}

Test(errors, signal_zero_is_accepted_and_raises_nothing)
{
	/* A zeroed sigevent is SIGEV_SIGNAL with signal 0 on Linux: "no signal". */
	sigset_t all;
	sigfillset(&all);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &all, NULL), 0);
	int fd = rw_file();
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		prep(&cb, op, fd);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = 0;
		if (is_lio(op)) {
			cb.aio_lio_opcode = lio_opcode(op);
			struct aiocb *l[1] = {&cb};
			cr_assert_eq(lio_listio(LIO_NOWAIT, l, 1, NULL), 0, "%s: %s", opname[op],
				     strerror(errno));
		} else {
			cr_assert_eq(submit(op, &cb), 0, "%s: %s", opname[op], strerror(errno));
		}
		cr_assert_eq(kqt_wait(&cb), op == FS ? 0 : 16, "%s", opname[op]);
	}
	usleep(50000);
	sigset_t pend;
	cr_assert_eq(sigpending(&pend), 0);
	for (int s = 1; s < NSIG; s++)
		cr_assert(!sigismember(&pend, s), "signal %d is pending", s);
}

Test(errors, reqprio_out_of_range_is_einval)
{
	int fd = rw_file();
	static const int prios[] = {-1, AIO_PRIO_DELTA_MAX + 1, INT_MIN, INT_MAX};
	struct aiocb cb;
	for (int op = 0; op < NOPS; op++) {
		if (op == FS)
			continue; /* aio_fsync ignores it (once.c) */
		for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
			char what[48];
			snprintf(what, sizeof what, "aio_reqprio %d", prios[i]);
			prep(&cb, op, fd);
			cb.aio_reqprio = prios[i];
			expect_fail(op, &cb, EINVAL, what);
		}
	}
	/* Both ends of the range are accepted. */
	prep(&cb, R, fd);
	cb.aio_reqprio = AIO_PRIO_DELTA_MAX;
	cr_assert_eq(aio_read(&cb), 0, "%s", strerror(errno));
	cr_assert_eq(kqt_wait(&cb), 16);
	cb.aio_reqprio = 0;
	cr_assert_eq(aio_read(&cb), 0, "%s", strerror(errno));
	cr_assert_eq(kqt_wait(&cb), 16);
}

Test(errors, fsync_bad_op_is_einval_checked_first)
{
	int fd = rw_file();
	static const int ops[] = {0, O_RDWR, 12345};
	struct aiocb cb;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		/* With a bad fd too: the op is checked before the fd. */
		for (int k = 0; k < 2; k++) {
			kqt_cb(&cb, k ? -1 : fd, NULL, 0, 0);
			errno = 0;
			cr_assert_eq(aio_fsync(ops[i], &cb), -1, "op %d", ops[i]);
			cr_assert_eq(errno, EINVAL, "op %d, fd %d: %s", ops[i], cb.aio_fildes,
				     strerror(errno));
			cr_assert_eq(aio_error(&cb), EINVAL, "op %d", ops[i]);
			errno = 0;
			cr_assert_eq(aio_return(&cb), -1);
			cr_assert_eq(errno, EINVAL);
		}
	}
	/* O_SYNC and O_DSYNC are accepted. */
	kqt_cb(&cb, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &cb), 0);
	cr_assert_eq(kqt_wait(&cb), 0);
	cr_assert_eq(aio_fsync(O_DSYNC, &cb), 0);
	cr_assert_eq(kqt_wait(&cb), 0);
}

Test(errors, never_submitted_aiocb_names_no_job)
{
	struct aiocb cb;
	memset(&cb, 0, sizeof cb);
	errno = 0;
	cr_assert_eq(aio_error(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	/* Garbage in the reserved bytes is not a job either. */
	memset(&cb, 0xa5, sizeof cb);
	errno = 0;
	cr_assert_eq(aio_error(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
}

Test(errors, aio_return_twice_is_einval)
{
	int fd = rw_file();
	char buf[100];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 10);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 100);
	cr_assert(kqt_check(buf, 10, 100));
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	/* A reaped aiocb names no job. */
	errno = 0;
	cr_assert_eq(aio_error(&cb), -1);
	cr_assert_eq(errno, EINVAL);
}

Test(errors, aio_return_in_progress_is_einval)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[16];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_error(&cb), EINPROGRESS);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	/* The premature aio_return reaped nothing: the job goes on. */
	cr_assert_eq(aio_error(&cb), EINPROGRESS);
	cr_assert_eq(write(p[1], "hello", 5), 5);
	cr_assert_eq(kqt_wait(&cb), 5);
	cr_assert(!memcmp(buf, "hello", 5));
}

/* Waits for cb without reaping it. */
static void wait_done(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == 0 || errno == EINTR, "aio_suspend: %s", strerror(errno));
	}
}

static void expect_completion_error(struct aiocb *cb, int err, const char *what)
{
	wait_done(cb);
	int ae = aio_error(cb);
	cr_assert_eq(ae, err, "%s: aio_error %d (%s), want %s", what, ae,
		     ae > 0 ? strerror(ae) : "-", strerror(err));
	errno = 0;
	ssize_t r = aio_return(cb);
	int e = errno;
	cr_assert(r == -1 && e == err, "%s: aio_return %zd/%s, want -1/%s", what, r, strerror(e),
		  strerror(err));
	errno = 0;
	cr_assert_eq(aio_return(cb), -1, "%s: reaped twice", what);
	cr_assert_eq(errno, EINVAL);
}

Test(errors, bad_buffer_completes_with_efault)
{
	int fd = kqt_file(8192);
	struct aiocb cb;
	kqt_cb(&cb, fd, (void *)1, 4096, 0);
	cr_assert_eq(aio_read(&cb), 0, "a bad buffer is found at completion, not submission");
	expect_completion_error(&cb, EFAULT, "aio_read into (void *)1");

	kqt_cb(&cb, fd, (void *)1, 4096, 0);
	cr_assert_eq(aio_write(&cb), 0);
	expect_completion_error(&cb, EFAULT, "aio_write from (void *)1");

	struct iovec iov[1] = {{(void *)1, 4096}};
	kqt_cb(&cb, fd, iov, 1, 0);
	cr_assert_eq(aio_readv(&cb), 0);
	expect_completion_error(&cb, EFAULT, "aio_readv into (void *)1");

	/* The file is untouched by the failed write. */
	char back[4096];
	cr_assert_eq(pread(fd, back, sizeof back, 0), 4096);
	cr_assert(kqt_check(back, 0, sizeof back));
}

static char enospc_dir[64];
static int enospc_mounted;

static void enospc_fini(void)
{
	if (enospc_mounted)
		umount2(enospc_dir, MNT_DETACH);
	if (enospc_dir[0])
		rmdir(enospc_dir);
}

Test(errors, full_filesystem_is_short_or_enospc, .fini = enospc_fini)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to mount a small tmpfs");
	strcpy(enospc_dir, "/tmp/kqaio-enospc-XXXXXX");
	if (!mkdtemp(enospc_dir)) {
		enospc_dir[0] = 0;
		cr_skip_test("mkdtemp: %s", strerror(errno));
	}
	if (mount("tmpfs", enospc_dir, "tmpfs", 0, "size=1m") < 0)
		cr_skip_test("mount tmpfs: %s", strerror(errno));
	enospc_mounted = 1;
	char path[128];
	snprintf(path, sizeof path, "%s/f", enospc_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0, "open: %s", strerror(errno));

	size_t big = 4 << 20;
	char *buf = malloc(big);
	cr_assert(buf);
	kqt_fill(buf, 0, big);
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, big, 0);
	cr_assert_eq(aio_write(&cb), 0);
	wait_done(&cb);
	int ae = aio_error(&cb);
	errno = 0;
	ssize_t r = aio_return(&cb);
	int e = errno;
	if (r < 0) {
		cr_assert_eq(ae, ENOSPC, "aio_error %s", strerror(ae));
		cr_assert_eq(e, ENOSPC, "aio_return -1/%s, want ENOSPC or a short count",
			     strerror(e));
		r = 0;
	} else {
		cr_assert_eq(ae, 0);
		cr_assert(r < (ssize_t)big, "4 MiB written to a 1 MiB tmpfs: %zd", r);
		/* What it claims is there. */
		char *back = malloc((size_t)r + 1);
		cr_assert(back);
		cr_assert_eq(pread(fd, back, (size_t)r + 1, 0), r);
		cr_assert(kqt_check(back, 0, (size_t)r));
		free(back);
	}
	/* The filesystem is full now: a write past what fit fails outright. */
	kqt_cb(&cb, fd, buf + r, 65536, r);
	cr_assert_eq(aio_write(&cb), 0);
	expect_completion_error(&cb, ENOSPC, "write to a full tmpfs");
	close(fd);
	free(buf);
	cr_assert_eq(umount2(enospc_dir, 0), 0, "umount: %s", strerror(errno));
	enospc_mounted = 0;
}

Test(errors, resubmitting_an_aiocb_in_flight_is_einval)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[16];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);

	errno = 0;
	cr_assert_eq(aio_read(&cb), -1, "aio_read of an aiocb in flight");
	cr_assert_eq(errno, EINVAL, "aio_read: %s", strerror(errno));
	cr_assert_eq(aio_error(&cb), EINPROGRESS, "the refusal must not touch the job");

	cb.aio_lio_opcode = LIO_READ;
	struct aiocb *l[1] = {&cb};
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, l, 1, NULL), -1, "lio_listio of an aiocb in flight");
	cr_assert_eq(errno, EIO, "lio_listio: %s", strerror(errno));
	cr_assert_eq(aio_error(&cb), EINPROGRESS, "the refused entry must not touch the job");

	errno = 0;
	cr_assert_eq(aio_fsync(0, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EINPROGRESS, "a refused aio_fsync must not touch the job");
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1, "aio_fsync of an aiocb in flight");
	cr_assert_eq(errno, EINVAL, "aio_fsync: %s", strerror(errno));
	cr_assert_eq(aio_error(&cb), EINPROGRESS);

	/* The original job still completes with its own result, exactly once. */
	cr_assert_eq(write(p[1], "abcdef", 6), 6);
	cr_assert_eq(kqt_wait(&cb), 6);
	cr_assert(!memcmp(buf, "abcdef", 6));
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	struct aiocb *got = &cb;
	struct timespec poll = {0, 0};
	cr_assert_eq(aio_waitcomplete(&got, &poll), -1, "a refused resubmission left a job");
	cr_assert_eq(errno, EAGAIN);
}

/* The k-th kind of refusal; what says which. */
static int refuse(int k, struct aiocb *cb, int fd, struct aiocb *busy, char *what, size_t wl)
{
	if (k < NOPS) {
		prep(cb, k, -1);
		snprintf(what, wl, "%s with a bad fd", opname[k]);
		return submit(k, cb);
	}
	switch (k - NOPS) {
	case 0:
		kqt_cb(cb, fd, NULL, 0, 0);
		snprintf(what, wl, "aio_fsync with op 0");
		return aio_fsync(0, cb);
	case 1: {
		prep(cb, LR, fd);
		cb->aio_lio_opcode = 99;
		struct aiocb *l[1] = {cb};
		snprintf(what, wl, "lio entry with opcode 99");
		return lio_listio(LIO_WAIT, l, 1, NULL);
	}
	case 2:
		prep(cb, R, fd);
		cb->aio_reqprio = -1;
		snprintf(what, wl, "aio_read with aio_reqprio -1");
		return aio_read(cb);
	default:
		snprintf(what, wl, "aio_read of an aiocb in flight");
		return aio_read(busy);
	}
}

Test(errors, failed_submission_is_not_a_job)
{
	int fd = rw_file();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char pbuf[8];
	struct aiocb cb, busy;
	kqt_cb(&busy, p[0], pbuf, sizeof pbuf, 0);
	cr_assert_eq(aio_read(&busy), 0);
	/* Every kind of refusal counts as rejected, never as submitted or completed. */
	for (int k = 0; k < NOPS + 4; k++) {
		struct kqaio_stats a, b;
		char what[64];
		cr_assert_eq(kqaio_get_stats(&a, sizeof a), 0);
		int r = refuse(k, &cb, fd, &busy, what, sizeof what);
		cr_assert_eq(kqaio_get_stats(&b, sizeof b), 0);
		cr_assert_eq(r, -1, "%s", what);
		cr_assert_eq(b.submitted - a.submitted, 0, "%s counted as submitted", what);
		cr_assert_eq(b.completed - a.completed, 0, "%s counted as completed", what);
		cr_assert_eq(b.failed - a.failed, 0, "%s counted as failed", what);
		cr_expect_eq(b.rejected - a.rejected, 1, "%s: rejected +%llu, want +1", what,
			     (unsigned long long)(b.rejected - a.rejected));
	}
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(kqt_wait(&busy), 1);
}
