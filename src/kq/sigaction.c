/* sigaction() and signal(), interposed on libc's so that a signal watched by
 * EVFILT_SIGNAL stays counted whatever disposition the program sets after
 * EV_ADD, as FreeBSD's kernel counts it (filt_signal.c keeps the program's
 * disposition). Other signals go straight to libc. */
#include "kq/kq.h"

#include <errno.h>
#include <signal.h>

/* glibc's own sigaction, under the name that it exports for this. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

KQ_API int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old)
{
	int ret;
	if (kq_signal_sigaction(sig, act, old, &ret))
		return ret;
	return __sigaction(sig, act, old);
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
