/* EVFILT_TIMER: every timer of a kq in one heap under one timerfd. */
#include "kq/kq.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int64_t *deadline(struct kq *kq, size_t i)
{
	return &kq->heap[i]->u.timer.deadline;
}

static void place(struct kq *kq, size_t i, struct kq_knote *kn)
{
	kq->heap[i] = kn;
	kn->u.timer.heap = (long)i;
}

static void sift_up(struct kq *kq, size_t i)
{
	struct kq_knote *kn = kq->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (*deadline(kq, p) <= kn->u.timer.deadline)
			break;
		place(kq, i, kq->heap[p]);
		i = p;
	}
	place(kq, i, kn);
}

static void sift_down(struct kq *kq, size_t i)
{
	struct kq_knote *kn = kq->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= kq->hlen)
			break;
		if (c + 1 < kq->hlen && *deadline(kq, c + 1) < *deadline(kq, c))
			c++;
		if (kn->u.timer.deadline <= *deadline(kq, c))
			break;
		place(kq, i, kq->heap[c]);
		i = c;
	}
	place(kq, i, kn);
}

static int heap_push(struct kq *kq, struct kq_knote *kn)
{
	if (kq->hlen == kq->hcap) {
		size_t cap = kq->hcap ? kq->hcap * 2 : 64;
		struct kq_knote **h = realloc(kq->heap, cap * sizeof *h);
		if (!h)
			return ENOMEM;
		kq->heap = h;
		kq->hcap = cap;
	}
	place(kq, kq->hlen++, kn);
	sift_up(kq, kq->hlen - 1);
	return 0;
}

static void heap_remove(struct kq *kq, struct kq_knote *kn)
{
	long i = kn->u.timer.heap;
	if (i < 0)
		return;
	kn->u.timer.heap = -1;
	struct kq_knote *last = kq->heap[--kq->hlen];
	if ((size_t)i == kq->hlen)
		return;
	place(kq, (size_t)i, last);
	sift_down(kq, (size_t)i);
	sift_up(kq, (size_t)last->u.timer.heap);
}

/* Point the timerfd at the earliest deadline, only when that changed. */
static void arm(struct kq *kq)
{
	int64_t next = kq->hlen ? kq->heap[0]->u.timer.deadline : 0;
	if (next == kq->tm_armed || kq->tmfd < 0)
		return;
	struct itimerspec its = {0};
	if (next) {
		its.it_value.tv_sec = next / 1000000000;
		its.it_value.tv_nsec = next % 1000000000;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(kq->tmfd, TFD_TIMER_ABSTIME, &its, NULL);
	kq->tm_armed = next;
}

static int ensure_fd(struct kq *kq)
{
	if (kq->tmfd >= 0)
		return 0;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KQ_TOKEN(KQ_TAG_TIMER, 0, 0)};
	if (epoll_ctl(kq->wfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = errno;
		kq_close(fd);
		return err;
	}
	kq->tmfd = fd;
	kq->tm_armed = 0;
	return 0;
}

static int64_t unit_ns(unsigned fflags)
{
	switch (fflags & (NOTE_SECONDS | NOTE_MSECONDS | NOTE_USECONDS | NOTE_NSECONDS)) {
	case NOTE_SECONDS:
		return 1000000000;
	case 0:
	case NOTE_MSECONDS:
		return 1000000;
	case NOTE_USECONDS:
		return 1000;
	case NOTE_NSECONDS:
		return 1;
	default:
		return -1;
	}
}

/* (Re)start the timer from kn->sdata and kn->sfflags; the count starts at zero. */
static int schedule(struct kq *kq, struct kq_knote *kn)
{
	int64_t unit = unit_ns(kn->sfflags);
	unsigned known =
	    NOTE_SECONDS | NOTE_MSECONDS | NOTE_USECONDS | NOTE_NSECONDS | NOTE_ABSTIME;
	if (unit < 0 || kn->sdata < 0 || (kn->sfflags & ~known))
		return EINVAL;
	int64_t v = kn->sdata > INT64_MAX / unit ? INT64_MAX / 2 : kn->sdata * unit;
	int64_t now = kq_now_ns();
	heap_remove(kq, kn);
	kq_knote_dequeue(kq, kn);
	kn->data = 0;
	if (kn->sfflags & NOTE_ABSTIME) {
		/* A wall-clock deadline, taken as an interval from now: a clock step
		 * after this call does not move it. */
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t wall = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
		kn->u.timer.period = 0;
		kn->u.timer.deadline = now + (v > wall ? v - wall : 0);
	} else {
		if (v == 0 && !(kn->flags & EV_ONESHOT))
			v = unit; /* a zero period fires once per unit, not in a loop */
		kn->u.timer.period = kn->flags & EV_ONESHOT ? 0 : v;
		kn->u.timer.deadline = now + v;
	}
	if (kn->u.timer.deadline <= 0)
		kn->u.timer.deadline = 1;
	int err = heap_push(kq, kn);
	if (!err)
		arm(kq);
	return err;
}

static int timer_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	(void)kev;
	kn->u.timer.heap = -1;
	int err = ensure_fd(kq);
	return err ? err : schedule(kq, kn);
}

static int timer_touch(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	if (!(kev->flags & EV_ADD))
		return 0;
	kn->sdata = kev->data;
	kn->sfflags = kev->fflags;
	return schedule(kq, kn);
}

static void timer_detach(struct kq *kq, struct kq_knote *kn)
{
	heap_remove(kq, kn);
	arm(kq);
}

static void timer_enable(struct kq *kq, struct kq_knote *kn)
{
	if (!(kn->status & KN_DISABLED) && kn->data)
		kq_knote_activate(kq, kn);
}

static bool timer_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	return kn->data > 0;
}

static void timer_clear(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	kn->data = 0;
}

/* The timerfd fired: count expirations of every due timer and queue them. */
void kq_timer_expire(struct kq *kq)
{
	uint64_t ticks;
	if (kq->tmfd < 0)
		return;
	/* Nothing to read when another thread took the expiry first: the heap
	 * says what is due either way. */
	ssize_t r = read(kq->tmfd, &ticks, sizeof ticks);
	(void)r;
	kq->tm_armed = 0; /* fired, or about to be re-set */
	int64_t now = kq_now_ns();
	while (kq->hlen && kq->heap[0]->u.timer.deadline <= now) {
		struct kq_knote *kn = kq->heap[0];
		int64_t late = now - kn->u.timer.deadline, p = kn->u.timer.period;
		if (p) {
			int64_t k = 1 + late / p;
			kn->data += k;
			kn->u.timer.deadline += k * p;
			sift_down(kq, 0);
		} else {
			kn->data++;
			heap_remove(kq, kn);
		}
		kq_knote_activate(kq, kn);
	}
	arm(kq);
}

void kq_timer_free_all(struct kq *kq)
{
	kq->hlen = 0;
}

const struct kq_filter kq_filt_timer = {
    .filter = EVFILT_TIMER,
    .attach = timer_attach,
    .touch = timer_touch,
    .enable = timer_enable,
    .detach = timer_detach,
    .event = timer_event,
    .clear = timer_clear,
    .force_flags = EV_CLEAR,
};
