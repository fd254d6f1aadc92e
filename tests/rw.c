/* Reads and writes of every kind on regular files, tmpfs and disk, with data checks. */
#include "kqt.h"

#include <sys/uio.h>

TestSuite(rw, .timeout = 30);

Test(rw, read_returns_the_bytes)
{
	int fd = kqt_file(1 << 20);
	char buf[8192];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 12345);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), (ssize_t)sizeof buf);
	cr_assert(kqt_check(buf, 12345, sizeof buf));
}

Test(rw, read_at_eof_is_short_then_zero)
{
	int fd = kqt_file(10000);
	char buf[4096];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 8000);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 2000);
	cr_assert(kqt_check(buf, 8000, 2000));
	kqt_cb(&cb, fd, buf, sizeof buf, 20000);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 0);
}

Test(rw, write_then_read_back)
{
	int fd = kqt_file(0);
	static char out[100000], in[100000];
	kqt_fill(out, 777, sizeof out);
	struct aiocb cb;
	kqt_cb(&cb, fd, out, sizeof out, 777);
	cr_assert_eq(aio_write(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), (ssize_t)sizeof out);
	cr_assert_eq(pread(fd, in, sizeof in, 777), (ssize_t)sizeof in);
	cr_assert(kqt_check(in, 777, sizeof in));
}

Test(rw, readv_and_writev)
{
	int fd = kqt_file(1 << 16);
	char a[100], b[3000], c[1];
	struct iovec iov[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
	struct aiocb cb;
	kqt_cb(&cb, fd, NULL, 0, 50);
	cb.aio_iov = iov;
	cb.aio_iovcnt = 3;
	cr_assert_eq(aio_readv(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 3101);
	cr_assert(kqt_check(a, 50, sizeof a));
	cr_assert(kqt_check(b, 150, sizeof b));
	cr_assert(kqt_check(c, 3150, 1));

	/* Many iovecs (more than kept inline), written and read back. */
	enum { N = 64 };
	static char wbuf[N][33];
	struct iovec wiov[N];
	for (int i = 0; i < N; i++) {
		kqt_fill(wbuf[i], 5000 + i * 33, 33);
		wiov[i] = (struct iovec){wbuf[i], 33};
	}
	kqt_cb(&cb, fd, NULL, 0, 5000);
	cb.aio_iov = wiov;
	cb.aio_iovcnt = N;
	cr_assert_eq(aio_writev(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), N * 33);
	char back[N * 33];
	cr_assert_eq(pread(fd, back, sizeof back, 5000), (ssize_t)sizeof back);
	cr_assert(kqt_check(back, 5000, sizeof back));
}

Test(rw, iov_array_may_be_reused_after_submission)
{
	/* As on FreeBSD the iovec array is copied in at submission. */
	int fd = kqt_file(1 << 16);
	char a[512], b[512];
	struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
	struct aiocb cb;
	kqt_cb(&cb, fd, iov, 2, 0);
	cr_assert_eq(aio_readv(&cb), 0);
	memset(iov, 0, sizeof iov);
	cr_assert_eq(kqt_wait(&cb), 1024);
	cr_assert(kqt_check(a, 0, 512) && kqt_check(b, 512, 512));
}

Test(rw, zero_length_read_and_write)
{
	int fd = kqt_file(100);
	char buf[1];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, 0, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 0);
	cr_assert_eq(aio_write(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 0);
}

Test(rw, many_in_flight_on_one_disk_file)
{
	int fd = kqt_file_in(kqt_disk_dir(), 8 << 20);
	enum { N = 256 };
	static struct aiocb cbs[N];
	static char bufs[N][4096];
	for (int i = 0; i < N; i++) {
		off_t off = (off_t)((i * 7919) % 2048) * 4096;
		kqt_cb(&cbs[i], fd, bufs[i], 4096, off);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(kqt_wait(&cbs[i]), 4096);
		cr_assert(kqt_check(bufs[i], cbs[i].aio_offset, 4096));
	}
}

Test(rw, o_direct_reads)
{
	int fd0 = kqt_file_in(kqt_disk_dir(), 1 << 20);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd0);
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		cr_skip_test("O_DIRECT not supported in %s", kqt_disk_dir());
	void *buf = NULL;
	cr_assert_eq(posix_memalign(&buf, 4096, 65536), 0);
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, 65536, 4096 * 3);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 65536);
	cr_assert(kqt_check(buf, 4096 * 3, 65536));
	free(buf);
}

Test(rw, append_writes_land_in_submission_order)
{
	char path[] = "/dev/shm/kqaio-append-XXXXXX";
	int tfd = mkstemp(path);
	cr_assert(tfd >= 0);
	int fd = open(path, O_WRONLY | O_APPEND);
	unlink(path);
	enum { N = 200 };
	static struct aiocb cbs[N];
	static char recs[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(recs[i], sizeof recs[i], "rec%011d\n", i);
		kqt_cb(&cbs[i], fd, recs[i], 15, 0);
		cr_assert_eq(aio_write(&cbs[i]), 0);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(kqt_wait(&cbs[i]), 15);
	static char all[N * 15 + 1];
	cr_assert_eq(pread(tfd, all, sizeof all, 0), N * 15);
	for (int i = 0; i < N; i++) {
		char want[16];
		snprintf(want, sizeof want, "rec%011d\n", i);
		cr_assert(!memcmp(all + i * 15, want, 15), "record %d out of order", i);
	}
}

Test(rw, stats_count_the_work)
{
	struct kqaio_stats before, after;
	cr_assert_eq(kqaio_get_stats(&before, sizeof before), 0);
	int fd = kqt_file(1 << 16);
	char buf[1000];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(kqt_wait(&cb), 1000);
	cr_assert_eq(kqaio_get_stats(&after, sizeof after), 0);
	cr_assert_eq(after.submitted - before.submitted, 1);
	cr_assert_eq(after.completed - before.completed, 1);
	cr_assert_eq(after.bytes_read - before.bytes_read, 1000);
	const char *want = getenv("KQAIO_BACKEND");
	if (want && *want)
		cr_assert_str_eq(kqaio_backend(), want);
	else
		cr_assert(!strcmp(kqaio_backend(), "uring") || !strcmp(kqaio_backend(), "pool"));
	cr_assert_str_eq(kqaio_version(), KQAIO_VERSION);
}
