/* Knote and kqueue lifetime with AIO: a kq closed under jobs in flight, a closed kq whose
 * number comes back as a new kq, a list's knote that lives until its last entry is reaped,
 * fork with kevent jobs in flight, and many kqs closed in random order. */
#include "kqt_kevent.h"
#include "stall.h"

#include <sys/event.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(kevent_life, .timeout = 30);

static void kcb(struct aiocb *cb, int fd, void *buf, size_t n, off_t off, int kq, int flags,
		void *udata)
{
	kqt_cb(cb, fd, buf, n, off);
	cb->aio_lio_opcode = LIO_READ;
	cb->aio_sigevent.sigev_notify = SIGEV_KEVENT;
	cb->aio_sigevent.sigev_notify_kqueue = kq;
	cb->aio_sigevent.sigev_notify_kevent_flags = flags;
	cb->aio_sigevent.sigev_value.sival_ptr = udata;
}

static void expect_return(struct aiocb *cb, ssize_t want, const char *what)
{
	errno = 0;
	ssize_t r = aio_return(cb);
	cr_assert_eq(r, want, "%s: aio_return %zd (%s), want %zd", what, r,
		     strerror(r < 0 ? errno : 0), want);
}

static void ebadf(int kq, const char *what)
{
	struct kevent ev;
	struct timespec zero = {0, 0};
	errno = 0;
	cr_assert_eq(kevent(kq, NULL, 0, &ev, 1, &zero), -1, "%s: kevent on fd %d works", what, kq);
	cr_assert_eq(errno, EBADF, "%s: %s", what, strerror(errno));
}

/* The number of open fds; with list, what each one is (for a failure message). */
static int fd_census(char *list, size_t size)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert(d, "opendir /proc/self/fd: %s", strerror(errno));
	int n = 0;
	size_t used = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		n++;
		if (list && used < size) {
			char t[128];
			ssize_t k = readlinkat(dirfd(d), e->d_name, t, sizeof t - 1);
			t[k > 0 ? k : 0] = 0;
			int w = snprintf(list + used, size - used, " %s=%s", e->d_name, t);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	closedir(d);
	return n;
}

/* Guards knote life: closing a kq under jobs in flight is safe; jobs end, events are dropped. */
Test(kevent_life, close_with_jobs_in_flight, .init = kqt_stall_no_inline)
{
	static int mark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	struct kqt_stall st;
	kqt_stall_init(&st, 4096);
	char pbuf[16], dbuf[64];
	struct aiocb piped, held, done;
	kcb(&done, fd, dbuf, sizeof dbuf, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&done), 0);
	wait_done(&done);
	kcb(&piped, p[0], pbuf, sizeof pbuf, 0, kq, 0, &mark);
	cr_assert_eq(aio_read(&piped), 0);
	kcb(&held, fd, st.buf, 4096, 4096, kq, EV_ONESHOT, &mark);
	cr_assert_eq(aio_read(&held), 0);
	kqt_stall_wait_blocked(&st);
	cr_assert_eq(close(kq), 0);
	xwrite(p[1], "after close", 11);
	kqt_stall_release(&st);
	wait_done(&piped);
	wait_done(&held);
	expect_return(&piped, 11, "pipe read");
	expect_return(&held, 4096, "held read");
	expect_return(&done, 64, "done read");
	cr_assert(kqt_check(st.buf, 4096, 4096));
	ebadf(kq, "the closed kq");
	/* The engine goes on working with a new kq. */
	int kq2 = xkqueue();
	kcb(&done, fd, dbuf, sizeof dbuf, 0, kq2, EV_ONESHOT, &mark);
	cr_assert_eq(aio_read(&done), 0);
	struct kevent ev;
	cr_assert_eq(kev_get(kq2, &ev, 1, 5000), 1);
	cr_assert(ev.ident == (uintptr_t)&done && ev.filter == EVFILT_AIO, EVFMT, EVARG(&ev));
	expect_return(&done, 64, "new kq");
	no_events(kq2, 0, "new kq, reaped");
	munmap(st.buf, st.len);
	close(st.uffd);
	close(p[0]);
	close(p[1]);
	close(fd);
	close(kq2);
}

/* Guards knote life: a job never posts into a new kq that took its closed kq's number. */
Test(kevent_life, reused_kq_number_gets_nothing)
{
	static int mark, umark;
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	for (int before = 0; before < 2; before++) {
		int a = xkqueue();
		char buf[64];
		struct aiocb cb;
		if (before) /* done and unread when A is closed */
			kcb(&cb, fd, buf, sizeof buf, 0, a, 0, &mark);
		else /* still waiting when A is closed */
			kcb(&cb, p[0], buf, sizeof buf, 0, a, 0, &mark);
		cr_assert_eq(aio_read(&cb), 0);
		if (before)
			wait_done(&cb);
		cr_assert_eq(close(a), 0);
		int b = xkqueue();
		cr_assert_eq(b, a, "the new kq did not get the old number (%d, %d)", b, a);
		if (!before) {
			xwrite(p[1], "late", 4);
			wait_done(&cb);
		}
		no_events(b, 50, "the new kq reported the old kq's job");
		/* B holds no knote for it, and works. */
		struct kevent ch, out;
		EV_SET(&ch, (uintptr_t)&cb, EVFILT_AIO, EV_DELETE, 0, 0, NULL);
		cr_assert_eq(kevent(b, &ch, 1, &out, 1, NULL), 1);
		cr_assert_eq(out.data, ENOENT, "the old job's knote is in the new kq");
		EV_SET(&ch, 1, EVFILT_USER, EV_ADD | EV_ONESHOT, NOTE_TRIGGER, 0, &umark);
		cr_assert_eq(kevent(b, &ch, 1, NULL, 0, NULL), 0);
		cr_assert_eq(kev_get(b, &out, 1, 5000), 1);
		cr_assert(out.ident == 1 && out.filter == EVFILT_USER && out.udata == &umark, EVFMT,
			  EVARG(&out));
		expect_return(&cb, before ? 64 : 4, "the old kq's job");
		no_events(b, 0, "after reaping the old kq's job");
		close(b);
	}
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* Guards knote life: a list's knote goes when, and only when, its last entry is reaped. */
Test(kevent_life, list_knote_lives_until_its_last_entry_is_reaped)
{
	static int lmark;
	int kq = xkqueue();
	int fd = kqt_file(1 << 16);
	char buf[3][64];
	struct aiocb e[3], bad;
	for (int i = 0; i < 3; i++) {
		kqt_cb(&e[i], fd, buf[i], 64, i * 64);
		e[i].aio_lio_opcode = LIO_READ;
	}
	kqt_cb(&bad, -1, buf[0], 64, 0);
	bad.aio_lio_opcode = LIO_READ;
	struct aiocb *list[4] = {&e[0], &bad, &e[1], &e[2]};
	struct sigevent sig;
	memset(&sig, 0, sizeof sig);
	sig.sigev_notify = SIGEV_KEVENT;
	sig.sigev_notify_kqueue = kq;
	sig.sigev_value.sival_ptr = &lmark;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 4, &sig), -1);
	cr_assert_eq(errno, EIO);
	for (int i = 0; i < 3; i++)
		wait_done(&e[i]);
	for (int reaped = 0; reaped < 3; reaped++) {
		for (int k = 0; k < 2; k++) {
			struct kevent ev[4];
			int r = kev_get(kq, ev, 4, 5000);
			cr_assert_eq(r, 1, "%d of 3 entries reaped: %d events", reaped, r);
			cr_assert(ev[0].ident == (uintptr_t)list && ev[0].filter == EVFILT_LIO &&
				      ev[0].flags == 0 && ev[0].fflags == 0 && ev[0].data == 0 &&
				      ev[0].udata == &lmark,
				  "%d of 3 entries reaped: " EVFMT, reaped, EVARG(&ev[0]));
		}
		expect_return(&e[reaped], 64, "entry");
		if (reaped == 0) {
			errno = 0;
			cr_assert_eq(aio_return(&bad), -1);
			cr_assert_eq(errno, EINVAL);
		}
	}
	no_events(kq, 50, "every entry reaped: the list knote must be gone");
	close(fd);
	close(kq);
}

#define CHILD_CHECK(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child %d: %s:%d: %s (errno %s)\n", (int)getpid(),         \
				__FILE__, __LINE__, #cond, strerror(errno));                       \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Guards fork: the child has no kq and no job; the parent gets each of its events once. */
Test(kevent_life, fork_with_kevent_jobs_in_flight)
{
	static int mark, cmark;
	int fd = kqt_file(1 << 16);
	int p[2];
	xpipe(p);
	/* Start the engine's threads before forking (see tests/fork.c). */
	char wbuf[64];
	struct aiocb warm;
	kqt_cb(&warm, fd, wbuf, sizeof wbuf, 0);
	cr_assert_eq(aio_read(&warm), 0);
	cr_assert_eq(kqt_wait(&warm), 64);
	kqt_cb(&warm, p[0], wbuf, sizeof wbuf, 0);
	cr_assert_eq(aio_read(&warm), 0);
	xwrite(p[1], "w", 1);
	cr_assert_eq(kqt_wait(&warm), 1);

	int kq = xkqueue();
	char pbuf[16], dbuf[64];
	struct aiocb piped, done;
	kcb(&piped, p[0], pbuf, sizeof pbuf, 0, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_read(&piped), 0);
	kcb(&done, fd, dbuf, sizeof dbuf, 64, kq, EV_CLEAR, &mark);
	cr_assert_eq(aio_read(&done), 0);
	wait_done(&done);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		alarm(20);
		struct kevent ev;
		struct timespec zero = {0, 0};
		errno = 0;
		CHILD_CHECK(kevent(kq, NULL, 0, &ev, 1, &zero) == -1 && errno == EBADF);
		errno = 0;
		CHILD_CHECK(aio_error(&piped) == -1 && errno == EINVAL);
		errno = 0;
		CHILD_CHECK(aio_error(&done) == -1 && errno == EINVAL);
		errno = 0;
		CHILD_CHECK(aio_return(&done) == -1 && errno == EINVAL);
		/* A kq and a kevent job of the child's own. */
		int ckq = kqueue();
		CHILD_CHECK(ckq >= 0);
		char cbuf[64];
		struct aiocb mine;
		kcb(&mine, fd, cbuf, sizeof cbuf, 128, ckq, 0, &cmark);
		CHILD_CHECK(aio_read(&mine) == 0);
		struct timespec five = {5, 0};
		int r; /* EINTR: see kevent_aio::completions_do_not_interrupt_kevent */
		while ((r = kevent(ckq, NULL, 0, &ev, 1, &five)) < 0 && errno == EINTR)
			;
		CHILD_CHECK(r == 1);
		CHILD_CHECK(ev.ident == (uintptr_t)&mine && ev.filter == EVFILT_AIO &&
			    ev.udata == &cmark && ev.data == 0);
		CHILD_CHECK(aio_return(&mine) == 64);
		CHILD_CHECK(kevent(ckq, NULL, 0, &ev, 1, &zero) == 0);
		close(ckq);
		_exit(0);
	}
	int stt;
	pid_t w;
	while ((w = waitpid(pid, &stt, 0)) < 0 && errno == EINTR)
		;
	cr_assert_eq(w, pid);
	cr_assert(WIFEXITED(stt) && WEXITSTATUS(stt) == 0, "the child failed (status %#x)", stt);
	/* The parent's jobs: the done one is reported, then the pipe one once fed. */
	cr_assert_eq(aio_error(&piped), EINPROGRESS);
	struct kevent ev[4];
	int r = kev_get(kq, ev, 4, 5000);
	cr_assert_eq(r, 1);
	cr_assert(ev[0].ident == (uintptr_t)&done && ev[0].filter == EVFILT_AIO &&
		      ev[0].flags == (EV_EOF | EV_CLEAR) && ev[0].data == 0 && ev[0].udata == &mark,
		  EVFMT, EVARG(&ev[0]));
	xwrite(p[1], "parent", 6);
	r = kev_get(kq, ev, 4, 5000);
	cr_assert_eq(r, 1);
	cr_assert(ev[0].ident == (uintptr_t)&piped && ev[0].filter == EVFILT_AIO &&
		      ev[0].flags == (EV_EOF | EV_CLEAR) && ev[0].data == 0 && ev[0].udata == &mark,
		  EVFMT, EVARG(&ev[0]));
	no_events(kq, 50, "parent: a second event");
	expect_return(&done, 64, "done read");
	expect_return(&piped, 6, "pipe read");
	close(p[0]);
	close(p[1]);
	close(fd);
	close(kq);
}

/* Guards kq life: many kqs closed in random order, no crash, fds back to baseline. */
Test(kevent_life, many_kqs_closed_in_random_order)
{
	enum { N = 50 };
	int fd = kqt_file(1 << 16);
	/* Warm the engine up (worker, stream poller, ring) so it opens nothing later. */
	{
		int p[2];
		xpipe(p);
		char b[8];
		struct aiocb w;
		kqt_cb(&w, fd, b, sizeof b, 0);
		cr_assert_eq(aio_read(&w), 0);
		cr_assert_eq(kqt_wait(&w), 8);
		kqt_cb(&w, p[0], b, sizeof b, 0);
		cr_assert_eq(aio_read(&w), 0);
		xwrite(p[1], "w", 1);
		cr_assert_eq(kqt_wait(&w), 1);
		close(p[0]);
		close(p[1]);
	}
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	cr_log_info("many_kqs_closed_in_random_order: seed %u", seed);
	static char before[4096], after[4096];
	int base = fd_census(before, sizeof before);
	static int kqs[N], pipes[N][2];
	static struct aiocb fcb[N], pcb[N];
	static char fbuf[N][64], pbuf[N][8];
	for (int i = 0; i < N; i++)
		xpipe(pipes[i]);
	for (int i = 0; i < N; i++) {
		kqs[i] = xkqueue();
		kcb(&fcb[i], fd, fbuf[i], 64, i * 64, kqs[i], i % 3 == 0 ? EV_ONESHOT : 0,
		    (void *)(uintptr_t)(i + 1));
		cr_assert_eq(aio_read(&fcb[i]), 0);
		kcb(&pcb[i], pipes[i][0], pbuf[i], sizeof pbuf[i], 0, kqs[i],
		    i % 4 == 0 ? EV_CLEAR : 0, (void *)(uintptr_t)(i + 1));
		cr_assert_eq(aio_read(&pcb[i]), 0);
	}
	int order[N];
	for (int i = 0; i < N; i++)
		order[i] = i;
	for (int i = N - 1; i > 0; i--) {
		int k = rand_r(&seed) % (i + 1), t = order[i];
		order[i] = order[k];
		order[k] = t;
	}
	/* Half the kqs closed while their pipe read waits, then every pipe fed in a random
	 * order, then the other half closed after (some after reading their events). */
	for (int k = 0; k < N / 2; k++) {
		close(kqs[order[k]]);
	}
	for (int k = N - 1; k >= 0; k--)
		xwrite(pipes[order[(k * 7) % N]][1], "data", 4);
	for (int i = 0; i < N; i++) {
		wait_done(&fcb[i]);
		wait_done(&pcb[i]);
	}
	for (int k = N / 2; k < N; k++) {
		int i = order[k];
		if (rand_r(&seed) % 2) {
			/* Read its events first: exactly its own two jobs. */
			int seenf = 0, seenp = 0;
			while (!seenf || !seenp) {
				struct kevent ev[8];
				int r = kev_get(kqs[i], ev, 8, 5000);
				cr_assert_gt(r, 0, "kq %d: events missing", i);
				for (int e = 0; e < r; e++) {
					cr_assert(ev[e].filter == EVFILT_AIO &&
						      ev[e].udata == (void *)(uintptr_t)(i + 1) &&
						      (ev[e].ident == (uintptr_t)&fcb[i] ||
						       ev[e].ident == (uintptr_t)&pcb[i]),
						  "kq %d: " EVFMT, i, EVARG(&ev[e]));
					seenf |= ev[e].ident == (uintptr_t)&fcb[i];
					seenp |= ev[e].ident == (uintptr_t)&pcb[i];
				}
			}
		}
		close(kqs[i]);
	}
	for (int i = 0; i < N; i++) {
		expect_return(&fcb[i], 64, "file read");
		cr_assert(kqt_check(fbuf[i], i * 64, 64));
		expect_return(&pcb[i], 4, "pipe read");
	}
	/* A new kq takes the lowest number back; the rest are found closed by kevent(). */
	int fresh = xkqueue();
	int reused = 0;
	for (int i = 0; i < N; i++) {
		if (kqs[i] == fresh) {
			reused = 1;
			continue;
		}
		ebadf(kqs[i], "a closed kq");
	}
	cr_assert(reused, "the new kq (%d) did not reuse a closed kq's number", fresh);
	no_events(fresh, 0, "the new kq");
	for (int i = 0; i < N; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	/* A completion thread may still hold the last reference to a closed kq
	 * for the moment it takes to post an event into it. */
	int now;
	kqt_eventually((now = fd_census(after, sizeof after)) == base + 3, 2000);
	cr_assert_eq(
	    now, base + 3,
	    "fds: %d before, %d now with one kq (epoll, its duplicate, eventfd)\nbefore:%s\nnow:%s",
	    base, now, before, after);
	close(fresh);
	close(fd);
}
