/* Reads of memory-backed files (tmpfs, ramfs): done by the thread that
 * submits them once it has let go of the engine lock, or, when that thread
 * keeps many requests outstanding, by a copier thread beside it. */
#include "aio/backend/backend.h"

#include <errno.h>
#include <time.h>

#include "common/cpu.h"
#include "common/futex.h"

/* A copy out of memory never waits for a device, and costs less than a
 * trip through io_uring, which hands tmpfs reads to a kernel worker and an
 * interrupt back. Jobs wait here from dispatch, under the lock, to the end
 * of the call that submitted them. */
enum { PENDING_MAX = 64 };
static __thread struct kq_job *pending[PENDING_MAX];
static __thread int npending, held, deep;

/* A program with many reads outstanding does not wait for each: the copier
 * does them on another core while the program goes on, so copies overlap
 * the program's own work as glibc's and io_uring's workers make them do.
 * Handing over costs a lock, and a wakeup only when the copier slept; it
 * spins a little before sleeping so that a steady stream wakes it once. */
enum {
	DEEP = 4,	 /* outstanding jobs (kq_aio.njobs) from which to hand over */
	SPIN_NS = 50000, /* how long the copier looks for more before sleeping */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kq_link queue;
	int n;	      /* jobs queued (read without the lock by the spinning copier) */
	int running;  /* the copier exists */
	int sleeping; /* it waits on cond */
	int cond_ok;  /* cond is set up to time out on CLOCK_MONOTONIC */
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .queue = {&C.queue, &C.queue}};

static int take(struct kq_job *j)
{
	if (!(j->flags & KQ_J_INLINE) || npending == PENDING_MAX)
		return EAGAIN;
	kq_job_move(j, KQ_W_RUNNING); /* nothing in between can take it back */
	j->be = &kq_be_inline;
	pending[npending++] = j;
	deep |= kq_aio.njobs >= DEEP;
	return 0;
}

/* Does the jobs and publishes their results, as many under one lock as a
 * batch holds. preadv is a cancellation point: a job taken off must still end. */
static void perform(struct kq_job **js, int n)
{
	int cs;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	for (int i = 0; i < n; i += KQ_BATCH_JOBS) {
		int m = n - i < KQ_BATCH_JOBS ? n - i : KQ_BATCH_JOBS;
		ssize_t res[KQ_BATCH_JOBS];
		int err[KQ_BATCH_JOBS];
		for (int k = 0; k < m; k++)
			kq_job_io(js[i + k], 0, &res[k], &err[k]);
		struct kq_batch b;
		kq_batch_init(&b);
		pthread_mutex_lock(&kq_aio.lock);
		for (int k = 0; k < m; k++)
			kq_complete_locked(js[i + k], res[k], err[k], &b);
		pthread_mutex_unlock(&kq_aio.lock);
		kq_batch_flush(&b);
	}
	pthread_setcancelstate(cs, NULL);
}

/* C.lock held: up to max queued jobs, oldest first. */
static int pop_locked(struct kq_job **js, int max)
{
	int n = 0;
	struct kq_link *l;
	while (n < max && (l = kq_list_first(&C.queue))) {
		kq_list_del(l);
		js[n++] = kq_container_of(l, struct kq_job, work.link);
	}
	__atomic_store_n(&C.n, C.n - n, __ATOMIC_RELAXED);
	return n;
}

static void *copier(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "kqaio-copy");
	struct kq_job *js[KQ_BATCH_JOBS];
	pthread_mutex_lock(&C.lock);
	for (;;) {
		int n = pop_locked(js, KQ_BATCH_JOBS);
		if (n) {
			pthread_mutex_unlock(&C.lock);
			perform(js, n);
			pthread_mutex_lock(&C.lock);
			continue;
		}
		pthread_mutex_unlock(&C.lock);
		for (long long end = kq_now_ns() + SPIN_NS;
		     !__atomic_load_n(&C.n, __ATOMIC_RELAXED) && kq_now_ns() < end;)
			kq_cpu_relax();
		pthread_mutex_lock(&C.lock);
		if (C.n)
			continue;
		struct timespec dl,
		    idle = {kq_config.idle_ms / 1000, kq_config.idle_ms % 1000 * 1000000L};
		kq_deadline(&idle, &dl);
		C.sleeping = 1;
		int r = pthread_cond_timedwait(&C.cond, &C.lock, &dl);
		C.sleeping = 0;
		if (r == ETIMEDOUT && !C.n)
			break;
	}
	C.running = 0;
	pthread_mutex_unlock(&C.lock);
	return NULL;
}

/* Gives the copier n jobs; 0 if there is no copier and none could start. */
static int hand_over(struct kq_job **js, int n)
{
	pthread_mutex_lock(&C.lock);
	if (!C.cond_ok) {
		pthread_condattr_t a;
		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_init(&C.cond, &a);
		pthread_condattr_destroy(&a);
		C.cond_ok = 1;
	}
	if (!C.running) {
		if (kq_thread_start(NULL, 64 * 1024, copier, NULL)) {
			pthread_mutex_unlock(&C.lock);
			return 0;
		}
		C.running = 1;
	}
	for (int i = 0; i < n; i++)
		kq_list_add_tail(&C.queue, &js[i]->work.link);
	__atomic_store_n(&C.n, C.n + n, __ATOMIC_RELAXED);
	if (C.sleeping)
		pthread_cond_signal(&C.cond);
	pthread_mutex_unlock(&C.lock);
	return 1;
}

static void run(void)
{
	if (held || !npending)
		return;
	struct kq_job *js[PENDING_MAX];
	int n = npending;
	for (int i = 0; i < n; i++)
		js[i] = pending[i];
	npending = 0;
	int over = deep && kq_config.copier && hand_over(js, n);
	deep = 0;
	if (!over)
		perform(js, n);
}

/* A thread about to wait does a queued copy itself rather than sleep. */
static int help(void)
{
	if (!__atomic_load_n(&C.n, __ATOMIC_RELAXED))
		return 0;
	struct kq_job *j;
	pthread_mutex_lock(&C.lock);
	int n = pop_locked(&j, 1);
	pthread_mutex_unlock(&C.lock);
	if (n)
		perform(&j, 1);
	return n;
}

static void hold(int on)
{
	held = on;
	run();
}

static void submitted(int lazy)
{
	(void)lazy; /* the submitter is the one to do them, or to hand them over, now */
	run();
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&C.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&C.lock);
}

static void fork_child(void)
{
	npending = held = deep = 0; /* a fork from a handler that interrupted a list */
	/* The queue holds the parent's jobs; the copier is not in this process. */
	kq_list_init(&C.queue);
	C.n = C.running = C.sleeping = C.cond_ok = 0; /* cond may hold the copier's wait */
	pthread_mutex_unlock(&C.lock);
}

const struct kq_backend kq_be_inline = {
    .name = "inline",
    .queue = take,
    .submitted = submitted,
    .hold = hold,
    .help = help,
    .fork_prepare = fork_prepare,
    .fork_parent = fork_parent,
    .fork_child = fork_child,
};
