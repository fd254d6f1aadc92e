/* AIO on a real block device (a loop device over a 64 MiB file; needs root and losetup):
 * writes and reads of 1 MiB and of sizes beyond the device's max I/O size, buffered and
 * O_DIRECT, plain and vectored, many at once, and at the end of the device. */
#include "kqt.h"

#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>

TestSuite(blockdev, .timeout = 30);

#define DEV_SIZE (64L << 20)

static char dev[64];	 /* /dev/loopN, empty when none is attached */
static int dev_fd = -1;	 /* opened by the test */
static int dev_fd2 = -1; /* a second one (O_DIRECT or buffered) */

/* Detaches the device whatever the test did (runs after a failed assertion too). */
static void bd_fini(void)
{
	if (dev_fd >= 0)
		close(dev_fd);
	if (dev_fd2 >= 0)
		close(dev_fd2);
	dev_fd = dev_fd2 = -1;
	kqt_loop_detach(dev);
}

/* Attaches a loop device over a fresh 64 MiB file and opens it with flags. */
static int bd_setup(int flags)
{
	kqt_loop_attach("kqaio-loop", DEV_SIZE, dev, sizeof dev);
	dev_fd = open(dev, O_RDWR | O_CLOEXEC | flags);
	if (dev_fd < 0 && (flags & O_DIRECT) && errno == EINVAL)
		cr_skip_test("O_DIRECT not supported on %s", dev);
	cr_assert(dev_fd >= 0, "open %s: %s", dev, strerror(errno));
	/* Should this process die before bd_fini, the device frees itself once closed. */
	struct loop_info64 li;
	if (ioctl(dev_fd, LOOP_GET_STATUS64, &li) == 0) {
		li.lo_flags |= LO_FLAGS_AUTOCLEAR;
		ioctl(dev_fd, LOOP_SET_STATUS64, &li);
	}
	struct stat st;
	cr_assert_eq(fstat(dev_fd, &st), 0);
	cr_assert(S_ISBLK(st.st_mode), "%s is not a block device", dev);
	return dev_fd;
}

/* The device's largest single request, in bytes (queue/max_sectors_kb). */
static size_t max_io(void)
{
	char path[128];
	snprintf(path, sizeof path, "/sys/block/%s/queue/max_sectors_kb", dev + 5);
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s: %s", path, strerror(errno));
	unsigned long kb = 0;
	cr_assert_eq(fscanf(f, "%lu", &kb), 1);
	fclose(f);
	cr_assert_gt(kb, 0);
	return kb * 1024;
}

static void *abuf(size_t n)
{
	void *b = NULL;
	cr_assert_eq(posix_memalign(&b, 4096, n), 0);
	return b;
}

static ssize_t bd_wait(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	for (int i = 0; i < 3000 && aio_error(cb) == EINPROGRESS; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		aio_suspend(l, 1, &ts);
	}
	cr_assert_neq(aio_error(cb), EINPROGRESS, "job on %s still in progress after 30 s", dev);
	return aio_return(cb);
}

/* aio_write size bytes of the pattern at off, aio_read them back, and check them with a
 * plain pread on a second descriptor too. */
static void write_read(int fd, off_t off, size_t size)
{
	unsigned char *out = abuf(size), *in = abuf(size);
	kqt_fill(out, off, size);
	struct aiocb cb;
	kqt_cb(&cb, fd, out, size, off);
	cr_assert_eq(aio_write(&cb), 0, "aio_write: %s", strerror(errno));
	ssize_t n = bd_wait(&cb);
	cr_assert_eq(n, (ssize_t)size, "aio_write of %zu at %lld: %zd (%s)", size, (long long)off,
		     n, strerror(errno));
	memset(in, 0, size);
	kqt_cb(&cb, fd, in, size, off);
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	n = bd_wait(&cb);
	cr_assert_eq(n, (ssize_t)size, "aio_read of %zu at %lld: %zd (%s)", size, (long long)off, n,
		     strerror(errno));
	cr_assert(kqt_check(in, off, size), "aio_read of %zu at %lld: wrong data", size,
		  (long long)off);
	/* The bytes are on the device, not just in our buffer (O_DIRECT where aligned). */
	int direct = off % 4096 == 0 && size % 4096 == 0 ? O_DIRECT : 0;
	dev_fd2 = open(dev, O_RDONLY | O_CLOEXEC | direct);
	cr_assert(dev_fd2 >= 0);
	memset(in, 0, size);
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(dev_fd2, in + got, size - got, off + (off_t)got);
		cr_assert(r > 0, "pread: %s", strerror(errno));
		got += (size_t)r;
	}
	cr_assert(kqt_check(in, off, size), "the device does not hold what aio_write wrote");
	close(dev_fd2);
	dev_fd2 = -1;
	free(out);
	free(in);
}

static size_t big(void)
{
	size_t n = 4 * max_io();
	return n > (16 << 20) ? (16 << 20) : n;
}

Test(blockdev, write_and_read_1mib, .fini = bd_fini)
{
	int fd = bd_setup(0);
	write_read(fd, 3 << 20, 1 << 20);
	write_read(fd, 12345, 1 << 20); /* unaligned offset and buffer path */
}

Test(blockdev, o_direct_write_and_read_1mib, .fini = bd_fini)
{
	int fd = bd_setup(O_DIRECT);
	write_read(fd, 5 << 20, 1 << 20);
}

Test(blockdev, larger_than_max_io_size, .fini = bd_fini)
{
	int fd = bd_setup(0);
	size_t n = big();
	cr_assert_gt(n, max_io());
	write_read(fd, 8 << 20, n);
	write_read(fd, (8 << 20) + 512, n + 4096);
}

Test(blockdev, o_direct_larger_than_max_io_size, .fini = bd_fini)
{
	int fd = bd_setup(O_DIRECT);
	size_t n = big();
	cr_assert_gt(n, max_io());
	write_read(fd, 24 << 20, n);
	write_read(fd, (40 << 20) + 4096, n + 3 * 4096);
}

Test(blockdev, o_direct_vectored_larger_than_max_io_size, .fini = bd_fini)
{
	int fd = bd_setup(O_DIRECT);
	size_t m = max_io();
	/* Three pieces, the middle one alone beyond the limit. */
	size_t len[3] = {m / 2, 2 * m, m + 4096};
	size_t total = len[0] + len[1] + len[2];
	off_t off = 16 << 20;
	struct iovec iov[3];
	unsigned char *out[3], *in[3];
	off_t o = off;
	for (int i = 0; i < 3; i++) {
		out[i] = abuf(len[i]);
		in[i] = abuf(len[i]);
		kqt_fill(out[i], o, len[i]);
		memset(in[i], 0, len[i]);
		iov[i] = (struct iovec){out[i], len[i]};
		o += (off_t)len[i];
	}
	struct aiocb cb;
	kqt_cb(&cb, fd, iov, 3, off);
	cr_assert_eq(aio_writev(&cb), 0, "aio_writev: %s", strerror(errno));
	cr_assert_eq(bd_wait(&cb), (ssize_t)total);
	for (int i = 0; i < 3; i++)
		iov[i] = (struct iovec){in[i], len[i]};
	kqt_cb(&cb, fd, iov, 3, off);
	cr_assert_eq(aio_readv(&cb), 0, "aio_readv: %s", strerror(errno));
	cr_assert_eq(bd_wait(&cb), (ssize_t)total);
	o = off;
	for (int i = 0; i < 3; i++) {
		cr_assert(kqt_check(in[i], o, len[i]), "piece %d", i);
		o += (off_t)len[i];
		free(out[i]);
		free(in[i]);
	}
}

Test(blockdev, many_in_flight_then_fsync, .fini = bd_fini)
{
	int fd = bd_setup(O_DIRECT);
	enum { N = 64, SZ = 65536 };
	static struct aiocb cbs[N];
	unsigned char *bufs = abuf((size_t)N * SZ);
	/* Scattered writes, all in flight at once, then an fsync behind them. */
	for (int i = 0; i < N; i++) {
		off_t off = (off_t)((i * 37) % N) * SZ + (1 << 20);
		kqt_fill(bufs + (size_t)i * SZ, off, SZ);
		kqt_cb(&cbs[i], fd, bufs + (size_t)i * SZ, SZ, off);
		cr_assert_eq(aio_write(&cbs[i]), 0);
	}
	struct aiocb sync;
	kqt_cb(&sync, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &sync), 0, "aio_fsync: %s", strerror(errno));
	cr_assert_eq(bd_wait(&sync), 0);
	for (int i = 0; i < N; i++) {
		/* The fsync completed after every earlier write. */
		cr_assert_neq(aio_error(&cbs[i]), EINPROGRESS, "write %d after the fsync", i);
		cr_assert_eq(bd_wait(&cbs[i]), SZ, "write %d", i);
	}
	memset(bufs, 0, (size_t)N * SZ);
	for (int i = 0; i < N; i++) {
		off_t off = (off_t)i * SZ + (1 << 20);
		kqt_cb(&cbs[i], fd, bufs + (size_t)i * SZ, SZ, off);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(bd_wait(&cbs[i]), SZ, "read %d", i);
		cr_assert(kqt_check(bufs + (size_t)i * SZ, cbs[i].aio_offset, SZ), "read %d data",
			  i);
	}
	free(bufs);
}

Test(blockdev, end_of_device, .fini = bd_fini)
{
	int fd = bd_setup(0);
	off_t size = lseek(fd, 0, SEEK_END);
	cr_assert_eq(size, DEV_SIZE);
	unsigned char *buf = abuf(1 << 20);
	struct aiocb cb;
	/* A write crossing the end moves the bytes up to it, and says so. */
	kqt_fill(buf, size - 4096, 8192);
	kqt_cb(&cb, fd, buf, 8192, size - 4096);
	cr_assert_eq(aio_write(&cb), 0);
	cr_assert_eq(bd_wait(&cb), 4096);
	/* A write at the end has no room. */
	kqt_cb(&cb, fd, buf, 4096, size);
	cr_assert_eq(aio_write(&cb), 0);
	errno = 0;
	cr_assert_eq(bd_wait(&cb), -1);
	cr_assert_eq(errno, ENOSPC, "write at the end: %s", strerror(errno));
	/* A large read crossing the end is short, one at the end is empty. */
	memset(buf, 0, 1 << 20);
	kqt_cb(&cb, fd, buf, 1 << 20, size - 4096);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(bd_wait(&cb), 4096);
	cr_assert(kqt_check(buf, size - 4096, 4096));
	kqt_cb(&cb, fd, buf, 4096, size);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(bd_wait(&cb), 0);
	free(buf);
}
