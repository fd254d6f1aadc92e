/* Every job ends exactly once, whatever the program does around it: the cases
 * outside suites and hostile programs found (issue 12). Each failed before
 * its fix, on both backends. */
#include "kqt.h"

#include <limits.h>
#include <poll.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(once, .timeout = 30);

static void xpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
}

static void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

/* Waits up to secs seconds for cb; returns aio_return's value. */
static ssize_t wait_for(struct aiocb *cb, int secs)
{
	const struct aiocb *l[1] = {cb};
	struct timespec ts = {secs, 0};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, &ts);
		cr_assert(r == 0 || errno == EINTR, "job on fd %d not done after %d s (%s)",
			  cb->aio_fildes, secs, strerror(errno));
	}
	return aio_return(cb);
}

/* aio_fsync ignores every field but aio_fildes and aio_sigevent (LTP aio_fsync cases). */
Test(once, fsync_ignores_reqprio)
{
	int fd = kqt_file(4096);
	struct aiocb cb;
	kqt_cb(&cb, fd, NULL, 0, 0);
	cb.aio_reqprio = -1;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), 0, "aio_fsync: %s", strerror(errno));
	cr_assert_eq(wait_for(&cb, 10), 0);
	cb.aio_reqprio = AIO_PRIO_DELTA_MAX + 1;
	cr_assert_eq(aio_fsync(O_DSYNC, &cb), 0, "aio_fsync: %s", strerror(errno));
	cr_assert_eq(wait_for(&cb, 10), 0);
	close(fd);
}

/* An aiocb whose submission failed names no request: aio_suspend waits for
 * the one that is in flight, not returning at once. */
Test(once, suspend_ignores_failed_submission)
{
	int p[2];
	xpipe(p);
	char buf[8], bad[8];
	struct aiocb live, dead;
	kqt_cb(&live, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&live), 0);
	kqt_cb(&dead, -1, bad, sizeof bad, 0);
	cr_assert_eq(aio_read(&dead), -1);
	cr_assert_eq(errno, EBADF);
	const struct aiocb *l[2] = {&dead, &live};
	struct timespec ts = {0, 100 * 1000 * 1000};
	cr_assert_eq(aio_suspend(l, 2, &ts), -1, "aio_suspend returned with nothing done");
	cr_assert_eq(errno, EAGAIN);
	xwrite(p[1], "x", 1);
	cr_assert_eq(aio_suspend(l, 2, NULL), 0);
	cr_assert_eq(wait_for(&live, 10), 1);
	close(p[0]);
	close(p[1]);
}

/* Two lists in flight at once from one array: each has its EVFILT_LIO (level
 * triggered, as on FreeBSD: reported until the list is reaped). */
Test(once, two_lists_one_array_two_events)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	int a[2], b[2];
	xpipe(a);
	xpipe(b);
	char ba[4], bb[4];
	struct aiocb ca, cbb;
	kqt_cb(&ca, a[0], ba, sizeof ba, 0);
	ca.aio_lio_opcode = LIO_READ;
	kqt_cb(&cbb, b[0], bb, sizeof bb, 0);
	cbb.aio_lio_opcode = LIO_READ;
	struct aiocb *list[1] = {&ca};
	struct sigevent sev = {.sigev_notify = SIGEV_KEVENT, .sigev_notify_kqueue = kq};
	sev.sigev_value.sival_int = 1;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sev), 0, "%s", strerror(errno));
	list[0] = &cbb;
	sev.sigev_value.sival_int = 2;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sev), 0, "%s", strerror(errno));
	xwrite(a[1], "a", 1);
	xwrite(b[1], "b", 1);
	int seen = 0;
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 10;
	while (seen != 3) {
		struct kevent ev[4];
		struct timespec ts = {0, 100 * 1000 * 1000};
		int n = kevent(kq, NULL, 0, ev, 4, &ts);
		cr_assert(n >= 0, "kevent: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(ev[i].filter, EVFILT_LIO);
			cr_assert_eq(ev[i].ident, (uintptr_t)list);
			int id = (int)(intptr_t)ev[i].udata;
			cr_assert(id == 1 || id == 2, "udata %d", id);
			seen |= id;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		cr_assert(now.tv_sec < end.tv_sec, "EVFILT_LIO events seen: mask %d of 3", seen);
	}
	cr_assert_eq(aio_return(&ca), 1);
	cr_assert_eq(aio_return(&cbb), 1);
	close(kq);
	close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

struct kwait {
	int kq, n, err;
	struct timespec *ts;
};

static void *kevent_thread(void *arg)
{
	struct kwait *w = arg;
	struct kevent ev;
	w->n = kevent(w->kq, NULL, 0, &ev, 1, w->ts);
	w->err = errno;
	return NULL;
}

/* Joins t within secs seconds, or fails the test. */
static void join_within(pthread_t t, int secs, const char *what)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += secs;
	int r = pthread_timedjoin_np(t, NULL, &dl);
	cr_assert_eq(r, 0, "%s: still blocked after %d s", what, secs);
}

/* A timeout near LONG_MAX is a long wait, not an overflow (UBSan) or none. */
Test(once, kevent_timeout_near_long_max)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	struct kevent ch[2];
	int p[2];
	xpipe(p);
	EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
	/* Readiness that reports nothing (a disabled-on-fire knote's second edge)
	 * makes the wait go round again, where it computes what is left. */
	EV_SET(&ch[1], p[0], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0, NULL);
	cr_assert_eq(kevent(kq, ch, 2, NULL, 0, NULL), 0);
	struct timespec ts = {LONG_MAX, 999999999};
	struct kwait w = {.kq = kq, .ts = &ts};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, kevent_thread, &w), 0);
	usleep(50 * 1000);
	EV_SET(&ch[0], 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
	cr_assert_eq(kevent(kq, ch, 1, NULL, 0, NULL), 0);
	join_within(t, 10, "kevent");
	cr_assert_eq(w.n, 1, "kevent returned %d (%s)", w.n, strerror(w.err));
	struct timespec ts2 = {LONG_MAX, 999999999}, zero = {0, 0};
	struct kevent ev;
	cr_assert_eq(kevent(kq, NULL, 0, &ev, 1, &zero), 0);
	xwrite(p[1], "x", 1);
	cr_assert_eq(kevent(kq, NULL, 0, &ev, 1, &ts2), 1);
	cr_assert_eq(ev.ident, (uintptr_t)p[0]);
	/* aio_suspend and aio_waitcomplete take such timeouts too. */
	char buf[1];
	struct aiocb cb;
	kqt_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	const struct aiocb *l[1] = {&cb};
	cr_assert_eq(aio_suspend(l, 1, &ts2), 0);
	struct aiocb *got;
	cr_assert_eq(aio_waitcomplete(&got, &ts2), 1);
	cr_assert_eq(got, &cb);
	close(kq);
	close(p[0]);
	close(p[1]);
}

/* close(kq) wakes a thread blocked in kevent() on it, as FreeBSD does. */
Test(once, close_wakes_kevent)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	struct kwait w = {.kq = kq, .ts = NULL};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, kevent_thread, &w), 0);
	usleep(100 * 1000);
	cr_assert_eq(close(kq), 0);
	join_within(t, 10, "kevent after close(kq)");
	cr_assert_eq(w.n, -1);
	cr_assert_eq(w.err, EBADF, "kevent: %s", strerror(w.err));
}

/* Puts a fresh file or socket at number n (closed before), returns n. */
static int at_number(int fd, int n)
{
	if (fd != n) {
		cr_assert_eq(dup2(fd, n), n, "dup2: %s", strerror(errno));
		close(fd);
	}
	return n;
}

/* The server pattern: a socket closed while an aio_read waits on it, and a
 * new one accept() gives the same number. The new one's reads work; the old
 * job held its socket and ends when that one has data (FreeBSD's file
 * reference per job). */
Test(once, closed_socket_number_reused)
{
	int s[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	char ob[8] = "", nb[8] = "";
	struct aiocb old, fresh;
	kqt_cb(&old, s[0], ob, sizeof ob, 0);
	cr_assert_eq(aio_read(&old), 0);
	usleep(20 * 1000); /* armed in epoll */
	int n = s[0];
	close(n);
	int t[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t), 0);
	t[0] = at_number(t[0], n);
	xwrite(t[1], "new", 3);
	kqt_cb(&fresh, n, nb, sizeof nb, 0);
	cr_assert_eq(aio_read(&fresh), 0, "aio_read: %s", strerror(errno));
	cr_assert_eq(wait_for(&fresh, 5), 3);
	cr_assert_str_eq(nb, "new");
	cr_assert_eq(aio_error(&old), EINPROGRESS);
	xwrite(s[1], "old", 3);
	cr_assert_eq(wait_for(&old, 5), 3);
	cr_assert_str_eq(ob, "old");
	/* And a peer that goes away ends a waiting read with end of file. */
	kqt_cb(&old, n, ob, sizeof ob, 0);
	cr_assert_eq(aio_read(&old), 0);
	usleep(20 * 1000);
	close(t[1]);
	cr_assert_eq(wait_for(&old, 5), 0);
	close(n);
	close(s[1]);
}

/* Reads queued on a pipe behind one that waits read the pipe they named,
 * after its number is closed and given to another pipe. */
Test(once, queued_stream_reads_keep_their_pipe)
{
	int a[2], b[2];
	xpipe(a);
	enum { N = 8 };
	char buf[N][2];
	struct aiocb cb[N];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cb[i], a[0], buf[i], 1, 0);
		cr_assert_eq(aio_read(&cb[i]), 0);
	}
	int n = a[0];
	close(n);
	xpipe(b);
	b[0] = at_number(b[0], n);
	xwrite(b[1], "BBBBBBBB", N);
	xwrite(a[1], "AAAAAAAA", N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_for(&cb[i], 5), 1);
		cr_assert_eq(buf[i][0], 'A', "read %d got %c", i, buf[i][0]);
	}
	char rest[N];
	cr_assert_eq(read(n, rest, N), N, "the new pipe's data was taken");
	close(n), close(a[1]), close(b[1]);
}

/* Appends queued behind a long one land in the file their fd named at
 * submission, not in the one the number names when they run. */
Test(once, queued_appends_keep_their_file)
{
	char pa[] = "/dev/shm/kqaio-once-a-XXXXXX", pb[] = "/dev/shm/kqaio-once-b-XXXXXX";
	int fa = mkstemp(pa), fb = mkstemp(pb);
	cr_assert(fa >= 0 && fb >= 0);
	unlink(pa), unlink(pb);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fa);
	int n = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert(n >= 0);
	enum { BIG = 64 << 20, N = 32 };
	char *big = malloc(BIG);
	cr_assert(big);
	memset(big, 'a', BIG);
	struct aiocb cb[N + 1];
	kqt_cb(&cb[0], n, big, BIG, 0);
	cr_assert_eq(aio_write(&cb[0]), 0);
	char small[N];
	for (int i = 1; i <= N; i++) {
		small[i - 1] = 'a';
		kqt_cb(&cb[i], n, &small[i - 1], 1, 0);
		cr_assert_eq(aio_write(&cb[i]), 0);
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fb);
	close(n);
	at_number(open(path, O_WRONLY | O_APPEND | O_CLOEXEC), n);
	for (int i = 0; i <= N; i++)
		cr_assert_eq(wait_for(&cb[i], 20), i ? 1 : BIG);
	struct stat sa, sb;
	cr_assert_eq(fstat(fa, &sa), 0);
	cr_assert_eq(fstat(fb, &sb), 0);
	cr_assert_eq(sb.st_size, 0, "%ld bytes went to the file opened after submission",
		     (long)sb.st_size);
	cr_assert_eq(sa.st_size, BIG + N);
	free(big);
	close(n), close(fa), close(fb);
}

/* Reads queued in the pool behind a long one (one worker) read the file
 * their fd named at submission. */
Test(once, queued_pool_reads_keep_their_file)
{
	setenv("KQAIO_THREADS", "1", 1);
	setenv("KQAIO_INLINE", "0", 1);
	int fa = kqt_file(4096), fb = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	cr_assert(fb >= 0);
	int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	enum { BIG = 256 << 20, N = 64 };
	char *big = malloc(BIG);
	cr_assert(big);
	struct aiocb first, cb[N];
	kqt_cb(&first, z, big, BIG, 0);
	cr_assert_eq(aio_read(&first), 0);
	static char buf[N][64];
	for (int i = 0; i < N; i++) {
		kqt_cb(&cb[i], fa, buf[i], sizeof buf[i], 64 * i);
		cr_assert_eq(aio_read(&cb[i]), 0);
	}
	close(fa);
	at_number(fb, fa);
	cr_assert_eq(wait_for(&first, 20), BIG);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_for(&cb[i], 20), 64, "read %d: %s", i, strerror(errno));
		cr_assert(kqt_check(buf[i], 64 * i, 64), "read %d has another file's bytes", i);
	}
	free(big);
	close(fa), close(z);
}

/* A datagram socket that poll calls full (a quarter of the send buffer used)
 * still takes a write: aio_write goes through at once, as write(2) would
 * (LTP aio_cancel/5-1, 7-1). */
Test(once, unix_dgram_write_goes_at_once)
{
	int s[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
	static char big[32768];
	int k = 0;
	struct pollfd p = {.fd = s[0], .events = POLLOUT};
	while (k < 4 && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
		xwrite(s[0], big, sizeof big);
		k++;
	}
	cr_assert(poll(&p, 1, 0) == 0, "the socket still polls writable after %d datagrams", k);
	char msg[100] = "hello";
	struct aiocb cb;
	kqt_cb(&cb, s[0], msg, sizeof msg, 0);
	cr_assert_eq(aio_write(&cb), 0, "aio_write: %s", strerror(errno));
	cr_assert_eq(wait_for(&cb, 2), (ssize_t)sizeof msg);
	close(s[0]);
	close(s[1]);
}

/* aio_error, aio_suspend and aio_return are async-signal-safe: a completion
 * signal's handler reaps the jobs that are done, while the program submits
 * more (the handler interrupts submissions that hold the engine's lock). It
 * looks at every job, not only its own: ThreadSanitizer keeps one pending
 * signal per number, so some of the 200 queued signals never arrive there. */
enum { SIGJOBS = 200 };
static struct aiocb sigcbs[SIGJOBS];
static ssize_t sigres[SIGJOBS];
static int sigerr[SIGJOBS];
static int sigreaped;

static void reap_in_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	int saved = errno;
	struct aiocb *own = si->si_code == SI_ASYNCIO ? si->si_value.sival_ptr : NULL;
	const struct aiocb *l[1] = {own};
	if (own && __atomic_load_n(&sigres[own - sigcbs], __ATOMIC_SEQ_CST) == -2 &&
	    aio_error(own) != EINPROGRESS && aio_suspend(l, 1, NULL) != 0)
		sigerr[own - sigcbs] = -1; /* a done job must not make it wait */
	for (int i = 0; i < SIGJOBS; i++) {
		ssize_t unclaimed = -2;
		int e = aio_error(&sigcbs[i]);
		if (e == EINPROGRESS || e < 0 /* not submitted yet */ ||
		    !__atomic_compare_exchange_n(&sigres[i], &unclaimed, -3, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_SEQ_CST))
			continue;
		if (!sigerr[i])
			sigerr[i] = e;
		sigres[i] = aio_return(&sigcbs[i]);
		__atomic_add_fetch(&sigreaped, 1, __ATOMIC_SEQ_CST);
	}
	errno = saved;
}

Test(once, handler_reaps_its_job)
{
	int fd = kqt_file_in(kqt_disk_dir(), SIGJOBS * 512);
	int sig = SIGRTMIN + 1;
	struct sigaction sa = {.sa_sigaction = reap_in_handler,
			       .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0);
	static char buf[SIGJOBS][512];
	for (int round = 0; round < 2; round++) {
		__atomic_store_n(&sigreaped, 0, __ATOMIC_SEQ_CST);
		for (int i = 0; i < SIGJOBS; i++) {
			sigres[i] = -2;
			sigerr[i] = 0;
			kqt_cb(&sigcbs[i], fd, buf[i], 512, 512 * i);
			sigcbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
			sigcbs[i].aio_sigevent.sigev_signo = sig;
			sigcbs[i].aio_sigevent.sigev_value.sival_ptr = &sigcbs[i];
			int r;
			while ((r = aio_read(&sigcbs[i])) < 0 && errno == EINTR)
				;
			cr_assert_eq(r, 0, "aio_read %d: %s", i, strerror(errno));
		}
		for (int ms = 0; __atomic_load_n(&sigreaped, __ATOMIC_SEQ_CST) < SIGJOBS; ms++) {
			if (ms % 100 == 99) /* a signal lost to ThreadSanitizer, or late */
				raise(sig);
			cr_assert(ms < 20000, "handlers reaped %d of %d jobs",
				  __atomic_load_n(&sigreaped, __ATOMIC_SEQ_CST), SIGJOBS);
			usleep(1000);
		}
		for (int i = 0; i < SIGJOBS; i++) {
			cr_assert_eq(sigerr[i], 0, "job %d: aio_error %d in a handler", i,
				     sigerr[i]);
			cr_assert_eq(sigres[i], 512, "job %d: aio_return %zd", i, sigres[i]);
			cr_assert(kqt_check(buf[i], 512 * i, 512));
			cr_assert_eq(aio_return(&sigcbs[i]), -1, "job %d reaped twice", i);
		}
	}
	/* A handler may reap a job whose own signal is still on its way (the
	 * job is done before its notification is sent): that signal may come
	 * after the last reap, and must not find the default action (death). */
	signal(sig, SIG_IGN);
	close(fd);
}

/* A job's end keeps the program's fcntl() record locks: POSIX drops them on
 * any close of the file by the process, so the duplicate a job held must not
 * be closed while the program's fd is open. */
Test(once, record_lock_survives_a_job)
{
	int fd = kqt_file_in(kqt_disk_dir(), 4096); /* not tmpfs: no inline read */
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	cr_assert_eq(fcntl(fd, F_SETLK, &lk), 0, "F_SETLK: %s", strerror(errno));
	char buf[512];
	struct aiocb cb;
	for (int i = 0; i < 2; i++) { /* the second finds the file kept */
		kqt_cb(&cb, fd, buf, sizeof buf, 512 * i);
		cr_assert_eq(aio_read(&cb), 0);
		cr_assert_eq(wait_for(&cb, 10), (ssize_t)sizeof buf);
	}
	pid_t p = fork();
	cr_assert(p >= 0);
	if (p == 0) { /* another process sees the lock, or not */
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		_exit(fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(p, &st, 0), p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the program's lock went when its job ended");
	close(fd);
}

/* Once the program closes its fd, no duplicate of it stays open. */
Test(once, close_lets_the_kept_file_go)
{
	int fd = kqt_file_in(kqt_disk_dir(), 4096);
	struct stat want;
	cr_assert_eq(fstat(fd, &want), 0);
	char buf[512];
	struct aiocb cb;
	kqt_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_for(&cb, 10), (ssize_t)sizeof buf);
	close(fd);
	int open_copies = 0;
	for (int i = 0; i < 1024; i++) {
		struct stat s;
		if (fstat(i, &s) == 0 && s.st_dev == want.st_dev && s.st_ino == want.st_ino)
			open_copies++;
	}
	cr_assert_eq(open_copies, 0, "%d descriptors still hold the closed file", open_copies);
}

/* dup2 onto a number (which kqaio does not see, unlike close) makes it name
 * another file: the next job reads that one, not the file whose duplicate
 * kqaio keeps from the last job. A is 4096 bytes, B 8192: a read at 4096
 * gets 0 bytes from A. */
static void read_after_dup2_onto(const char *dir)
{
	int fa = kqt_file_in(dir, 4096), fb = kqt_file_in(dir, 8192);
	static char buf[64];
	struct aiocb cb;
	for (int i = 0; i < 2; i++) { /* the second one as a hint remembers it */
		kqt_cb(&cb, fa, buf, sizeof buf, 0);
		cr_assert_eq(aio_read(&cb), 0);
		cr_assert_eq(wait_for(&cb, 10), 64);
	}
	cr_assert_eq(dup2(fb, fa), fa);
	kqt_cb(&cb, fa, buf, sizeof buf, 4096);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_for(&cb, 10), 64, "read the old file");
	cr_assert(kqt_check(buf, 4096, 64));
	close(fa), close(fb);
}

Test(once, dup2_onto_a_tmpfs_number_reads_the_new_file)
{
	read_after_dup2_onto("/dev/shm");
}

Test(once, dup2_onto_a_disk_number_reads_the_new_file)
{
	read_after_dup2_onto(kqt_disk_dir());
}
