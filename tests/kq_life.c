/* kqueue lifetime: create/close cycles leave no fds and no memory behind, a kq holds a
 * handful of fds however many knotes it has, kevent() on a closed or reused number is
 * EBADF (or names the new kq), close() under a blocked waiter, fork, and a watched fd
 * that is closed and whose number comes back as a socket. */
#include "kqt.h"

#include <sys/event.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KQL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define KQL_SANITIZED 1
#endif
#endif
#ifdef KQL_SANITIZED
/* From the sanitizer runtime (sanitizer/allocator_interface.h, not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

TestSuite(kq_life, .timeout = 60);

/* What /proc/self/fd holds, by kind of link target. */
struct fdcount {
	int total, epoll, eventfd, timerfd, inotify, pidfd;
};

static struct fdcount fd_census(void)
{
	struct fdcount c = {0};
	DIR *d = opendir("/proc/self/fd");
	cr_assert(d, "opendir /proc/self/fd: %s", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		char t[256];
		ssize_t n = readlinkat(dirfd(d), e->d_name, t, sizeof t - 1);
		t[n > 0 ? n : 0] = 0;
		c.total++;
		c.epoll += !!strstr(t, "[eventpoll]");
		c.eventfd += !!strstr(t, "[eventfd]");
		c.timerfd += !!strstr(t, "[timerfd]");
		c.inotify += !!strstr(t, "inotify");
		c.pidfd += !!strstr(t, "pidfd");
	}
	closedir(d);
	return c;
}

static int fd_total(void)
{
	return fd_census().total;
}

/* Resident memory in KiB. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	cr_assert(f);
	char line[256];
	long v = -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	fclose(f);
	cr_assert_geq(v, 0, "no VmRSS in /proc/self/status");
	return v;
}

/* The memory measure: resident KiB, or under a sanitizer (whose quarantine and shadow
 * make RSS meaningless) the KiB its allocator holds for live allocations. */
static long mem_kib(void)
{
#ifdef KQL_SANITIZED
#define MEM_WHAT "live heap"
	return (long)(__sanitizer_get_current_allocated_bytes() / 1024);
#else
#define MEM_WHAT "VmRSS"
	return rss_kib();
#endif
}

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		cr_skip_test("cannot raise RLIMIT_NOFILE to %lu: %s", (unsigned long)want,
			     strerror(errno));
}

static const struct timespec zero_ts = {0, 0};

/* kevent() waiting at most ms milliseconds. */
static int kq_wait(int kq, struct kevent *ev, int n, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int r;
	do
		r = kevent(kq, NULL, 0, ev, n, &ts);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Applies one change with EV_RECEIPT and returns its error (0: applied). */
static int kq_change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		     int64_t data, void *udata)
{
	struct kevent ch, out;
	EV_SET(&ch, ident, filter, flags | EV_RECEIPT, fflags, data, udata);
	int r = kevent(kq, &ch, 1, &out, 1, NULL);
	cr_assert_eq(r, 1, "kevent(EV_RECEIPT) returned %d: %s", r, strerror(errno));
	cr_assert(out.flags & EV_ERROR, "a receipt without EV_ERROR: flags %#x", out.flags);
	cr_assert_eq(out.ident, ident);
	cr_assert_eq(out.filter, filter);
	return (int)out.data;
}

static void kq_add(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		   int64_t data, void *udata)
{
	int e = kq_change(kq, ident, filter, EV_ADD | flags, fflags, data, udata);
	cr_assert_eq(e, 0, "EV_ADD ident %lu filter %d: %s", (unsigned long)ident, filter,
		     strerror(e));
}

static void xpipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

static void xwrite(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

/* One create/close cycle; which knotes it holds depends on i. */
static void cycle(long i, int rfd)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue at cycle %ld: %s", i, strerror(errno));
	struct kevent ch[3], ev[4];
	int n = 0;
	switch (i % 4) {
	case 0: /* a triggered USER and a long TIMER */
		EV_SET(&ch[n++], 1, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_TRIGGER, 0, NULL);
		EV_SET(&ch[n++], 2, EVFILT_TIMER, EV_ADD, 0, 60000, NULL);
		break;
	case 1: /* an edge-triggered READ knote on a readable pipe */
		EV_SET(&ch[n++], rfd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL);
		break;
	case 2: /* all three, and the ready ones reported before the close */
		EV_SET(&ch[n++], 1, EVFILT_USER, EV_ADD | EV_CLEAR, NOTE_TRIGGER, 0, NULL);
		EV_SET(&ch[n++], 2, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600, NULL);
		EV_SET(&ch[n++], rfd, EVFILT_READ, EV_ADD, 0, 0, NULL);
		break;
	default: /* a USER knote alone */
		EV_SET(&ch[n++], 7, EVFILT_USER, EV_ADD, 0, 0, NULL);
		break;
	}
	int r = kevent(kq, ch, n, NULL, 0, NULL);
	cr_assert_eq(r, 0, "cycle %ld: kevent changes: %s", i, strerror(errno));
	if (i % 4 == 2) {
		r = kevent(kq, NULL, 0, ev, 4, &zero_ts);
		cr_assert_eq(r, 2, "cycle %ld: %d events, expected USER and READ", i, r);
	}
	cr_assert_eq(close(kq), 0);
}

Test(kq_life, create_close_cycles_leave_no_fds_or_memory)
{
	int p[2];
	xpipe(p);
	xwrite(p[1], "x", 1);
	int before = fd_total();
	long i = 0;
	for (; i < 1000; i++) /* warm-up: the registry, malloc arenas */
		cycle(i, p[0]);
	int fds_warm = fd_total();
	long mem_warm = mem_kib(), rss_warm = rss_kib();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; i < 101000; i++)
		cycle(i, p[0]);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int fds_after = fd_total();
	long mem_after = mem_kib(), rss_after = rss_kib();
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_log_info("kq_life: 100000 kqueue/close cycles in %.2f s (%.1f us each); %s %ld -> "
		    "%ld KiB (VmRSS %ld -> %ld KiB); fds %d before, %d after warm-up, %d after",
		    secs, secs * 1e6 / 100000, MEM_WHAT, mem_warm, mem_after, rss_warm, rss_after,
		    before, fds_warm, fds_after);
	/* Both counts are taken after a cycle of the same kind: equal, or fds grew. */
	cr_assert_eq(fds_after, fds_warm, "fd count grew over 100000 cycles: %d -> %d", fds_warm,
		     fds_after);
	cr_assert_lt(mem_after - mem_warm, 16 * 1024,
		     "memory grew by %ld KiB over 100000 cycles (%ld -> %ld)", mem_after - mem_warm,
		     mem_warm, mem_after);
	/* The last kq is closed; kevent() on its number finds that out (the library never
	 * sees close()), after which nothing of any kq is left. */
	int last = kqueue();
	cr_assert(last >= 0);
	cr_assert_eq(close(last), 0);
	struct kevent ev[1];
	errno = 0;
	cr_assert_eq(kevent(last, NULL, 0, ev, 1, &zero_ts), -1);
	cr_assert_eq(errno, EBADF);
	cr_assert_eq(fd_total(), before, "fds open: %d, before the first kqueue(): %d", fd_total(),
		     before);
	close(p[0]);
	close(p[1]);
}

/* Closed kqs whose numbers are taken by other files are not detected by the next
 * kqueue(): they must still be reclaimed, not pile up one per closed kq. */
Test(kq_life, closed_kqs_behind_reused_numbers_do_not_pile_up)
{
	enum { N = 1000 };
	raise_nofile(4096);
	int before = fd_total();
	int held[N];
	for (int i = 0; i < N; i++) {
		int kq = kqueue();
		cr_assert(kq >= 0, "kqueue %d: %s", i, strerror(errno));
		kq_add(kq, 1, EVFILT_TIMER, 0, NOTE_SECONDS, 3600, NULL);
		kq_add(kq, 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
		cr_assert_eq(close(kq), 0);
		held[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		cr_assert(held[i] >= 0);
	}
	int lib = fd_total() - before - N;
	cr_log_info("kq_life: %d fds held for %d closed kqs hidden behind reused numbers", lib, N);
	/* Each such kq had an eventfd and a timerfd: 2000 if none was reclaimed. */
	cr_assert_lt(lib, 300, "%d fds still held for %d closed kqs", lib, N);
	for (int i = 0; i < N; i++)
		close(held[i]);
}

static pid_t spawn_waiter(int *wfd)
{
	int p[2];
	xpipe(p);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char c;
		close(p[1]);
		ssize_t r = read(p[0], &c, 1);
		_exit(r == 0 ? 0 : 3);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

Test(kq_life, a_kq_holds_few_fds_however_many_knotes)
{
	enum { NPIPE = 1000, NTIMER = 100, NUSER = 10, NVNODE = 20 };
	raise_nofile(4096);
	struct fdcount c0 = fd_census();
	int mine = 0;
	int(*pipes)[2] = calloc(NPIPE, sizeof *pipes);
	cr_assert(pipes);
	for (int i = 0; i < NPIPE; i++, mine += 2)
		xpipe(pipes[i]);
	int files[NVNODE];
	for (int i = 0; i < NVNODE; i++, mine++)
		files[i] = kqt_file(4096);
	int child_w;
	pid_t child = spawn_waiter(&child_w);
	mine++;
	cr_assert_eq(fd_total(), c0.total + mine, "the test's own fds are not what it counted");

	int kq = kqueue();
	cr_assert(kq >= 0);
	struct kevent *ch = calloc(NPIPE + NTIMER + NUSER + NVNODE + 3, sizeof *ch);
	cr_assert(ch);
	int n = 0;
	for (int i = 0; i < NPIPE; i++)
		EV_SET(&ch[n++], pipes[i][0], EVFILT_READ, EV_ADD, 0, 0, (void *)(intptr_t)i);
	for (int i = 0; i < NTIMER; i++)
		EV_SET(&ch[n++], 100 + i, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600, NULL);
	for (int i = 0; i < NUSER; i++)
		EV_SET(&ch[n++], 1 + i, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
	EV_SET(&ch[n++], SIGUSR1, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL);
	EV_SET(&ch[n++], SIGUSR2, EVFILT_SIGNAL, EV_ADD, 0, 0, NULL);
	EV_SET(&ch[n++], child, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL);
	for (int i = 0; i < NVNODE; i++)
		EV_SET(&ch[n++], files[i], EVFILT_VNODE, EV_ADD | EV_CLEAR,
		       NOTE_WRITE | NOTE_DELETE | NOTE_ATTRIB, 0, NULL);
	int r = kevent(kq, ch, n, NULL, 0, NULL);
	cr_assert_eq(r, 0, "adding %d knotes: %s", n, strerror(errno));
	free(ch);

	struct fdcount c1 = fd_census();
	int lib = c1.total - c0.total - mine;
	cr_log_info("kq_life: %d knotes on one kq; library fds %d: eventpoll %d, eventfd %d, "
		    "timerfd %d, inotify %d, pidfd %d",
		    n, lib, c1.epoll - c0.epoll, c1.eventfd - c0.eventfd, c1.timerfd - c0.timerfd,
		    c1.inotify - c0.inotify, c1.pidfd - c0.pidfd);
	cr_assert_leq(lib, 6 + 1, "the kq holds %d fds for %d knotes (at most 6 + 1 pidfd)", lib,
		      n);
	/* the kq fd, and the library's duplicate of it */
	cr_assert_eq(c1.epoll - c0.epoll, 2, "eventpoll fds: %d new", c1.epoll - c0.epoll);
	cr_assert_leq(c1.eventfd - c0.eventfd, 2, "eventfds: %d new", c1.eventfd - c0.eventfd);
	cr_assert_leq(c1.timerfd - c0.timerfd, 1, "timerfds: %d new", c1.timerfd - c0.timerfd);
	cr_assert_leq(c1.inotify - c0.inotify, 1, "inotify fds: %d new", c1.inotify - c0.inotify);
	cr_assert_leq(c1.pidfd - c0.pidfd, 1, "pidfds: %d new", c1.pidfd - c0.pidfd);
	int kinds = (c1.epoll - c0.epoll) + (c1.eventfd - c0.eventfd) + (c1.timerfd - c0.timerfd) +
		    (c1.inotify - c0.inotify) + (c1.pidfd - c0.pidfd);
	cr_assert_eq(kinds, lib, "%d library fds, of which only %d are of the expected kinds", lib,
		     kinds);

	/* The knotes are live: a READ, a USER, a VNODE and the PROC knote report. */
	struct kevent ev[8];
	cr_assert_eq(kevent(kq, NULL, 0, ev, 8, &zero_ts), 0, "something ready too early");
	xwrite(pipes[500][1], "ab", 2);
	r = kq_wait(kq, ev, 8, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, (uintptr_t)pipes[500][0]);
	cr_assert_eq(ev[0].filter, EVFILT_READ);
	cr_assert_eq(ev[0].data, 2);
	cr_assert_eq(ev[0].udata, (void *)(intptr_t)500);
	char buf[2];
	cr_assert_eq(read(pipes[500][0], buf, 2), 2);
	cr_assert_eq(kq_change(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), 0);
	r = kq_wait(kq, ev, 8, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, 7);
	cr_assert_eq(ev[0].filter, EVFILT_USER);
	cr_assert_eq(pwrite(files[13], "zz", 2, 4096), 2);
	r = kq_wait(kq, ev, 8, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, (uintptr_t)files[13]);
	cr_assert_eq(ev[0].filter, EVFILT_VNODE);
	cr_assert(ev[0].fflags & NOTE_WRITE, "fflags %#x", ev[0].fflags);
	close(child_w);
	r = kq_wait(kq, ev, 8, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, (uintptr_t)child);
	cr_assert_eq(ev[0].filter, EVFILT_PROC);
	cr_assert_eq(ev[0].fflags, NOTE_EXIT);
	cr_assert_eq(ev[0].data, 0, "exit status %#lx", (long)ev[0].data);
	int st;
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	cr_assert_eq(close(kq), 0);
	for (int i = 0; i < NPIPE; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	for (int i = 0; i < NVNODE; i++)
		close(files[i]);
	free(pipes);
	/* Once the library sees the kq closed, it keeps at most the process-wide signal
	 * eventfd. */
	cr_assert_eq(kevent(kq, NULL, 0, ev, 8, &zero_ts), -1);
	cr_assert_eq(errno, EBADF);
	struct fdcount c2 = fd_census();
	cr_assert_leq(c2.total - c0.total, 1, "%d fds left after the kq was closed",
		      c2.total - c0.total);
	cr_assert_eq(c2.total - c0.total, c2.eventfd - c0.eventfd);
}

/* A closed kq: idle (knotes, none ready) or with a triggered knote pending. */
static int closed_kq(int pending)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	kq_add(kq, 1, EVFILT_USER, 0, pending ? NOTE_TRIGGER : 0, 0, NULL);
	kq_add(kq, 2, EVFILT_TIMER, 0, NOTE_SECONDS, 3600, NULL);
	cr_assert_eq(close(kq), 0);
	return kq;
}

/* The ways to call kevent(): each must find a closed kq gone. */
enum { CALL_NOTHING, CALL_POLL, CALL_WAIT, CALL_CHANGE, CALL_CHANGE_POLL, CALL_FORMS };
static const char *const call_name[CALL_FORMS] = {"no changes, no events", "poll (timeout 0)",
						  "wait (50 ms)", "a change, no events",
						  "a change and a poll"};

static int call_form(int kq, int form)
{
	struct kevent ch, ev[2];
	struct timespec ms50 = {0, 50 * 1000 * 1000};
	EV_SET(&ch, 3, EVFILT_USER, EV_ADD, 0, 0, NULL);
	errno = 0;
	switch (form) {
	case CALL_NOTHING:
		return kevent(kq, NULL, 0, NULL, 0, NULL);
	case CALL_POLL:
		return kevent(kq, NULL, 0, ev, 2, &zero_ts);
	case CALL_WAIT:
		return kevent(kq, NULL, 0, ev, 2, &ms50);
	case CALL_CHANGE:
		return kevent(kq, &ch, 1, NULL, 0, NULL);
	default:
		return kevent(kq, &ch, 1, ev, 2, &zero_ts);
	}
}

Test(kq_life, kevent_on_a_closed_kq_is_ebadf)
{
	for (int pending = 0; pending < 2; pending++)
		for (int form = 0; form < CALL_FORMS; form++) {
			int kq = closed_kq(pending);
			int r = call_form(kq, form);
			cr_expect(r == -1 && errno == EBADF,
				  "%s on a closed kq (%s): returned %d, errno %s", call_name[form],
				  pending ? "an event pending" : "idle", r, strerror(errno));
			/* and again, once the library knows */
			r = call_form(kq, form);
			cr_expect(r == -1 && errno == EBADF, "%s, second call: %d, errno %s",
				  call_name[form], r, strerror(errno));
		}
}

/* The number of a closed kq now names another file (/dev/null, or an epoll instance the
 * program made itself, with an edge-triggered event ready): kevent() is EBADF and leaves
 * that file alone. */
Test(kq_life, kevent_on_a_number_reused_by_another_file_is_ebadf)
{
	int p[2];
	xpipe(p);
	xwrite(p[1], "e", 1);
	for (int epoll = 0; epoll < 2; epoll++)
		for (int pending = 0; pending < 2; pending++)
			for (int form = 0; form < CALL_FORMS; form++) {
				int kq = closed_kq(pending);
				int f = epoll ? epoll_create1(EPOLL_CLOEXEC)
					      : open("/dev/null", O_RDWR | O_CLOEXEC);
				cr_assert(f >= 0);
				if (f != kq) {
					cr_assert_eq(dup3(f, kq, O_CLOEXEC), kq);
					close(f);
				}
				struct epoll_event ee = {.events = EPOLLIN | EPOLLET,
							 .data.u64 = 42};
				if (epoll)
					cr_assert_eq(epoll_ctl(kq, EPOLL_CTL_ADD, p[0], &ee), 0);
				int r = call_form(kq, form);
				cr_expect(
				    r == -1 && errno == EBADF,
				    "%s on a number now naming %s (%s): returned %d, errno %s",
				    call_name[form], epoll ? "a foreign epoll" : "/dev/null",
				    pending ? "an event pending" : "idle", r, strerror(errno));
				if (epoll) {
					/* Its ready edge is still there, and nothing was added. */
					struct epoll_event out[4];
					int n = epoll_wait(kq, out, 4, 0);
					cr_expect(
					    n == 1 && out[0].data.u64 == 42,
					    "%s: the foreign epoll gave %d events (first %#llx): "
					    "its edge was taken or something was added",
					    call_name[form], n,
					    n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
				}
				cr_assert_eq(close(kq), 0);
			}
	close(p[0]);
	close(p[1]);
}

Test(kq_life, a_number_reused_by_kqueue_names_the_new_kq_only)
{
	int p[2];
	xpipe(p);
	xwrite(p[1], "abc", 3);
	int old = kqueue();
	cr_assert(old >= 0);
	kq_add(old, 1, EVFILT_USER, EV_CLEAR, NOTE_TRIGGER | NOTE_FFCOPY | 0x5, 0, NULL);
	kq_add(old, 2, EVFILT_TIMER, 0, 0, 1, NULL);
	kq_add(old, p[0], EVFILT_READ, 0, 0, 0, NULL);
	kq_add(old, SIGUSR1, EVFILT_SIGNAL, 0, 0, 0, NULL);
	cr_assert_eq(close(old), 0);
	int kq = kqueue();
	cr_assert(kq >= 0);
	cr_assert_eq(kq, old, "kqueue() did not reuse the lowest free number %d (got %d)", old, kq);

	struct kevent ev[8];
	int r = kq_wait(kq, ev, 8, 50);
	cr_assert_eq(r, 0, "the new kq reported %d events of the old one (ident %lu filter %d)", r,
		     r > 0 ? (unsigned long)ev[0].ident : 0, r > 0 ? ev[0].filter : 0);
	cr_assert_eq(kq_change(kq, 1, EVFILT_USER, EV_DELETE, 0, 0, NULL), ENOENT);
	cr_assert_eq(kq_change(kq, 2, EVFILT_TIMER, EV_DELETE, 0, 0, NULL), ENOENT);
	cr_assert_eq(kq_change(kq, p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL), ENOENT);
	cr_assert_eq(kq_change(kq, SIGUSR1, EVFILT_SIGNAL, EV_DELETE, 0, 0, NULL), ENOENT);
	cr_assert_eq(kq_change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL), ENOENT);

	/* And it works: a USER knote and a fresh READ knote on the same pipe. */
	kq_add(kq, 9, EVFILT_USER, EV_CLEAR, NOTE_TRIGGER, 0, (void *)0x99);
	kq_add(kq, p[0], EVFILT_READ, 0, 0, 0, (void *)0x77);
	int seen_user = 0, seen_read = 0;
	r = kq_wait(kq, ev, 8, 5000);
	cr_assert_eq(r, 2, "%d events", r);
	for (int i = 0; i < r; i++) {
		if (ev[i].filter == EVFILT_USER) {
			cr_assert_eq(ev[i].ident, 9);
			cr_assert_eq(ev[i].udata, (void *)0x99);
			seen_user++;
		} else {
			cr_assert_eq(ev[i].filter, EVFILT_READ);
			cr_assert_eq(ev[i].ident, (uintptr_t)p[0]);
			cr_assert_eq(ev[i].data, 3);
			cr_assert_eq(ev[i].udata, (void *)0x77);
			seen_read++;
		}
	}
	cr_assert_eq(seen_user, 1);
	cr_assert_eq(seen_read, 1);
	cr_assert_eq(close(kq), 0);
	close(p[0]);
	close(p[1]);
}

/* State letter of a thread of this process ('S' when blocked in a wait). */
static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

struct blocked {
	int kq;
	pid_t tid;
	int r, err;
};

static void *blocked_waiter(void *arg)
{
	struct blocked *b = arg;
	__atomic_store_n(&b->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	struct kevent ev[4];
	struct timespec ts = {1, 0};
	b->r = kevent(b->kq, NULL, 0, ev, 4, &ts);
	b->err = errno;
	return NULL;
}

Test(kq_life, close_under_a_blocked_kevent_does_not_crash)
{
	struct blocked b = {.kq = kqueue()};
	cr_assert(b.kq >= 0);
	kq_add(b.kq, 1, EVFILT_USER, 0, 0, 0, NULL);
	kq_add(b.kq, 2, EVFILT_TIMER, 0, NOTE_SECONDS, 3600, NULL);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, blocked_waiter, &b), 0);
	pid_t tid;
	cr_assert(kqt_eventually((tid = __atomic_load_n(&b.tid, __ATOMIC_ACQUIRE)), 5000));
	cr_assert(kqt_eventually(thread_state(tid) == 'S', 5000), "the waiter never blocked");
	usleep(20 * 1000);
	/* Nothing is ready: the blocked call must not be disturbed by this one. */
	cr_assert_eq(kevent(b.kq, NULL, 0, NULL, 0, NULL), 0);
	cr_assert_eq(close(b.kq), 0);

	/* New kqs work meanwhile; the first likely takes the closed number. */
	int kq2 = kqueue();
	cr_assert(kq2 >= 0);
	kq_add(kq2, 5, EVFILT_USER, EV_CLEAR, 0, 0, (void *)0x5);
	cr_assert_eq(kq_change(kq2, 5, EVFILT_USER, 0, NOTE_TRIGGER, 0, (void *)0x5), 0);
	struct kevent ev[4];
	int r = kq_wait(kq2, ev, 4, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, 5);
	cr_assert_eq(ev[0].filter, EVFILT_USER);
	cr_assert_eq(ev[0].udata, (void *)0x5);

	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_log_info("kq_life: the blocked kevent returned %d (%s)", b.r,
		    b.r < 0 ? strerror(b.err) : "events");

	int kq3 = kqueue();
	cr_assert(kq3 >= 0);
	kq_add(kq3, 3, EVFILT_TIMER, EV_ONESHOT, 0, 5, (void *)0x3);
	r = kq_wait(kq3, ev, 4, 5000);
	cr_assert_eq(r, 1);
	cr_assert_eq(ev[0].ident, 3);
	cr_assert_eq(ev[0].filter, EVFILT_TIMER);
	cr_assert_eq(ev[0].data, 1);
	cr_assert_eq(ev[0].udata, (void *)0x3);
	/* kq2 still has its USER knote, nothing pending. */
	cr_assert_eq(kevent(kq2, NULL, 0, ev, 4, &zero_ts), 0);
	cr_assert_eq(kq_change(kq2, 5, EVFILT_USER, EV_DELETE, 0, 0, NULL), 0);
	close(kq2);
	close(kq3);
}

/* In the child: on failure, say where and exit with a distinct code. */
#define CHILD_CHECK(cond, code)                                                                    \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child %d: %s:%d: %s (errno %s)\n", (int)getpid(),         \
				__FILE__, __LINE__, #cond, strerror(errno));                       \
			_exit(code);                                                               \
		}                                                                                  \
	} while (0)

static void fork_child(int kq)
{
	struct kevent ev[4], ch[2];
	errno = 0;
	CHILD_CHECK(kevent(kq, NULL, 0, ev, 4, &zero_ts) == -1, 10);
	CHILD_CHECK(errno == EBADF, 11);
	EV_SET(&ch[0], 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL);
	errno = 0;
	CHILD_CHECK(kevent(kq, ch, 1, NULL, 0, NULL) == -1, 12);
	CHILD_CHECK(errno == EBADF, 13);

	int k2 = kqueue();
	CHILD_CHECK(k2 >= 0, 14);
	int p[2];
	CHILD_CHECK(pipe2(p, O_CLOEXEC) == 0, 15);
	CHILD_CHECK(write(p[1], "four", 4) == 4, 15);
	EV_SET(&ch[0], 1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 10, (void *)0x71);
	EV_SET(&ch[1], p[0], EVFILT_READ, EV_ADD, 0, 0, (void *)0x72);
	CHILD_CHECK(kevent(k2, ch, 2, NULL, 0, NULL) == 0, 16);
	int timer = 0, rd = 0;
	for (int round = 0; round < 100 && !(timer && rd); round++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		int r = kevent(k2, NULL, 0, ev, 4, &ts);
		CHILD_CHECK(r >= 0, 17);
		for (int i = 0; i < r; i++) {
			if (ev[i].filter == EVFILT_TIMER) {
				CHILD_CHECK(ev[i].ident == 1 && ev[i].data == 1, 18);
				CHILD_CHECK(ev[i].udata == (void *)0x71, 18);
				CHILD_CHECK(!timer, 18);
				timer = 1;
			} else {
				CHILD_CHECK(ev[i].filter == EVFILT_READ, 19);
				CHILD_CHECK(ev[i].ident == (uintptr_t)p[0] && ev[i].data == 4, 19);
				CHILD_CHECK(ev[i].udata == (void *)0x72, 19);
				char buf[4];
				CHILD_CHECK(read(p[0], buf, 4) == 4, 19);
				rd = 1;
			}
		}
	}
	CHILD_CHECK(timer && rd, 20);
	close(k2);
	close(p[0]);
	close(p[1]);
	_exit(0);
}

Test(kq_life, fork_child_has_no_kq_and_the_parents_keeps_working)
{
	int a[2], b[2];
	xpipe(a);
	xpipe(b);
	xwrite(a[1], "xy", 2);
	int kq = kqueue();
	cr_assert(kq >= 0);
	kq_add(kq, 1, EVFILT_USER, EV_CLEAR, NOTE_TRIGGER | NOTE_FFCOPY | 0x3, 0, (void *)0x11);
	kq_add(kq, a[0], EVFILT_READ, 0, 0, 0, (void *)0x12);
	kq_add(kq, 2, EVFILT_USER, EV_CLEAR, 0, 0, (void *)0x13);

	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		fork_child(kq);
	int st;
	pid_t w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	cr_assert_eq(w, pid);
	cr_assert(WIFEXITED(st), "child killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	cr_assert_eq(WEXITSTATUS(st), 0, "child failed with code %d (see its message above)",
		     WEXITSTATUS(st));

	/* What was pending before the fork is still reported here. */
	struct kevent ev[8];
	int user = 0, rd = 0;
	for (int round = 0; round < 100 && !(user && rd); round++) {
		int r = kq_wait(kq, ev, 8, 50);
		cr_assert_geq(r, 0, "kevent: %s", strerror(errno));
		for (int i = 0; i < r; i++) {
			if (ev[i].filter == EVFILT_USER) {
				cr_assert_eq(ev[i].ident, 1);
				cr_assert_eq(ev[i].fflags, 0x3);
				cr_assert_eq(ev[i].udata, (void *)0x11);
				cr_assert_eq(user, 0, "USER 1 reported twice");
				user = 1;
			} else {
				cr_assert_eq(ev[i].filter, EVFILT_READ);
				cr_assert_eq(ev[i].ident, (uintptr_t)a[0]);
				cr_assert_eq(ev[i].data, 2);
				cr_assert_eq(ev[i].udata, (void *)0x12);
				rd = 1;
			}
		}
	}
	cr_assert(user, "the USER event pending at fork() was lost in the parent");
	cr_assert(rd, "the READ event pending at fork() was lost in the parent");
	char buf[2];
	cr_assert_eq(read(a[0], buf, 2), 2);

	/* And new events: a knote added before the fork, and ones added after. */
	cr_assert_eq(kq_change(kq, 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, (void *)0x13), 0);
	kq_add(kq, b[0], EVFILT_READ, 0, 0, 0, (void *)0x14);
	kq_add(kq, 3, EVFILT_TIMER, EV_ONESHOT, 0, 5, (void *)0x15);
	xwrite(b[1], "12345", 5);
	int got[3] = {0};
	for (int round = 0; round < 100 && !(got[0] && got[1] && got[2]); round++) {
		int r = kq_wait(kq, ev, 8, 50);
		cr_assert_geq(r, 0, "kevent: %s", strerror(errno));
		for (int i = 0; i < r; i++) {
			if (ev[i].filter == EVFILT_USER) {
				cr_assert_eq(ev[i].ident, 2);
				cr_assert_eq(ev[i].udata, (void *)0x13);
				got[0]++;
			} else if (ev[i].filter == EVFILT_READ) {
				cr_assert_eq(ev[i].ident, (uintptr_t)b[0]);
				cr_assert_eq(ev[i].data, 5);
				cr_assert_eq(ev[i].udata, (void *)0x14);
				char five[5];
				cr_assert_eq(read(b[0], five, 5), 5);
				got[1]++;
			} else {
				cr_assert_eq(ev[i].filter, EVFILT_TIMER);
				cr_assert_eq(ev[i].ident, 3);
				cr_assert_eq(ev[i].data, 1);
				cr_assert_eq(ev[i].udata, (void *)0x15);
				got[2]++;
			}
		}
	}
	cr_assert_eq(got[0], 1, "USER 2 reported %d times", got[0]);
	cr_assert_eq(got[1], 1, "READ reported %d times", got[1]);
	cr_assert_eq(got[2], 1, "the one-shot TIMER reported %d times", got[2]);
	close(kq);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

Test(kq_life, a_closed_watched_fd_reused_by_a_socket_is_registered_afresh)
{
	static const unsigned short modes[] = {0, EV_CLEAR};
	for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
		int kq = kqueue();
		cr_assert(kq >= 0);
		int p[2];
		xpipe(p);
		kq_add(kq, p[0], EVFILT_READ, modes[m], 0, 0, (void *)0x1);
		xwrite(p[1], "old", 3);
		struct kevent ev[4];
		int r = kq_wait(kq, ev, 4, 5000);
		cr_assert_eq(r, 1, "mode %#x: %d events for one write to the pipe", modes[m], r);
		cr_assert_eq(ev[0].ident, (uintptr_t)p[0]);
		cr_assert_eq(ev[0].data, 3);
		int num = p[0];
		close(p[0]);
		close(p[1]);
		/* A closed fd is never reported, and the kq keeps working. */
		cr_assert_eq(kq_wait(kq, ev, 4, 50), 0, "mode %#x: the closed pipe was reported",
			     modes[m]);

		int s[2];
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
		if (s[0] != num) {
			cr_assert_eq(dup3(s[0], num, O_CLOEXEC), num);
			close(s[0]);
			s[0] = num;
		}
		int e = kq_change(kq, num, EVFILT_READ, EV_ADD | modes[m], 0, 0, (void *)0x2);
		cr_assert_eq(e, 0, "mode %#x: EV_ADD on the reused number: %s", modes[m],
			     strerror(e));
		r = kq_wait(kq, ev, 4, 50);
		cr_assert_eq(r, 0, "mode %#x: an empty socket reported readable (data %ld)",
			     modes[m], r > 0 ? (long)ev[0].data : 0L);
		xwrite(s[1], "fresh", 5);
		r = kq_wait(kq, ev, 4, 5000);
		cr_assert_eq(r, 1, "mode %#x: %d events for the new socket", modes[m], r);
		cr_assert_eq(ev[0].ident, (uintptr_t)num);
		cr_assert_eq(ev[0].filter, EVFILT_READ);
		cr_assert_eq(ev[0].data, 5);
		cr_assert_eq(ev[0].flags & (EV_EOF | EV_ERROR), 0, "flags %#x", ev[0].flags);
		cr_assert_eq(ev[0].udata, (void *)0x2);
		/* The peer's close is EV_EOF on the new socket. */
		char buf[8];
		cr_assert_eq(read(num, buf, sizeof buf), 5);
		close(s[1]);
		r = kq_wait(kq, ev, 4, 5000);
		cr_assert_eq(r, 1);
		cr_assert_eq(ev[0].ident, (uintptr_t)num);
		cr_assert(ev[0].flags & EV_EOF, "mode %#x: no EV_EOF after the peer closed: %#x",
			  modes[m], ev[0].flags);
		cr_assert_eq(kq_change(kq, num, EVFILT_READ, EV_DELETE, 0, 0, NULL), 0);
		close(num);
		close(kq);
	}
}

/* A child's exit closes its copies of the kq's fds, which share open files with
 * the parent's: the parent's timer, file watch and pipe registration must
 * not notice (a child that disarmed the shared timerfd or removed the shared
 * inotify watch or epoll registration once stopped them all). */
Test(kq_life, a_childs_exit_leaves_the_parents_timers_and_watches)
{
	int kq = kqueue();
	cr_assert(kq >= 0);
	char path[] = "/dev/shm/kqaio-life-XXXXXX";
	int f = mkstemp(path);
	cr_assert(f >= 0);
	unlink(path);
	int p[2];
	xpipe(p);
	kq_add(kq, 1, EVFILT_TIMER, 0, 0, 20, NULL);
	kq_add(kq, (uintptr_t)f, EVFILT_VNODE, EV_CLEAR, NOTE_WRITE, 0, NULL);
	kq_add(kq, (uintptr_t)p[0], EVFILT_READ, 0, 0, 0, NULL);
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0)
		_exit(0);
	int st;
	cr_assert_eq(waitpid(c, &st, 0), c);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(write(f, "x", 1), 1);
	xwrite(p[1], "y", 1);
	int timer = 0, vnode = 0, rd = 0;
	for (int round = 0; round < 50 && !(timer >= 2 && vnode && rd); round++) {
		struct kevent ev[8];
		int n = kq_wait(kq, ev, 8, 200);
		for (int i = 0; i < n; i++) {
			timer += ev[i].filter == EVFILT_TIMER;
			vnode += ev[i].filter == EVFILT_VNODE && (ev[i].fflags & NOTE_WRITE);
			if (ev[i].filter == EVFILT_READ && ev[i].ident == (uintptr_t)p[0]) {
				char y;
				cr_assert_eq(read(p[0], &y, 1), 1); /* level-triggered: drain it */
				rd++;
			}
		}
	}
	cr_assert_geq(timer, 2, "the parent's timer fired %d times after the child exited", timer);
	cr_assert(vnode, "the parent's file watch saw no write after the child exited");
	cr_assert(rd, "the parent's pipe was not reported after the child exited");
	close(p[0]);
	close(p[1]);
	close(f);
	close(kq);
}
