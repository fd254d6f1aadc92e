/* kqueue EVFILT_READ and EVFILT_WRITE on real fds: pipes, FIFOs, AF_UNIX and TCP
 * sockets, listening sockets, regular files, eventfds and ptys. data is what the
 * fd holds (bytes readable, space writable, backlog), EV_EOF comes on peer close,
 * NOTE_LOWAT holds a report back, and closing a watched fd never breaks the kq. */
#include "kqt.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/event.h>
#include <termios.h>
#include <time.h>

TestSuite(kq_fd, .timeout = 30);

#define ANY_DATA INT64_MIN /* fd_expect: do not check data */

static int kq_open(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

/* One change, no event list: 0 or the errno kevent failed with. */
static int kchange(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		   int64_t data, void *udata)
{
	struct kevent c;
	EV_SET(&c, ident, filter, flags, fflags, data, udata);
	return kevent(kq, &c, 1, NULL, 0, NULL) == 0 ? 0 : errno;
}

static void kadd(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		 int64_t data, void *udata)
{
	int e = kchange(kq, ident, filter, flags, fflags, data, udata);
	cr_assert_eq(e, 0, "change of %d on fd %d: %s", (int)filter, (int)ident, strerror(e));
}

/* Waits up to ms milliseconds for events (ms < 0: no timeout). */
static int kwait(int kq, struct kevent *ev, int n, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	memset(ev, 0, sizeof *ev * (size_t)n);
	int r = kevent(kq, NULL, 0, ev, n, ms < 0 ? NULL : &ts);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

/* Nothing is reported now (a short look). */
static void none(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 0);
	cr_assert_eq(n, 0, "expected no event, got %d: ident %d filter %d flags %#x data %lld", n,
		     (int)ev[0].ident, ev[0].filter, ev[0].flags, (long long)ev[0].data);
}

/* Nothing is reported within 50 ms. */
static void none_50ms(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 50);
	cr_assert_eq(n, 0, "expected no event, got %d: ident %d filter %d flags %#x data %lld", n,
		     (int)ev[0].ident, ev[0].filter, ev[0].flags, (long long)ev[0].data);
}

static void check_ev(const struct kevent *e, int fd, short filter, unsigned short flags,
		     int64_t data, void *udata)
{
	cr_assert_eq(e->ident, (uintptr_t)fd, "ident %d, want %d", (int)e->ident, fd);
	cr_assert_eq(e->filter, filter, "filter %d, want %d", e->filter, filter);
	cr_assert_eq(e->flags, flags, "fd %d filter %d: flags %#x, want %#x", fd, filter, e->flags,
		     flags);
	if (data != ANY_DATA)
		cr_assert_eq(e->data, data, "fd %d filter %d: data %lld, want %lld", fd, filter,
			     (long long)e->data, (long long)data);
	cr_assert_eq(e->udata, udata, "fd %d filter %d: udata %p, want %p", fd, filter, e->udata,
		     udata);
}

/* Logs what came, for a failing count. */
static void dump(const struct kevent *ev, int n)
{
	for (int i = 0; i < n; i++)
		cr_log_info("event %d: ident %lu filter %d flags %#x fflags %#x data %lld udata %p",
			    i, (unsigned long)ev[i].ident, ev[i].filter, ev[i].flags, ev[i].fflags,
			    (long long)ev[i].data, ev[i].udata);
}

/* Exactly one event comes within 5 s, and it is this one. */
static struct kevent fd_expect(int kq, int fd, short filter, unsigned short flags, int64_t data,
			       void *udata)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 5000);
	if (n != 1)
		dump(ev, n);
	cr_assert_eq(n, 1, "fd %d filter %d: %d events, want 1", fd, filter, n);
	check_ev(&ev[0], fd, filter, flags, data, udata);
	return ev[0];
}

/* A level-triggered knote whose data may arrive in pieces (TCP, ttys): waits
 * up to 5 s for a report with data == want, then checks that report. */
static void fd_expect_data(int kq, int fd, short filter, unsigned short flags, int64_t want,
			   void *udata)
{
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 5;
	struct kevent ev[4];
	int n;
	do {
		n = kwait(kq, ev, 4, 100);
		if (n == 1 && ev[0].data == want && ev[0].flags == flags)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec ||
		 (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	cr_assert_eq(n, 1, "fd %d filter %d: %d events, want 1", fd, filter, n);
	check_ev(&ev[0], fd, filter, flags, want, udata);
}

static void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

static void xread(int fd, size_t n)
{
	char buf[4096];
	while (n) {
		size_t k = n < sizeof buf ? n : sizeof buf;
		ssize_t r = read(fd, buf, k);
		cr_assert(r > 0, "read: %zd %s", r, strerror(errno));
		n -= (size_t)r;
	}
}

static void xpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
}

static void unix_pair(int s[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
}

static int tcp_listener(struct sockaddr_in *a, int backlog)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(l >= 0);
	*a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof *a;
	cr_assert_eq(bind(l, (struct sockaddr *)a, sizeof *a), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(l, backlog), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)a, &al), 0);
	return l;
}

static int tcp_connect(const struct sockaddr_in *a)
{
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(c >= 0);
	cr_assert_eq(connect(c, (const struct sockaddr *)a, sizeof *a), 0, "connect: %s",
		     strerror(errno));
	return c;
}

static void tcp_pair(int s[2])
{
	struct sockaddr_in a;
	int l = tcp_listener(&a, 4);
	s[0] = tcp_connect(&a);
	s[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(s[1] >= 0, "accept: %s", strerror(errno));
	int one = 1;
	setsockopt(s[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	close(l);
}

static int ua, ub, uc; /* udata markers */

/* ---- pipes ---- */

Test(kq_fd, pipe_read_data_is_bytes_available)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	char buf[100] = {0};
	xwrite(p[1], buf, 3);
	fd_expect(kq, p[0], EVFILT_READ, 0, 3, &ua);
	xwrite(p[1], buf, 100);
	fd_expect(kq, p[0], EVFILT_READ, 0, 103, &ua);
	xread(p[0], 50);
	fd_expect(kq, p[0], EVFILT_READ, 0, 53, &ua);
	xread(p[0], 53);
	none(kq);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_fd, pipe_read_eof_when_writer_closes)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "1234567", 7);
	fd_expect(kq, p[0], EVFILT_READ, 0, 7, &ua);
	close(p[1]);
	/* EOF with the bytes still to read, then EOF with none. */
	fd_expect(kq, p[0], EVFILT_READ, EV_EOF, 7, &ua);
	xread(p[0], 7);
	fd_expect(kq, p[0], EVFILT_READ, EV_EOF, 0, &ua);
	close(p[0]);
	close(kq);
}

Test(kq_fd, pipe_write_data_is_free_space)
{
	int kq = kq_open(), p[2];
	xpipe(p);
	int size = fcntl(p[1], F_GETPIPE_SZ);
	cr_assert_gt(size, 100);
	kadd(kq, p[1], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	fd_expect(kq, p[1], EVFILT_WRITE, 0, size, &ub);
	char buf[100] = {0};
	xwrite(p[1], buf, 100);
	fd_expect(kq, p[1], EVFILT_WRITE, 0, size - 100, &ub);
	xread(p[0], 40);
	fd_expect(kq, p[1], EVFILT_WRITE, 0, size - 60, &ub);
	close(p[0]);
	struct kevent e = fd_expect(kq, p[1], EVFILT_WRITE, EV_EOF, ANY_DATA, &ub);
	cr_assert_eq(e.fflags, 0);
	close(p[1]);
	close(kq);
}

Test(kq_fd, pipe_write_not_reported_when_full)
{
	int kq = kq_open(), p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	char buf[4096] = {0};
	while (write(p[1], buf, sizeof buf) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
	kadd(kq, p[1], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	none_50ms(kq);
	/* Room again once the reader takes a page or more. */
	xread(p[0], sizeof buf);
	struct kevent e = fd_expect(kq, p[1], EVFILT_WRITE, 0, ANY_DATA, &ub);
	cr_assert_gt(e.data, 0);
	close(p[0]);
	close(p[1]);
	close(kq);
}

/* ---- FIFO ---- */

Test(kq_fd, fifo_read_data_and_eof)
{
	char dir[] = "/dev/shm/kqaio-kqfd-XXXXXX";
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	char path[64];
	snprintf(path, sizeof path, "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo: %s", strerror(errno));
	int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert(r >= 0);
	int w = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert(w >= 0);
	unlink(path);
	rmdir(dir);

	int kq = kq_open();
	kadd(kq, r, EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	xwrite(w, "hello", 5);
	fd_expect(kq, r, EVFILT_READ, 0, 5, &ua);
	xwrite(w, "!!", 2);
	fd_expect(kq, r, EVFILT_READ, 0, 7, &ua);
	close(w);
	fd_expect(kq, r, EVFILT_READ, EV_EOF, 7, &ua);
	close(r);
	close(kq);
}

/* ---- sockets ---- */

static void socket_read_data(int s[2])
{
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	xwrite(s[1], "0123456789", 10);
	fd_expect_data(kq, s[0], EVFILT_READ, 0, 10, &ua);
	xwrite(s[1], "abcde", 5);
	fd_expect_data(kq, s[0], EVFILT_READ, 0, 15, &ua);
	xread(s[0], 15);
	none(kq);
	close(kq);
}

/* The peer's shutdown(SHUT_WR): EOF with the unread bytes in data, no error. */
static void socket_eof_on_shutdown(int s[2])
{
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(s[1], "abc", 3);
	fd_expect_data(kq, s[0], EVFILT_READ, 0, 3, &ua);
	cr_assert_eq(shutdown(s[1], SHUT_WR), 0);
	struct kevent e = fd_expect(kq, s[0], EVFILT_READ, EV_EOF, 3, &ua);
	cr_assert_eq(e.fflags, 0, "fflags %u", e.fflags);
	xread(s[0], 3);
	e = fd_expect(kq, s[0], EVFILT_READ, EV_EOF, 0, &ua);
	cr_assert_eq(e.fflags, 0, "fflags %u", e.fflags);
	close(kq);
}

/* The peer's close(): EOF. */
static void socket_eof_on_close(int s[2])
{
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	close(s[1]);
	s[1] = -1;
	struct kevent e = fd_expect(kq, s[0], EVFILT_READ, EV_EOF, 0, &ua);
	cr_assert_eq(e.fflags, 0, "fflags %u", e.fflags);
	close(kq);
}

static void socket_write_ready(int s[2])
{
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	struct kevent e = fd_expect(kq, s[0], EVFILT_WRITE, 0, ANY_DATA, &ub);
	cr_assert_gt(e.data, 0);
	close(kq);
}

Test(kq_fd, unix_read_data)
{
	int s[2];
	unix_pair(s);
	socket_read_data(s);
	close(s[0]);
	close(s[1]);
}

Test(kq_fd, unix_read_eof_on_shutdown)
{
	int s[2];
	unix_pair(s);
	socket_eof_on_shutdown(s);
	close(s[0]);
	close(s[1]);
}

Test(kq_fd, unix_read_eof_on_close)
{
	int s[2];
	unix_pair(s);
	socket_eof_on_close(s);
	close(s[0]);
}

Test(kq_fd, unix_write_ready_then_eof_on_close)
{
	int s[2];
	unix_pair(s);
	socket_write_ready(s);
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	struct kevent e = fd_expect(kq, s[0], EVFILT_WRITE, 0, ANY_DATA, &ub);
	cr_assert_gt(e.data, 0);
	/* A closed AF_UNIX peer can take nothing more: EOF on the write side too. */
	close(s[1]);
	fd_expect(kq, s[0], EVFILT_WRITE, EV_EOF, ANY_DATA, &ub);
	close(s[0]);
	close(kq);
}

Test(kq_fd, tcp_read_data)
{
	int s[2];
	tcp_pair(s);
	socket_read_data(s);
	close(s[0]);
	close(s[1]);
}

Test(kq_fd, tcp_read_eof_on_shutdown)
{
	int s[2];
	tcp_pair(s);
	socket_eof_on_shutdown(s);
	close(s[0]);
	close(s[1]);
}

Test(kq_fd, tcp_read_eof_on_close)
{
	int s[2];
	tcp_pair(s);
	socket_eof_on_close(s);
	close(s[0]);
}

Test(kq_fd, tcp_write_ready)
{
	int s[2];
	tcp_pair(s);
	socket_write_ready(s);
	close(s[0]);
	close(s[1]);
}

/* A reset connection: EOF, and the error is still there for the program's
 * read. (FreeBSD also copies it into fflags; Linux cannot read it without
 * clearing it, so fflags is 0.) */
Test(kq_fd, tcp_reset_reports_eof_and_leaves_the_error_to_read)
{
	int s[2];
	tcp_pair(s);
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	cr_assert_eq(setsockopt(s[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(s[1]);
	fd_expect(kq, s[0], EVFILT_READ, EV_EOF, 0, &ua);
	char c;
	cr_assert_eq(read(s[0], &c, 1), -1, "the reset read as EOF: kqueue took the error");
	cr_assert_eq(errno, ECONNRESET, "%s", strerror(errno));
	close(s[0]);
	close(kq);
}

/* A refused non-blocking connect: EVFILT_WRITE reports EV_EOF, and the
 * program's getsockopt(SO_ERROR) still finds ECONNREFUSED, as on FreeBSD.
 * libevent's bufferevent_connect_fail took a refused connect for a success
 * when the report had consumed the error. */
Test(kq_fd, refused_connect_leaves_the_error_for_getsockopt)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	int bound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* bound, never listening */
	cr_assert_eq(bind(bound, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
	cr_assert_eq(getsockname(bound, (struct sockaddr *)&a, &al), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), -1);
	cr_assert_eq(errno, EINPROGRESS, "connect: %s", strerror(errno));
	int kq = kq_open();
	kadd(kq, c, EVFILT_WRITE, EV_ADD, 0, 0, &ua);
	struct kevent e = fd_expect(kq, c, EVFILT_WRITE, EV_EOF, ANY_DATA, &ua);
	cr_assert_eq(e.fflags, 0, "fflags %u", e.fflags);
	/* Level-triggered: reported again, and reporting twice takes nothing. */
	fd_expect(kq, c, EVFILT_WRITE, EV_EOF, ANY_DATA, &ua);
	int err = 0;
	socklen_t len = sizeof err;
	cr_assert_eq(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	cr_assert_eq(err, ECONNREFUSED, "SO_ERROR %d (%s), want ECONNREFUSED", err, strerror(err));
	close(c);
	close(bound);
	close(kq);
}

Test(kq_fd, tcp_listen_data_is_backlog)
{
	struct sockaddr_in a;
	int l = tcp_listener(&a, 8);
	int kq = kq_open();
	kadd(kq, l, EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	int c1 = tcp_connect(&a);
	int c2 = tcp_connect(&a);
	fd_expect_data(kq, l, EVFILT_READ, 0, 2, &ua);
	int s1 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(s1 >= 0, "accept: %s", strerror(errno));
	fd_expect(kq, l, EVFILT_READ, 0, 1, &ua);
	int s2 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(s2 >= 0, "accept: %s", strerror(errno));
	none(kq);
	close(s1);
	close(s2);
	close(c1);
	close(c2);
	close(l);
	close(kq);
}

/* ---- regular files, eventfds, ptys ---- */

Test(kq_fd, file_read_data_is_bytes_to_eof)
{
	int fd = kqt_file(1000);
	int kq = kq_open();
	kadd(kq, fd, EVFILT_READ, EV_ADD, 0, 0, &ua);
	fd_expect(kq, fd, EVFILT_READ, 0, 1000, &ua);
	/* Always ready: reported on every call. */
	fd_expect(kq, fd, EVFILT_READ, 0, 1000, &ua);
	cr_assert_eq(lseek(fd, 400, SEEK_SET), 400);
	fd_expect(kq, fd, EVFILT_READ, 0, 600, &ua);
	char buf[500];
	kqt_fill(buf, 1000, sizeof buf);
	cr_assert_eq(pwrite(fd, buf, sizeof buf, 1000), (ssize_t)sizeof buf);
	fd_expect(kq, fd, EVFILT_READ, 0, 1100, &ua);
	cr_assert_eq(read(fd, buf, 100), 100);
	fd_expect(kq, fd, EVFILT_READ, 0, 1000, &ua);
	close(fd);
	close(kq);
}

Test(kq_fd, file_write_always_ready)
{
	int fd = kqt_file(100);
	int kq = kq_open();
	kadd(kq, fd, EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	fd_expect(kq, fd, EVFILT_WRITE, 0, ANY_DATA, &ub);
	fd_expect(kq, fd, EVFILT_WRITE, 0, ANY_DATA, &ub);
	close(fd);
	close(kq);
}

Test(kq_fd, eventfd_read_after_write)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert(efd >= 0);
	int kq = kq_open();
	kadd(kq, efd, EVFILT_READ, EV_ADD, 0, 0, &ua);
	none_50ms(kq);
	uint64_t v = 5;
	xwrite(efd, &v, sizeof v);
	fd_expect(kq, efd, EVFILT_READ, 0, ANY_DATA, &ua);
	cr_assert_eq(read(efd, &v, sizeof v), (ssize_t)sizeof v);
	cr_assert_eq(v, 5);
	none(kq);
	kadd(kq, efd, EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	fd_expect(kq, efd, EVFILT_WRITE, 0, ANY_DATA, &ub);
	close(efd);
	close(kq);
}

Test(kq_fd, pty_read_after_write)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		cr_skip_test("no pty: %s", strerror(errno));
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	char *name = ptsname(m);
	cr_assert_not_null(name);
	int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert(sl >= 0, "open %s: %s", name, strerror(errno));
	struct termios t;
	cr_assert_eq(tcgetattr(sl, &t), 0);
	cfmakeraw(&t);
	cr_assert_eq(tcsetattr(sl, TCSANOW, &t), 0);

	int kq = kq_open();
	kadd(kq, sl, EVFILT_READ, EV_ADD, 0, 0, &ua);
	kadd(kq, m, EVFILT_READ, EV_ADD, 0, 0, &ub);
	none_50ms(kq);
	/* Master to slave. */
	xwrite(m, "abc", 3);
	fd_expect_data(kq, sl, EVFILT_READ, 0, 3, &ua);
	xread(sl, 3);
	none_50ms(kq);
	/* Slave to master. */
	xwrite(sl, "xy", 2);
	fd_expect_data(kq, m, EVFILT_READ, 0, 2, &ub);
	xread(m, 2);
	none_50ms(kq);
	close(sl);
	close(m);
	close(kq);
}

/* ---- NOTE_LOWAT ---- */

Test(kq_fd, lowat_holds_report_until_mark)
{
	int s[2];
	unix_pair(s);
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, NOTE_LOWAT, 10, &ua);
	xwrite(s[1], "12345", 5);
	none_50ms(kq);
	xwrite(s[1], "67890", 5);
	struct kevent e = fd_expect(kq, s[0], EVFILT_READ, 0, 10, &ua);
	cr_assert_eq(e.fflags, 0, "fflags %#x", e.fflags);
	close(s[0]);
	close(s[1]);
	close(kq);
}

/* ---- READ and WRITE on one fd ---- */

static void both(int kq, int fd, struct kevent out[2])
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 5000);
	cr_assert_eq(n, 2, "fd %d: %d events, want READ and WRITE", fd, n);
	int r = ev[0].filter == EVFILT_READ ? 0 : 1;
	out[0] = ev[r];
	out[1] = ev[!r];
}

Test(kq_fd, read_and_write_on_one_fd)
{
	int s[2];
	unix_pair(s);
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	/* Writable only. */
	struct kevent e = fd_expect(kq, s[0], EVFILT_WRITE, 0, ANY_DATA, &ub);
	cr_assert_gt(e.data, 0);
	xwrite(s[1], "1234", 4);
	struct kevent rw[2];
	both(kq, s[0], rw);
	check_ev(&rw[0], s[0], EVFILT_READ, 0, 4, &ua);
	check_ev(&rw[1], s[0], EVFILT_WRITE, 0, ANY_DATA, &ub);
	cr_assert_gt(rw[1].data, 0);
	/* Without WRITE, READ goes on alone. */
	kadd(kq, s[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
	fd_expect(kq, s[0], EVFILT_READ, 0, 4, &ua);
	fd_expect(kq, s[0], EVFILT_READ, 0, 4, &ua);
	xwrite(s[1], "56", 2);
	fd_expect(kq, s[0], EVFILT_READ, 0, 6, &ua);
	/* And the other way round. */
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD, 0, 0, &uc);
	both(kq, s[0], rw);
	check_ev(&rw[0], s[0], EVFILT_READ, 0, 6, &ua);
	check_ev(&rw[1], s[0], EVFILT_WRITE, 0, ANY_DATA, &uc);
	kadd(kq, s[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	fd_expect(kq, s[0], EVFILT_WRITE, 0, ANY_DATA, &uc);
	fd_expect(kq, s[0], EVFILT_WRITE, 0, ANY_DATA, &uc);
	kadd(kq, s[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
	none(kq);
	close(s[0]);
	close(s[1]);
	close(kq);
}

/* A level-triggered READ next to an EV_CLEAR WRITE on the same fd: each
 * keeps its own mode. */
Test(kq_fd, level_read_beside_clear_write)
{
	int s[2];
	unix_pair(s);
	int kq = kq_open();
	kadd(kq, s[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, &ub);
	fd_expect(kq, s[0], EVFILT_WRITE, EV_CLEAR, ANY_DATA, &ub);
	none_50ms(kq);
	kadd(kq, s[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	/* The READ has nothing to say. The shared registration changed, so the
	 * cleared WRITE may be told once more (BSD would not); not again after. */
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 50);
	if (n) {
		cr_log_info("the cleared WRITE came again when READ was added");
		cr_assert_eq(n, 1);
		check_ev(&ev[0], s[0], EVFILT_WRITE, EV_CLEAR, ANY_DATA, &ub);
	}
	none_50ms(kq);
	xwrite(s[1], "abc", 3);
	/* READ at least, WRITE perhaps (the buffer state changed). */
	n = kwait(kq, ev, 4, 5000);
	cr_assert(n >= 1 && n <= 2, "%d events", n);
	int ri = ev[0].filter == EVFILT_READ ? 0 : 1;
	cr_assert(ri < n, "no READ event");
	check_ev(&ev[ri], s[0], EVFILT_READ, 0, 3, &ua);
	/* Level-triggered: READ again and again while the bytes sit there;
	 * the cleared WRITE does not come back without a change. */
	for (int i = 0; i < 3; i++)
		fd_expect(kq, s[0], EVFILT_READ, 0, 3, &ua);
	xread(s[0], 3);
	none_50ms(kq);
	close(s[0]);
	close(s[1]);
	close(kq);
}

/* ---- closed and bad fds ---- */

Test(kq_fd, closed_fd_leaves_kq_working_and_number_reusable)
{
	int kq = kq_open(), a[2], b[2];
	xpipe(a);
	xpipe(b);
	int a0 = a[0];
	kadd(kq, a[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	kadd(kq, b[0], EVFILT_READ, EV_ADD, 0, 0, &ub);
	xwrite(a[1], "xx", 2);
	fd_expect(kq, a[0], EVFILT_READ, 0, 2, &ua);
	close(a[0]);
	close(a[1]);
	/* The closed fd reports nothing and does not get in the way. */
	none_50ms(kq);
	xwrite(b[1], "12345", 5);
	fd_expect(kq, b[0], EVFILT_READ, 0, 5, &ub);

	/* The number comes back for a new pipe: register it afresh. */
	int c[2];
	xpipe(c);
	cr_assert_eq(c[0], a0, "the new pipe took fd %d, not %d", c[0], a0);
	kadd(kq, c[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	xread(b[0], 5);
	none_50ms(kq);
	xwrite(c[1], "abcd", 4);
	fd_expect(kq, c[0], EVFILT_READ, 0, 4, &uc);
	xwrite(b[1], "z", 1);
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, 5000);
	if (n == 1) /* the other may come in the next call */
		n += kwait(kq, ev + 1, 3, 5000);
	cr_assert_eq(n, 2);
	int ci = ev[0].ident == (uintptr_t)c[0] ? 0 : 1;
	check_ev(&ev[ci], c[0], EVFILT_READ, 0, 4, &uc);
	check_ev(&ev[!ci], b[0], EVFILT_READ, 0, 1, &ub);
	close(c[0]);
	close(c[1]);
	close(b[0]);
	close(b[1]);
	close(kq);
}

/* On BSD closing an fd deletes its knotes: the new file at that number gets a
 * new knote with the flags it is added with, not the old knote's. */
Test(kq_fd, reused_fd_number_takes_new_flags)
{
	int kq = kq_open(), a[2];
	xpipe(a);
	int a0 = a[0];
	kadd(kq, a[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, &ua);
	xwrite(a[1], "x", 1);
	fd_expect(kq, a[0], EVFILT_READ, EV_CLEAR, 1, &ua);
	close(a[0]);
	close(a[1]);
	int c[2];
	xpipe(c);
	cr_assert_eq(c[0], a0, "the new pipe took fd %d, not %d", c[0], a0);
	kadd(kq, c[0], EVFILT_READ, EV_ADD, 0, 0, &uc);
	xwrite(c[1], "ab", 2);
	/* Level-triggered now: reported on each call while the bytes wait. */
	fd_expect(kq, c[0], EVFILT_READ, 0, 2, &uc);
	fd_expect(kq, c[0], EVFILT_READ, 0, 2, &uc);
	close(c[0]);
	close(c[1]);
	close(kq);
}

Test(kq_fd, delete_on_closed_fd_is_ebadf)
{
	int kq = kq_open(), a[2], d[2];
	xpipe(a);
	kadd(kq, a[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	kadd(kq, a[1], EVFILT_WRITE, EV_ADD, 0, 0, &ub);
	fd_expect(kq, a[1], EVFILT_WRITE, 0, ANY_DATA, &ub);
	close(a[0]);
	close(a[1]);
	cr_assert(fcntl(a[0], F_GETFD) < 0 && fcntl(a[1], F_GETFD) < 0);

	/* With room: an EV_ERROR entry. */
	struct kevent c, ev[2];
	EV_SET(&c, a[0], EVFILT_READ, EV_DELETE, 0, 0, &uc);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, &c, 1, ev, 2, NULL), 1);
	check_ev(&ev[0], a[0], EVFILT_READ, EV_ERROR, EBADF, &uc);
	/* Without: the call fails. */
	cr_assert_eq(kchange(kq, a[1], EVFILT_WRITE, EV_DELETE, 0, 0, NULL), EBADF);
	/* A closed fd that never had a knote. */
	xpipe(d);
	close(d[0]);
	close(d[1]);
	cr_assert_eq(kchange(kq, d[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), EBADF);

	/* The kq still works. */
	int p[2];
	xpipe(p);
	kadd(kq, p[0], EVFILT_READ, EV_ADD, 0, 0, &ua);
	xwrite(p[1], "q", 1);
	fd_expect(kq, p[0], EVFILT_READ, 0, 1, &ua);
	close(p[0]);
	close(p[1]);
	close(kq);
}

Test(kq_fd, add_on_bad_fd_is_ebadf)
{
	int kq = kq_open();
	cr_assert(fcntl(9999, F_GETFD) < 0, "fd 9999 is open");
	cr_assert_eq(kchange(kq, 9999, EVFILT_READ, EV_ADD, 0, 0, NULL), EBADF);
	cr_assert_eq(kchange(kq, 9999, EVFILT_WRITE, EV_ADD, 0, 0, NULL), EBADF);
	cr_assert_eq(kchange(kq, (uintptr_t)INT_MAX + 1, EVFILT_READ, EV_ADD, 0, 0, NULL), EBADF);
	struct kevent c, ev[2];
	EV_SET(&c, 9999, EVFILT_READ, EV_ADD, 0, 0, &ua);
	memset(ev, 0, sizeof ev);
	cr_assert_eq(kevent(kq, &c, 1, ev, 2, NULL), 1);
	check_ev(&ev[0], 9999, EVFILT_READ, EV_ERROR, EBADF, &ua);
	/* Nothing was added. */
	cr_assert_eq(kchange(kq, 9999, EVFILT_READ, EV_DELETE, 0, 0, NULL), EBADF);
	none(kq);
	close(kq);
}

/* One call reports every ready event it has room for, however many epoll
 * holds (libevent's main/many_events_slow_add: 70 ready, room for 128, 64
 * came back); with less room, calls take turns, none ready is passed over. */
Test(kq_fd, one_call_reports_all_the_ready_fds_it_has_room_for)
{
	enum { N = 300, ROOM = 120 };
	int s[N], kq = kq_open();
	for (int i = 0; i < N; i++) {
		s[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		cr_assert(s[i] >= 0, "socket: %s", strerror(errno));
		kadd(kq, s[i], EVFILT_WRITE, EV_ADD, 0, 0, (void *)(uintptr_t)i);
	}
	static struct kevent ev[N + 8];
	static const struct timespec zero;
	cr_assert_eq(kevent(kq, NULL, 0, ev, N + 8, &zero), N, "polling");
	cr_assert_eq(kevent(kq, NULL, 0, ev, N + 8, NULL), N, "waiting");
	/* Room for fewer: three calls see every fd once (300 = 120 + 120 + 60). */
	unsigned char seen[N] = {0};
	int total = 0;
	for (int call = 0; call < 3; call++) {
		int r = kevent(kq, NULL, 0, ev, ROOM, &zero);
		cr_assert_eq(r, ROOM, "call %d: %d events", call, r);
		for (int k = 0; k < r; k++) {
			uintptr_t i = (uintptr_t)ev[k].udata;
			cr_assert(i < N);
			total += !seen[i];
			seen[i] = 1;
		}
	}
	cr_assert_eq(total, N, "three calls of %d saw %d distinct fds of %d", ROOM, total, N);
	for (int i = 0; i < N; i++)
		close(s[i]);
	close(kq);
}
