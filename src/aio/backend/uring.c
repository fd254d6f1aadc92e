/* The uring backend: regular files and block devices through one io_uring per
 * process. Submitters prepare SQEs under a small lock and submit them in one
 * io_uring_enter when they drop the engine lock (a whole lio_listio at once).
 * Completions are reaped by one consumer at a time (U.owner), whoever is at
 * hand: a thread waiting in aio_suspend or aio_waitcomplete sleeps in the ring
 * itself; a submitter takes what its own io_uring_enter completed; aio_error
 * takes what is there. The completion thread, on an eventfd, is woken only
 * when it is needed: a job in the ring owes a notification or releases others,
 * or a thread sleeps on the futex. A quiet job (a SIGEV_NONE read outside any
 * list) has no one to tell, so its owner's next call collects it. */
#include "aio/backend/backend.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cpu.h"
#include "common/env.h"
#include "common/futex.h"
#include "common/taskwork.h"

/* The CQ holds as many completions as there can be jobs (KQAIO_MAX_JOBS'
 * default), so it never overflows and submission never waits on it. */
enum { SQ_DEPTH = 256, CQ_DEPTH = 65536 };

static struct {
	pthread_mutex_t lock; /* the submission queue */
	uintptr_t owner;      /* the completion queue: its one consumer (take_reap) */
	struct io_uring ring;
	int ready;
	int efd;	   /* the completion thread sleeps on it */
	int toggle;	   /* the eventfd can be switched off: others may reap */
	int signal;	   /* U.lock: the ring signals efd */
	int held;	   /* U.lock: U.owner is set; its holder drains as it lets go */
	int waiter;	   /* a thread sleeps in the ring (uring_wait) */
	uint32_t pending;  /* SQEs prepared but not yet submitted */
	uint32_t inflight; /* SQEs queued whose CQE is not yet reaped */
	uint32_t loud;	   /* of those, jobs that are not quiet */
	int idle;	   /* the completion thread may sleep until told */
} U = {.lock = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

/* Exchanged for a full barrier (ThreadSanitizer refuses bare fences). */
static int barrier_word;

/* Its address is this thread's name in U.owner. */
static __thread char token;

/* This thread holds the completion queue. */
static int reaping(void)
{
	return __atomic_load_n(&U.owner, __ATOMIC_RELAXED) == (uintptr_t)&token;
}

/* The lio_listio in this thread is still queueing: submit once it is done. */
static __thread int plugged;

static void prep(struct io_uring_sqe *sqe, struct kq_job *j)
{
	off_t off = j->off + (off_t)j->done;
	/* One buffer needs no iovec for the kernel to copy in. */
	int one = j->iovcnt == 1 && j->iov[0].iov_len <= UINT32_MAX;
	switch (j->op) {
	case KQ_OP_READ:
		if (one)
			io_uring_prep_read(sqe, j->kfd, j->iov[0].iov_base,
					   (unsigned)j->iov[0].iov_len, (__u64)off);
		else
			io_uring_prep_readv(sqe, j->kfd, j->iov, (unsigned)j->iovcnt, (__u64)off);
		break;
	case KQ_OP_WRITE:
		if (one)
			io_uring_prep_write(sqe, j->kfd, j->iov[0].iov_base,
					    (unsigned)j->iov[0].iov_len, (__u64)off);
		else
			io_uring_prep_writev(sqe, j->kfd, j->iov, (unsigned)j->iovcnt, (__u64)off);
		break;
	default:
		io_uring_prep_fsync(sqe, j->kfd, j->op == KQ_OP_FDSYNC ? IORING_FSYNC_DATASYNC : 0);
	}
	if (j->flags & KQ_J_LARGE)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	io_uring_sqe_set_data(sqe, j);
}

static void signal_locked(void);
static void uring_flush(void);
static void kick_idle(int loud);
static void release_reap(void);

/* When a thread that submitted exits, the kernel cancels what its io-wq
 * workers had not started, and says so in CQEs (-ECANCELED) that a quiet
 * job's owner may not come to collect for a long time, while the job needs
 * them to go on in a worker (reap_cqe). So the completion thread is woken
 * at such an exit: it then looks every 10 ms while jobs are in the ring. */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static __thread int exit_hooked;

static void on_exit_of_submitter(void *arg)
{
	(void)arg;
	release_reap(); /* if it holds the CQ (left a wait by siglongjmp) */
	kick_idle(0);
}

static void exit_key_init(void)
{
	if (pthread_key_create(&exit_key, on_exit_of_submitter))
		kq_debug("pthread_key_create failed: exits of submitters go unseen");
}

static void hook_exit(void)
{
	if (exit_hooked)
		return;
	exit_hooked = 1;
	pthread_once(&exit_once, exit_key_init);
	pthread_setspecific(exit_key, &exit_hooked); /* any non-NULL value */
}

/* U.lock held: hands the prepared SQEs to the kernel's ring (as liburing's
 * submit does, whose SQ array maps each slot to itself). Returns how many
 * the kernel has yet to take. */
static unsigned publish_locked(void)
{
	struct io_uring_sq *sq = &U.ring.sq;
	if (sq->sqe_head != sq->sqe_tail) {
		sq->sqe_head = sq->sqe_tail;
		__atomic_store_n(sq->ktail, sq->sqe_tail, __ATOMIC_RELEASE);
	}
	unsigned n = sq->sqe_tail - __atomic_load_n(sq->khead, __ATOMIC_ACQUIRE);
	if (n)
		hook_exit(); /* this thread is the kernel's submitter now */
	return n;
}

/* The kernel takes up to n published SQEs, fewer when another thread's
 * io_uring_enter took some meanwhile. Returns how many it took; -1: try
 * again after a yield (the completion thread is draining a full CQ). */
static int enter(unsigned n)
{
	int r = io_uring_enter((unsigned)U.ring.ring_fd, n, 0, 0, NULL);
	if (r > 0) {
		kq_taskwork = true;
		__atomic_sub_fetch(&U.pending, (uint32_t)r, __ATOMIC_SEQ_CST);
	}
	if (r == -EBUSY || r == -EAGAIN || r == -EINTR)
		return -1;
	if (r < 0) {
		kq_debug("io_uring_enter: %s", strerror(-r));
		return 0;
	}
	return r;
}

/* U.lock held: only where the SQ is full and a slot is needed now. */
static void submit_locked(void)
{
	unsigned n = publish_locked();
	if (n && enter(n) < 0) {
		pthread_mutex_unlock(&U.lock);
		sched_yield();
		pthread_mutex_lock(&U.lock);
	}
	signal_locked();
}

/* Sends what is prepared. The io_uring_enter is made outside U.lock: on a
 * virtual disk it rings the device (a VM exit), and with eight threads
 * submitting, holding the lock through it queued every other submitter
 * and reaper behind it, and behind them the engine lock. It looks again
 * after an enter that took fewer than it published: the kernel may stop
 * short (a request it cannot allocate), and no one else may come for the
 * rest. Not after a full one: what others published since is theirs to
 * send, and a reaper looping on it would reap nothing meanwhile. */
static void submit(void)
{
	for (;;) {
		pthread_mutex_lock(&U.lock);
		unsigned n = publish_locked();
		pthread_mutex_unlock(&U.lock);
		int r = n ? enter(n) : 0;
		if (!r || (r > 0 && (unsigned)r >= n))
			return; /* all taken, or another enter took it */
		if (r < 0)
			sched_yield();
	}
}

/* A SIGEV_NONE read outside any list: nothing waits to be told it is done. */
static int quiet(const struct kq_job *j)
{
	return j->op == KQ_OP_READ && j->sev.sigev_notify == SIGEV_NONE && !j->lio;
}

/* U.lock held. The completion thread is needed while nobody holds the CQ and
 * a job in the ring is loud or a thread sleeps on the completion futex. */
static void signal_locked(void)
{
	int on = !U.held && (__atomic_load_n(&U.loud, __ATOMIC_SEQ_CST) ||
			     __atomic_load_n(&kq_aio.waiters, __ATOMIC_SEQ_CST));
	if (on != U.signal && U.toggle) {
		io_uring_cq_eventfd_toggle(&U.ring, on);
		U.signal = on;
	}
}

/* U.lock held. */
static void queue_locked(struct kq_job *j)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&U.ring)))
		submit_locked(); /* the SQ is full: send what is there */
	if (j) {
		prep(sqe, j);
		if (!quiet(j))
			__atomic_add_fetch(&U.loud, 1, __ATOMIC_SEQ_CST);
	} else {
		io_uring_prep_nop(sqe); /* a wake-up call for the thread in the ring */
		io_uring_sqe_set_data(sqe, NULL);
	}
	/* Before the submitter looks at inflight (uring_submitted), against
	 * a drain that looks at pending after taking CQEs off. */
	__atomic_add_fetch(&U.pending, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&U.inflight, 1, __ATOMIC_SEQ_CST);
	signal_locked(); /* before io_uring_enter, so the kernel sees it */
}

/* Jobs whose last part is done, ended together under one engine lock. */
struct ended {
	int n;
	struct {
		struct kq_job *j;
		ssize_t res;
		int err;
	} e[KQ_BATCH_JOBS];
};

static void end_all(struct ended *d)
{
	if (!d->n)
		return;
	struct kq_batch b;
	kq_batch_init(&b);
	pthread_mutex_lock(&kq_aio.lock);
	for (int i = 0; i < d->n; i++)
		kq_complete_locked(d->e[i].j, d->e[i].res, d->e[i].err, &b);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_batch_flush(&b);
	d->n = 0;
}

static void end(struct ended *d, struct kq_job *j, int res)
{
	ssize_t r = (ssize_t)j->done;
	int err = 0;
	if (j->op == KQ_OP_FSYNC || j->op == KQ_OP_FDSYNC)
		r = res < 0 ? -1 : 0, err = res < 0 ? -res : 0;
	else if (res < 0 && !j->done)
		r = -1, err = -res; /* an error after some bytes moved reports the bytes */
	d->e[d->n].j = j;
	d->e[d->n].res = r;
	d->e[d->n].err = err;
	if (++d->n == KQ_BATCH_JOBS)
		end_all(d);
}

/* A CQE for j: the job is over, or the rest goes back in (invariant 2). */
static void reap_cqe(struct ended *d, struct kq_job *j, int res)
{
	if (res == -ECANCELED || res == -EFAULT) {
		/* What the kernel says when the thread that submitted the request
		 * (whichever thread's io_uring_enter took it) has exited: it drops
		 * work not yet started for that thread's workers, and cannot finish
		 * a read that waited for the page cache without that thread. kqaio cancels
		 * nothing in the ring, so a worker does the rest with plain calls;
		 * a real EFAULT (or a file system's ECANCELED) comes back once. */
		pthread_mutex_lock(&kq_aio.lock);
		kq_pool_submit(j);
		pthread_mutex_unlock(&kq_aio.lock);
		return;
	}
	int again = res == -EINTR || res == -EAGAIN;
	if (res > 0 && j->op <= KQ_OP_WRITE) {
		j->done += (size_t)res;
		kq_job_advance(j, (size_t)res);
		again = j->done < j->nbytes; /* short: resubmit the remainder */
	}
	if (again) {
		pthread_mutex_lock(&U.lock);
		queue_locked(j);
		pthread_mutex_unlock(&U.lock);
		return;
	}
	end(d, j, res);
}

/* Takes the oldest CQE before tail off the ring: its job and result. The
 * head moves by compare-and-swap, so a holder the CQ was taken from (stole)
 * that is still draining never takes the same CQE as the taker, nor skips
 * one. */
static int claim_cqe(unsigned tail, struct kq_job **j, int *res)
{
	unsigned *khead = U.ring.cq.khead, mask = *U.ring.cq.kring_mask;
	unsigned head = __atomic_load_n(khead, __ATOMIC_RELAXED);
	do {
		if ((int)(tail - head) <= 0)
			return 0;
		struct io_uring_cqe *cqe = &U.ring.cq.cqes[io_uring_cqe_index(&U.ring, head, mask)];
		*j = io_uring_cqe_get_data(cqe);
		*res = cqe->res;
	} while (!__atomic_compare_exchange_n(khead, &head, head + 1, 0, __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
	return 1;
}

/* The CQ held: ends or resubmits what the CQ holds. Returns the CQEs taken. */
static unsigned drain(void)
{
	unsigned tail = __atomic_load_n(U.ring.cq.ktail, __ATOMIC_ACQUIRE);
	if (tail == __atomic_load_n(U.ring.cq.khead, __ATOMIC_ACQUIRE))
		return 0;
	/* The kernel orders each submission before its CQE; taking the lock
	 * that SQEs are prepared and published under shows that order to
	 * ThreadSanitizer for the CQEs already there, so only those are taken
	 * (a second drainer may take the later ones). */
	pthread_mutex_lock(&U.lock);
	pthread_mutex_unlock(&U.lock);
	/* One CQE at a time, each taken off before it is handled: a taker
	 * (stole) finds the ring and every job in a consistent state. */
	struct ended d = {0};
	struct kq_job *j;
	int res;
	unsigned n = 0;
	while (claim_cqe(tail, &j, &res)) {
		__atomic_sub_fetch(&U.inflight, 1, __ATOMIC_SEQ_CST);
		if (j) {
			if (!quiet(j))
				__atomic_sub_fetch(&U.loud, 1, __ATOMIC_SEQ_CST);
			reap_cqe(&d, j, res);
		}
		n++;
	}
	end_all(&d);
	uring_flush();
	return n;
}

/* Not a cancellation point: a pthread_cancel here would leave the completion
 * thread asleep with its wake-up owed (U.idle already cleared). */
static void wake_completer(void)
{
	int old;
	uint64_t one = 1;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	if (write(U.efd, &one, sizeof one) < 0)
		kq_debug("eventfd write: %s", strerror(errno));
	pthread_setcancelstate(old, NULL);
}

/* Jobs are in the ring (loud ones, if loud) and the completion thread
 * sleeps with no deadline: wake it once, so that from now on it naps 10 ms
 * at a time (nap()). The kernel may read the eventfd switch before its CQ
 * tail store is visible, so a switch-then-look can miss a CQE that was never
 * signalled; the nap ends that. At most one write per idle period. */
static void kick_idle(int loud)
{
	if (!__atomic_load_n(loud ? &U.loud : &U.inflight, __ATOMIC_SEQ_CST) ||
	    !__atomic_load_n(&U.idle, __ATOMIC_SEQ_CST) ||
	    !__atomic_exchange_n(&U.idle, 0, __ATOMIC_SEQ_CST))
		return;
	wake_completer();
}

/* Takes the CQ if it is free, and switches the eventfd off while held. Not
 * waiting is safe: the holder drains once more as it lets go. A holder may
 * have left by siglongjmp, so the completion thread is told to look now
 * and then while jobs are in the ring (stole). */
static int take_reap(void)
{
	uintptr_t none = 0;
	if (!__atomic_compare_exchange_n(&U.owner, &none, (uintptr_t)&token, 0, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED)) {
		kick_idle(0);
		return 0;
	}
	hook_exit(); /* a thread that exits holding it lets go */
	pthread_mutex_lock(&U.lock);
	int mine = reaping(); /* the CQ is taken from others under U.lock */
	if (mine) {
		U.held = 1;
		signal_locked();
	}
	pthread_mutex_unlock(&U.lock);
	return mine;
}

/* Lets the CQ go, after taking what arrived while the eventfd was off.
 * Unless it was taken from this thread (stole): the taker lets go. */
static void release_reap(void)
{
	pthread_mutex_lock(&U.lock);
	int mine = reaping();
	if (mine) {
		U.held = 0;
		signal_locked();
		/* The switch before the look at the CQ: a full barrier. */
		__atomic_exchange_n(&U.waiter, 0, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&U.lock);
	if (!mine)
		return;
	drain();
	/* Rides left to this thread as the ring's sleeper (uring_submitted):
	 * drain sends them only when it took a CQE. A rider that saw no
	 * sleeper sends its own, so between the two, someone does. */
	uring_flush();
	uintptr_t me = (uintptr_t)&token;
	__atomic_compare_exchange_n(&U.owner, &me, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	kick_idle(1); /* quiet ones: their owners collect, or sleep and kick */
}

/* Something is in the CQ (a look without holding it). */
static int cq_nonempty(void)
{
	return __atomic_load_n(U.ring.cq.ktail, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(U.ring.cq.khead, __ATOMIC_ACQUIRE);
}

/* How long the completion thread may sleep, in ms (-1: until told). It looks
 * now and then while jobs are in the ring, for quiet ones whose owner never
 * asks and for a CQE whose eventfd signal a leaving holder raced with; and
 * soon while lazy SQEs wait, so they are issued even if no job completes. */
static int nap(void)
{
	/* Idle first, then the look: a lazy submitter that queues meanwhile
	 * sees idle and tells it. */
	__atomic_store_n(&U.idle, 1, __ATOMIC_SEQ_CST);
	int ms = __atomic_load_n(&U.pending, __ATOMIC_SEQ_CST)	  ? 1
		 : __atomic_load_n(&U.inflight, __ATOMIC_SEQ_CST) ? 10
								  : -1;
	if (ms >= 0)
		__atomic_store_n(&U.idle, 0, __ATOMIC_SEQ_CST);
	return ms;
}

/* How long a thread sleeps in the ring at most, and how long CQEs may wait
 * on a holder whose head does not move before the completion thread takes
 * the CQ from it. A running holder takes them within
 * microseconds (one in the ring is woken by them, one spinning sees them);
 * one preempted that long, or running a signal handler, is robbed too, which
 * it bears. */
enum { STUCK_NS = 20 * 1000 * 1000, RING_NAP_NS = 1000 * 1000 * 1000 };

/* The completion thread only. A holder that left by siglongjmp (a handler
 * on a thread asleep in the ring, or anywhere it held the CQ) never lets
 * go, and nobody else would reap: the CQ is taken from one whose CQEs have
 * waited STUCK_NS. Every step of a holder bears that: CQEs are claimed one
 * by one (claim_cqe), the CQ changes hands under U.lock, where take_reap and
 * release_reap look whose it is before they set held and waiter, and a
 * holder asleep in the ring is woken (a NOP; or its sleep's cap, RING_NAP_NS,
 * if it was robbed just before it slept) and waits on the futex instead
 * (uring_wait: ESTALE). */
static int stole(void)
{
	static unsigned head;
	static uintptr_t holder;
	static long long since;
	unsigned h = __atomic_load_n(U.ring.cq.khead, __ATOMIC_ACQUIRE);
	uintptr_t o = __atomic_load_n(&U.owner, __ATOMIC_RELAXED);
	long long now = kq_now_ns();
	if (!o || o != holder || h != head || !cq_nonempty()) {
		holder = o, head = h, since = now;
		return 0;
	}
	if (now - since < STUCK_NS)
		return 0;
	pthread_mutex_lock(&U.lock);
	int took = __atomic_compare_exchange_n(&U.owner, &o, (uintptr_t)&token, 0, __ATOMIC_ACQUIRE,
					       __ATOMIC_RELAXED);
	if (took) {
		U.held = 1;
		queue_locked(NULL);
	}
	pthread_mutex_unlock(&U.lock);
	if (!took)
		return 0;
	holder = 0;
	kq_debug("took the completion queue from a holder stuck for %lld ms",
		 (now - since) / 1000000);
	submit();
	return 1;
}

static void *completer(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "kqaio-uring");
	for (;;) {
		struct pollfd p = {.fd = U.efd, .events = POLLIN};
		if (poll(&p, 1, nap()) < 0)
			continue;
		__atomic_store_n(&U.idle, 0, __ATOMIC_SEQ_CST);
		uint64_t v;
		if (read(U.efd, &v, sizeof v) < 0 && errno != EAGAIN)
			continue;
		if (take_reap() || stole()) {
			drain();
			release_reap();
		}
		uring_flush(); /* lazy jobs whose ride never came */
	}
	return NULL;
}

/* U.lock held. */
static int start_locked(void)
{
	if (U.ready)
		return 0;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_DEPTH;
	int r = io_uring_queue_init_params(SQ_DEPTH, &U.ring, &p);
	if (r < 0)
		return -r;
	/* publish_locked relies on it; a ring made with NO_SQARRAY (liburing
	 * 2.6 on, where the kernel has it) has none, and indexes SQEs so. */
	for (unsigned i = 0; U.ring.sq.array && i < U.ring.sq.ring_entries; i++)
		U.ring.sq.array[i] = i;
	U.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = U.efd < 0 ? errno : -io_uring_register_eventfd(&U.ring, U.efd);
	U.signal = 1;
	U.held = 0;
	__atomic_store_n(&U.loud, 0, __ATOMIC_RELAXED);
	/* Old kernels cannot switch the eventfd off: then only the completion
	 * thread reaps. Sleeping in the ring with a timeout needs EXT_ARG. */
	U.toggle = U.ring.cq.kflags && (U.ring.features & IORING_FEAT_EXT_ARG);
	if (!r)
		r = kq_thread_start(NULL, 64 * 1024, completer, NULL);
	if (r) {
		if (U.efd >= 0)
			kq_close(U.efd);
		U.efd = -1;
		io_uring_queue_exit(&U.ring);
		return r;
	}
	__atomic_store_n(&U.pending, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&U.ready, 1, __ATOMIC_RELEASE);
	return 0;
}

int kq_uring_start(void)
{
	pthread_mutex_lock(&U.lock);
	int err = start_locked();
	pthread_mutex_unlock(&U.lock);
	return err;
}

/* Held: regular files and block devices; the rest, and any job when the
 * ring cannot be had, go on to the pool. */
static int uring_queue(struct kq_job *j)
{
	if (j->flags & (KQ_J_STREAM | KQ_J_BLOCKING))
		return EOPNOTSUPP;
	pthread_mutex_lock(&U.lock);
	int err = start_locked(); /* a forked child makes its ring here */
	if (!err) {
		kq_job_move(j, KQ_W_KERNEL);
		j->be = &kq_be_uring;
		queue_locked(j);
	}
	pthread_mutex_unlock(&U.lock);
	return err;
}

static void uring_flush(void)
{
	if (plugged || !__atomic_load_n(&U.pending, __ATOMIC_SEQ_CST))
		return;
	/* Reads from the page cache often complete inside the submission call:
	 * when no one else is reaping, take those here, with the completion
	 * thread left asleep. */
	int own = !reaping() && U.toggle && take_reap();
	submit();
	if (own) {
		drain();
		release_reap();
	}
}

static int uring_wait_begin(void)
{
	if (!__atomic_load_n(&U.ready, __ATOMIC_ACQUIRE) || !U.toggle)
		return 0;
	/* Holding it already: an earlier wait was left by siglongjmp (kq_enter
	 * found this call no signal handler's), so this one lets it go. */
	if (!reaping() && !take_reap())
		return 0;
	/* Before the caller looks at its jobs: a completion outside the ring
	 * after that look sees the waiter and wakes it (uring_poke). Under
	 * U.lock, where the CQ changes hands: a robbed thread sets no waiter. */
	pthread_mutex_lock(&U.lock);
	int mine = reaping();
	if (mine)
		__atomic_exchange_n(&U.waiter, 1, __ATOMIC_SEQ_CST); /* a full barrier */
	pthread_mutex_unlock(&U.lock);
	return mine;
}

/* How long this thread's recent waits in the ring lasted (a moving average,
 * ns): it spins first only while they are shorter than the spin window. */
static __thread long long wait_avg;

static void waited(long long ns)
{
	long long cap = 4 * kq_config.spin_ns; /* one long idle forgets no more than that */
	wait_avg += ((ns < cap ? ns : cap) - wait_avg) / 4;
}

/* Spins on the CQ until something is there, the window closes or the
 * deadline passes. On this machine a sleep in the ring costs a halted vCPU's
 * wake-up: spinning through a 25 us disk read cut fio's p50 at depth 1 from
 * 32 to 20 us. A thread whose waits are longer than the window (or time out)
 * stops spinning (wait_avg), so a slow device costs no CPU. The CQEs of disk
 * reads reach a spinning submitter because the ring's task work interrupts
 * it (the default TWA_SIGNAL): COOP_TASKRUN or DEFER_TASKRUN would need an
 * io_uring_enter here. */
static int spun(long long dl, long long start)
{
	long long end = start + kq_config.spin_ns;
	end = dl < end ? dl : end;
	for (long long t = start; t < end; t = kq_now_ns()) {
		if (cq_nonempty()) {
			waited(t - start);
			return 1;
		}
		kq_cpu_relax();
	}
	return 0;
}

static int uring_wait(const struct timespec *deadline)
{
	if (!reaping())
		return ESTALE; /* the CQ was taken from this thread (stole) */
	if (drain())
		return 0;
	long long start = kq_now_ns();
	long long dl = deadline ? deadline->tv_sec * 1000000000LL + deadline->tv_nsec : LLONG_MAX;
	/* Signals wait while it spins: one that comes then is pending when the
	 * ring's sleep installs the old mask, and ends that sleep with EINTR,
	 * as it would have ended the sleep itself. */
	sigset_t all, old, *during = NULL;
	if (kq_config.spin_ns && wait_avg < kq_config.spin_ns) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		if (spun(dl, start)) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			drain();
			return 0;
		}
		during = &old;
	}
	/* A thread robbed of the CQ (stole) waits on the futex; one robbed
	 * between this look and its sleep, after the taker's NOP, sleeps until
	 * the next CQE, or the cap. The cap is long: each return is a moment
	 * when a signal handler that submits finds this thread holding locks. */
	if (!reaping()) {
		if (during)
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		return ESTALE;
	}
	long long left = dl - kq_now_ns();
	long long ns = left < RING_NAP_NS ? left : RING_NAP_NS;
	struct __kernel_timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
	struct io_uring_cqe *cqe;
	int r = ns <= 0 ? -ETIME : io_uring_wait_cqes(&U.ring, &cqe, 1, &ts, during);
	if (during)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	waited(kq_now_ns() - start); /* a timeout or a signal counts: a long wait */
	/* liburing says ETIME for a wake-up whose CQE another thread took
	 * (a taker's NOP, or a robbed drainer's), not only at the deadline. */
	if (r == -ETIME)
		return !reaping() ? ESTALE : kq_now_ns() >= dl ? ETIMEDOUT : 0;
	if (r == -EINTR)
		return EINTR;
	drain();
	return 0;
}

static void uring_wait_end(void)
{
	release_reap();
}

static void uring_poke(void)
{
	if (reaping() || !__atomic_load_n(&U.waiter, __ATOMIC_SEQ_CST))
		return;
	pthread_mutex_lock(&U.lock);
	queue_locked(NULL);
	pthread_mutex_unlock(&U.lock);
	submit();
}

static void uring_collect(void)
{
	if (!__atomic_load_n(&U.ready, __ATOMIC_ACQUIRE) || !U.toggle || !cq_nonempty())
		return;
	if (reaping() || take_reap()) { /* reaping: see uring_wait_begin */
		drain();
		release_reap();
	}
}

/* No lock: a signal handler's wait, or its look (aio_error). The thread it
 * interrupted may hold the CQ: the completion thread takes it (stole) once
 * it looks, and it looks every 10 ms once told. */
static void uring_nudge(void)
{
	int saved = errno;
	if (__atomic_load_n(&U.ready, __ATOMIC_ACQUIRE))
		kick_idle(0);
	errno = saved;
}

static void uring_sleeping(void)
{
	if (!__atomic_load_n(&U.ready, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&U.lock);
	signal_locked();
	int held = U.held;
	pthread_mutex_unlock(&U.lock);
	/* Quiet completions already there: the completion thread must take
	 * them now, since it was not told (a holder will on letting go). */
	__atomic_exchange_n(&barrier_word, 0, __ATOMIC_SEQ_CST); /* the switch, then the look */
	if (!held && cq_nonempty()) {
		wake_completer();
	} else {
		kick_idle(0);
	}
}

/* A rider is one eighth of what is in flight, at least two; with another
 * thread asleep in the ring, up to 32. */
enum { RIDE_SHARE = 8, RIDE_MIN = 2, RIDE_SLEEPER = 32 };

static void uring_submitted(int lazy)
{
	/* A lazy job rides with later ones: the next completion drained, its
	 * owner's next call, a full SQ or the completion thread's nap (1 ms)
	 * submits it. Adaptive: only while jobs already in the ring will
	 * complete, and only until the SQ holds an eighth of what is in
	 * flight. Measured on a virtio disk at depth 32, riding without that
	 * bound fed the device in bursts as long as the queue (31 completions
	 * per interrupt) and lost a third of the rate; a pair per
	 * io_uring_enter halves the syscalls and starves nothing, and at
	 * depth 256 longer rides save CPU while the device stays full. On an
	 * idle ring a job goes now, so a lone request waits for nothing. */
	uint32_t p = __atomic_load_n(&U.pending, __ATOMIC_SEQ_CST);
	uint32_t in = __atomic_load_n(&U.inflight, __ATOMIC_SEQ_CST);
	uint32_t most = in / RIDE_SHARE > RIDE_MIN ? in / RIDE_SHARE : RIDE_MIN;
	/* Another thread sleeps in the ring: the next completion wakes it, and
	 * it sends the ride as it drains, so the enter, with the ride's
	 * completion work, is that thread's, which wakes for it anyway. Eight
	 * fio threads at depth 4 on the disk: 69k -> 86k (medians of 6). The
	 * ride is then bounded by RIDE_SLEEPER, not an eighth of what is out:
	 * those requests may be slow (an fsync), and then the nap sends it.
	 * (Bounding it by what is out instead gave back most of the gain when
	 * the sleeper drains as fast as the submitter queues.) */
	int sleeper = !reaping() && __atomic_load_n(&U.waiter, __ATOMIC_SEQ_CST);
	int ride = p < most || (sleeper && p < RIDE_SLEEPER);
	if (lazy == KQ_BATCH_NEVER || !p || (lazy == KQ_BATCH_ADAPTIVE && (in <= p || !ride))) {
		uring_flush();
	} else {
		kick_idle(0); /* jobs are in flight: an idle thread gets a deadline */
	}
}

static void uring_plug(int on)
{
	plugged = on;
	if (!on)
		uring_flush();
}

static void uring_fork_prepare(void)
{
	pthread_mutex_lock(&U.lock);
}

static void uring_fork_parent(void)
{
	pthread_mutex_unlock(&U.lock);
}

static void uring_fork_child(void)
{
	/* The rings are shared with the parent: unmap them, never touch them. */
	if (U.ready) {
		io_uring_queue_exit(&U.ring);
		kq_close(U.efd);
		U.efd = -1;
	}
	U.ready = 0;
	__atomic_store_n(&U.pending, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&U.inflight, 0, __ATOMIC_RELAXED);
	/* A parent's thread may hold it, sleeping in the parent's ring. */
	U.owner = 0;
	U.waiter = 0;
	U.held = 0;
	pthread_mutex_unlock(&U.lock);
}

const struct kq_backend kq_be_uring = {
    .name = "uring",
    .queue = uring_queue,
    .submitted = uring_submitted,
    .hold = uring_plug,
    .flush = uring_flush,
    .collect = uring_collect,
    .sleeping = uring_sleeping,
    .nudge = uring_nudge,
    .poke = uring_poke,
    .wait_begin = uring_wait_begin,
    .wait = uring_wait,
    .wait_end = uring_wait_end,
    .fork_prepare = uring_fork_prepare,
    .fork_parent = uring_fork_parent,
    .fork_child = uring_fork_child,
};
