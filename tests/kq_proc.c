/* EVFILT_PROC: NOTE_EXIT for real child processes, with the wait status in
 * data, leaving the zombie for the parent's own waitpid(). */
#include "kqt.h"

#include <sys/event.h>
#include <sys/wait.h>

TestSuite(kq_proc, .timeout = 30);

static const struct timespec ts_5s = {5, 0};
static const struct timespec ts_0 = {0, 0};
static const struct timespec ts_50ms = {0, 50 * 1000000L};

static int kq_new(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

static int chg(int kq, pid_t pid, unsigned short flags, unsigned fflags, void *udata)
{
	struct kevent kev;
	EV_SET(&kev, (uintptr_t)pid, EVFILT_PROC, flags, fflags, 0, udata);
	int r = kevent(kq, &kev, 1, NULL, 0, NULL);
	if (r == 0)
		return 0;
	cr_assert_eq(r, -1, "kevent returned %d", r);
	return errno;
}

static void watch(int kq, pid_t pid, void *udata)
{
	int e = chg(kq, pid, EV_ADD, NOTE_EXIT, udata);
	cr_assert_eq(e, 0, "EV_ADD NOTE_EXIT on %d: %s", (int)pid, strerror(e));
}

static int kwait(int kq, struct kevent *ev, int n, const struct timespec *ts)
{
	int r;
	do
		r = kevent(kq, NULL, 0, ev, n, ts);
	while (r < 0 && errno == EINTR); /* SIGCHLD may have a handler in the runner */
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

static void none(int kq, const struct timespec *ts)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, ts);
	cr_assert_eq(n, 0, "unexpected event: ident %lu filter %d data 0x%lx",
		     (unsigned long)ev[0].ident, ev[0].filter, (long)ev[0].data);
}

/* A child that waits for the pipe to close, then ends with code (or, if code
 * is negative, waits to be killed). The write end stays with the parent. */
static pid_t child_on_pipe(int p[2], int code)
{
	pid_t pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[1]);
		char c;
		for (;;) {
			ssize_t r = read(p[0], &c, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (code >= 0)
				_exit(code);
			pause();
		}
	}
	return pid;
}

static void check_exit_event(const struct kevent *ev, pid_t pid, void *udata)
{
	cr_assert_eq(ev->ident, (uintptr_t)pid, "ident %lu, want %d", (unsigned long)ev->ident,
		     (int)pid);
	cr_assert_eq(ev->filter, EVFILT_PROC);
	cr_assert_eq(ev->flags & EV_ERROR, 0, "EV_ERROR, data %ld", (long)ev->data);
	cr_assert_eq(ev->flags & (EV_EOF | EV_ONESHOT), EV_EOF | EV_ONESHOT, "flags 0x%x",
		     ev->flags);
	cr_assert_eq(ev->fflags, NOTE_EXIT, "fflags 0x%x", ev->fflags);
	cr_assert_eq(ev->udata, udata);
}

static void reap(pid_t pid, int *status)
{
	pid_t r;
	do
		r = waitpid(pid, status, 0);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid, "waitpid(%d): %s", (int)pid, strerror(errno));
}

Test(kq_proc, exit_status_7_and_the_zombie_is_left_for_waitpid)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = child_on_pipe(p, 7);
	close(p[0]);
	watch(kq, pid, (void *)0x77);
	none(kq, &ts_50ms); /* still running */
	close(p[1]);	    /* let it exit */
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1, "%d events for the child's exit", n);
	check_exit_event(&ev[0], pid, (void *)0x77);
	cr_assert_eq(ev[0].data, 7 << 8, "data 0x%lx, want 0x700", (long)ev[0].data);
	int st = (int)ev[0].data;
	cr_assert(WIFEXITED(st));
	cr_assert_eq(WEXITSTATUS(st), 7);
	/* One-shot: gone. */
	none(kq, &ts_50ms);
	cr_assert_eq(chg(kq, pid, EV_DELETE, 0, NULL), ENOENT);
	/* The event did not take the zombie. */
	int status;
	reap(pid, &status);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 7);
	close(kq);
}

Test(kq_proc, killed_by_sigkill)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = child_on_pipe(p, -1);
	close(p[0]);
	watch(kq, pid, NULL);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1);
	check_exit_event(&ev[0], pid, NULL);
	int st = (int)ev[0].data;
	cr_assert(WIFSIGNALED(st), "data 0x%x is not a signal death", st);
	cr_assert_eq(WTERMSIG(st), SIGKILL);
	cr_assert_eq(st, SIGKILL, "data 0x%x, want 9", st);
	int status;
	reap(pid, &status);
	cr_assert(WIFSIGNALED(status));
	cr_assert_eq(WTERMSIG(status), SIGKILL);
	close(p[1]);
	close(kq);
}

Test(kq_proc, exit_code_0_and_255)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t a = child_on_pipe(p, 0);
	pid_t b = child_on_pipe(p, 255);
	close(p[0]);
	watch(kq, a, (void *)1);
	watch(kq, b, (void *)2);
	close(p[1]);
	int seen = 0;
	while (seen != 3) {
		struct kevent ev[4];
		int n = kwait(kq, ev, 4, &ts_5s);
		cr_assert_gt(n, 0, "exits seen: mask %d of 3", seen);
		for (int i = 0; i < n; i++) {
			pid_t pid = (pid_t)ev[i].ident;
			cr_assert(pid == a || pid == b, "ident %d", (int)pid);
			check_exit_event(&ev[i], pid, pid == a ? (void *)1 : (void *)2);
			cr_assert_eq(ev[i].data, pid == a ? 0 : 255 << 8, "data 0x%lx",
				     (long)ev[i].data);
			int bit = pid == a ? 1 : 2;
			cr_assert_eq(seen & bit, 0, "pid %d reported twice", (int)pid);
			seen |= bit;
		}
	}
	int status;
	reap(a, &status);
	reap(b, &status);
	close(kq);
}

Test(kq_proc, nonexistent_pid_is_esrch)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	int status;
	reap(pid, &status);
	int kq = kq_new();
	cr_assert_eq(chg(kq, pid, EV_ADD, NOTE_EXIT, NULL), ESRCH);
	cr_assert_eq(chg(kq, pid, EV_DELETE, 0, NULL), ENOENT);
	none(kq, &ts_0);
	close(kq);
}

Test(kq_proc, zombie_child_reports_at_once)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(3);
	/* Wait until it is a zombie, without reaping it. */
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int r;
	do
		r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, 0, "waitid: %s", strerror(errno));
	cr_assert_eq(si.si_pid, pid);
	int kq = kq_new();
	watch(kq, pid, (void *)3);
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_0);
	cr_assert_eq(n, 1, "the exit of a zombie was not reported at once (%d events)", n);
	check_exit_event(&ev[0], pid, (void *)3);
	cr_assert_eq(ev[0].data, 3 << 8, "data 0x%lx", (long)ev[0].data);
	int status;
	reap(pid, &status);
	cr_assert_eq(WEXITSTATUS(status), 3);
	close(kq);
}

Test(kq_proc, delete_before_exit_reports_nothing)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = child_on_pipe(p, 5);
	close(p[0]);
	watch(kq, pid, NULL);
	cr_assert_eq(chg(kq, pid, EV_DELETE, 0, NULL), 0);
	close(p[1]);
	int status;
	reap(pid, &status);
	cr_assert_eq(WEXITSTATUS(status), 5);
	none(kq, &ts_50ms);
	close(kq);
}

Test(kq_proc, disabled_exit_is_reported_on_enable)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = child_on_pipe(p, 9);
	close(p[0]);
	cr_assert_eq(chg(kq, pid, EV_ADD | EV_DISABLE, NOTE_EXIT, NULL), 0);
	close(p[1]);
	/* Wait for the exit itself (not reaping), then look: nothing while disabled. */
	siginfo_t si;
	int r;
	do
		r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, 0);
	none(kq, &ts_50ms);
	cr_assert_eq(chg(kq, pid, EV_ENABLE, 0, NULL), 0);
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_5s);
	cr_assert_eq(n, 1);
	check_exit_event(&ev[0], pid, NULL);
	cr_assert_eq(ev[0].data, 9 << 8);
	int status;
	reap(pid, &status);
	close(kq);
}

#define NKIDS 50

Test(kq_proc, fifty_children_all_reported)
{
	int kq = kq_new();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t kids[NKIDS];
	for (int i = 0; i < NKIDS; i++) {
		kids[i] = child_on_pipe(p, i + 1);
		watch(kq, kids[i], (void *)(intptr_t)(i + 1));
	}
	close(p[0]);
	close(p[1]); /* all exit now */
	int seen[NKIDS] = {0}, got = 0;
	while (got < NKIDS) {
		struct kevent ev[16];
		int n = kwait(kq, ev, 16, &ts_5s);
		cr_assert_gt(n, 0, "only %d of %d exits reported", got, NKIDS);
		for (int j = 0; j < n; j++) {
			int i = (int)(intptr_t)ev[j].udata - 1;
			cr_assert(i >= 0 && i < NKIDS, "udata %p", ev[j].udata);
			check_exit_event(&ev[j], kids[i], (void *)(intptr_t)(i + 1));
			cr_assert_eq(ev[j].data, (i + 1) << 8, "child %d: data 0x%lx", i,
				     (long)ev[j].data);
			cr_assert_eq(seen[i], 0, "child %d reported twice", i);
			seen[i] = 1;
			got++;
		}
	}
	none(kq, &ts_50ms);
	for (int i = 0; i < NKIDS; i++) {
		int status;
		reap(kids[i], &status);
		cr_assert_eq(WEXITSTATUS(status), i + 1);
	}
	close(kq);
}
