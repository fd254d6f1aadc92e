/* EVFILT_USER: events the program triggers itself, with editable fflags. */
#include "kq/kq.h"

static void edit(struct kq_knote *kn, const struct kevent *kev)
{
	unsigned ff = kev->fflags & NOTE_FFLAGSMASK;
	switch (kev->fflags & NOTE_FFCTRLMASK) {
	case NOTE_FFAND:
		kn->sfflags &= ff;
		break;
	case NOTE_FFOR:
		kn->sfflags |= ff;
		break;
	case NOTE_FFCOPY:
		kn->sfflags = ff;
		break;
	default:
		break; /* NOTE_FFNOP */
	}
	kn->sdata = kev->data;
	if (kev->fflags & NOTE_TRIGGER)
		kn->u.user.triggered = true;
}

static int user_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	kn->sfflags = 0;
	edit(kn, kev);
	if (kn->u.user.triggered)
		kq_knote_activate(kq, kn);
	return 0;
}

static int user_touch(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	edit(kn, kev);
	if (kev->flags & EV_CLEAR) {
		kn->u.user.triggered = false;
		kq_knote_dequeue(kq, kn);
	} else if (kn->u.user.triggered) {
		kq_knote_activate(kq, kn);
	}
	return 0;
}

static void user_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->u.user.triggered)
		kq_knote_activate(kq, kn);
}

static bool user_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	kn->fflags = kn->sfflags;
	kn->data = kn->sdata;
	return kn->u.user.triggered;
}

static void user_clear(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	kn->u.user.triggered = false;
}

const struct kq_filter kq_filt_user = {
    .filter = EVFILT_USER,
    .attach = user_attach,
    .touch = user_touch,
    .enable = user_enable,
    .event = user_event,
    .clear = user_clear,
};
