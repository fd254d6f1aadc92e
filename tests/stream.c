/* AIO on streams: pipes, FIFOs, AF_UNIX socketpairs, TCP loopback sockets and char devices
 * that cannot be polled. Reads wait for data, run in submission order per fd and direction,
 * stay cancellable while waiting, and idle ones hold no threads. */
#include "kqt.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

TestSuite(stream, .timeout = 30);

/* Waits up to secs seconds for cb, then returns aio_return's value. */
static ssize_t st_wait(struct aiocb *cb, int secs)
{
	const struct aiocb *l[1] = {cb};
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	while (aio_error(cb) == EINPROGRESS) {
		struct timespec now, left;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		cr_assert(left.tv_sec >= 0, "job on fd %d still in progress after %d s",
			  cb->aio_fildes, secs);
		int r = aio_suspend(l, 1, &left);
		cr_assert(r == 0 || errno == EINTR || errno == EAGAIN, "aio_suspend: %s",
			  strerror(errno));
	}
	return aio_return(cb);
}

/* A job that cannot have finished yet: give it a moment, it must still be running. */
static void still_pending(struct aiocb *cb)
{
	usleep(50 * 1000);
	cr_assert_eq(aio_error(cb), EINPROGRESS, "job on fd %d finished with nothing to do",
		     cb->aio_fildes);
}

static void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

static void tcp_pair(int s[2])
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(l >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(l, 4), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	s[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(s[0] >= 0);
	cr_assert_eq(connect(s[0], (struct sockaddr *)&a, sizeof a), 0, "connect: %s",
		     strerror(errno));
	s[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(s[1] >= 0, "accept: %s", strerror(errno));
	int one = 1;
	setsockopt(s[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	close(l);
}

static void unix_pair(int s[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

static void fifo_pair(int p[2])
{
	char path[] = "/dev/shm/kqaio-fifo-XXXXXX";
	int t = mkstemp(path);
	cr_assert(t >= 0);
	close(t);
	unlink(path);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
	p[0] = open(path, O_RDONLY | O_NONBLOCK);
	cr_assert(p[0] >= 0);
	p[1] = open(path, O_WRONLY);
	cr_assert(p[1] >= 0);
	unlink(path);
	/* Reads through the AIO layer on a blocking fd, as a program would have it. */
	cr_assert_eq(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) & ~O_NONBLOCK), 0);
}

/* A read queued on rfd before anything is written completes with the data once it is. */
static void read_waits_for_data(int rfd, int wfd)
{
	char buf[64];
	memset(buf, 0, sizeof buf);
	struct aiocb cb;
	kqt_cb(&cb, rfd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	still_pending(&cb);
	xwrite(wfd, "hello, stream", 13);
	cr_assert_eq(st_wait(&cb, 10), 13);
	cr_assert(!memcmp(buf, "hello, stream", 13));
	/* The fd is idle again; a second read works the same way. */
	kqt_cb(&cb, rfd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	xwrite(wfd, "again", 5);
	cr_assert_eq(st_wait(&cb, 10), 5);
	cr_assert(!memcmp(buf, "again", 5));
}

Test(stream, pipe_read_waits_for_data)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	read_waits_for_data(p[0], p[1]);
}

Test(stream, fifo_read_waits_for_data)
{
	int p[2];
	fifo_pair(p);
	read_waits_for_data(p[0], p[1]);
}

Test(stream, socketpair_read_waits_for_data)
{
	int s[2];
	unix_pair(s);
	read_waits_for_data(s[0], s[1]);
	read_waits_for_data(s[1], s[0]);
}

Test(stream, tcp_read_waits_for_data)
{
	int s[2];
	tcp_pair(s);
	read_waits_for_data(s[0], s[1]);
	read_waits_for_data(s[1], s[0]);
}

/* N reads queued on one fd take the stream's bytes in submission order. */
static void reads_in_order(int rfd, int wfd)
{
	enum { N = 16, R = 8 };
	struct aiocb cbs[N];
	char bufs[N][R];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], rfd, bufs[i], R, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	still_pending(&cbs[0]);
	char all[N * R + 1];
	for (int i = 0; i < N; i++)
		snprintf(all + i * R, R + 1, "rec%04u", (unsigned)i % 10000);
	/* Record by record, so each read takes exactly one record. */
	for (int i = 0; i < N; i++) {
		xwrite(wfd, all + i * R, R);
		cr_assert_eq(st_wait(&cbs[i], 10), R, "read %d", i);
		cr_assert(!memcmp(bufs[i], all + i * R, R), "read %d got %.8s, want %.8s", i,
			  bufs[i], all + i * R);
	}
	/* All at once: each read still takes the next R bytes, in order. */
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], rfd, bufs[i], R, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	xwrite(wfd, all, N * R);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(st_wait(&cbs[i], 10), R, "read %d", i);
		cr_assert(!memcmp(bufs[i], all + i * R, R), "read %d got %.8s, want %.8s", i,
			  bufs[i], all + i * R);
	}
}

Test(stream, pipe_reads_complete_in_submission_order)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	reads_in_order(p[0], p[1]);
}

Test(stream, fifo_reads_complete_in_submission_order)
{
	int p[2];
	fifo_pair(p);
	reads_in_order(p[0], p[1]);
}

Test(stream, socket_reads_complete_in_submission_order)
{
	int s[2];
	unix_pair(s);
	reads_in_order(s[0], s[1]);
	tcp_pair(s);
	reads_in_order(s[1], s[0]);
}

struct drain {
	int fd;
	size_t want, got;
	unsigned char *buf;
};

static void *drainer(void *arg)
{
	struct drain *d = arg;
	while (d->got < d->want) {
		ssize_t n = read(d->fd, d->buf + d->got, d->want - d->got);
		if (n <= 0)
			break;
		d->got += (size_t)n;
	}
	return NULL;
}

Test(stream, writes_on_one_pipe_land_in_submission_order)
{
	/* 100 writes of 2000 bytes (above PIPE_BUF, 3x the pipe buffer): run at once
	 * they would interleave; in order, the reader sees the records whole. */
	enum { N = 100, R = 2000 };
	int p[2];
	cr_assert_eq(pipe(p), 0);
	static char recs[N][R];
	static struct aiocb cbs[N];
	for (int i = 0; i < N; i++) {
		memset(recs[i], 'A' + i % 26, R);
		snprintf(recs[i], 8, "%06u", (unsigned)i % 1000000);
		kqt_cb(&cbs[i], p[1], recs[i], R, 0);
		cr_assert_eq(aio_write(&cbs[i]), 0);
	}
	static unsigned char in[N * R];
	struct drain d = {p[0], sizeof in, 0, in};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, drainer, &d), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(st_wait(&cbs[i], 10), R, "write %d", i);
	pthread_join(t, NULL);
	cr_assert_eq(d.got, sizeof in);
	for (int i = 0; i < N; i++)
		cr_assert(!memcmp(in + i * R, recs[i], R), "record %d out of order or torn", i);
}

static void read_and_write_independent(int s[2])
{
	char rbuf[100];
	struct aiocb rcb, wcb;
	kqt_cb(&rcb, s[0], rbuf, sizeof rbuf, 0);
	cr_assert_eq(aio_read(&rcb), 0);
	static char out[1000];
	kqt_fill(out, 0, sizeof out);
	kqt_cb(&wcb, s[0], out, sizeof out, 0);
	cr_assert_eq(aio_write(&wcb), 0);
	/* The write completes although the read before it on the same socket waits. */
	cr_assert_eq(st_wait(&wcb, 10), (ssize_t)sizeof out);
	cr_assert_eq(aio_error(&rcb), EINPROGRESS);
	char in[1000];
	size_t got = 0;
	while (got < sizeof in) {
		ssize_t n = read(s[1], in + got, sizeof in - got);
		cr_assert(n > 0);
		got += (size_t)n;
	}
	cr_assert(kqt_check(in, 0, sizeof in));
	still_pending(&rcb);
	xwrite(s[1], "pong", 4);
	cr_assert_eq(st_wait(&rcb, 10), 4);
	cr_assert(!memcmp(rbuf, "pong", 4));
}

Test(stream, socketpair_pending_read_does_not_block_write)
{
	int s[2];
	unix_pair(s);
	read_and_write_independent(s);
}

Test(stream, tcp_pending_read_does_not_block_write)
{
	int s[2];
	tcp_pair(s);
	read_and_write_independent(s);
}

Test(stream, large_pipe_write_completes_while_drained)
{
	enum { SZ = 1 << 20 };
	int p[2];
	cr_assert_eq(pipe(p), 0);
	unsigned char *out = malloc(SZ), *in = malloc(SZ);
	cr_assert(out && in);
	kqt_fill(out, 0, SZ);
	struct aiocb cb;
	kqt_cb(&cb, p[1], out, SZ, 0);
	cr_assert_eq(aio_write(&cb), 0);
	/* 1 MiB does not fit in the pipe: nothing can finish it before a reader comes. */
	still_pending(&cb);
	struct drain d = {p[0], SZ, 0, in};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, drainer, &d), 0);
	cr_assert_eq(st_wait(&cb, 20), SZ);
	pthread_join(t, NULL);
	cr_assert_eq(d.got, (size_t)SZ);
	cr_assert(kqt_check(in, 0, SZ));
	free(out);
	free(in);
}

Test(stream, large_socket_write_completes_while_drained)
{
	enum { SZ = 4 << 20 };
	int s[2];
	tcp_pair(s);
	unsigned char *out = malloc(SZ), *in = malloc(SZ);
	cr_assert(out && in);
	kqt_fill(out, 0, SZ);
	struct aiocb cb;
	kqt_cb(&cb, s[0], out, SZ, 0);
	cr_assert_eq(aio_write(&cb), 0);
	struct drain d = {s[1], SZ, 0, in};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, drainer, &d), 0);
	cr_assert_eq(st_wait(&cb, 20), SZ);
	pthread_join(t, NULL);
	cr_assert_eq(d.got, (size_t)SZ);
	cr_assert(kqt_check(in, 0, SZ));
	free(out);
	free(in);
}

Test(stream, eof_gives_zero)
{
	char buf[16];
	struct aiocb cb;
	/* Pipe already closed by the writer. */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	close(p[1]);
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(st_wait(&cb, 10), 0);
	/* Pipe closed while the read waits; data first, then EOF. */
	cr_assert_eq(pipe(p), 0);
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	xwrite(p[1], "xy", 2);
	cr_assert_eq(st_wait(&cb, 10), 2);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	close(p[1]);
	cr_assert_eq(st_wait(&cb, 10), 0);
	/* Socketpair: peer shuts down its writing side while a read waits. */
	int s[2];
	unix_pair(s);
	kqt_cb(&cb, s[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	cr_assert_eq(shutdown(s[1], SHUT_WR), 0);
	cr_assert_eq(st_wait(&cb, 10), 0);
	/* TCP: peer closes while a read waits. */
	tcp_pair(s);
	kqt_cb(&cb, s[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	close(s[1]);
	cr_assert_eq(st_wait(&cb, 10), 0);
}

Test(stream, write_to_closed_pipe_is_epipe)
{
	signal(SIGPIPE, SIG_IGN);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	close(p[0]);
	struct aiocb cb;
	kqt_cb(&cb, p[1], "data", 4, 0);
	cr_assert_eq(aio_write(&cb), 0);
	cr_assert_eq(st_wait(&cb, 10), -1);
	cr_assert_eq(errno, EPIPE);
}

static void cancelled(struct aiocb *cb)
{
	cr_assert_eq(aio_error(cb), ECANCELED);
	errno = 0;
	cr_assert_eq(aio_return(cb), -1);
	cr_assert_eq(errno, ECANCELED);
}

Test(stream, pending_pipe_read_is_cancellable)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char buf[16];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	still_pending(&cb);
	cr_assert_eq(aio_cancel(p[0], &cb), AIO_CANCELED);
	cancelled(&cb);
	cr_assert_eq(aio_cancel(p[0], &cb), AIO_ALLDONE);
	/* The cancelled read took nothing: the next read gets the data. */
	xwrite(p[1], "after", 5);
	char buf2[16];
	struct aiocb cb2;
	kqt_cb(&cb2, p[0], buf2, sizeof buf2, 0);
	cr_assert_eq(aio_read(&cb2), 0);
	cr_assert_eq(st_wait(&cb2, 10), 5);
	cr_assert(!memcmp(buf2, "after", 5));
}

Test(stream, cancelling_the_head_read_passes_data_to_the_next)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	char b1[8], b2[8], b3[8];
	struct aiocb c1, c2, c3;
	kqt_cb(&c1, p[0], b1, sizeof b1, 0);
	kqt_cb(&c2, p[0], b2, sizeof b2, 0);
	kqt_cb(&c3, p[0], b3, sizeof b3, 0);
	cr_assert_eq(aio_read(&c1), 0);
	cr_assert_eq(aio_read(&c2), 0);
	cr_assert_eq(aio_read(&c3), 0);
	still_pending(&c1);
	/* Cancel the one in the middle, then the head: only the last is left waiting. */
	cr_assert_eq(aio_cancel(p[0], &c2), AIO_CANCELED);
	cr_assert_eq(aio_cancel(p[0], &c1), AIO_CANCELED);
	cancelled(&c1);
	cancelled(&c2);
	cr_assert_eq(aio_error(&c3), EINPROGRESS);
	xwrite(p[1], "third", 5);
	cr_assert_eq(st_wait(&c3, 10), 5);
	cr_assert(!memcmp(b3, "third", 5));
}

Test(stream, cancel_all_pending_socket_reads)
{
	int s[2];
	tcp_pair(s);
	enum { N = 5 };
	struct aiocb cbs[N];
	char bufs[N][8];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], s[0], bufs[i], 8, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	/* A pending write on the same socket is not a read: it completes on its own. */
	struct aiocb w;
	kqt_cb(&w, s[0], "out", 3, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(st_wait(&w, 10), 3);
	still_pending(&cbs[0]);
	cr_assert_eq(aio_cancel(s[0], NULL), AIO_CANCELED);
	for (int i = 0; i < N; i++)
		cancelled(&cbs[i]);
	cr_assert_eq(aio_cancel(s[0], NULL), AIO_ALLDONE);
}

struct suspender {
	struct aiocb *cb;
	int r, err;
};

static void *suspend_thread(void *arg)
{
	struct suspender *s = arg;
	const struct aiocb *l[1] = {s->cb};
	struct timespec ts = {20, 0};
	s->r = aio_suspend(l, 1, &ts);
	s->err = errno;
	return NULL;
}

Test(stream, cancel_wakes_a_thread_suspended_on_the_read)
{
	int s[2];
	unix_pair(s);
	char buf[8];
	struct aiocb cb;
	kqt_cb(&cb, s[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	struct suspender su = {&cb, -2, 0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, suspend_thread, &su), 0);
	usleep(50 * 1000);
	cr_assert_eq(aio_cancel(s[0], &cb), AIO_CANCELED);
	pthread_join(t, NULL);
	cr_assert_eq(su.r, 0, "aio_suspend: %d (%s)", su.r, strerror(su.err));
	cancelled(&cb);
}

Test(stream, idle_socket_reads_hold_no_threads)
{
	enum { N = 1000 };
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N + 100) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < 2 * N + 100)
			cr_skip_test("RLIMIT_NOFILE %lu is too low", (unsigned long)rl.rlim_cur);
	}
	static int s[N][2];
	static struct aiocb cbs[N];
	static char bufs[N][8];
	int before = kqt_count_threads(NULL);
	for (int i = 0; i < N; i++) {
		unix_pair(s[i]);
		kqt_cb(&cbs[i], s[i][0], bufs[i], 8, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0, "aio_read %d: %s", i, strerror(errno));
	}
	usleep(200 * 1000);
	int during = kqt_count_threads(NULL);
	cr_assert_lt(during, 100, "%d threads for %d idle reads (%d before)", during, N, before);
	cr_assert_leq(during - before, 16, "%d threads for %d idle reads (%d before)", during, N,
		      before);
	for (int i = 0; i < N; i++)
		cr_assert_eq(aio_error(&cbs[i]), EINPROGRESS, "read %d finished without data", i);
	/* The idle reads occupy no worker: a file read meanwhile completes. */
	int fd = kqt_file(8192);
	char fbuf[4096];
	struct aiocb fcb;
	kqt_cb(&fcb, fd, fbuf, sizeof fbuf, 4096);
	cr_assert_eq(aio_read(&fcb), 0);
	cr_assert_eq(st_wait(&fcb, 10), (ssize_t)sizeof fbuf);
	cr_assert(kqt_check(fbuf, 4096, sizeof fbuf));
	close(fd);
	for (int i = 0; i < N; i++) {
		char rec[8];
		snprintf(rec, sizeof rec, "s%06u", (unsigned)i % 1000000);
		xwrite(s[i][1], rec, 8);
	}
	for (int i = 0; i < N; i++) {
		char rec[8];
		snprintf(rec, sizeof rec, "s%06u", (unsigned)i % 1000000);
		cr_assert_eq(st_wait(&cbs[i], 20), 8, "read %d", i);
		cr_assert(!memcmp(bufs[i], rec, 8), "read %d got the wrong data", i);
	}
	cr_assert_lt(kqt_count_threads(NULL), 100);
	for (int i = 0; i < N; i++) {
		close(s[i][0]);
		close(s[i][1]);
	}
}

Test(stream, unpollable_char_devices_work)
{
	/* /dev/zero and /dev/null cannot be waited on with epoll; they still work. */
	int z = open("/dev/zero", O_RDONLY);
	int n = open("/dev/null", O_RDWR);
	cr_assert(z >= 0 && n >= 0);
	enum { N = 4, SZ = 65536 };
	static unsigned char bufs[N][SZ];
	struct aiocb cbs[N];
	memset(bufs, 0xaa, sizeof bufs);
	for (int i = 0; i < N; i++) {
		kqt_cb(&cbs[i], z, bufs[i], SZ, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0, "aio_read /dev/zero: %s", strerror(errno));
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(st_wait(&cbs[i], 10), SZ);
		for (int k = 0; k < SZ; k++)
			cr_assert_eq(bufs[i][k], 0, "/dev/zero read %d byte %d", i, k);
	}
	char buf[100];
	struct aiocb cb;
	kqt_cb(&cb, n, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0, "aio_read /dev/null: %s", strerror(errno));
	cr_assert_eq(st_wait(&cb, 10), 0);
	kqt_cb(&cb, n, bufs[0], SZ, 0);
	cr_assert_eq(aio_write(&cb), 0, "aio_write /dev/null: %s", strerror(errno));
	cr_assert_eq(st_wait(&cb, 10), SZ);
	close(z);
	close(n);
}
