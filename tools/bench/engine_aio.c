/* kqaio-bench: the POSIX AIO engine. One loop keeps --qd requests in flight
 * through a table of function pointers, which is kqaio's own aio_* (what this
 * program links) or glibc's, resolved at run time with dlvsym so that kqaio's
 * unversioned exports do not shadow them. Submission is one call per request
 * or lio_listio(LIO_NOWAIT) batches; completion is found by aio_suspend, a
 * kqueue (SIGEV_KEVENT), aio_waitcomplete, a realtime signal (SIGEV_SIGNAL,
 * taken with sigwaitinfo) or SIGEV_THREAD callbacks that queue the request
 * and wake the loop through an eventfd. */
#include "bench.h"

#include <aio.h>
#include <sys/event.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

struct aio_ops {
	int (*read)(struct aiocb *);
	int (*write)(struct aiocb *);
	int (*error)(const struct aiocb *);
	ssize_t (*ret)(struct aiocb *);
	int (*suspend)(const struct aiocb *const[], int, const struct timespec *);
	int (*listio)(int, struct aiocb *const[], int, struct sigevent *);
	ssize_t (*waitcomplete)(struct aiocb **, struct timespec *); /* NULL: glibc has none */
};

struct slot {
	struct aiocb cb; /* first: an aiocb pointer is its slot's */
	char *buf;
	uint64_t off;
	double t0;
	int write, busy;
	ssize_t res; /* aio_waitcomplete's value */
};

static const struct config *C;
static const struct aio_ops *ops;
static struct slot *slots;
static struct slot **done;
static const struct aiocb **waitlist;
static int kq = -1, efd = -1, sig;
static struct result *R;

/* SIGEV_THREAD: the callbacks queue finished slots here for the loop. */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct slot **queue;
static int qlen;

static int fail(const char *fmt, const char *what, int err)
{
	R->status = ST_FAILED;
	snprintf(R->note, sizeof R->note, fmt, what, strerror(err));
	return -1;
}

static void notified(union sigval v)
{
	pthread_mutex_lock(&qlock);
	queue[qlen++] = v.sival_ptr;
	pthread_mutex_unlock(&qlock);
	uint64_t one = 1;
	if (write(efd, &one, sizeof one) != sizeof one)
		abort();
}

static void prepare(struct slot *s, struct gen *g)
{
	memset(&s->cb, 0, sizeof s->cb);
	s->off = gen_next(g, &s->write);
	s->cb.aio_fildes = C->fd;
	s->cb.aio_buf = s->buf;
	s->cb.aio_nbytes = C->bs;
	s->cb.aio_offset = (off_t)s->off;
	s->cb.aio_lio_opcode = s->write ? LIO_WRITE : LIO_READ;
	if (s->write)
		pattern_fill(s->buf, s->off, C->bs);
	struct sigevent *ev = &s->cb.aio_sigevent;
	ev->sigev_value.sival_ptr = s;
	switch (C->completion) {
	case C_KEVENT:
		ev->sigev_notify = SIGEV_KEVENT;
		ev->sigev_notify_kqueue = kq;
		break;
	case C_SIGNAL:
		ev->sigev_notify = SIGEV_SIGNAL;
		ev->sigev_signo = sig;
		break;
	case C_THREAD:
		ev->sigev_notify = SIGEV_THREAD;
		ev->sigev_notify_function = notified;
		break;
	default:
		ev->sigev_notify = SIGEV_NONE;
	}
	s->busy = 1;
}

/* Waits for at least one request to end; puts the finished slots in done[]. */
static int wait_some(void)
{
	int n = 0;
	switch (C->completion) {
	case C_SUSPEND: {
		for (int i = 0; i < C->qd; i++)
			waitlist[i] = slots[i].busy ? &slots[i].cb : NULL;
		if (ops->suspend(waitlist, C->qd, NULL) < 0 && errno != EINTR)
			return fail("%s: %s", "aio_suspend", errno);
		for (int i = 0; i < C->qd; i++)
			if (slots[i].busy && ops->error(&slots[i].cb) != EINPROGRESS)
				done[n++] = &slots[i];
		return n;
	}
	case C_KEVENT: {
		struct kevent ev[256];
		int k = kevent(kq, NULL, 0, ev, C->qd < 256 ? C->qd : 256, NULL);
		if (k < 0)
			return errno == EINTR ? 0 : fail("%s: %s", "kevent", errno);
		for (int i = 0; i < k; i++) {
			if (ev[i].filter != EVFILT_AIO) {
				R->status = ST_FAILED;
				snprintf(R->note, sizeof R->note,
					 "kevent: filter %d, not EVFILT_AIO", ev[i].filter);
				return -1;
			}
			done[n++] = ev[i].udata;
		}
		return n;
	}
	case C_WAITCOMPLETE: {
		struct timespec zero = {0, 0}, *to = NULL;
		for (;;) {
			struct aiocb *cb;
			ssize_t r = ops->waitcomplete(&cb, to);
			if (!cb) {
				if (errno == EAGAIN && to)
					return n;
				if (errno == EINTR)
					continue;
				return fail("%s: %s", "aio_waitcomplete", errno);
			}
			struct slot *s = (struct slot *)cb;
			s->res = r < 0 ? -errno : r;
			done[n++] = s;
			to = &zero;
			if (n == C->qd)
				return n;
		}
	}
	case C_SIGNAL: {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		struct timespec zero = {0, 0};
		siginfo_t si;
		for (;;) {
			int r = n ? sigtimedwait(&set, &si, &zero) : sigwaitinfo(&set, &si);
			if (r < 0) {
				if (errno == EAGAIN)
					return n;
				if (errno == EINTR)
					continue;
				return fail("%s: %s", "sigwaitinfo", errno);
			}
			done[n++] = si.si_value.sival_ptr;
			if (n == C->qd)
				return n;
		}
	}
	case C_THREAD: {
		uint64_t v;
		if (read(efd, &v, sizeof v) < 0 && errno != EINTR)
			return fail("%s: %s", "eventfd read", errno);
		pthread_mutex_lock(&qlock);
		memcpy(done, queue, (size_t)qlen * sizeof *done);
		n = qlen;
		qlen = 0;
		pthread_mutex_unlock(&qlock);
		return n;
	}
	}
	return 0;
}

/* Resolves glibc's own AIO functions; NULL and a reason in R->note if it cannot. */
static const struct aio_ops *glibc_ops(void)
{
	static struct aio_ops g;
	static const char *const vers[] = {"GLIBC_2.34", "GLIBC_2.4", "GLIBC_2.2.5"};
	void *libs[2] = {dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY), NULL};
	struct {
		const char *name;
		void **p;
	} want[] = {{"aio_read", (void **)&g.read},	  {"aio_write", (void **)&g.write},
		    {"aio_error", (void **)&g.error},	  {"aio_return", (void **)&g.ret},
		    {"aio_suspend", (void **)&g.suspend}, {"lio_listio", (void **)&g.listio}};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		*want[i].p = NULL;
		/* glibc before 2.34 keeps them in librt. GLIBC_2.4 is lio_listio's
		 * current version before 2.34 (its 2.2.5 one is a compat stub). */
		for (int l = 0; l < 2 && !*want[i].p; l++) {
			if (l == 1 && !libs[1])
				libs[1] = dlopen("librt.so.1", RTLD_LAZY);
			for (size_t v = 0; libs[l] && v < 3 && !*want[i].p; v++)
				*want[i].p = dlvsym(libs[l], want[i].name, vers[v]);
		}
		Dl_info info;
		if (!*want[i].p) {
			snprintf(R->note, sizeof R->note, "glibc's %s not found", want[i].name);
			return NULL;
		}
		if (!dladdr(*want[i].p, &info) || !info.dli_fname ||
		    strstr(info.dli_fname, "libkqaio")) {
			snprintf(R->note, sizeof R->note, "%s resolved to %s, not glibc",
				 want[i].name, info.dli_fname ? info.dli_fname : "?");
			return NULL;
		}
	}
	return &g;
}

static const struct aio_ops kqaio_ops = {aio_read,    aio_write,  aio_error,	   aio_return,
					 aio_suspend, lio_listio, aio_waitcomplete};

/* Submits requests into free slots: one call each, or lists of --batch. */
static int submit_free(struct gen *g, uint64_t *issued, uint64_t limit)
{
	struct aiocb *list[C->qd];
	int nfree = 0, busy = 0;
	for (int i = 0; i < C->qd; i++)
		busy += slots[i].busy;
	nfree = C->qd - busy;
	while (nfree > 0 && *issued < limit) {
		if (C->submit == S_SINGLE) {
			for (int i = 0; i < C->qd && *issued < limit; i++) {
				struct slot *s = &slots[i];
				if (s->busy)
					continue;
				prepare(s, g);
				s->t0 = now_s();
				if ((s->write ? ops->write : ops->read)(&s->cb) < 0)
					return fail("%s: %s", s->write ? "aio_write" : "aio_read",
						    errno);
				++*issued;
			}
			return 0;
		}
		/* listio: whole batches, or what is left when nothing else is in flight */
		if (nfree < C->batch && busy > 0)
			return 0;
		int n = 0;
		double t0 = now_s();
		for (int i = 0; i < C->qd && n < C->batch && *issued < limit; i++) {
			if (slots[i].busy)
				continue;
			prepare(&slots[i], g);
			slots[i].t0 = t0;
			list[n++] = &slots[i].cb;
			++*issued;
		}
		if (ops->listio(LIO_NOWAIT, list, n, NULL) < 0)
			return fail("%s: %s", "lio_listio", errno);
		nfree -= n;
		busy += n;
	}
	return 0;
}

void engine_aio(const struct config *c, enum engine e, struct result *r)
{
	C = c;
	R = r;
	/* The signal is blocked before the first AIO call (kqaio_backend() included),
	 * so that every thread a library starts inherits the mask and sigwaitinfo
	 * here takes them all. */
	sig = SIGRTMIN + 2;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (e == E_GLIBC) {
		if (c->completion == C_KEVENT || c->completion == C_WAITCOMPLETE) {
			r->status = ST_NA;
			snprintf(r->note, sizeof r->note, "glibc has no %s (FreeBSD's)",
				 c->completion == C_KEVENT ? "SIGEV_KEVENT" : "aio_waitcomplete");
			return;
		}
		if (!(ops = glibc_ops())) {
			r->status = ST_NA;
			return;
		}
	} else {
		const char *want = e == E_KQAIO_URING ? "uring" : "pool";
		setenv("KQAIO_BACKEND", want, 1);
		snprintf(r->backend, sizeof r->backend, "%s", kqaio_backend());
		if (strcmp(r->backend, want)) {
			r->status = ST_NA;
			snprintf(r->note, sizeof r->note,
				 "kqaio cannot use io_uring here (it chose %s)", r->backend);
			return;
		}
		ops = &kqaio_ops;
	}

	if (c->completion == C_KEVENT && (kq = kqueue()) < 0) {
		fail("%s: %s", "kqueue", errno);
		return;
	}
	if (c->completion == C_THREAD && (efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		fail("%s: %s", "eventfd", errno);
		return;
	}
	slots = calloc((size_t)c->qd, sizeof *slots);
	done = calloc((size_t)c->qd, sizeof *done);
	queue = calloc((size_t)c->qd, sizeof *queue);
	waitlist = calloc((size_t)c->qd, sizeof *waitlist);
	if (!slots || !done || !queue || !waitlist) {
		fail("%s: %s", "calloc", ENOMEM);
		return;
	}
	for (int i = 0; i < c->qd; i++)
		if (posix_memalign((void **)&slots[i].buf, 4096, c->bs)) {
			fail("%s: %s", "posix_memalign", ENOMEM);
			return;
		}

	static struct lat lat;
	struct gen g;
	gen_init(&g, c);
	struct progress p = {c->progress, engine_names[e], 0, 0};
	uint64_t issued = 0, completed = 0, limit = c->ops ? c->ops : UINT64_MAX;
	double t_start = now_s(), cpu0 = cpu_s(), t = t_start;
	p.start = p.last = t_start;
	int inflight = 0;
	if (submit_free(&g, &issued, limit) < 0)
		return;
	inflight = (int)issued;
	while (inflight > 0) {
		int n = wait_some();
		if (n < 0)
			break;
		t = now_s();
		for (int i = 0; i < n; i++) {
			struct slot *s = done[i];
			ssize_t res = c->completion == C_WAITCOMPLETE ? s->res : ops->ret(&s->cb);
			if (res < 0 && c->completion != C_WAITCOMPLETE)
				res = -ops->error(&s->cb);
			s->busy = 0;
			inflight--;
			if (res != (ssize_t)c->bs) {
				if (R->status == ST_OK) {
					R->status = ST_FAILED;
					if (res < 0)
						snprintf(R->note, sizeof R->note,
							 "%s at offset %llu: %s",
							 s->write ? "write" : "read",
							 (unsigned long long)s->off,
							 strerror((int)-res));
					else
						snprintf(R->note, sizeof R->note,
							 "%s at offset %llu: %zd bytes of %zu",
							 s->write ? "write" : "read",
							 (unsigned long long)s->off, res, c->bs);
				}
				continue;
			}
			if (c->verify && !s->write && R->status == ST_OK &&
			    pattern_check(s->buf, s->off, c->bs, &R->bad_offset)) {
				R->status = ST_MISMATCH;
				snprintf(R->note, sizeof R->note,
					 "data mismatch at offset %llu (in the block at %llu)",
					 (unsigned long long)R->bad_offset,
					 (unsigned long long)s->off);
			}
			lat_add(&lat, (uint64_t)((t - s->t0) * 1e9));
			completed++;
		}
		progress_tick(&p, t, completed);
		/* Stop submitting at the end (or at the first error) and drain. */
		if (R->status != ST_OK || (!c->ops && t - t_start >= c->seconds))
			limit = issued;
		uint64_t before = issued;
		if (submit_free(&g, &issued, limit) < 0)
			return; /* what is in flight ends with the process */
		inflight += (int)(issued - before);
	}
	progress_end(&p);
	r->cpu_us = (cpu_s() - cpu0) * 1e6;
	r->secs = t - t_start;
	r->ops = completed;
	r->bytes = completed * c->bs;
	r->p50 = lat_pct_us(&lat, 0.50);
	r->p99 = lat_pct_us(&lat, 0.99);
	r->p999 = lat_pct_us(&lat, 0.999);
}
