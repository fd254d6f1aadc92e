/* A soak of AIO completion through kqueue (issue 4). Two submitting threads
 * run rounds of single jobs (aio_read, aio_write, aio_readv, aio_writev,
 * aio_fsync) and lio_listio(LIO_NOWAIT) lists on tmpfs and disk files, each
 * job and each list asking for a random notification: none, a queued RT
 * signal, a thread callback, or a kevent (flags 0, ONESHOT, CLEAR or DISPATCH)
 * on one of three kqueues. A third thread serves the three kqueues through a
 * fourth that watches them, and reaps, deletes, re-enables or leaves what it
 * gets; the submitters cancel, reap early, take jobs with aio_waitcomplete
 * and reap the rest. Every request carries an id in sigev_value; counters per
 * id check that every job ends exactly once with a sane result and the right
 * bytes, and that every notification asked for arrives exactly once (a
 * level-triggered kevent at least once), never one of another kind, and no
 * kevent after its job was reaped. KQAIO_KEVENT_SOAK_SECONDS sets the length
 * (default 10 s; `make soak` runs it for minutes). */
#include "kqt.h"

#include <sched.h>
#include <stdarg.h>
#include <sys/event.h>
#include <sys/uio.h>
#include <time.h>

/* The length comes from the environment; a watchdog inside bounds it. */
TestSuite(kevent_soak, .timeout = 3600);

enum {
	SUBMITTERS = 2,
	NKQ = 3,
	NSHM = 6,
	NDISK = 2,
	NFILES = NSHM + NDISK,
	FSIZE = 1 << 20,
	MAXLEN = 64 << 10,
	BATCH = 12,
	LISTMAX = 2 * BATCH + 4,
	RING = 1 << 15,
	SOAKSIG_OFF = 6,
	WAIT_MS = 20000, /* a bound no healthy wait comes near */
};

enum { N_NONE, N_SIGNAL, N_THREAD, N_KEVENT };
enum { OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_FSYNC };
/* A job slot's word: request id << 2 | state. */
enum { S_INFLIGHT, S_CLAIMED, S_ENDED };
/* Who reaped a job. */
enum { W_KLOOP, W_EARLY, W_FINAL, W_TAKE, W_N };

struct job {
	struct aiocb cb; /* first: the kevent ident and aio_waitcomplete's answer lead here */
	uint64_t word;
	int op, file, sync_op;
	off_t off;
	size_t len;
	struct iovec iov[4];
	unsigned char *buf;
	uint64_t list_rid; /* 0: not a list entry */
};

/* What one request (a job, a list, or a list entry that fails to queue) asked
 * for and what it got. Counters are atomics; the rest is written before the
 * tag is published. */
struct rec {
	uint64_t tag; /* the request id this record is for */
	int closed;
	int kind, kflags, kq, is_list, bad;
	struct job *job;      /* a job: its slot */
	struct job *entries;  /* a list: the submitter's slots... */
	int nentries;	      /* ...of which the first nentries are its entries */
	struct aiocb **listp; /* a list: the array passed to lio_listio */
	int nqueued;
	int sig, thr, kev, ends, may_miss, deleted, enables, kev_data, remaining;
	int must_cancel, cannot_cancel;
	/* A list: lio_listio has returned; its last entry was reaped before that. */
	int submitted, reaped_early;
	uint64_t reap_seq;
	int err;
};

struct sub {
	unsigned seed;
	struct job jobs[BATCH];
	struct aiocb *list[LISTMAX];
	struct aiocb nop, bad;
	char badbuf[16];
	uint64_t rids[BATCH + 2];
	int nrids;
	long rounds, lists, empty_lists, bad_lists, cancel_calls, cancelled;
	long ops[5], kinds[4];
};

static struct rec ring[RING];
static int kqs[NKQ], topkq;
static int fds[NFILES];
static uint64_t next_rid = 1, reap_counter, kgen;
/* ThreadSanitizer keeps one pending slot per signal number, so under it queued
 * signals of one number can merge: there a signal is only checked never to
 * arrive twice, and one arriving late is no stray. */
static int stop, kstop, failed, tsan;
static char failmsg[1024];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static long strays, sig_strays, who[W_N], kev_events, lio_events, deletes, enables_done;
static long oneshot_deletes;

#define LD(p)	   __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define INC(p)	   __atomic_fetch_add((p), 1, __ATOMIC_SEQ_CST)
#define STATE(j)   (LD(&(j)->word) & 3)
#define WORD(r, s) ((r) << 2 | (s))

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (!LD(&failed)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(failmsg, sizeof failmsg, fmt, ap);
		va_end(ap);
		ST(&failed, 1);
		ST(&stop, 1);
	}
	pthread_mutex_unlock(&fail_lock);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Waits (bounded) for cond; 0 if the soak failed meanwhile or the bound passed. */
#define WAIT_UNTIL(cond, ...)                                                                      \
	({                                                                                         \
		int ok_ = 1;                                                                       \
		long t0_ = now_ms();                                                               \
		while (!(cond)) {                                                                  \
			if (LD(&failed)) {                                                         \
				ok_ = 0;                                                           \
				break;                                                             \
			}                                                                          \
			if (now_ms() - t0_ > WAIT_MS) {                                            \
				fail(__VA_ARGS__);                                                 \
				ok_ = 0;                                                           \
				break;                                                             \
			}                                                                          \
			usleep(50);                                                                \
		}                                                                                  \
		ok_;                                                                               \
	})

static unsigned rnd(unsigned *seed)
{
	return (unsigned)rand_r(seed);
}

/* The open record for rid, or NULL (closed, or never made). */
static struct rec *rec_of(uint64_t rid)
{
	struct rec *r = &ring[rid & (RING - 1)];
	if (!rid || LD(&r->tag) != rid || LD(&r->closed))
		return NULL;
	return r;
}

static struct rec *rec_new(uint64_t *ridp)
{
	uint64_t rid = __atomic_fetch_add(&next_rid, 1, __ATOMIC_RELAXED);
	struct rec *r = &ring[rid & (RING - 1)];
	if (LD(&r->tag) && !LD(&r->closed))
		fail("request %llu: its record still belongs to open request %llu",
		     (unsigned long long)rid, (unsigned long long)LD(&r->tag));
	ST(&r->tag, 0);
	memset((char *)r + sizeof r->tag, 0, sizeof *r - sizeof r->tag);
	*ridp = rid;
	return r;
}

/* Counts a signal by the id in its value; nothing else is safe in a handler. */
static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_code != SI_ASYNCIO)
		return;
	struct rec *r = rec_of((uintptr_t)si->si_value.sival_ptr);
	if (r)
		INC(&r->sig);
	else
		INC(&sig_strays);
}

/* A list may notify only once every entry it queued is done (invariant 5). */
static void check_list_done(struct rec *r, uint64_t rid, const char *how)
{
	for (int i = 0; i < r->nentries; i++) {
		struct job *j = &r->entries[i];
		if (STATE(j) != S_ENDED && aio_error(&j->cb) == EINPROGRESS)
			fail("list %llu notified by %s while entry %d (op %d) was in progress",
			     (unsigned long long)rid, how, i, j->op);
	}
}

static void on_thread(union sigval v)
{
	uint64_t rid = (uintptr_t)v.sival_ptr;
	struct rec *r = rec_of(rid);
	if (!r) {
		INC(&strays);
		return;
	}
	if (r->kind != N_THREAD || r->bad)
		fail("request %llu (kind %d, bad %d) ran a thread callback",
		     (unsigned long long)rid, r->kind, r->bad);
	else if (r->is_list)
		check_list_done(r, rid, "thread");
	else if (aio_error(&r->job->cb) == EINPROGRESS) /* invariant 3 */
		fail("job %llu: thread callback while aio_error says EINPROGRESS",
		     (unsigned long long)rid);
	INC(&r->thr);
}

/* The job ended with (res, err), reaped by w: check the result and the
 * bytes, then count the end. kev_before and lkev_before are the job's and
 * its list's kevent counts read before reaping (a kevent not read by then
 * may rightly never be read: reaping deletes it). */
static void finish(struct job *j, uint64_t rid, ssize_t res, int err, int kev_before,
		   int lkev_before, int w)
{
	struct rec *r = rec_of(rid);
	if (!r) {
		fail("job %llu ended after its record closed", (unsigned long long)rid);
		return;
	}
	if (err) {
		if (err != ECANCELED || res != -1)
			fail("job %llu (op %d, file %d, off %lld, len %zu): res %zd err %s",
			     (unsigned long long)rid, j->op, j->file, (long long)j->off, j->len,
			     res, strerror(err));
	} else {
		ssize_t want;
		if (j->op == OP_FSYNC)
			want = 0;
		else if (j->op == OP_WRITE || j->op == OP_WRITEV)
			want = (ssize_t)j->len;
		else
			want =
			    (ssize_t)(j->len < (size_t)(FSIZE - j->off) ? j->len
									: (size_t)(FSIZE - j->off));
		if (res != want)
			fail("job %llu (op %d, file %d, off %lld, len %zu): %zd bytes, want %zd",
			     (unsigned long long)rid, j->op, j->file, (long long)j->off, j->len,
			     res, want);
		else if ((j->op == OP_READ || j->op == OP_READV) &&
			 !kqt_check(j->buf, j->off, (size_t)res))
			fail("job %llu (op %d, file %d, off %lld, len %zu): wrong bytes",
			     (unsigned long long)rid, j->op, j->file, (long long)j->off, j->len);
	}
	ST(&r->err, err);
	if (r->kind == N_KEVENT && kev_before == 0)
		ST(&r->may_miss, 1);
	if (INC(&r->ends))
		fail("job %llu ended twice", (unsigned long long)rid);
	ST(&r->reap_seq, __atomic_add_fetch(&reap_counter, 1, __ATOMIC_SEQ_CST));
	if (j->list_rid) {
		struct rec *lr = rec_of(j->list_rid);
		if (!lr)
			fail("job %llu: its list %llu closed before it ended",
			     (unsigned long long)rid, (unsigned long long)j->list_rid);
		else if (__atomic_fetch_sub(&lr->remaining, 1, __ATOMIC_SEQ_CST) == 1) {
			if (lr->kind == N_KEVENT && lkev_before == 0)
				ST(&lr->may_miss, 1);
			ST(&lr->reaped_early, !LD(&lr->submitted));
			ST(&lr->reap_seq, __atomic_add_fetch(&reap_counter, 1, __ATOMIC_SEQ_CST));
		}
	}
	INC(&who[w]);
	uint64_t old = __atomic_exchange_n(&j->word, WORD(rid, S_ENDED), __ATOMIC_ACQ_REL);
	if (old >> 2 != rid || (old & 3) == S_ENDED)
		fail("job %llu: slot word %#llx at its end", (unsigned long long)rid,
		     (unsigned long long)old);
}

static int kev_count(uint64_t rid)
{
	struct rec *r = rid ? rec_of(rid) : NULL;
	return r ? LD(&r->kev) : 1;
}

/* Claims the job and reaps it with aio_return if it is done. 1 if reaped here. */
static int try_reap(struct job *j, uint64_t rid, int w)
{
	uint64_t exp = WORD(rid, S_INFLIGHT);
	if (!__atomic_compare_exchange_n(&j->word, &exp, WORD(rid, S_CLAIMED), 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0;
	int kb = kev_count(rid), lkb = kev_count(j->list_rid);
	if (aio_error(&j->cb) == EINPROGRESS) {
		exp = WORD(rid, S_CLAIMED); /* fails only if aio_waitcomplete took it meanwhile */
		__atomic_compare_exchange_n(&j->word, &exp, WORD(rid, S_INFLIGHT), 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		return 0;
	}
	errno = 0;
	ssize_t res = aio_return(&j->cb);
	int err = res < 0 ? errno : 0;
	if (res == -1 && err == EINVAL) {
		/* aio_waitcomplete in another thread took it after our claim. */
		WAIT_UNTIL(STATE(j) == S_ENDED,
			   "job %llu: aio_return says EINVAL but nobody else reaped it",
			   (unsigned long long)rid);
		return 0;
	}
	finish(j, rid, res, err, kb, lkb, w);
	return 1;
}

/* Takes one finished job, anyone's, with aio_waitcomplete. */
static void take_one(long ns)
{
	struct aiocb *cb = (struct aiocb *)1;
	struct timespec ts = {0, ns};
	errno = 0;
	ssize_t res = aio_waitcomplete(&cb, &ts);
	int err = res < 0 ? errno : 0;
	if (!cb) {
		if (err != EAGAIN && err != EINTR)
			fail("aio_waitcomplete: %zd, %s", res, strerror(err));
		return;
	}
	struct job *j = (struct job *)cb;
	uint64_t w = LD(&j->word), rid = w >> 2;
	if ((w & 3) == S_ENDED || !rec_of(rid)) {
		fail("aio_waitcomplete returned job %llu, already ended", (unsigned long long)rid);
		return;
	}
	finish(j, rid, res, err, kev_count(rid), kev_count(j->list_rid), W_TAKE);
}

/* A change to an existing knote also sets its udata (as on FreeBSD), so pass it. */
static int change(int kq, const struct kevent *ev, unsigned short flags)
{
	struct kevent ch;
	EV_SET(&ch, ev->ident, ev->filter, flags, 0, 0, ev->udata);
	int r;
	do
		r = kevent(kq, &ch, 1, NULL, 0, NULL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? errno : 0;
}

/* One event from inner kqueue k, collected by a kevent() call that began
 * when reap_counter was s. 0 if it only repeats a level-triggered report. */
static int on_kevent(int k, const struct kevent *ev, uint64_t s, unsigned *seed)
{
	uint64_t rid = (uintptr_t)ev->udata;
	struct rec *r = rec_of(rid);
	if (!r) {
		fail(
		    "kevent (filter %d, ident %#lx, flags %#x) for request %llu, closed or unknown",
		    ev->filter, (unsigned long)ev->ident, ev->flags, (unsigned long long)rid);
		return 1;
	}
	if (r->kind != N_KEVENT || r->bad) {
		fail("request %llu (kind %d, bad %d) posted a kevent", (unsigned long long)rid,
		     r->kind, r->bad);
		return 1;
	}
	if (r->kq != kqs[k])
		fail("request %llu: event on kq %d, asked for %d", (unsigned long long)rid, kqs[k],
		     r->kq);
	uint64_t rs = LD(&r->reap_seq);
	if (rs && rs <= s) /* invariant 6 */
		fail("request %llu (list %d, flags %#x): kevent after reaping%s",
		     (unsigned long long)rid, r->is_list, r->kflags,
		     LD(&r->reaped_early)
			 ? " (its last entry was reaped before lio_listio returned)"
			 : "");
	if (LD(&r->deleted))
		fail("job %llu: kevent after EV_DELETE", (unsigned long long)rid);
	if (ev->fflags || ev->ext[0] || ev->ext[1] || ev->ext[2] || ev->ext[3])
		fail("request %llu: fflags %#x ext %llx", (unsigned long long)rid, ev->fflags,
		     (unsigned long long)ev->ext[0]);
	if (r->is_list) {
		INC(&lio_events);
		if (ev->filter != EVFILT_LIO || ev->ident != (uintptr_t)r->listp ||
		    ev->flags != 0 || ev->data != 0)
			fail("list %llu: filter %d ident %s flags %#x data %lld (want EVFILT_LIO, "
			     "the list, 0, 0)",
			     (unsigned long long)rid, ev->filter,
			     ev->ident == (uintptr_t)r->listp ? "ok" : "wrong", ev->flags,
			     (long long)ev->data);
		int old = LD(&r->kev);
		if (!old)
			check_list_done(r, rid, "kevent");
		else if (!r->nqueued)
			fail("list %llu that queued nothing: reported %d times",
			     (unsigned long long)rid, old + 1);
		INC(&r->kev);
		if (!old && rnd(seed) % 8 == 0) { /* a user's EV_DELETE works on lists too */
			int err = change(kqs[k], ev, EV_DELETE);
			if (!err && r->nqueued) {
				ST(&r->deleted, 1);
				INC(&deletes);
			} else if (!r->nqueued) { /* reported once, then gone */
				if (err != ENOENT)
					fail("list %llu that queued nothing: EV_DELETE after its "
					     "report: %s",
					     (unsigned long long)rid,
					     err ? strerror(err) : "succeeded");
			} else if (err != ENOENT) {
				fail("list %llu: EV_DELETE: %s", (unsigned long long)rid,
				     strerror(err));
			} else {
				WAIT_UNTIL(LD(&r->reap_seq),
					   "list %llu: EV_DELETE says ENOENT before its last "
					   "entry was reaped",
					   (unsigned long long)rid);
			}
		}
		return !old;
	}
	INC(&kev_events);
	struct job *j = r->job;
	int want = EV_EOF | r->kflags;
	if (ev->filter != EVFILT_AIO || ev->ident != (uintptr_t)&j->cb || ev->flags != want ||
	    (ev->data != 0 && ev->data != ECANCELED))
		fail("job %llu: filter %d ident %s flags %#x (want %#x) data %lld",
		     (unsigned long long)rid, ev->filter,
		     ev->ident == (uintptr_t)&j->cb ? "ok" : "wrong", ev->flags, want,
		     (long long)ev->data);
	if (aio_error(&j->cb) == EINPROGRESS) /* invariant 3 */
		fail("job %llu: kevent while aio_error says EINPROGRESS", (unsigned long long)rid);
	int old = LD(&r->kev);
	if ((r->kflags & (EV_ONESHOT | EV_CLEAR)) && old)
		fail("job %llu (flags %#x): reported twice", (unsigned long long)rid, r->kflags);
	if ((r->kflags & EV_DISPATCH) && old != LD(&r->enables))
		fail("job %llu (EV_DISPATCH): report %d after %d EV_ENABLEs",
		     (unsigned long long)rid, old + 1, LD(&r->enables));
	ST(&r->kev_data, (int)ev->data);
	INC(&r->kev);
	int fresh = !old || r->kflags;

	unsigned x = rnd(seed) % 8;
	int err;
	if (r->kflags == 0 && x == 0) { /* a user's EV_DELETE works */
		err = change(kqs[k], ev, EV_DELETE);
		if (!err) {
			ST(&r->deleted, 1);
			INC(&deletes);
		} else if (err != ENOENT) {
			fail("job %llu: EV_DELETE: %s", (unsigned long long)rid, strerror(err));
		} else {
			WAIT_UNTIL(LD(&r->ends), "job %llu: EV_DELETE says ENOENT before reaping",
				   (unsigned long long)rid);
		}
		return fresh;
	}
	if (r->kflags == EV_ONESHOT && x == 1) { /* gone once reported */
		err = change(kqs[k], ev, EV_DELETE);
		if (err != ENOENT)
			fail("job %llu: EV_DELETE after its EV_ONESHOT report: %s",
			     (unsigned long long)rid, err ? strerror(err) : "succeeded");
		INC(&oneshot_deletes);
	}
	if (r->kflags == EV_DISPATCH && x == 2) { /* re-enabling re-delivers */
		err = change(kqs[k], ev, EV_ENABLE);
		if (!err) {
			INC(&r->enables);
			INC(&enables_done);
		} else if (err != ENOENT) {
			fail("job %llu: EV_ENABLE: %s", (unsigned long long)rid, strerror(err));
		} else {
			WAIT_UNTIL(LD(&r->ends), "job %llu: EV_ENABLE says ENOENT before reaping",
				   (unsigned long long)rid);
		}
		return 1;
	}
	/* Level-triggered: mostly reaped now, else reported again until someone does. */
	if (r->kflags == 0 ? x < 6 : x >= 4)
		try_reap(j, rid, W_KLOOP);
	return fresh;
}

/* Serves the inner kqueues; the outer one only wakes it. */
static void *kloop(void *arg)
{
	(void)arg;
	unsigned seed = 0x5eed;
	while (!LD(&kstop)) {
		struct kevent tev[NKQ + 1];
		struct timespec ts = {0, 50 * 1000000L};
		int n = kevent(topkq, NULL, 0, tev, NKQ + 1, &ts);
		if (n < 0 && errno != EINTR)
			fail("kevent on the outer kq: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			if (tev[i].filter != EVFILT_USER && tev[i].filter != EVFILT_READ)
				fail("outer kq: filter %d", tev[i].filter);
		int got = 0, fresh = 0;
		for (int k = 0; k < NKQ; k++) {
			struct kevent ev[64];
			struct timespec z = {0, 0};
			uint64_t s = __atomic_load_n(&reap_counter, __ATOMIC_SEQ_CST);
			int m = kevent(kqs[k], NULL, 0, ev, 64, &z);
			if (m < 0 && errno != EINTR)
				fail("kevent on kq %d: %s", kqs[k], strerror(errno));
			for (int i = 0; i < m; i++)
				fresh += on_kevent(k, &ev[i], s, &seed);
			got += m > 0 ? m : 0;
		}
		/* Only level-triggered events that wait for their reaper: let it run. */
		if (got && !fresh)
			usleep(200);
		__atomic_add_fetch(&kgen, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static void wake_kloop(void)
{
	struct kevent ch;
	EV_SET(&ch, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
	int r;
	do
		r = kevent(topkq, &ch, 1, NULL, 0, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fail("NOTE_TRIGGER: %s", strerror(errno));
}

static void set_notify(struct sub *s, struct sigevent *sev, struct rec *r, uint64_t rid)
{
	static const int kflags[4] = {0, EV_ONESHOT, EV_CLEAR, EV_DISPATCH};
	memset(sev, 0, sizeof *sev);
	sev->sigev_value.sival_ptr = (void *)(uintptr_t)rid;
	r->kind = (int)(rnd(&s->seed) % 4);
	s->kinds[r->kind]++;
	switch (r->kind) {
	case N_NONE:
		sev->sigev_notify = SIGEV_NONE;
		break;
	case N_SIGNAL:
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = SIGRTMIN + SOAKSIG_OFF;
		break;
	case N_THREAD:
		sev->sigev_notify = SIGEV_THREAD;
		sev->sigev_notify_function = on_thread;
		break;
	default:
		r->kq = kqs[rnd(&s->seed) % NKQ];
		sev->sigev_notify = SIGEV_KEVENT;
		sev->sigev_notify_kqueue = r->kq;
		sev->sigev_notify_kevent_flags = kflags[rnd(&s->seed) % 4];
		/* A list ignores the flags: its event is level-triggered, flags 0. */
		r->kflags = r->is_list ? 0 : sev->sigev_notify_kevent_flags;
	}
}

/* Fills slot j with a random job; fsync only when single. */
static uint64_t make_job(struct sub *s, struct job *j, int single, uint64_t list_rid)
{
	uint64_t rid;
	struct rec *r = rec_new(&rid);
	unsigned x = rnd(&s->seed);
	j->op = (int)(x % (single ? 5 : 4));
	j->sync_op = x & 0x100 ? O_SYNC : O_DSYNC;
	j->file = (int)(rnd(&s->seed) % NFILES);
	j->len = 1 + rnd(&s->seed) % MAXLEN;
	if (rnd(&s->seed) % 2)
		j->len = (j->len + 511) & ~(size_t)511;
	if (j->len > MAXLEN)
		j->len = MAXLEN;
	if (j->op == OP_WRITE || j->op == OP_WRITEV)
		j->off = (off_t)(rnd(&s->seed) % (FSIZE - j->len + 1));
	else
		j->off = (off_t)(rnd(&s->seed) % FSIZE); /* may cross the end of the file */
	if (rnd(&s->seed) % 2)
		j->off &= ~(off_t)4095;
	if (j->op == OP_WRITE || j->op == OP_WRITEV)
		kqt_fill(j->buf, j->off, j->len);
	else
		memset(j->buf, 0, j->len);
	j->list_rid = list_rid;
	s->ops[j->op]++;
	kqt_cb(&j->cb, fds[j->file], j->buf, j->len, j->off);
	if (j->op == OP_READV || j->op == OP_WRITEV) {
		int n = 1 + (int)(rnd(&s->seed) % 4);
		if ((size_t)n > j->len)
			n = 1;
		size_t at = 0;
		for (int i = 0; i < n; i++) {
			size_t left = j->len - at, part = left - (size_t)(n - 1 - i);
			if (i < n - 1)
				part = 1 + rnd(&s->seed) % part;
			j->iov[i] = (struct iovec){j->buf + at, part};
			at += part;
		}
		j->cb.aio_iov = j->iov;
		j->cb.aio_iovcnt = (size_t)n;
	}
	static const int lio_op[] = {LIO_READ, LIO_WRITE, LIO_READV, LIO_WRITEV, LIO_NOP};
	j->cb.aio_lio_opcode = lio_op[j->op];
	set_notify(s, &j->cb.aio_sigevent, r, rid);
	r->job = j;
	ST(&j->word, WORD(rid, S_INFLIGHT));
	ST(&r->tag, rid);
	s->rids[s->nrids++] = rid;
	return rid;
}

static int submit_single(struct job *j)
{
	switch (j->op) {
	case OP_READ:
		return aio_read(&j->cb);
	case OP_WRITE:
		return aio_write(&j->cb);
	case OP_READV:
		return aio_readv(&j->cb);
	case OP_WRITEV:
		return aio_writev(&j->cb);
	default:
		return aio_fsync(j->sync_op, &j->cb);
	}
}

/* Cancels, early reaps and aio_waitcomplete polls while the jobs run. */
static void meddle(struct sub *s, int nj)
{
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < nj; i++) {
			struct job *j = &s->jobs[i];
			uint64_t rid = LD(&j->word) >> 2;
			unsigned x = rnd(&s->seed) % 32;
			if (x == 0) {
				s->cancel_calls++;
				int c = aio_cancel(j->cb.aio_fildes, &j->cb);
				struct rec *r = rec_of(rid);
				if (c == AIO_CANCELED) {
					s->cancelled++;
					ST(&r->must_cancel, 1);
				} else if (c == AIO_NOTCANCELED) {
					ST(&r->cannot_cancel, 1);
				} else if (c != AIO_ALLDONE) {
					fail("aio_cancel(cb): %d, %s", c, strerror(errno));
				}
			} else if (x == 1 && rnd(&s->seed) % 8 == 0) {
				s->cancel_calls++;
				int c = aio_cancel(j->cb.aio_fildes, NULL);
				if (c != AIO_CANCELED && c != AIO_NOTCANCELED && c != AIO_ALLDONE)
					fail("aio_cancel(fd, NULL): %d, %s", c, strerror(errno));
			} else if (x < 8 && STATE(j) == S_INFLIGHT &&
				   aio_error(&j->cb) != EINPROGRESS) {
				try_reap(j, rid, W_EARLY);
			}
		}
		if (rnd(&s->seed) % 4 == 0)
			take_one(0);
		if (pass < 2)
			sched_yield();
	}
}

/* Waits for every owed notification of the round, then for the kevent thread
 * to finish whatever it collected before, then checks each record and closes it. */
static void close_round(struct sub *s)
{
	for (int i = 0; i < s->nrids; i++) {
		struct rec *r = rec_of(s->rids[i]);
		unsigned long long rid = s->rids[i];
		if (!r || r->bad)
			continue;
		if (r->kind == N_THREAD)
			WAIT_UNTIL(LD(&r->thr), "request %llu: thread callback never ran", rid);
		if (r->kind == N_SIGNAL && !tsan)
			WAIT_UNTIL(LD(&r->sig), "request %llu: signal never came", rid);
	}
	uint64_t g = __atomic_load_n(&kgen, __ATOMIC_SEQ_CST);
	wake_kloop();
	WAIT_UNTIL(__atomic_load_n(&kgen, __ATOMIC_SEQ_CST) > g, "the kevent thread is stuck");
	if (LD(&failed))
		return;
	for (int i = 0; i < s->nrids; i++) {
		unsigned long long rid = s->rids[i];
		struct rec *r = rec_of(rid);
		if (!r) {
			fail("request %llu: record closed early", rid);
			return;
		}
		int sig = LD(&r->sig), thr = LD(&r->thr), kev = LD(&r->kev), ends = LD(&r->ends);
		int mm = LD(&r->may_miss), en = LD(&r->enables), err = LD(&r->err);
		int owed = !r->bad;
		if (!r->is_list && ends != !r->bad)
			fail("job %llu (bad %d) ended %d times", rid, r->bad, ends);
		if (r->is_list && LD(&r->remaining))
			fail("list %llu: %d entries never ended", rid, LD(&r->remaining));
		if (LD(&r->must_cancel) && err != ECANCELED)
			fail("job %llu: aio_cancel said AIO_CANCELED, it ended with %s", rid,
			     strerror(err));
		if (LD(&r->cannot_cancel) && err == ECANCELED)
			fail("job %llu: aio_cancel said AIO_NOTCANCELED, then it was cancelled",
			     rid);
		if (sig != (r->kind == N_SIGNAL && owed) &&
		    !(tsan && r->kind == N_SIGNAL && sig <= 1))
			fail("request %llu (kind %d, list %d, bad %d): %d signals", rid, r->kind,
			     r->is_list, r->bad, sig);
		if (thr != (r->kind == N_THREAD && owed))
			fail("request %llu (kind %d, list %d, bad %d): %d thread callbacks", rid,
			     r->kind, r->is_list, r->bad, thr);
		if (r->kind != N_KEVENT || r->bad) {
			if (kev)
				fail("request %llu (kind %d, bad %d): %d kevents", rid, r->kind,
				     r->bad, kev);
		} else if (r->is_list && !r->nqueued) {
			if (kev != 1)
				fail("list %llu that queued nothing: %d kevents, want 1", rid, kev);
		} else if (!kev && !mm) {
			fail("request %llu (list %d, flags %#x): kevent never came", rid,
			     r->is_list, r->kflags);
		} else if (r->kflags & (EV_ONESHOT | EV_CLEAR)) {
			if (kev > 1)
				fail("job %llu (flags %#x): %d kevents", rid, r->kflags, kev);
		} else if (r->kflags & EV_DISPATCH) {
			if (kev < en || kev > en + 1)
				fail("job %llu (EV_DISPATCH): %d kevents, %d EV_ENABLEs", rid, kev,
				     en);
		}
		if (r->kind == N_KEVENT && !r->is_list && !r->bad && kev && LD(&r->kev_data) != err)
			fail("job %llu: kevent data %d, the job's error %d", rid, LD(&r->kev_data),
			     err);
		ST(&r->closed, 1);
	}
}

static void round_(struct sub *s)
{
	s->nrids = 0;
	int nj = 1 + (int)(rnd(&s->seed) % BATCH);
	if (rnd(&s->seed) % 2) {
		for (int i = 0; i < nj; i++)
			make_job(s, &s->jobs[i], 1, 0);
		for (int i = 0; i < nj; i++)
			if (submit_single(&s->jobs[i]))
				fail("submitting op %d: %s", s->jobs[i].op, strerror(errno));
	} else {
		/* 0: empty, 1: NULLs and LIO_NOPs only, 2: one entry fails, else plain. */
		unsigned shape = rnd(&s->seed) % 16;
		uint64_t lrid;
		struct rec *lr = rec_new(&lrid);
		lr->is_list = 1;
		struct sigevent sig;
		set_notify(s, &sig, lr, lrid);
		if (shape <= 1)
			nj = 0;
		int nent = 0;
		for (int i = 0; i < nj; i++) {
			unsigned x = rnd(&s->seed) % 8;
			if (x == 0)
				s->list[nent++] = NULL;
			else if (x == 1)
				s->list[nent++] = &s->nop;
			make_job(s, &s->jobs[i], 0, lrid);
			s->list[nent++] = &s->jobs[i].cb;
		}
		if (shape == 1)
			for (int i = (int)(rnd(&s->seed) % 4); i >= 0; i--)
				s->list[nent++] = i % 2 ? NULL : &s->nop;
		uint64_t brid = 0;
		if (shape == 2) {
			struct rec *br = rec_new(&brid);
			br->bad = 1;
			kqt_cb(&s->bad, fds[0], s->badbuf, sizeof s->badbuf, 0);
			s->bad.aio_lio_opcode = 99;
			set_notify(s, &s->bad.aio_sigevent, br, brid);
			ST(&br->tag, brid);
			s->rids[s->nrids++] = brid;
			int at = (int)(rnd(&s->seed) % (unsigned)(nent + 1));
			memmove(&s->list[at + 1], &s->list[at],
				(size_t)(nent - at) * sizeof *s->list);
			s->list[at] = &s->bad;
			nent++;
		}
		lr->entries = s->jobs;
		lr->nentries = nj;
		lr->nqueued = nj;
		lr->remaining = nj;
		lr->listp = s->list;
		ST(&lr->tag, lrid);
		s->rids[s->nrids++] = lrid;
		s->lists++;
		s->empty_lists += nj == 0;
		s->bad_lists += shape == 2;
		struct sigevent *sigp = lr->kind == N_NONE && rnd(&s->seed) % 2 ? NULL : &sig;
		int r = lio_listio(LIO_NOWAIT, s->list, nent, sigp);
		ST(&lr->submitted, 1);
		if (shape == 2) {
			if (r != -1 || errno != EIO)
				fail("lio_listio with a bad entry: %d, %s (want -1, EIO)", r,
				     strerror(errno));
			errno = 0;
			int e = aio_error(&s->bad);
			ssize_t rr = aio_return(&s->bad);
			if (e != EINVAL || rr != -1 || errno != EINVAL)
				fail("bad entry: aio_error %d, aio_return %zd %s", e, rr,
				     strerror(errno));
		} else if (r) {
			fail("lio_listio(%d entries): %s", nent, strerror(errno));
		}
	}
	if (LD(&failed))
		return;
	meddle(s, nj);

	/* Everything finishes. */
	const struct aiocb *wl[BATCH];
	long t0 = now_ms();
	for (;;) {
		int n = 0;
		for (int i = 0; i < nj; i++)
			if (STATE(&s->jobs[i]) != S_ENDED &&
			    aio_error(&s->jobs[i].cb) == EINPROGRESS)
				wl[n++] = &s->jobs[i].cb;
		if (!n || LD(&failed))
			break;
		struct timespec ts = {0, 100 * 1000000L};
		if (aio_suspend(wl, n, &ts) && errno != EAGAIN && errno != EINTR)
			fail("aio_suspend: %s", strerror(errno));
		if (now_ms() - t0 > WAIT_MS)
			fail("%d jobs never completed", n);
	}
	/* The owed kevents are read before the jobs are reaped, so each must come. */
	for (int i = 0; i < s->nrids; i++) {
		uint64_t rid = s->rids[i];
		struct rec *r = rec_of(rid);
		if (r && r->kind == N_KEVENT && r->is_list)
			WAIT_UNTIL(LD(&r->kev) || (r->nqueued && !LD(&r->remaining)),
				   "list %llu: its kevent never came", (unsigned long long)rid);
	}
	for (int i = 0; i < nj; i++) {
		struct job *j = &s->jobs[i];
		uint64_t rid = LD(&j->word) >> 2;
		struct rec *r = rec_of(rid);
		if (r && r->kind == N_KEVENT)
			WAIT_UNTIL(LD(&r->kev) || STATE(j) == S_ENDED,
				   "job %llu (flags %#x): its kevent never came",
				   (unsigned long long)rid, r->kflags);
		unsigned x = rnd(&s->seed) % 8;
		WAIT_UNTIL(STATE(j) == S_ENDED ||
			       (x ? try_reap(j, rid, W_FINAL) : (take_one(1000000), 0)),
			   "job %llu never reaped", (unsigned long long)rid);
	}
	close_round(s);
	s->rounds++;
}

static void *submitter(void *arg)
{
	struct sub *s = arg;
	while (!LD(&stop))
		round_(s);
	return NULL;
}

static pthread_mutex_t dog_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dog_cond = PTHREAD_COND_INITIALIZER;
static int dog_done;

/* Aborts a soak that overstays its length by far: a hang inside the library. */
static void *watchdog(void *arg)
{
	long secs = (long)(intptr_t)arg;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += secs + 120;
	pthread_mutex_lock(&dog_lock);
	while (!dog_done)
		if (pthread_cond_timedwait(&dog_cond, &dog_lock, &dl) == ETIMEDOUT && !dog_done) {
			fprintf(stderr,
				"kevent_soak: still running 120 s after its end; aborting\n");
			abort();
		}
	pthread_mutex_unlock(&dog_lock);
	return NULL;
}

Test(kevent_soak, every_job_ends_once_and_every_notification_arrives_once)
{
	const char *e = getenv("KQAIO_KEVENT_SOAK_SECONDS");
	long secs = e ? atol(e) : 10;
	const char *san = getenv("KQAIO_SAN");
	tsan = san && !strcmp(san, "tsan");
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGRTMIN + SOAKSIG_OFF, &sa, NULL), 0);
	for (int i = 0; i < NFILES; i++)
		fds[i] = kqt_file_in(i < NSHM ? NULL : kqt_disk_dir(), FSIZE);
	topkq = kqueue();
	cr_assert(topkq >= 0);
	struct kevent ch[NKQ + 1];
	for (int k = 0; k < NKQ; k++) {
		kqs[k] = kqueue();
		cr_assert(kqs[k] >= 0);
		EV_SET(&ch[k], kqs[k], EVFILT_READ, EV_ADD, 0, 0, NULL);
	}
	EV_SET(&ch[NKQ], 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
	cr_assert_eq(kevent(topkq, ch, NKQ + 1, NULL, 0, NULL), 0, "%s", strerror(errno));

	struct sub *subs = calloc(SUBMITTERS, sizeof *subs);
	cr_assert(subs);
	for (int t = 0; t < SUBMITTERS; t++) {
		subs[t].seed = 0x9e3779b9u * (unsigned)(t + 1) ^ (unsigned)getpid();
		kqt_cb(&subs[t].nop, fds[0], NULL, 0, 0);
		subs[t].nop.aio_lio_opcode = LIO_NOP;
		for (int i = 0; i < BATCH; i++) {
			subs[t].jobs[i].buf = malloc(MAXLEN);
			cr_assert(subs[t].jobs[i].buf);
		}
	}
	pthread_t dog, kt, st[SUBMITTERS];
	cr_assert_eq(pthread_create(&dog, NULL, watchdog, (void *)(intptr_t)secs), 0);
	cr_assert_eq(pthread_create(&kt, NULL, kloop, NULL), 0);
	for (int t = 0; t < SUBMITTERS; t++)
		cr_assert_eq(pthread_create(&st[t], NULL, submitter, &subs[t]), 0);
	long end = now_ms() + secs * 1000;
	while (now_ms() < end && !LD(&failed))
		usleep(100000);
	ST(&stop, 1);
	for (int t = 0; t < SUBMITTERS; t++)
		pthread_join(st[t], NULL);
	ST(&kstop, 1);
	wake_kloop();
	pthread_join(kt, NULL);
	cr_assert_not(LD(&failed), "%s", failmsg);

	/* Nothing is left: no event, no unreaped job, no stray notification. */
	for (int k = 0; k < NKQ; k++) {
		struct kevent ev[8];
		struct timespec z = {0, 0};
		int n = kevent(kqs[k], NULL, 0, ev, 8, &z);
		cr_assert_eq(n, 0, "kq %d: %d events left (first: filter %d ident %#lx)", k, n,
			     n > 0 ? ev[0].filter : 0, n > 0 ? (unsigned long)ev[0].ident : 0ul);
	}
	struct aiocb *cb = (struct aiocb *)1;
	struct timespec z = {0, 0};
	cr_assert_eq(aio_waitcomplete(&cb, &z), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_null(cb);
	usleep(100000); /* a late duplicate would show up as a stray */
	cr_assert_eq(LD(&strays), 0, "%ld thread callbacks for closed requests", LD(&strays));
	if (!tsan)
		cr_assert_eq(LD(&sig_strays), 0, "%ld signals for closed requests",
			     LD(&sig_strays));
	struct kqaio_stats ks;
	cr_assert_eq(kqaio_get_stats(&ks, sizeof ks), 0);
	long jobs = 0, rounds = 0, lists = 0, empty = 0, bad = 0, cancels = 0, cancelled = 0;
	long ops[5] = {0}, kinds[4] = {0};
	for (int t = 0; t < SUBMITTERS; t++) {
		rounds += subs[t].rounds;
		lists += subs[t].lists;
		empty += subs[t].empty_lists;
		bad += subs[t].bad_lists;
		cancels += subs[t].cancel_calls;
		cancelled += subs[t].cancelled;
		for (int i = 0; i < 5; i++)
			ops[i] += subs[t].ops[i];
		for (int i = 0; i < 4; i++)
			kinds[i] += subs[t].kinds[i];
	}
	for (int w = 0; w < W_N; w++)
		jobs += who[w];
	cr_assert_eq(ks.submitted, (uint64_t)jobs, "library counted %llu jobs, we reaped %ld",
		     (unsigned long long)ks.submitted, jobs);
	cr_assert_eq(ks.completed, ks.submitted);
	cr_log_info("kevent_soak (%s, %ld s): %ld rounds, %ld jobs (read %ld write %ld readv %ld "
		    "writev %ld fsync %ld), %ld lists (%ld empty, %ld with a bad entry); "
		    "notify none %ld signal %ld thread %ld kevent %ld; reaped by kevent loop %ld, "
		    "early %ld, final %ld, aio_waitcomplete %ld; %ld EVFILT_AIO and %ld EVFILT_LIO "
		    "events, %ld EV_DELETE, %ld EV_ENABLE, %ld ONESHOT deletes; aio_cancel %ld "
		    "calls, %ld cancelled (library: %llu)",
		    kqaio_backend(), secs, rounds, jobs, ops[0], ops[1], ops[2], ops[3], ops[4],
		    lists, empty, bad, kinds[0], kinds[1], kinds[2], kinds[3], who[W_KLOOP],
		    who[W_EARLY], who[W_FINAL], who[W_TAKE], kev_events, lio_events, deletes,
		    enables_done, oneshot_deletes, cancels, cancelled,
		    (unsigned long long)ks.cancelled);
	/* The mix really was mixed. */
	cr_assert(rounds > 0 && lists > 0 && kev_events > 0 && lio_events > 0);
	cr_assert(who[W_KLOOP] > 0 && who[W_FINAL] > 0);

	pthread_mutex_lock(&dog_lock);
	dog_done = 1;
	pthread_cond_signal(&dog_cond);
	pthread_mutex_unlock(&dog_lock);
	pthread_join(dog, NULL);
	for (int t = 0; t < SUBMITTERS; t++)
		for (int i = 0; i < BATCH; i++)
			free(subs[t].jobs[i].buf);
	free(subs);
	for (int k = 0; k < NKQ; k++)
		close(kqs[k]);
	close(topkq);
	for (int i = 0; i < NFILES; i++)
		close(fds[i]);
}
