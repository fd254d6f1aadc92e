/* kqueue and kevent with FreeBSD 12+'s ABI: struct kevent, filters, flags, notes. */
#ifndef KQAIO_SYS_EVENT_H
#define KQAIO_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVFILT_READ	(-1)
#define EVFILT_WRITE	(-2)
#define EVFILT_AIO	(-3) /* posted by the AIO engine (SIGEV_KEVENT) */
#define EVFILT_VNODE	(-4)
#define EVFILT_PROC	(-5)
#define EVFILT_SIGNAL	(-6)
#define EVFILT_TIMER	(-7)
#define EVFILT_PROCDESC (-8)  /* not supported: EINVAL */
#define EVFILT_FS	(-9)  /* not supported: EINVAL */
#define EVFILT_LIO	(-10) /* posted by lio_listio (SIGEV_KEVENT) */
#define EVFILT_USER	(-11)
#define EVFILT_SENDFILE (-12) /* not supported: EINVAL */
#define EVFILT_EMPTY	(-13) /* not supported: EINVAL */
#define EVFILT_SYSCOUNT 13

struct kevent {
	uintptr_t ident;      /* identifier: fd, pid, signal, timer or user id */
	short filter;	      /* EVFILT_* */
	unsigned short flags; /* EV_* */
	unsigned int fflags;  /* filter-specific NOTE_* */
	int64_t data;	      /* filter-specific data */
	void *udata;	      /* opaque, returned as given */
	uint64_t ext[4];      /* extensions; zero */
};

#define EV_SET(kevp_, a, b, c, d, e, f)                                                            \
	do {                                                                                       \
		struct kevent *kevp__ = (kevp_);                                                   \
		kevp__->ident = (a);                                                               \
		kevp__->filter = (b);                                                              \
		kevp__->flags = (c);                                                               \
		kevp__->fflags = (d);                                                              \
		kevp__->data = (e);                                                                \
		kevp__->udata = (f);                                                               \
		kevp__->ext[0] = 0;                                                                \
		kevp__->ext[1] = 0;                                                                \
		kevp__->ext[2] = 0;                                                                \
		kevp__->ext[3] = 0;                                                                \
	} while (0)

/* actions */
#define EV_ADD		0x0001 /* add, or modify if present; enables unless EV_DISABLE */
#define EV_DELETE	0x0002
#define EV_ENABLE	0x0004
#define EV_DISABLE	0x0008
#define EV_FORCEONESHOT 0x0100 /* not supported: EINVAL */
#define EV_KEEPUDATA	0x0200 /* not supported: EINVAL */

/* flags */
#define EV_ONESHOT  0x0010 /* report once, then delete */
#define EV_CLEAR    0x0020 /* reset the state after each report */
#define EV_RECEIPT  0x0040 /* report the change's outcome, never wait */
#define EV_DISPATCH 0x0080 /* disable after each report */

#define EV_SYSFLAGS 0xF000
#define EV_DROP	    0x1000
#define EV_FLAG1    0x2000
#define EV_FLAG2    0x4000

/* returned */
#define EV_EOF	 0x8000
#define EV_ERROR 0x4000 /* data holds the errno of a failed change */

/* EVFILT_USER */
#define NOTE_FFNOP	0x00000000
#define NOTE_FFAND	0x40000000
#define NOTE_FFOR	0x80000000
#define NOTE_FFCOPY	0xc0000000
#define NOTE_FFCTRLMASK 0xc0000000
#define NOTE_FFLAGSMASK 0x00ffffff
#define NOTE_TRIGGER	0x01000000

/* EVFILT_READ, EVFILT_WRITE */
#define NOTE_LOWAT 0x0001 /* data is the low-water mark */

/* EVFILT_VNODE */
#define NOTE_DELETE 0x0001
#define NOTE_WRITE  0x0002
#define NOTE_EXTEND 0x0004
#define NOTE_ATTRIB 0x0008
#define NOTE_LINK   0x0010
#define NOTE_RENAME 0x0020
#define NOTE_REVOKE 0x0040 /* never reported on Linux */

/* EVFILT_PROC */
#define NOTE_EXIT      0x80000000
#define NOTE_FORK      0x40000000 /* never reported on Linux */
#define NOTE_EXEC      0x20000000 /* never reported on Linux */
#define NOTE_PCTRLMASK 0xf0000000
#define NOTE_PDATAMASK 0x000fffff

/* EVFILT_TIMER: units of data (default milliseconds), absolute deadline */
#define NOTE_SECONDS  0x0001
#define NOTE_MSECONDS 0x0002
#define NOTE_USECONDS 0x0004
#define NOTE_NSECONDS 0x0008
#define NOTE_ABSTIME  0x0010 /* data is a CLOCK_REALTIME time since the Epoch */

/* kqueuex() */
#define KQUEUE_CLOEXEC 0x0001

/* A new kqueue: a file descriptor that polls readable while kevent() has an
 * event to report. It is not inherited by fork(). -1 and errno on failure. */
int kqueue(void);
int kqueuex(unsigned int flags);

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
	   int nevents, const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif
