/* A bounded soak: threads submit random mixes of file reads and writes, pipe
 * reads, fsyncs and lists, with every notification kind and random cancels,
 * and check that every job ends exactly once with exactly the notifications
 * it asked for. KQAIO_SOAK_SECONDS sets the length (default 4). */
#include "kqt.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

TestSuite(soak, .timeout = 120);

enum { MAXIDS = 1 << 20, BATCH = 16, THREADS = 4, SOAKSIG_OFF = 5 };

static uint8_t notes[MAXIDS];	  /* notifications seen per job or list id */
static uint8_t want_note[MAXIDS]; /* 1 where one is owed */
static uint32_t next_id = 1;
static int pattern_fd;
static int stop;

static void count(int id)
{
	if (id > 0 && id < MAXIDS)
		__atomic_add_fetch(&notes[id], 1, __ATOMIC_RELAXED);
}

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_code == SI_ASYNCIO)
		count(si->si_value.sival_int);
}

static void on_thread(union sigval v)
{
	count(v.sival_int);
}

static int new_id(void)
{
	int id = (int)__atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	cr_assert(id < MAXIDS, "soak ran out of ids");
	return id;
}

/* Asks for a random notification under a new id. */
static void notify_somehow(struct sigevent *sev, unsigned *seed, int id)
{
	memset(sev, 0, sizeof *sev);
	sev->sigev_value.sival_int = id;
	switch (rand_r(seed) % 3) {
	case 0:
		sev->sigev_notify = SIGEV_NONE;
		break;
	case 1:
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = SIGRTMIN + SOAKSIG_OFF;
		want_note[id] = 1;
		break;
	default:
		sev->sigev_notify = SIGEV_THREAD;
		sev->sigev_notify_function = on_thread;
		want_note[id] = 2;
	}
}

struct job {
	struct aiocb cb;
	int kind; /* 0 file read, 1 file write, 2 pipe read, 3 fsync */
	char buf[4096];
};

static void *soaker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u;
	int scratch = kqt_file(1 << 20);
	int p[2];
	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	static __thread struct job jobs[BATCH];
	struct aiocb *list[BATCH];
	long rounds = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&next_id, __ATOMIC_RELAXED) < MAXIDS - 4 * BATCH * THREADS) {
		int n = 1 + rand_r(&seed) % BATCH;
		int piped = 0;
		for (int i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			int id = new_id();
			j->kind = rand_r(&seed) % 4;
			off_t off = (off_t)(rand_r(&seed) % 256) * 4096;
			switch (j->kind) {
			case 0:
				kqt_cb(&j->cb, pattern_fd, j->buf, 4096, off);
				j->cb.aio_lio_opcode = LIO_READ;
				break;
			case 1:
				kqt_fill(j->buf, off, 4096);
				kqt_cb(&j->cb, scratch, j->buf, 4096, off);
				j->cb.aio_lio_opcode = LIO_WRITE;
				break;
			case 2:
				kqt_cb(&j->cb, p[0], j->buf, 8, 0);
				j->cb.aio_lio_opcode = LIO_READ;
				piped++;
				break;
			default:
				kqt_cb(&j->cb, scratch, NULL, 0, 0);
				j->cb.aio_lio_opcode = LIO_NOP; /* fsync is not a list opcode */
			}
			notify_somehow(&j->cb.aio_sigevent, &seed, id);
			list[i] = &j->cb;
		}
		int how = rand_r(&seed) % 3, list_id = 0;
		int listable = 1;
		for (int i = 0; i < n; i++)
			listable &= jobs[i].kind != 3;
		if (how && listable) {
			struct sigevent lsev;
			list_id = new_id();
			notify_somehow(&lsev, &seed, list_id);
			int mode = how == 1 ? LIO_NOWAIT : LIO_WAIT;
			if (mode == LIO_WAIT) {
				want_note[list_id] = 0; /* sig is ignored for LIO_WAIT */
				/* Pipe reads would wait for data nobody writes yet. */
				for (int i = 0; i < piped; i++)
					cr_assert_eq(write(p[1], "01234567", 8), 8);
				piped = 0;
			}
			int r = lio_listio(mode, list, n, &lsev);
			cr_assert(r == 0 || errno == EINTR, "lio_listio: %s", strerror(errno));
		} else {
			for (int i = 0; i < n; i++) {
				struct job *j = &jobs[i];
				int r = j->kind == 3   ? aio_fsync(O_SYNC, &j->cb)
					: j->kind == 1 ? aio_write(&j->cb)
						       : aio_read(&j->cb);
				cr_assert_eq(r, 0, "submit: %s", strerror(errno));
			}
		}
		/* Random cancels, then the data the pipe reads wait for. */
		for (int i = 0; i < n; i++)
			if (rand_r(&seed) % 4 == 0) {
				int r = aio_cancel(jobs[i].cb.aio_fildes, &jobs[i].cb);
				cr_assert(r == AIO_CANCELED || r == AIO_NOTCANCELED ||
					  r == AIO_ALLDONE);
			}
		for (int i = 0; i < piped; i++)
			cr_assert_eq(write(p[1], "01234567", 8), 8);
		for (int i = 0; i < n; i++) {
			struct job *j = &jobs[i];
			ssize_t r = kqt_wait(&j->cb);
			int err = errno;
			if (r < 0) {
				cr_assert_eq(err, ECANCELED, "job kind %d failed: %s", j->kind,
					     strerror(err));
				continue;
			}
			if (j->kind == 0)
				cr_assert(r == 4096 && kqt_check(j->buf, j->cb.aio_offset, 4096));
			else if (j->kind == 1)
				cr_assert_eq(r, 4096);
			else if (j->kind == 2)
				cr_assert_eq(r, 8);
			cr_assert_eq(aio_return(&j->cb), -1, "reaped twice");
		}
		char drain[4096];
		while (read(p[0], drain, sizeof drain) > 0)
			;
		rounds++;
	}
	close(scratch);
	return (void *)rounds;
}

Test(soak, every_job_ends_once_with_its_notifications)
{
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigaction(SIGRTMIN + SOAKSIG_OFF, &sa, NULL);
	pattern_fd = kqt_file(1 << 20);
	long secs = getenv("KQAIO_SOAK_SECONDS") ? atol(getenv("KQAIO_SOAK_SECONDS")) : 4;
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, soaker, (void *)(uintptr_t)(i + 1));
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	do /* signals end sleeps early */
		usleep(100000), clock_gettime(CLOCK_MONOTONIC, &now);
	while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	long rounds = 0;
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		rounds += (long)r;
	}
	cr_assert(rounds > 0);
	uint32_t ids = __atomic_load_n(&next_id, __ATOMIC_RELAXED);
	/* Every owed notification arrives, once; none arrives unasked. ThreadSanitizer
	 * keeps one pending slot per signal number, so under it queued signals of one
	 * number can merge: there a signal is checked only never to arrive twice. */
	const char *san = getenv("KQAIO_SAN");
	int merged = san && !strcmp(san, "tsan");
	for (uint32_t id = 1; id < ids; id++) {
		if (want_note[id] == 2 || (want_note[id] == 1 && !merged))
			cr_assert(kqt_eventually(__atomic_load_n(&notes[id], __ATOMIC_RELAXED) >= 1,
						 5000),
				  "id %u: owed notification never came", id);
	}
	usleep(100000);
	for (uint32_t id = 1; id < ids; id++) {
		int want = want_note[id] != 0, got = __atomic_load_n(&notes[id], __ATOMIC_RELAXED);
		if (want_note[id] == 1 && merged)
			cr_assert_leq(got, 1, "id %u: %d signals", id, got);
		else
			cr_assert_eq(got, want, "id %u: %d notifications, want %d", id, got, want);
	}
	struct kqaio_stats s;
	kqaio_get_stats(&s, sizeof s);
	cr_assert_eq(s.submitted, s.completed, "every submitted job ended");
	cr_log_info("soak: %ld rounds, %u ids, %llu jobs, %llu cancelled", rounds, ids,
		    (unsigned long long)s.completed, (unsigned long long)s.cancelled);
}
