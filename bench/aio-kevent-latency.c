/* Submit-to-notification latency of one 4 KiB read from a tmpfs file, one
 * request at a time, measured from just before the submission to the return
 * of the call that reports it (CLOCK_MONOTONIC), three ways in one process:
 *
 *   kevent    aio_read() with SIGEV_KEVENT, then kevent() waits for its
 *             EVFILT_AIO event (then aio_return(), outside the timing)
 *   suspend   aio_read() with SIGEV_NONE, then aio_suspend() (kqaio, no kqueue)
 *   io_uring  raw liburing: io_uring_prep_read() + io_uring_submit() +
 *             io_uring_wait_cqe() on a ring of its own — the floor
 *
 * The three run interleaved in rounds so drift hits them alike; each prints
 * p50, p99 and p99.9 in microseconds, then each p50 and p99 over io_uring's,
 * and the p50 difference: the time kqaio adds to the kernel's own path.
 * KQAIO_BACKEND picks kqaio's backend; bench/aio-kevent-latency.sh runs both. */
#include <aio.h>
#include <sys/event.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

enum { SZ = 4096, SPAN = 256, ROUNDS = 20 };
enum { M_KEVENT, M_SUSPEND, M_URING, M_N };
static const char *const names[M_N] = {"kevent", "suspend", "io_uring"};

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "aio-kevent-latency: %s:%d: %s failed: %s\n", __FILE__,    \
				__LINE__, #x, strerror(errno));                                    \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static int fd, kq;
static char *buf;
static struct io_uring ring;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void prep(struct aiocb *cb, off_t off, int notify)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = SZ;
	cb->aio_offset = off;
	cb->aio_sigevent.sigev_notify = notify;
	if (notify == SIGEV_KEVENT) {
		cb->aio_sigevent.sigev_notify_kqueue = kq;
		cb->aio_sigevent.sigev_value.sival_ptr = cb;
	}
}

/* One read by method m; returns its latency in microseconds. */
static double one(int m, off_t off)
{
	struct aiocb cb;
	double t0, t1;
	if (m == M_KEVENT) {
		prep(&cb, off, SIGEV_KEVENT);
		struct kevent ev;
		int n;
		t0 = now_us();
		CHECK(aio_read(&cb) == 0);
		do
			n = kevent(kq, NULL, 0, &ev, 1, NULL);
		while (n < 0 && errno == EINTR);
		t1 = now_us();
		CHECK(n == 1 && ev.filter == EVFILT_AIO && ev.ident == (uintptr_t)&cb &&
		      ev.udata == &cb && ev.data == 0);
		CHECK(aio_return(&cb) == SZ);
	} else if (m == M_SUSPEND) {
		prep(&cb, off, SIGEV_NONE);
		const struct aiocb *l[1] = {&cb};
		t0 = now_us();
		CHECK(aio_read(&cb) == 0);
		while (aio_error(&cb) == EINPROGRESS)
			CHECK(aio_suspend(l, 1, NULL) == 0 || errno == EINTR);
		t1 = now_us();
		CHECK(aio_return(&cb) == SZ);
	} else {
		struct io_uring_cqe *cqe;
		t0 = now_us();
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, fd, buf, SZ, (__u64)off);
		CHECK(io_uring_submit(&ring) == 1);
		int r;
		while ((r = io_uring_wait_cqe(&ring, &cqe)) == -EINTR)
			;
		t1 = now_us();
		CHECK(r == 0 && cqe->res == SZ);
		io_uring_cqe_seen(&ring, cqe);
	}
	return t1 - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
	return v[(long)((double)(n - 1) * p + 0.5)];
}

static void usage(FILE *f)
{
	fprintf(f, "usage: aio-kevent-latency [-n N] [-w N] [-f FILE]\n"
		   "Latency from aio_read() to the kevent() that reports it, for a 4 KiB read\n"
		   "from tmpfs, against aio_suspend() and raw io_uring in the same run.\n"
		   "  -n N     requests per method (default 20000)\n"
		   "  -w N     warm-up requests per method, not counted (default 1000)\n"
		   "  -f FILE  a file on tmpfs to create, read and remove (default /dev/shm/...)\n"
		   "KQAIO_BACKEND=uring|pool chooses kqaio's backend.\n");
}

int main(int argc, char **argv)
{
	long n = 20000, warm = 1000;
	const char *path = NULL;
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int c;
	while ((c = getopt_long(argc, argv, "n:w:f:h", lo, NULL)) != -1) {
		if (c == 'n')
			n = atol(optarg);
		else if (c == 'w')
			warm = atol(optarg);
		else if (c == 'f')
			path = optarg;
		else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc || n < ROUNDS || warm < 0) {
		usage(stderr);
		return 2;
	}
	char tmpl[] = "/dev/shm/aio-kevent-latency-XXXXXX";
	if (path) {
		CHECK((fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600)) >= 0);
	} else {
		CHECK((fd = mkstemp(tmpl)) >= 0);
		path = tmpl;
	}
	unlink(path);
	CHECK(posix_memalign((void **)&buf, SZ, SZ) == 0);
	memset(buf, 'x', SZ);
	for (int i = 0; i < SPAN; i++)
		CHECK(pwrite(fd, buf, SZ, (off_t)i * SZ) == SZ);
	CHECK((kq = kqueue()) >= 0);
	CHECK(io_uring_queue_init(8, &ring, 0) == 0);

	double *lat[M_N];
	for (int m = 0; m < M_N; m++)
		CHECK(lat[m] = malloc((size_t)n * sizeof **lat));
	for (long i = 0; i < warm; i++)
		for (int m = 0; m < M_N; m++)
			one(m, (off_t)(i % SPAN) * SZ);
	long done = 0;
	for (int r = 0; r < ROUNDS; r++) {
		long upto = n * (r + 1) / ROUNDS;
		for (int m = 0; m < M_N; m++)
			for (long i = done; i < upto; i++)
				lat[m][i] = one(m, (off_t)(i % SPAN) * SZ);
		done = upto;
	}

	double p[M_N][3];
	printf("4 KiB tmpfs read, submit to notification, %ld requests each, kqaio %s backend\n", n,
	       kqaio_backend());
	printf("%-10s %10s %10s %10s   (microseconds)\n", "method", "p50", "p99", "p99.9");
	for (int m = 0; m < M_N; m++) {
		qsort(lat[m], (size_t)n, sizeof **lat, cmp);
		p[m][0] = pct(lat[m], n, 0.50);
		p[m][1] = pct(lat[m], n, 0.99);
		p[m][2] = pct(lat[m], n, 0.999);
		printf("%-10s %10.1f %10.1f %10.1f\n", names[m], p[m][0], p[m][1], p[m][2]);
	}
	for (int m = 0; m < M_URING; m++)
		printf("%s / io_uring: p50 %.2fx, p99 %.2fx (p50 %+.1f us)\n", names[m],
		       p[m][0] / p[M_URING][0], p[m][1] / p[M_URING][1], p[m][0] - p[M_URING][0]);
	for (int m = 0; m < M_N; m++)
		free(lat[m]);
	io_uring_queue_exit(&ring);
	close(kq);
	close(fd);
	free(buf);
	return 0;
}
