/* The kqueue module's internals: the kq object, knotes, and the filter interface. */
#ifndef KQ_KQ_KQ_H
#define KQ_KQ_KQ_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/types.h>

#include "common/futex.h"
#include "common/kq.h"

struct kq;
struct kq_knote;

/* epoll data words carry a tag and a key, never a pointer: an event read
 * without the lock may name a knote that is gone by the time it is handled. */
enum kq_tag {
	KQ_TAG_WAKE = 1, /* the eventfd: knotes are queued in user space */
	KQ_TAG_FD,	 /* key = fd number, checked against the registration's gen */
	KQ_TAG_TIMER,	 /* the timerfd */
	KQ_TAG_SIGNAL,	 /* the process-wide signal eventfd */
	KQ_TAG_VNODE,	 /* the inotify fd */
	KQ_TAG_PROC,	 /* key = pid, checked against the knote's gen */
};
#define KQ_TOKEN(tag, gen, key)                                                                    \
	(((uint64_t)(tag) << 56) | ((uint64_t)((gen)&0xffffff) << 32) | (uint32_t)(key))
#define KQ_TOKEN_TAG(t) ((unsigned)((t) >> 56))
#define KQ_TOKEN_GEN(t) ((uint32_t)(((t) >> 32) & 0xffffff))
#define KQ_TOKEN_KEY(t) ((uint32_t)(t))

/* Status bits of a knote. */
#define KN_QUEUED   0x01 /* on kq->active, to be reported */
#define KN_DISABLED 0x02 /* EV_DISABLE, or EV_DISPATCH after a report */
#define KN_FRESH    0x04 /* fd knote: data and flags were just read from epoll */
#define KN_DEAD	    0x08 /* deleted; freed when the last reference goes */
#define KN_FIRED    0x10 /* AIO, LIO: the request or list is done */
#define KN_ONCE	    0x20 /* delete after one report, without saying EV_ONESHOT */

/* What a filter does with its knotes; the kq lock is held in every call. */
struct kq_filter {
	short filter;
	/* A new knote from EV_ADD: take resources, maybe queue it. An errno on failure. */
	int (*attach)(struct kq *kq, struct kq_knote *kn, const struct kevent *kev);
	/* A change naming an existing knote (not EV_DELETE): new fflags, data. */
	int (*touch)(struct kq *kq, struct kq_knote *kn, const struct kevent *kev);
	/* EV_ENABLE or EV_DISABLE changed the status. */
	void (*enable)(struct kq *kq, struct kq_knote *kn);
	/* Release resources; the knote is then unlinked and freed. */
	void (*detach)(struct kq *kq, struct kq_knote *kn);
	/* About to be reported from the queue: refresh kn->data/fflags/eflags;
	 * false if the condition no longer holds (the knote leaves the queue). */
	bool (*event)(struct kq *kq, struct kq_knote *kn);
	/* Reported with EV_CLEAR (or a filter that always clears): reset state. */
	void (*clear)(struct kq *kq, struct kq_knote *kn);
	/* Reported and left in place (level-triggered, dispatched, cleared):
	 * re-arm whatever the filter watches. */
	void (*reported)(struct kq *kq, struct kq_knote *kn);
	/* Filters whose knotes are always reported as EV_CLEAR (timers, signals). */
	unsigned short force_flags;
};

struct kq_knote {
	struct kq_knote *hnext; /* hash chain */
	struct kq_link alink;	/* kq->active while KN_QUEUED */
	struct kq_link flink;	/* the filter's own list (signals, vnodes) */
	const struct kq_filter *fop;
	uintptr_t ident;
	short filter;
	unsigned short flags; /* as added, less the action bits */
	unsigned int sfflags; /* fflags asked for */
	int64_t sdata;	      /* data asked for */
	void *udata;
	unsigned int fflags;   /* to report */
	int64_t data;	       /* to report */
	unsigned short eflags; /* EV_EOF and such, to report */
	unsigned short status;
	uint32_t gen;
	uint32_t pass; /* the kevent() call that last reported it */
	unsigned refs; /* the kq's, plus the AIO job's and each notification batch's */
	struct kq *kq; /* AIO, LIO: the kq, referenced; else NULL */
	union {
		struct {
			long heap;		  /* index in the timer heap, -1 when not in it */
			int64_t deadline, period; /* CLOCK_MONOTONIC ns; period 0: once */
		} timer;
		struct {
			uint64_t seen; /* process-wide delivery count last looked at */
		} sig;
		struct {
			int pidfd;
		} proc;
		struct {
			int wd;
			off_t size;
			nlink_t nlink;
		} vnode;
		struct {
			bool triggered;
		} user;
		struct {
			int kind; /* what the fd is: KQ_FD_* */
		} fd;
		struct {
			int hidden; /* reaped from a signal handler: report nothing */
		} aio;
	} u;
};

/* One epoll registration per watched fd, shared by its READ and WRITE knotes. */
struct kq_fdreg {
	struct kq_knote *kn[2]; /* [0] READ, [1] WRITE */
	uint32_t gen;
	uint32_t events; /* registered epoll mask; 0 when not registered */
	bool always;	 /* epoll refused the fd (regular file, directory): always ready */
	dev_t dev;	 /* the file it was added for: a reused fd number names another */
	ino_t ino;
	int kind; /* KQ_FD_*: how to measure data */
	int pipe_size;
};

enum { KQ_FD_OTHER, KQ_FD_PIPE, KQ_FD_SOCK, KQ_FD_FILE };

struct kq {
	pthread_mutex_t lock;
	int epfd;	/* the kq fd the user holds: its name in the registry */
	int wfd;	/* our duplicate of epfd, which every epoll call uses */
	int evfd;	/* wake: an edge whenever kq->active needs reporting */
	int tmfd;	/* timerfd, -1 until the first timer */
	int inofd;	/* inotify, -1 until the first vnode knote */
	bool armed;	/* an evfd edge is pending in epfd, not yet taken by a wait */
	uint32_t pass;	/* kevent() calls so far */
	bool sig_watch; /* the signal eventfd is in epfd */
	unsigned refs;	/* atomic: the registry's, each kevent() caller's, each AIO/LIO knote's */
	struct kq *next_abandoned; /* in a forked child */
	uint32_t gen;
	struct kq_link active; /* queued knotes, in order */
	/* knotes other than READ/WRITE, by (ident, filter) */
	struct kq_knote **hash;
	size_t hmask, hcount;
	/* READ/WRITE registrations by fd number */
	struct kq_fdreg **fds;
	size_t nfds;
	/* the timer heap, earliest deadline first */
	struct kq_knote **heap;
	size_t hlen, hcap;
	int64_t tm_armed;      /* deadline the timerfd is set to, 0 when disarmed */
	struct kq_link sigs;   /* signal knotes */
	struct kq_link vnodes; /* vnode knotes */
};

/* kqueue.c: the registry of kq fds */
/* The kq registered under fd, referenced, or NULL (EBADF). Whether fd still
 * names it is the caller's to ask (kq_alive), when the answer matters. */
struct kq *kq_get(int fd);
bool kq_alive(struct kq *kq); /* its fd number still names its epoll */
void kq_put(struct kq *kq);
void kq_dead(struct kq *kq); /* its fd was found closed: forget it */

/* knote.c */
struct kq_knote *kq_knote_find(struct kq *kq, uintptr_t ident, short filter);
struct kq_knote *kq_knote_new(struct kq *kq, const struct kevent *kev, const struct kq_filter *fop);
void kq_knote_insert(struct kq *kq, struct kq_knote *kn);
void kq_knote_drop(struct kq *kq, struct kq_knote *kn); /* detach, unlink, unref */
void kq_knote_unref(struct kq_knote *kn);
void kq_knote_activate(struct kq *kq, struct kq_knote *kn);
void kq_knote_dequeue(struct kq *kq, struct kq_knote *kn);
void kq_knote_free_all(struct kq *kq);
void kq_unlock(struct kq *kq); /* makes evfd match the queue, then unlocks */
const struct kq_filter *kq_filter_of(short filter);

/* kevent.c */
int kq_report(struct kq *kq, struct kq_knote *kn, struct kevent *out, uint32_t pass);

/* filters */
extern const struct kq_filter kq_filt_read, kq_filt_write, kq_filt_timer, kq_filt_user,
    kq_filt_signal, kq_filt_proc, kq_filt_vnode, kq_filt_aio, kq_filt_lio;
/* Handle a READ/WRITE epoll event; returns events written to out (at most room). */
int kq_fd_event(struct kq *kq, uint32_t key, uint32_t gen, uint32_t revents, struct kevent *out,
		int room, uint32_t pass);
/* 0, or EBADF if fd was closed, ESTALE if its number now names another file,
 * since its knotes were added. */
int kq_fd_check(struct kq *kq, uintptr_t fd);
void kq_fd_forget(struct kq *kq, uintptr_t fd);
void kq_fd_free_all(struct kq *kq);
void kq_timer_expire(struct kq *kq);
void kq_timer_free_all(struct kq *kq);
void kq_signal_scan(struct kq *kq);
void kq_signal_fork_prepare(void);
void kq_signal_fork_parent(void);
void kq_signal_fork_child(void);
void kq_signal_forget(struct kq *kq); /* a forked child's kq: let go of its signals */
int kq_signal_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
extern int kq_sig_active;
extern unsigned kq_sig_entering;
/* glibc's own sigaction, under the name that it exports for this. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
uint64_t kq_signal_swallowed(void);	/* deliveries no program handler saw */
void kq_proc_fork_child(struct kq *kq); /* close the pidfds */
void kq_aio_flush(void);		/* kevent: the engine starts what it held back */
void kq_drop_posted(struct kq *kq);	/* a closed kq: drop its AIO and LIO knotes */
void kq_proc_event(struct kq *kq, uint32_t pid, uint32_t gen);
void kq_vnode_read(struct kq *kq);

#endif
