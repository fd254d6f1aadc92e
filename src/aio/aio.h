/* The AIO engine's internal interface: jobs, lists, per-fd state, the
 * backend table and the global state.
 *
 * Layers, each calling only those below it (tests/layers.c checks that no
 * file of src/aio calls back up):
 *   the API: submit.c listio.c cancel.c reap.c suspend.c abi64.c
 *   init.c: starts the engine; the one file that names the backends
 *   backend/: pool.c stream.c uring.c inline.c, reached through struct kq_backend
 *   the core: complete.c fd.c job.c lio.c batch.c notify.c stats.c io.c
 *   state.c: the global state
 *
 * Lock order: the ring's reaper lock (U.reap, only ever tried), then
 * kq_aio.lock, then a backend's own (the ring's U.lock, the worker pool's),
 * then a kq's (kq/post.h takes it to attach and post an event). A
 * completion is published under kq_aio.lock; its notifications and wakeups
 * go after it is dropped (struct kq_batch). A signal handler takes no lock
 * (aio_error, aio_return, aio_suspend: see kq_job_claim). */
#ifndef KQ_AIO_AIO_H
#define KQ_AIO_AIO_H

#include <aio.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/kq.h"
#include "common/tpool.h"

enum kq_op { KQ_OP_READ, KQ_OP_WRITE, KQ_OP_FSYNC, KQ_OP_FDSYNC };

/* Where a job is: its lifecycle, changed only by kq_job_move (job.c), which
 * refuses a move the table there does not allow. ORDER, BARRIER, POLL and
 * QUEUED can be cancelled. */
enum kq_where {
	KQ_W_FREE,    /* not a job, or one being bound by its submission */
	KQ_W_ORDER,   /* behind an earlier job on an ordered fd */
	KQ_W_BARRIER, /* an fsync waiting for earlier writes */
	KQ_W_POLL,    /* a stream job waiting for readiness */
	KQ_W_QUEUED,  /* in the worker pool's queue, not known to have started */
	KQ_W_KERNEL,  /* in the ring: io_uring cannot promise to take it back */
	KQ_W_RUNNING, /* bytes may have moved: no longer cancellable */
	KQ_W_DONE,    /* result published, waiting to be reaped */
	KQ_W_COUNT
};

enum {
	KQ_J_STREAM = 1,   /* non-seekable fd: ordered, waits for readiness */
	KQ_J_ORDERED = 2,  /* runs in submission order on its fd (streams, O_APPEND) */
	KQ_J_BLOCKING = 8, /* stream fd that cannot be polled: run in a worker */
	KQ_J_LARGE = 16,   /* a large buffered transfer: not done inside the submission */
	KQ_J_INLINE = 32,  /* a read of a memory-backed file: the submitter does it */
};

#define KQ_IOV_INLINE 4

struct kq_list;
struct kq_fd;
struct kq_backend;

/* A thread asleep on jobs it alone watches (aio_suspend): their ends wake
 * it, and no other sleeper (complete.c). One per thread. */
struct kq_waiter {
	uint32_t word; /* futex word, bumped by each watched job's end */
};

struct kq_job {
	struct kq_work work;  /* backend run queue */
	struct kq_link qlink; /* fd order queue, or the done queue */
	struct kq_link wlink; /* fd write list (fsync barrier) */
	struct kq_link alink; /* every unfinished job, for aio_cancel(fd, NULL) */
	struct aiocb *cb;
	struct kq_list *list;	   /* the list counting this job, until it is done */
	struct kq_list *lio;	   /* the list this job came in, until it is reaped */
	struct kq_knote *kn;	   /* SIGEV_KEVENT: its EVFILT_AIO knote */
	struct kq_waiter *watcher; /* the one thread its end wakes, until then */
	struct kq_fd *fdst;
	const struct kq_backend *be; /* the one that took it */
	uint32_t gen;
	uint8_t op, where, flags;
	int fd;	 /* the program's number */
	int kfd; /* what the I/O goes through: the file fd named at submission */
	off_t off;
	size_t nbytes, done;	/* bytes asked for, bytes moved so far */
	struct iovec *iov;	/* what is left to move */
	struct iovec *iov_heap; /* allocated for long vectors, else NULL */
	int iovcnt;
	struct iovec iov_inline[KQ_IOV_INLINE];
	struct sigevent sev;
	struct kq_job *next_free;
};

/* Our state inside the aiocb's reserved bytes. */
struct kq_cbpriv {
	struct kq_job *job;
	uint32_t magic; /* KQ_CB_JOB, KQ_CB_FAILED or 0 */
	uint32_t epoch; /* process epoch; a forked child's differs */
	uint32_t gen;	/* job->gen when it was bound */
};
#define KQ_CB_JOB    0x6b71616aU
#define KQ_CB_FAILED 0x6b716166U

static inline struct kq_cbpriv *kq_priv(struct aiocb *cb)
{
	return (struct kq_cbpriv *)(void *)cb->__glibc_reserved;
}

struct kq_list {
	uint32_t pending; /* futex word: entries not yet done, plus the guard */
	int refs;	  /* the caller's guard plus each unreaped entry */
	int wait;	  /* LIO_WAIT: the caller sleeps on pending */
	int failed;	  /* an entry ended with an error */
	int queued;	  /* entries queued */
	int unreaped;	  /* queued entries not yet reaped */
	struct sigevent sev;
	struct kq_knote *kn; /* SIGEV_KEVENT: its EVFILT_LIO knote */
	struct kq_list *next_free;
};

/* Per open file with jobs in flight (fd.c). */
struct kq_fd {
	uint32_t gen; /* first: bumped as kfd closes; kept when reused (fd.c hints) */
	int fd;	      /* the program's number, while it names this file */
	int kfd;      /* our duplicate of it, closed with the last job */
	int refs;     /* jobs holding kfd */
	int fl;	      /* with dev and ino: which file, to tell a reused number */
	uint64_t dev, ino;
	struct kq_link rq, wq; /* ordered reads / writes; the head is the one active */
	struct kq_link wb;     /* writes and fsyncs in submission order (the barrier) */
	struct kq_link link;   /* every kq_fd with a duplicate, for a forked child */
	uint32_t armed;	       /* epoll events armed on kfd */
	int registered;
	int kicked;		 /* on the poller's list of write heads to try */
	int keep;		 /* a seekable file: the duplicate outlives its jobs (fd.c) */
	int gone;		 /* the number was closed, or names another file now */
	struct kq_fd *next_free; /* free list, or the poller's list */
};

/* Notifications owed once the lock is dropped. */
#define KQ_BATCH_JOBS 32 /* jobs one kq_batch may complete: each owes up to two */
struct kq_batch {
	int n;
	struct kq_note {
		struct sigevent sev;
		struct kq_knote *kn; /* SIGEV_KEVENT: referenced until posted */
		int64_t data;
		int once;
	} note[2 * KQ_BATCH_JOBS];
	int nwake;
	uint32_t *wake[KQ_BATCH_JOBS]; /* watchers' words (struct kq_waiter) */
};

/* A backend runs jobs (backend/). The core calls one only through this
 * table; an operation it does not need is NULL. "held": kq_aio.lock. */
struct kq_backend {
	const char *name;
	int workers; /* runs jobs on kq_aio.workers: a submission needs a thread */
	/* Held: take j, or refuse it (an errno) for the next backend in line. */
	int (*queue)(struct kq_job *j);
	int (*cancel)(struct kq_job *j); /* held: 1 if taken back before it ran */
	void (*submitted)(int lazy);	 /* a submission call ends; lazy: KQ_BATCH_* */
	void (*hold)(int on);		 /* a list is being queued: start it whole at its end */
	void (*flush)(void);		 /* start what was queued */
	void (*collect)(void);		 /* take what is done, if nobody else is */
	void (*sleeping)(void);		 /* a thread will sleep on the completion futex */
	void (*nudge)(void); /* one will without a lock (a handler's): async-signal-safe */
	void (*poke)(void);  /* a completion came: wake a thread waiting in wait */
	int (*help)(void);   /* a thread would wait: 1 if it did a queued job instead */
	/* Waiting in the backend itself: begin is nonzero when this thread may
	 * (it then reaps for everyone until end); wait sleeps until something
	 * is done, the deadline (ETIMEDOUT) or a signal (EINTR), or says
	 * ESTALE: this thread no longer may, so it waits as others do. */
	int (*wait_begin)(void);
	int (*wait)(const struct timespec *deadline);
	void (*wait_end)(void);
	void (*fork_prepare)(void);
	void (*fork_parent)(void);
	void (*fork_child)(void);
};

/* kq_aio.be, in the order a job is offered to them (init.c fills it). */
enum { KQ_BE_INLINE, KQ_BE_STREAM, KQ_BE_MAIN, KQ_BE_POOL, KQ_BE_N };

/* Calls the operation op of every backend that has it, first to last. */
#define KQ_BE_EACH(op, ...)                                                                        \
	do {                                                                                       \
		for (int be_i_ = 0; be_i_ < KQ_BE_N; be_i_++)                                      \
			if (kq_aio.be[be_i_] && kq_aio.be[be_i_]->op)                              \
				kq_aio.be[be_i_]->op(__VA_ARGS__);                                 \
	} while (0)

struct kq_aio {
	pthread_mutex_t lock;
	/* MAIN: where seekable files go (uring or the pool); streams use
	 * STREAM, and the pool when they cannot be polled. */
	const struct kq_backend *be[KQ_BE_N];
	struct kq_link active; /* unfinished jobs */
	struct kq_link done;   /* finished, unreaped, oldest first */
	uint32_t seq;	       /* futex word, bumped on every completion */
	uint32_t waiters;      /* threads sleeping on a completion futex */
	uint32_t broadcast;    /* of those, the ones on seq: each completion wakes them */
	long njobs;	       /* jobs not yet reaped */
	struct kq_job *free_jobs;
	struct kq_job *reaped; /* claimed without the lock, to be freed (job.c) */
	struct kq_list *free_lists;
	struct kq_fd **fds;
	int nfds;
	pid_t pid;
	struct kq_tpool workers;
	int epfd;
	int poller_running;
};

extern struct kq_aio kq_aio;
extern uint32_t kq_epoch;

struct kq_config {
	long max_jobs, listio_max, threads, idle_ms;
	int stats;
	int batch;	 /* KQAIO_BATCH: may a submission ride with later ones */
	long inline_max; /* KQAIO_INLINE: the largest read of tmpfs done by its submitter */
	int copier;	 /* KQAIO_COPIER: deep queues of such reads go to a copier thread */
	long spin_ns;	 /* KQAIO_SPIN: how long a waiter in the ring may spin first */
};
extern struct kq_config kq_config;
/* kq_config.batch, and what kq_backend.submitted is told of a submission. */
enum {
	KQ_BATCH_NEVER,	   /* it goes to the kernel before its call returns */
	KQ_BATCH_ADAPTIVE, /* it rides with later ones while others are in flight */
	KQ_BATCH_ALWAYS,   /* it rides, even on an idle ring */
};

void kq_aio_init(void); /* once, on first use (init.c) */

/* job.c */
void kq_job_move(struct kq_job *j, enum kq_where to); /* the only write of j->where */
void kq_dispatch(struct kq_job *j); /* held: hand a ready job to the first backend taking it */
struct kq_job *kq_job_alloc(void);  /* lock held; NULL at the job limit or out of memory */
void kq_job_free(struct kq_job *j); /* lock held */
struct kq_job *kq_job_of(struct aiocb *cb); /* lock held: the cb's live job, or NULL */
/* Reaping a DONE job: claim its aiocb (no lock: the job, if this caller won
 * it), then free it (lock held), or leave it to the next lock holder. */
struct kq_job *kq_job_claim(struct aiocb *cb);
/* aio_error's value as it stands (no look in the rings); -1: cb names no job. */
int kq_error_of(const struct aiocb *cb);
void kq_job_reap(struct kq_job *j);   /* lock held: free a claimed job */
void kq_job_reaped(struct kq_job *j); /* no lock, async-signal-safe */
void kq_job_drain(void);	      /* lock held: free what kq_job_reaped left */

/* submit.c */
/* What submission learned of an fd (fd -1: nothing yet). */
enum { KQ_FD_SEEKABLE = 1, KQ_FD_STREAM = 2 };
struct kq_fdinfo {
	int fd, fl, kind, mem; /* mem: a regular file on tmpfs or ramfs */
	uint64_t dev, ino;
};
int kq_submit(struct aiocb *cb, int sub, struct kq_list *list, struct kq_fdinfo *fi, int *errp);
int kq_lio_sub(int opcode);
void kq_record_failure(struct aiocb *cb, int err);

/* batch.c */
void kq_batch_init(struct kq_batch *b);
/* Owe the notification sev asks for (kn: its knote, data: the kevent's data). */
void kq_batch_add(struct kq_batch *b, const struct sigevent *sev, struct kq_knote *kn, int64_t data,
		  int once);
void kq_batch_wake(struct kq_batch *b, struct kq_waiter *w); /* lock held */
void kq_batch_flush(struct kq_batch *b);		     /* lock not held */

/* complete.c */
void kq_complete_locked(struct kq_job *j, ssize_t res, int err, struct kq_batch *b);
void kq_job_finish(struct kq_job *j, ssize_t res, int err); /* for backends */

/* fd.c */
/* Flags, kind, identity: 0 or EBADF. fresh_fl: the flags as they are now
 * (a write: O_APPEND), not as this thread last saw them on the same file. */
int kq_fd_describe(int fd, struct kq_fdinfo *fi, int fresh_fl);
struct kq_fd *kq_fd_lookup(const struct kq_fdinfo *fi); /* lock held: its jobs' state, or NULL */
/* Lock held: take the file, order, barrier, dispatch; 0 or errno. */
int kq_fd_enqueue(struct kq_job *j, const struct kq_fdinfo *fi);
void kq_fd_job_done(struct kq_job *j); /* lock held: release what waited on j, and the file */
void kq_fd_put(struct kq_fd *f);       /* lock held: drop a hold (refs) on f */
void kq_fd_closed(int fd);	       /* the program closes fd (lock not held) */
void kq_fd_fork_child(void);

/* io.c */
/* Moves bytes for j from j->done on. nowait: never block (stream fds).
 * Returns 0 when the job is over (*res, *err set), EAGAIN to wait again. */
int kq_job_io(struct kq_job *j, int nowait, ssize_t *res, int *err);
/* Moves j's remaining iovecs past n bytes that were transferred. */
void kq_job_advance(struct kq_job *j, size_t n);

/* lio.c: a list's accounting, all of it; lock held */
struct kq_list *kq_list_alloc(void);
void kq_list_put(struct kq_list *l);
void kq_list_entry_add(struct kq_list *l, struct kq_job *j); /* j counts in l */
void kq_list_entry_undo(struct kq_job *j);		     /* j's submission failed */
void kq_list_entry_queued(struct kq_list *l);		     /* ... or went through */
void kq_list_entry_reaped(struct kq_list *l);
void kq_list_entry_done(struct kq_list *l, int failed, struct kq_batch *b);
void kq_list_seal(struct kq_list *l, struct kq_batch *b); /* all queued: drop the guard */

/* notify.c */
int kq_sigevent_check(const struct sigevent *sev);
void kq_notify(const struct sigevent *sev);
void kq_notify_fork_prepare(void);
void kq_notify_fork_parent(void);
void kq_notify_fork_child(void);

/* What kq_wait_until sleeps on: ready(arg) is true once it may return;
 * watch, if there, claims (on) or lets go of (!on) the jobs it waits for,
 * lock held: 1 if every one is now w's alone, 0 if another thread watches
 * one (then any completion wakes it), -1 if one is already done. */
struct kq_wait {
	int (*ready)(void *arg);
	int (*watch)(void *arg, struct kq_waiter *w, int on);
	void *arg;
};
/* Sleeps on completions until ready. Returns 0, EAGAIN at the deadline
 * (NULL: none; poll: look once) or EINTR on a signal. nolock: in a signal
 * handler that may have interrupted a lock holder, only the futex. */
int kq_wait_until(const struct kq_wait *w, const struct timespec *deadline, int poll, int nolock);

/* stats.c */
void kq_stats_submitted(void);
void kq_stats_rejected(void);
void kq_stats_completed(int op, ssize_t res, int err);
void kq_stats_reset(void);
void kq_stats_init(void);

#endif
