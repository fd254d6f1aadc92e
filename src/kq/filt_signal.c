/* EVFILT_SIGNAL: count deliveries without taking signals from their handlers.
 *
 * A watched signal gets a handler of ours that counts each delivery in a
 * process-wide counter, pokes one process-wide eventfd, and then does what
 * the disposition it replaced would have done (the program's handler,
 * nothing for SIG_IGN, the default action). Every kq watching signals has
 * that eventfd in its epoll, edge-triggered and never read: each poke is an
 * edge for every kq, which then compares counters. Signals sent to any
 * thread are counted, since the handler runs in whichever thread gets it.
 *
 * FreeBSD counts a signal in the kernel whatever its disposition, so BSD
 * code sets SIG_IGN after EV_ADD (libevent does). kqaio's sigaction() and
 * signal() (sigaction.c) therefore change the program's disposition of a
 * watched signal here, and report it, while our handler stays installed. */
#include "kq/kq.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define KQ_NSIG 65

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t counts[KQ_NSIG];   /* deliveries, ever */
static unsigned watchers[KQ_NSIG]; /* knotes watching, all kqs */
/* The program's disposition of a hooked signal, in two slots: a change is
 * written to the slot the handler is not reading, then published. */
static struct sigaction saved[2][KQ_NSIG];
static unsigned char live[KQ_NSIG];
static bool hooked[KQ_NSIG];
/* The saved disposition came through our sigaction(), behind any
 * interceptor (TSan's puts its wrapper there): it goes back the same way. */
static bool raw[KQ_NSIG];
static int sig_evfd = -1;
static sigset_t fork_mask; /* the forking thread's, while it holds sig_lock */

/* Our own sigaction() calls go through the exported one (so that a
 * sanitizer's interceptor sees them) and on to libc's: volatile, since the
 * compiler cannot see that sigaction() reads it. */
static __thread volatile bool installing;

/* sigaction.c goes straight to libc until the first signal is watched, so
 * that a sanitizer's start-up calls meet none of our code; kq_sig_entering
 * counts the calls on that path, which the first hook waits out. */
int kq_sig_active;
unsigned kq_sig_entering;

static int install(int sig, const struct sigaction *sa, struct sigaction *old)
{
	installing = true;
	int r = sigaction(sig, sa, old);
	installing = false;
	return r;
}

/* sig_lock is taken with every signal blocked in the thread, so a handler
 * that calls sigaction() cannot interrupt its own thread's holder. */
static void lock_sigs(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
	pthread_mutex_lock(&sig_lock);
}

static void unlock_sigs(const sigset_t *old)
{
	pthread_mutex_unlock(&sig_lock);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static struct sigaction *disposition(int sig)
{
	return &saved[__atomic_load_n(&live[sig], __ATOMIC_ACQUIRE)][sig];
}

static bool default_ignores(int sig)
{
	return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

static uint64_t swallowed; /* deliveries that reached no handler of the program */

uint64_t kq_signal_swallowed(void)
{
	return __atomic_load_n(&swallowed, __ATOMIC_ACQUIRE);
}

static bool default_stops(int sig)
{
	return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	__atomic_add_fetch(&counts[sig], 1, __ATOMIC_RELEASE);
	uint64_t one = 1;
	ssize_t r = write(__atomic_load_n(&sig_evfd, __ATOMIC_ACQUIRE), &one, sizeof one);
	(void)r;
	errno = saved_errno;
	struct sigaction *old = disposition(sig);
	bool program = old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN;
	if (!program)
		__atomic_add_fetch(&swallowed, 1, __ATOMIC_RELEASE);
	if (program && (old->sa_flags & SA_RESETHAND)) {
		/* A one-time handler: the next delivery gets the default action. */
		struct sigaction once = *old;
		old->sa_handler = SIG_DFL;
		old->sa_flags &= ~(SA_SIGINFO | SA_RESETHAND);
		if (once.sa_flags & SA_SIGINFO)
			once.sa_sigaction(sig, si, uc);
		else
			once.sa_handler(sig);
	} else if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uc);
	} else if (program) {
		old->sa_handler(sig);
	} else if (old->sa_handler == SIG_DFL && default_stops(sig)) {
		raise(SIGSTOP); /* stop, and stay hooked for the next delivery */
	} else if (old->sa_handler == SIG_DFL && !default_ignores(sig)) {
		/* The default action ends the process: do it for real. */
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		install(sig, &dfl, NULL);
		raise(sig);
	}
}

/* Our handler, with the mask and flags the program's disposition asks for. */
static void ours(int sig, const struct sigaction *prog, struct sigaction *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sa_sigaction = handler;
	sa->sa_mask = prog->sa_mask;
	sa->sa_flags =
	    SA_SIGINFO |
	    (prog->sa_flags & (SA_RESTART | SA_ONSTACK | SA_NODEFER | SA_NOCLDSTOP | SA_NOCLDWAIT));
	/* An ignored SIGCHLD also means children are reaped by the kernel. */
	if (sig == SIGCHLD && !(prog->sa_flags & SA_SIGINFO) && prog->sa_handler == SIG_IGN)
		sa->sa_flags |= SA_NOCLDWAIT;
	if (!(prog->sa_flags & SA_SIGINFO) &&
	    (prog->sa_handler == SIG_DFL || prog->sa_handler == SIG_IGN))
		sa->sa_flags |=
		    SA_RESTART; /* the program expects no EINTR from an ignored signal */
}

static int hook(int sig)
{
	if (hooked[sig])
		return 0;
	struct sigaction old, sa;
	if (install(sig, NULL, &old))
		return 0; /* SIGKILL, SIGSTOP, libc's own: watched, never delivered to us */
	ours(sig, &old, &sa);
	saved[live[sig]][sig] = old;
	raw[sig] = false;
	if (install(sig, &sa, NULL))
		return errno;
	hooked[sig] = true;
	return 0;
}

static void unhook(int sig)
{
	struct sigaction cur;
	if (!hooked[sig])
		return;
	hooked[sig] = false;
	/* Put back the program's disposition, unless something went around
	 * sigaction() to change ours. */
	int (*set)(int, const struct sigaction *, struct sigaction *) =
	    raw[sig] ? __sigaction : install;
	if (!set(sig, NULL, &cur) && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler)
		set(sig, disposition(sig), NULL);
}

/* sigaction() once signals are watched. On a hooked signal: change and
 * report the program's disposition and keep counting. Any other goes to libc
 * under sig_lock, so that it cannot slip between a hook's read and write. */
int kq_signal_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig < 1 || sig >= KQ_NSIG || installing)
		return __sigaction(sig, act, old);
	sigset_t mask;
	lock_sigs(&mask);
	int ret = 0;
	if (!hooked[sig]) {
		ret = __sigaction(sig, act, old);
	} else {
		struct sigaction prev = *disposition(sig), sa;
		if (act) {
			/* Straight to libc: an interceptor that wraps handlers (TSan's)
			 * has already taken act's handler for its own table, and would
			 * put ours there in its place, to be chained to from itself. */
			ours(sig, act, &sa);
			if (__sigaction(sig, &sa, NULL)) {
				ret = -1;
			} else {
				unsigned char next = !live[sig];
				saved[next][sig] = *act;
				raw[sig] = true;
				__atomic_store_n(&live[sig], next, __ATOMIC_RELEASE);
			}
		}
		if (old && !ret)
			*old = prev;
	}
	int err = errno;
	unlock_sigs(&mask);
	errno = err;
	return ret;
}

static int sig_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	if (kev->ident < 1 || kev->ident >= KQ_NSIG)
		return EINVAL;
	int sig = (int)kev->ident, err = 0;
	/* Without sig_lock: a handler interrupting a call on the fast path may
	 * call sigaction() itself, and that one takes the lock. */
	if (!__atomic_load_n(&kq_sig_active, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&kq_sig_active, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&kq_sig_entering, __ATOMIC_SEQ_CST))
			sched_yield();
	}
	sigset_t mask;
	lock_sigs(&mask);
	if (sig_evfd < 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			err = errno;
		else
			__atomic_store_n(&sig_evfd, fd, __ATOMIC_RELEASE);
	}
	if (!err && !kq->sig_watch) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLET,
					 .data.u64 = KQ_TOKEN(KQ_TAG_SIGNAL, 0, 0)};
		if (epoll_ctl(kq->wfd, EPOLL_CTL_ADD, sig_evfd, &ev))
			err = errno;
		else
			kq->sig_watch = true;
	}
	if (!err && !(err = hook(sig)))
		watchers[sig]++;
	kn->u.sig.seen = __atomic_load_n(&counts[sig], __ATOMIC_ACQUIRE);
	unlock_sigs(&mask);
	if (!err)
		kq_list_add_tail(&kq->sigs, &kn->flink);
	return err;
}

static void sig_detach(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	int sig = (int)kn->ident;
	kq_list_del(&kn->flink);
	sigset_t mask;
	lock_sigs(&mask);
	if (--watchers[sig] == 0)
		unhook(sig);
	unlock_sigs(&mask);
}

static void sig_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->data)
		kq_knote_activate(kq, kn);
}

static bool sig_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	return kn->data > 0;
}

static void sig_clear(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	kn->data = 0;
}

/* The signal eventfd had an edge: queue the knotes whose signal came. */
void kq_signal_scan(struct kq *kq)
{
	for (struct kq_link *l = kq->sigs.next; l != &kq->sigs; l = l->next) {
		struct kq_knote *kn = kq_container_of(l, struct kq_knote, flink);
		uint64_t c = __atomic_load_n(&counts[kn->ident], __ATOMIC_ACQUIRE);
		if (c == kn->u.sig.seen)
			continue;
		kn->data += (int64_t)(c - kn->u.sig.seen);
		kn->u.sig.seen = c;
		kq_knote_activate(kq, kn);
	}
}

void kq_signal_fork_prepare(void)
{
	sigset_t mask;
	lock_sigs(&mask);
	fork_mask = mask;
}

void kq_signal_fork_parent(void)
{
	unlock_sigs(&fork_mask);
}

/* The parent's eventfd is shared with the child: the child gets its own.
 * Its kqs are destroyed next, which puts the dispositions back. */
void kq_signal_fork_child(void)
{
	if (sig_evfd >= 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd >= 0) {
			dup3(fd, sig_evfd, O_CLOEXEC);
			kq_close(fd);
		}
	}
	unlock_sigs(&fork_mask);
}

void kq_signal_forget(struct kq *kq)
{
	for (struct kq_link *l; (l = kq_list_first(&kq->sigs));)
		sig_detach(kq, kq_container_of(l, struct kq_knote, flink));
}

const struct kq_filter kq_filt_signal = {
    .filter = EVFILT_SIGNAL,
    .attach = sig_attach,
    .enable = sig_enable,
    .detach = sig_detach,
    .event = sig_event,
    .clear = sig_clear,
    .force_flags = EV_CLEAR,
};
