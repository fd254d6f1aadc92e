/* aio_fsync is a per-fd barrier: it ends only after every earlier write on its
 * fd, and waits for nothing else. */
#include "stall.h"

TestSuite(fsync, .timeout = 30);

Test(fsync, waits_for_earlier_write_on_its_fd)
{
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file_in(kqt_disk_dir(), 0);
	struct aiocb w, f;
	kqt_cb(&w, fd, s.buf, 4096, 0);
	cr_assert_eq(aio_write(&w), 0);
	kqt_stall_wait_blocked(&s); /* the write is stuck reading its buffer */
	kqt_cb(&f, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0);
	usleep(200000);
	cr_assert_eq(aio_error(&f), EINPROGRESS, "fsync ended before the earlier write");
	cr_assert_eq(aio_error(&w), EINPROGRESS);
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&f), 0);
	cr_assert_eq(aio_error(&w), 0, "the write is done once the fsync is");
	cr_assert_eq(aio_return(&w), 4096);
}

Test(fsync, does_not_wait_for_other_fds_or_later_writes)
{
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int a = kqt_file(0), b = kqt_file(0);
	struct aiocb w, f;
	kqt_cb(&w, a, s.buf, 4096, 0);
	cr_assert_eq(aio_write(&w), 0);
	kqt_stall_wait_blocked(&s);
	kqt_cb(&f, b, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_DSYNC, &f), 0);
	cr_assert_eq(kqt_wait(&f), 0, "fsync on another fd is not held back");
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&w), 4096);

	/* A write submitted after the fsync does not hold it back either. */
	struct kqt_stall s2;
	kqt_stall_init(&s2, 4096);
	kqt_cb(&f, a, NULL, 0, 0);
	struct aiocb later;
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0);
	kqt_cb(&later, a, s2.buf, 4096, 0);
	cr_assert_eq(aio_write(&later), 0);
	cr_assert_eq(kqt_wait(&f), 0);
	kqt_stall_release(&s2);
	cr_assert_eq(kqt_wait(&later), 4096);
}

Test(fsync, several_writes_and_fsyncs_interleaved)
{
	/* One file: the kernel serializes its writes, so only the first is stalled. */
	struct kqt_stall s1;
	kqt_stall_init(&s1, 4096);
	int fd = kqt_file(0);
	static char data[4096];
	kqt_fill(data, 4096, sizeof data);
	struct aiocb w1, f1, w2, f2;
	kqt_cb(&w1, fd, s1.buf, 4096, 0);
	cr_assert_eq(aio_write(&w1), 0);
	kqt_stall_wait_blocked(&s1);
	kqt_cb(&f1, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f1), 0);
	kqt_cb(&w2, fd, data, 4096, 4096);
	cr_assert_eq(aio_write(&w2), 0);
	kqt_cb(&f2, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_DSYNC, &f2), 0);
	usleep(100000);
	cr_assert_eq(aio_error(&f1), EINPROGRESS);
	cr_assert_eq(aio_error(&f2), EINPROGRESS);
	kqt_stall_release(&s1);
	cr_assert_eq(kqt_wait(&f2), 0);
	cr_assert_eq(aio_error(&w1), 0, "f2 ended before w1");
	cr_assert_eq(aio_error(&w2), 0, "f2 ended before w2");
	cr_assert_eq(kqt_wait(&f1), 0);
	cr_assert_eq(kqt_wait(&w1), 4096);
	cr_assert_eq(kqt_wait(&w2), 4096);
	char back[4096];
	cr_assert_eq(pread(fd, back, sizeof back, 4096), 4096);
	cr_assert(kqt_check(back, 4096, sizeof back));
}

Test(fsync, waiting_fsync_can_be_cancelled)
{
	struct kqt_stall s;
	kqt_stall_init(&s, 4096);
	int fd = kqt_file(0);
	struct aiocb w, f;
	kqt_cb(&w, fd, s.buf, 4096, 0);
	cr_assert_eq(aio_write(&w), 0);
	kqt_stall_wait_blocked(&s);
	kqt_cb(&f, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0);
	cr_assert_eq(aio_cancel(fd, &f), AIO_CANCELED);
	cr_assert_eq(kqt_wait(&f), -1);
	kqt_stall_release(&s);
	cr_assert_eq(kqt_wait(&w), 4096);
}

Test(fsync, with_nothing_pending_completes)
{
	int fd = kqt_file(100);
	struct aiocb f;
	kqt_cb(&f, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0);
	cr_assert_eq(kqt_wait(&f), 0);
	cr_assert_eq(aio_fsync(O_DSYNC, &f), 0);
	cr_assert_eq(kqt_wait(&f), 0);
}
