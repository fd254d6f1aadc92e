/* The kqueue as the AIO engine sees it: knotes it makes, fires and deletes. */
#ifndef KQ_KQ_POST_H
#define KQ_KQ_POST_H

#include <stdint.h>

struct kq_knote;

/* An EVFILT_AIO or EVFILT_LIO knote on the kqueue kqfd for ident, reported
 * with udata and flags (EV_ONESHOT, EV_CLEAR, EV_DISPATCH). An EVFILT_AIO
 * knote replaces one already there for ident; EVFILT_LIO knotes for one list
 * array live side by side, one per lio_listio call. The caller holds a reference. NULL with *err
 * set: EBADF (kqfd is no kqueue), EINVAL (other flags), ENOMEM. */
struct kq_knote *kq_post_attach(int kqfd, short filter, uintptr_t ident, void *udata,
				unsigned flags, int *err);
void kq_post_ref(struct kq_knote *kn);
void kq_post_unref(struct kq_knote *kn);
/* The request (or the list) is done: report it with data. once: delete the
 * knote after its first report (a list that queued nothing). */
void kq_post_fire(struct kq_knote *kn, int64_t data, int once);
/* Reaped: the knote leaves its kqueue if still there, reported or not, and
 * the caller's reference is dropped. */
void kq_post_detach(struct kq_knote *kn);
/* Reaped where no lock may be taken (a signal handler): the knote reports
 * nothing more, until kq_post_detach takes it away. Async-signal-safe. */
void kq_post_hide(struct kq_knote *kn);
/* Called by kevent() before it looks for events, without a lock held: the
 * engine starts requests it held back to batch them (they may be the ones
 * the caller waits for). Set once, at the engine's start. */
void kq_post_set_flush(void (*flush)(void));

#endif
