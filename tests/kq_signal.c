/* EVFILT_SIGNAL: counts deliveries alongside SIG_IGN and the program's own
 * handlers, for signals sent to the process or to one thread, and puts the
 * program's disposition back when the last knote goes. No signal tested here
 * is blocked: the implementation counts in a handler. */
#include "kqt.h"

#include <sys/event.h>
#include <sys/syscall.h>
#include <sys/wait.h>

TestSuite(kq_signal, .timeout = 30);

static const struct timespec ts_5s = {5, 0};
static const struct timespec ts_50ms = {0, 50 * 1000000L};

static int kq_new(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

static int chg(int kq, uintptr_t ident, unsigned short flags, void *udata)
{
	struct kevent kev;
	EV_SET(&kev, ident, EVFILT_SIGNAL, flags, 0, 0, udata);
	int r = kevent(kq, &kev, 1, NULL, 0, NULL);
	if (r == 0)
		return 0;
	cr_assert_eq(r, -1, "kevent returned %d", r);
	return errno;
}

static void chg_ok(int kq, uintptr_t ident, unsigned short flags, void *udata)
{
	int e = chg(kq, ident, flags, udata);
	cr_assert_eq(e, 0, "signal %lu flags 0x%x: %s", (unsigned long)ident, flags, strerror(e));
}

/* kevent() that retries EINTR: a handled signal may interrupt a wait, as on BSD. */
static int kwait(int kq, struct kevent *ev, int n, const struct timespec *ts)
{
	int r;
	do
		r = kevent(kq, NULL, 0, ev, n, ts);
	while (r < 0 && errno == EINTR);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

static void none(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_50ms);
	cr_assert_eq(n, 0, "unexpected event: ident %lu filter %d data %ld",
		     (unsigned long)ev[0].ident, ev[0].filter, (long)ev[0].data);
}

/* Collects reports of sig until their data adds up to want, 5 s at most per
 * wait; returns the total, and in *nev how many reports carried it. */
static int64_t collect(int kq, int sig, void *udata, int64_t want, int *nev)
{
	int64_t total = 0;
	int n = 0;
	while (total < want) {
		struct kevent ev[4];
		int r = kwait(kq, ev, 4, &ts_5s);
		if (!r)
			break;
		for (int i = 0; i < r; i++) {
			cr_assert_eq(ev[i].ident, (uintptr_t)sig, "ident %lu, want %d",
				     (unsigned long)ev[i].ident, sig);
			cr_assert_eq(ev[i].filter, EVFILT_SIGNAL);
			cr_assert_eq(ev[i].flags & (EV_ERROR | EV_EOF), 0, "flags 0x%x",
				     ev[i].flags);
			cr_assert(ev[i].flags & EV_CLEAR, "flags 0x%x lack EV_CLEAR", ev[i].flags);
			cr_assert_eq(ev[i].udata, udata);
			cr_assert_gt(ev[i].data, 0);
			total += ev[i].data;
			n++;
		}
	}
	if (nev)
		*nev = n;
	return total;
}

static void set_disp(int sig, void (*h)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0, "sigaction: %s", strerror(errno));
}

static void send_self(int sig)
{
	cr_assert_eq(kill(getpid(), sig), 0, "kill: %s", strerror(errno));
}

static volatile sig_atomic_t hits;
static volatile sig_atomic_t hit_sig;

static void on_sig(int sig)
{
	__atomic_store_n(&hit_sig, sig, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST);
}

static int nhits(void)
{
	return __atomic_load_n(&hits, __ATOMIC_SEQ_CST);
}

Test(kq_signal, ignored_signal_twice_is_one_event_with_data_2)
{
	set_disp(SIGUSR1, SIG_IGN);
	int kq = kq_new();
	send_self(SIGUSR1); /* before the knote: not counted */
	chg_ok(kq, SIGUSR1, EV_ADD, (void *)0x51);
	send_self(SIGUSR1);
	send_self(SIGUSR1);
	int nev;
	int64_t total = collect(kq, SIGUSR1, (void *)0x51, 2, &nev);
	cr_assert_eq(total, 2, "counted %ld deliveries, want 2", (long)total);
	cr_assert_eq(nev, 1, "the 2 deliveries came in %d reports, want one", nev);
	none(kq);
	/* Still alive, still ignoring it. */
	chg_ok(kq, SIGUSR1, EV_DELETE, NULL);
	send_self(SIGUSR1);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
}

Test(kq_signal, data_resets_after_a_report)
{
	set_disp(SIGUSR2, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, SIGUSR2, EV_ADD, NULL);
	send_self(SIGUSR2);
	cr_assert_eq(collect(kq, SIGUSR2, NULL, 1, NULL), 1);
	none(kq);
	send_self(SIGUSR2);
	send_self(SIGUSR2);
	int nev;
	int64_t total = collect(kq, SIGUSR2, NULL, 2, &nev);
	cr_assert_eq(total, 2, "data %ld after the report of 1, want 2 (not 3)", (long)total);
	cr_assert_eq(nev, 1);
	none(kq);
	close(kq);
	set_disp(SIGUSR2, SIG_DFL);
}

Test(kq_signal, program_handler_still_runs_and_kq_counts)
{
	set_disp(SIGUSR1, on_sig);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD, NULL);
	for (int i = 0; i < 3; i++)
		send_self(SIGUSR1);
	cr_assert(kqt_eventually(nhits() == 3, 5000), "the program's handler ran %d times, want 3",
		  nhits());
	cr_assert_eq(__atomic_load_n(&hit_sig, __ATOMIC_SEQ_CST), SIGUSR1);
	cr_assert_eq(collect(kq, SIGUSR1, NULL, 3, NULL), 3);
	none(kq);
	cr_assert_eq(nhits(), 3);
	chg_ok(kq, SIGUSR1, EV_DELETE, NULL);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
}

static volatile sig_atomic_t got_hits, got_signo, got_code, got_val;
static volatile pid_t got_pid;

static void on_siginfo(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	__atomic_store_n(&got_signo, si ? si->si_signo : -sig, __ATOMIC_SEQ_CST);
	__atomic_store_n(&got_code, si ? si->si_code : 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&got_val, si ? si->si_value.sival_int : 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&got_pid, si ? si->si_pid : 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&got_hits, 1, __ATOMIC_SEQ_CST);
}

Test(kq_signal, siginfo_handler_still_gets_its_siginfo)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_siginfo;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
	int kq = kq_new();
	chg_ok(kq, SIGUSR2, EV_ADD, (void *)2);
	union sigval v = {.sival_int = 4242};
	cr_assert_eq(sigqueue(getpid(), SIGUSR2, v), 0, "sigqueue: %s", strerror(errno));
	cr_assert(kqt_eventually(__atomic_load_n(&got_hits, __ATOMIC_SEQ_CST) == 1, 5000),
		  "the SA_SIGINFO handler did not run");
	cr_assert_eq(__atomic_load_n(&got_signo, __ATOMIC_SEQ_CST), SIGUSR2);
	cr_assert_eq(__atomic_load_n(&got_code, __ATOMIC_SEQ_CST), SI_QUEUE);
	cr_assert_eq(__atomic_load_n(&got_val, __ATOMIC_SEQ_CST), 4242);
	cr_assert_eq(__atomic_load_n(&got_pid, __ATOMIC_SEQ_CST), getpid());
	cr_assert_eq(collect(kq, SIGUSR2, (void *)2, 1, NULL), 1);
	none(kq);
	chg_ok(kq, SIGUSR2, EV_DELETE, NULL);
	/* Back to the program's SA_SIGINFO handler. */
	struct sigaction cur;
	cr_assert_eq(sigaction(SIGUSR2, NULL, &cur), 0);
	cr_assert(cur.sa_flags & SA_SIGINFO);
	cr_assert_eq(cur.sa_sigaction, on_siginfo);
	close(kq);
	signal(SIGUSR2, SIG_DFL);
}

static volatile pid_t handler_tid, spinner_tid;
static int spin_stop;

static void on_sig_tid(int sig)
{
	(void)sig;
	__atomic_store_n(&handler_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST);
}

/* ThreadSanitizer takes a signal sent to another thread to deliver it itself
 * later, and at times loses it: the other builds check these. */
static void skip_under_tsan(void)
{
	const char *san = getenv("KQAIO_SAN");
	if (san && !strcmp(san, "tsan"))
		cr_skip_test("ThreadSanitizer's own delivery loses signals sent to other threads");
}

static void *spinner(void *arg)
{
	(void)arg;
	__atomic_store_n(&spinner_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&spin_stop, __ATOMIC_SEQ_CST))
		usleep(1000);
	return NULL;
}

Test(kq_signal, pthread_kill_to_another_thread_is_counted)
{
	skip_under_tsan();
	int sig = SIGRTMIN + 1;
	set_disp(sig, on_sig_tid);
	int kq = kq_new();
	chg_ok(kq, (uintptr_t)sig, EV_ADD, (void *)7);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, spinner, NULL), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&spinner_tid, __ATOMIC_SEQ_CST) != 0, 5000));
	cr_assert_eq(pthread_kill(t, sig), 0);
	/* The main thread waits in kevent() while the other thread takes the signal. */
	int64_t total = collect(kq, sig, (void *)7, 1, NULL);
	cr_assert(kqt_eventually(nhits() == 1, 5000), "handler ran %d times", nhits());
	pid_t ht = __atomic_load_n(&handler_tid, __ATOMIC_SEQ_CST);
	pid_t st = __atomic_load_n(&spinner_tid, __ATOMIC_SEQ_CST);
	__atomic_store_n(&spin_stop, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(total, 1, "the kq counted %ld deliveries, want 1", (long)total);
	cr_assert_eq(ht, st, "the handler ran in thread %d, not the target %d", (int)ht, (int)st);
	none(kq);
	close(kq);
	set_disp(sig, SIG_DFL);
}

Test(kq_signal, pthread_kill_of_an_ignored_signal_is_counted)
{
	skip_under_tsan();
	int sig = SIGRTMIN + 3;
	set_disp(sig, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, (uintptr_t)sig, EV_ADD, NULL);
	__atomic_store_n(&spin_stop, 0, __ATOMIC_SEQ_CST);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, spinner, NULL), 0);
	cr_assert(kqt_eventually(__atomic_load_n(&spinner_tid, __ATOMIC_SEQ_CST) != 0, 5000));
	cr_assert_eq(pthread_kill(t, sig), 0);
	cr_assert_eq(pthread_kill(t, sig), 0);
	int64_t total = collect(kq, sig, NULL, 2, NULL);
	__atomic_store_n(&spin_stop, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(total, 2, "counted %ld, want 2 (a real-time signal queues)", (long)total);
	none(kq);
	close(kq);
	set_disp(sig, SIG_DFL);
}

Test(kq_signal, delete_restores_the_program_handler)
{
	set_disp(SIGUSR1, on_sig);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD, NULL);
	chg_ok(kq, SIGUSR1, EV_DELETE, NULL);
	struct sigaction cur;
	cr_assert_eq(sigaction(SIGUSR1, NULL, &cur), 0);
	cr_assert_eq(cur.sa_flags & SA_SIGINFO, 0, "flags 0x%x", (unsigned)cur.sa_flags);
	cr_assert_eq(cur.sa_handler, on_sig, "the program's handler is not back");
	/* And it works as before, counted by nobody. */
	send_self(SIGUSR1);
	cr_assert(kqt_eventually(nhits() == 1, 5000));
	none(kq);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
}

Test(kq_signal, delete_restores_sig_ign)
{
	set_disp(SIGUSR2, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, SIGUSR2, EV_ADD, NULL);
	chg_ok(kq, SIGUSR2, EV_DELETE, NULL);
	struct sigaction cur;
	cr_assert_eq(sigaction(SIGUSR2, NULL, &cur), 0);
	cr_assert_eq(cur.sa_flags & SA_SIGINFO, 0, "flags 0x%x", (unsigned)cur.sa_flags);
	cr_assert_eq(cur.sa_handler, SIG_IGN, "SIG_IGN is not back");
	send_self(SIGUSR2); /* ignored: the process lives on */
	none(kq);
	close(kq);
	set_disp(SIGUSR2, SIG_DFL);
}

Test(kq_signal, disposition_restored_only_after_the_last_knote)
{
	int sig = SIGRTMIN + 4;
	set_disp(sig, on_sig);
	int kq1 = kq_new(), kq2 = kq_new();
	chg_ok(kq1, (uintptr_t)sig, EV_ADD, (void *)1);
	chg_ok(kq2, (uintptr_t)sig, EV_ADD, (void *)2);
	chg_ok(kq1, (uintptr_t)sig, EV_DELETE, NULL);
	/* kq2 still counts, and the handler still runs. */
	send_self(sig);
	cr_assert_eq(collect(kq2, sig, (void *)2, 1, NULL), 1);
	cr_assert(kqt_eventually(nhits() == 1, 5000));
	none(kq1);
	chg_ok(kq2, (uintptr_t)sig, EV_DELETE, NULL);
	struct sigaction cur;
	cr_assert_eq(sigaction(sig, NULL, &cur), 0);
	cr_assert_eq(cur.sa_flags & SA_SIGINFO, 0, "flags 0x%x", (unsigned)cur.sa_flags);
	cr_assert_eq(cur.sa_handler, on_sig);
	close(kq1);
	close(kq2);
	set_disp(sig, SIG_DFL);
}

Test(kq_signal, two_kqs_both_count)
{
	int sig = SIGRTMIN + 2;
	set_disp(sig, SIG_IGN);
	int kq1 = kq_new(), kq2 = kq_new();
	chg_ok(kq1, (uintptr_t)sig, EV_ADD, (void *)1);
	chg_ok(kq2, (uintptr_t)sig, EV_ADD, (void *)2);
	send_self(sig);
	send_self(sig);
	send_self(sig);
	cr_assert_eq(collect(kq1, sig, (void *)1, 3, NULL), 3);
	cr_assert_eq(collect(kq2, sig, (void *)2, 3, NULL), 3);
	none(kq1);
	none(kq2);
	close(kq1);
	close(kq2);
	set_disp(sig, SIG_DFL);
}

Test(kq_signal, different_signals_are_counted_apart)
{
	set_disp(SIGUSR1, SIG_IGN);
	set_disp(SIGUSR2, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD, (void *)1);
	chg_ok(kq, SIGUSR2, EV_ADD, (void *)2);
	send_self(SIGUSR2);
	cr_assert_eq(collect(kq, SIGUSR2, (void *)2, 1, NULL), 1);
	none(kq);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
	set_disp(SIGUSR2, SIG_DFL);
}

Test(kq_signal, ident_0_and_65_are_einval)
{
	int kq = kq_new();
	cr_assert_eq(chg(kq, 0, EV_ADD, NULL), EINVAL);
	cr_assert_eq(chg(kq, 65, EV_ADD, NULL), EINVAL);
	cr_assert_eq(chg(kq, 1000, EV_ADD, NULL), EINVAL);
	cr_assert_eq(chg(kq, 0, EV_DELETE, NULL), ENOENT);
	cr_assert_eq(chg(kq, 65, EV_DELETE, NULL), ENOENT);
	/* The edges that are signals: 1 and 64 (SIGRTMAX). */
	struct sigaction before;
	cr_assert_eq(sigaction(SIGRTMAX, NULL, &before), 0);
	chg_ok(kq, (uintptr_t)SIGRTMAX, EV_ADD, NULL);
	chg_ok(kq, (uintptr_t)SIGRTMAX, EV_DELETE, NULL);
	chg_ok(kq, SIGHUP, EV_ADD, NULL);
	chg_ok(kq, SIGHUP, EV_DELETE, NULL);
	close(kq);
}

Test(kq_signal, disabled_knote_keeps_counting_for_enable)
{
	set_disp(SIGUSR1, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD | EV_DISABLE, NULL);
	send_self(SIGUSR1);
	none(kq);
	chg_ok(kq, SIGUSR1, EV_ENABLE, NULL);
	cr_assert_eq(collect(kq, SIGUSR1, NULL, 1, NULL), 1);
	none(kq);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
}

/* What the kernel has installed for sig, read around libc and kqaio. */
static void *kernel_handler(int sig, unsigned long *flags)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} k;
	cr_assert_eq(syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask), 0, "rt_sigaction: %s",
		     strerror(errno));
	if (flags)
		*flags = k.flags;
	return k.handler;
}

/* libevent's kqueue backend: EV_ADD, then SIG_IGN so that only kevent sees it. */
Test(kq_signal, sig_ign_set_after_add_is_still_counted)
{
	set_disp(SIGUSR1, on_sig);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD, (void *)0x61);
	set_disp(SIGUSR1, SIG_IGN);
	send_self(SIGUSR1);
	send_self(SIGUSR1);
	cr_assert_eq(collect(kq, SIGUSR1, (void *)0x61, 2, NULL), 2);
	cr_assert_eq(nhits(), 0, "the handler replaced by SIG_IGN ran %d times", nhits());
	/* Deleting the event leaves the program's last word: SIG_IGN. */
	chg_ok(kq, SIGUSR1, EV_DELETE, NULL);
	cr_assert_eq(kernel_handler(SIGUSR1, NULL), SIG_IGN);
	send_self(SIGUSR1);
	close(kq);
	set_disp(SIGUSR1, SIG_DFL);
}

Test(kq_signal, sigaction_reports_the_programs_disposition_not_kqaios)
{
	set_disp(SIGUSR2, on_sig);
	int kq = kq_new();
	chg_ok(kq, SIGUSR2, EV_ADD, NULL);
	struct sigaction cur;
	cr_assert_eq(sigaction(SIGUSR2, NULL, &cur), 0);
	cr_assert_eq(cur.sa_flags & SA_SIGINFO, 0, "flags 0x%x", (unsigned)cur.sa_flags);
	cr_assert_eq(cur.sa_handler, on_sig, "sigaction reported kqaio's handler");
	cr_assert_neq(kernel_handler(SIGUSR2, NULL), (void *)on_sig,
		      "kqaio's counting handler is not installed");
	struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
	cr_assert_eq(sigaction(SIGUSR2, &ign, &prev), 0);
	cr_assert_eq(prev.sa_handler, on_sig);
	cr_assert_eq(sigaction(SIGUSR2, NULL, &cur), 0);
	cr_assert_eq(cur.sa_handler, SIG_IGN);
	chg_ok(kq, SIGUSR2, EV_DELETE, NULL);
	cr_assert_eq(kernel_handler(SIGUSR2, NULL), SIG_IGN,
		     "the last knote gone, SIG_IGN is installed");
	close(kq);
	set_disp(SIGUSR2, SIG_DFL);
}

Test(kq_signal, handler_set_after_add_runs_and_is_counted)
{
	int sig = SIGRTMIN + 5;
	set_disp(sig, SIG_IGN);
	int kq = kq_new();
	chg_ok(kq, (uintptr_t)sig, EV_ADD, NULL);
	set_disp(sig, on_sig);
	send_self(sig);
	cr_assert_eq(collect(kq, sig, NULL, 1, NULL), 1);
	cr_assert(kqt_eventually(nhits() == 1, 5000), "the new handler ran %d times", nhits());
	cr_assert_eq(hit_sig, sig);
	chg_ok(kq, (uintptr_t)sig, EV_DELETE, NULL);
	struct sigaction cur;
	cr_assert_eq(sigaction(sig, NULL, &cur), 0);
	cr_assert_eq(cur.sa_handler, on_sig);
	/* Under TSan the kernel holds TSan's wrapper of on_sig. */
	const char *san = getenv("KQAIO_SAN");
	if (!san || strcmp(san, "tsan"))
		cr_assert_eq(kernel_handler(sig, NULL), (void *)on_sig);
	close(kq);
	set_disp(sig, SIG_DFL);
}

Test(kq_signal, signal_after_add_returns_the_old_handler_and_keeps_counting)
{
	set_disp(SIGUSR1, on_sig);
	int kq = kq_new();
	chg_ok(kq, SIGUSR1, EV_ADD, NULL);
	cr_assert_eq(signal(SIGUSR1, SIG_IGN), on_sig);
	send_self(SIGUSR1);
	cr_assert_eq(collect(kq, SIGUSR1, NULL, 1, NULL), 1);
	cr_assert_eq(signal(SIGUSR1, SIG_DFL), SIG_IGN);
	cr_assert_eq(nhits(), 0);
	chg_ok(kq, SIGUSR1, EV_DELETE, NULL);
	cr_assert_eq(kernel_handler(SIGUSR1, NULL), SIG_DFL);
	cr_assert_eq(signal(0, SIG_IGN), SIG_ERR);
	cr_assert_eq(errno, EINVAL);
	close(kq);
}

/* SIG_IGN for SIGCHLD means the kernel reaps children; the event still comes. */
Test(kq_signal, sigchld_ignored_after_add_reaps_children_and_is_counted)
{
	int kq = kq_new();
	chg_ok(kq, SIGCHLD, EV_ADD, NULL);
	set_disp(SIGCHLD, SIG_IGN);
	unsigned long flags;
	kernel_handler(SIGCHLD, &flags);
	cr_assert(flags & SA_NOCLDWAIT, "kernel flags 0x%lx lack SA_NOCLDWAIT", flags);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(collect(kq, SIGCHLD, NULL, 1, NULL), 1);
	/* Reaped by the kernel: nothing left to wait for. */
	cr_assert_eq(waitpid(pid, NULL, 0), -1);
	cr_assert_eq(errno, ECHILD);
	close(kq);
	set_disp(SIGCHLD, SIG_DFL);
}
