/* sigaction() and signal(), interposed on libc's so that a signal watched by
 * EVFILT_SIGNAL stays counted whatever disposition the program sets after
 * EV_ADD, as FreeBSD's kernel counts it (filt_signal.c keeps the program's
 * disposition). Other signals go straight to libc. */
#include "kq/kq.h"

#include <errno.h>
#include <signal.h>

/* Not instrumented: a sanitizer's start-up installs its handlers through
 * here before it can run instrumented code. */
KQ_API __attribute__((no_sanitize_thread, no_sanitize_address)) int
sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old)
{
	__atomic_add_fetch(&kq_sig_entering, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&kq_sig_active, __ATOMIC_SEQ_CST)) {
		int r = __sigaction(sig, act, old);
		__atomic_sub_fetch(&kq_sig_entering, 1, __ATOMIC_SEQ_CST);
		return r;
	}
	__atomic_sub_fetch(&kq_sig_entering, 1, __ATOMIC_SEQ_CST);
	return kq_signal_sigaction(sig, act, old);
}

/* glibc's signal() calls its sigaction internally: it is BSD's, as glibc's is
 * (the handler stays, the signal is held during it, calls restart). */
KQ_API sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;
	if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	if (sigaction(sig, &sa, &old))
		return SIG_ERR;
	return old.sa_handler;
}
