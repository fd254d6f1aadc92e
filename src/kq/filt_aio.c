/* EVFILT_AIO and EVFILT_LIO: knotes the AIO engine makes for SIGEV_KEVENT
 * requests. A program cannot add them (no attach: EPERM), but it may delete,
 * enable or disable one that exists. */
#include "kq/kq.h"

static bool aio_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	return kn->eflags & EV_EOF;
}

static void aio_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->eflags & EV_EOF)
		kq_knote_activate(kq, kn);
}

const struct kq_filter kq_filt_aio = {
    .filter = EVFILT_AIO,
    .enable = aio_enable,
    .event = aio_event,
};

const struct kq_filter kq_filt_lio = {
    .filter = EVFILT_LIO,
    .enable = aio_enable,
    .event = aio_event,
};
