/* Notification by signal or thread, each job the way its own sigevent asks. */
#include "aio/aio.h"

#include <errno.h>
#include <sys/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"

int kq_sigevent_check(const struct sigevent *sev)
{
	switch (sev->sigev_notify) {
	case SIGEV_NONE:
		return 0;
	case SIGEV_SIGNAL: /* signal 0 means none: a zeroed sigevent is SIGEV_SIGNAL 0 */
		return sev->sigev_signo < 0 || sev->sigev_signo >= NSIG ? EINVAL : 0;
	case SIGEV_THREAD_ID:
		return sev->sigev_signo <= 0 || sev->sigev_signo >= NSIG || sev->_sigev_un._tid <= 0
			   ? EINVAL
			   : 0;
	case SIGEV_THREAD:
		return sev->sigev_notify_function ? 0 : EINVAL;
	case SIGEV_KEVENT: /* the kqueue itself is checked when the knote is made */
		return (unsigned)sev->sigev_notify_kevent_flags &
			       ~(unsigned)(EV_ONESHOT | EV_CLEAR | EV_DISPATCH)
			   ? EINVAL
			   : 0;
	default:
		return EINVAL;
	}
}

/* Returns 0, or the errno the kernel gave (EAGAIN: the signal queue is full). */
static int send_signal(const struct sigevent *sev)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sev->sigev_signo;
	si.si_code = SI_ASYNCIO;
	si.si_value = sev->sigev_value;
	si.si_pid = kq_aio.pid;
	si.si_uid = getuid();
	long r =
	    sev->sigev_notify == SIGEV_THREAD_ID
		? syscall(SYS_rt_tgsigqueueinfo, kq_aio.pid, sev->_sigev_un._tid, si.si_signo, &si)
		: syscall(SYS_rt_sigqueueinfo, kq_aio.pid, si.si_signo, &si);
	return r < 0 ? errno : 0;
}

/* SIGEV_THREAD without attributes runs on a small pool of reusable threads:
 * callbacks beyond NOTIFY_THREADS running at once wait their turn. */
#define NOTIFY_THREADS 32

struct tnote {
	struct kq_work work;
	void (*fn)(union sigval);
	union sigval value;
	struct tnote *next_free;
	int detach;
};

static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;
static struct tnote *tfree;
static struct kq_tpool tpool;
static int tpool_ready;

/* tlock held. */
static void pool_ready_locked(void)
{
	if (!tpool_ready) {
		kq_tpool_init(&tpool, "kqaio-notify", NOTIFY_THREADS, 1000, 0);
		tpool_ready = 1;
	}
}

/* A signal the kernel could not queue yet (RLIMIT_SIGPENDING reached): a
 * notifier thread tries again until the application has taken some, so the
 * notification is late rather than lost and no completion waits for it. */
struct sigretry {
	struct kq_work work;
	struct sigevent sev;
};

static void sigretry_run(struct kq_work *w)
{
	struct sigretry *r = kq_container_of(w, struct sigretry, work);
	long ns = 1000000, waited = 0;
	while (send_signal(&r->sev) == EAGAIN) {
		if (waited > 60000000000L) { /* nobody takes signals: give up at last */
			kq_debug("signal %d could not be queued for a minute; dropped",
				 r->sev.sigev_signo);
			break;
		}
		struct timespec ts = {0, ns};
		nanosleep(&ts, NULL);
		waited += ns;
		if (ns < 64000000)
			ns *= 2;
	}
	free(r);
}

static void signal_later(const struct sigevent *sev)
{
	struct sigretry *r = malloc(sizeof *r);
	if (!r) {
		kq_debug("out of memory: a completion signal is lost");
		return;
	}
	r->sev = *sev;
	r->work.fn = sigretry_run;
	pthread_mutex_lock(&tlock);
	pool_ready_locked();
	pthread_mutex_unlock(&tlock);
	kq_tpool_push(&tpool, &r->work);
}

static void tnote_run(struct kq_work *w)
{
	struct tnote *t = kq_container_of(w, struct tnote, work);
	void (*fn)(union sigval) = t->fn;
	union sigval v = t->value;
	pthread_mutex_lock(&tlock);
	t->next_free = tfree;
	tfree = t;
	pthread_mutex_unlock(&tlock);
	fn(v);
}

/* With attributes, the caller asked for a thread of its own making. */
static void *own_thread(void *arg)
{
	struct tnote *t = arg;
	if (t->detach)
		pthread_detach(pthread_self());
	void (*fn)(union sigval) = t->fn;
	union sigval v = t->value;
	free(t);
	fn(v);
	return NULL;
}

static void run_thread(const struct sigevent *sev)
{
	pthread_attr_t *attr = sev->sigev_notify_attributes;
	if (attr) {
		struct tnote *t = malloc(sizeof *t);
		int ds = PTHREAD_CREATE_DETACHED;
		if (t) {
			t->fn = sev->sigev_notify_function;
			t->value = sev->sigev_value;
			pthread_attr_getdetachstate(attr, &ds);
			t->detach = ds == PTHREAD_CREATE_JOINABLE;
			if (kq_thread_start(attr, 0, own_thread, t) == 0)
				return;
			free(t);
		}
		/* Could not honour the attributes: run it on the pool rather than lose it. */
	}
	pthread_mutex_lock(&tlock);
	pool_ready_locked();
	struct tnote *t = tfree;
	if (t)
		tfree = t->next_free;
	pthread_mutex_unlock(&tlock);
	if (!t && !(t = calloc(1, sizeof *t)))
		return;
	t->fn = sev->sigev_notify_function;
	t->value = sev->sigev_value;
	t->work.fn = tnote_run;
	kq_tpool_push(&tpool, &t->work);
}

void kq_notify(const struct sigevent *sev)
{
	switch (sev->sigev_notify) {
	case SIGEV_SIGNAL:
	case SIGEV_THREAD_ID:
		if (send_signal(sev) == EAGAIN)
			signal_later(sev);
		break;
	case SIGEV_THREAD:
		run_thread(sev);
		break;
	}
}

void kq_notify_fork_prepare(void)
{
	pthread_mutex_lock(&tlock);
	if (tpool_ready)
		kq_tpool_fork_prepare(&tpool);
}

void kq_notify_fork_parent(void)
{
	if (tpool_ready)
		kq_tpool_fork_parent(&tpool);
	pthread_mutex_unlock(&tlock);
}

void kq_notify_fork_child(void)
{
	if (tpool_ready)
		kq_tpool_fork_child(&tpool);
	tfree = NULL;
	pthread_mutex_unlock(&tlock);
}
