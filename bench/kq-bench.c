/* kqueue()/kevent() against the floor: each benchmark does the same work twice
 * in one process, once through kqaio's kqueue and once with raw epoll, eventfd
 * and timerfd code written the most direct way, and prints both rates and
 * kqaio/raw (1.0 = as fast as raw, higher is better). bench/kq-bench.sh runs it.
 *
 *   user    EVFILT_USER round trips between two threads (raw: eventfds, epoll)
 *   pipe    1-byte ping-pong through two pipes, EVFILT_READ level-triggered
 *   timers  10,000 EVFILT_TIMER added then deleted, 256 changes per kevent()
 *   timers1 the same, one change per kevent() (raw: timerfds in epoll)
 *   create  kqueue() + close() (raw: epoll_create1() + close())
 *   fds     fds a kq holds, empty and with 2100 knotes (raw: an fd per event) */
#include <sys/event.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NTIMERS	 10000
#define TM_BATCH 256
#define NUSER	 1000
#define NTIMER	 1000
#define NPIPE	 100

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "kq-bench: %s:%d: %s failed: %s\n", __FILE__, __LINE__,    \
				#x, strerror(errno));                                              \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static double secs = 1.0, warm = 0.1;
static int reps = 3, verbose;
static int pin = -1, cpu[2]; /* -p: the ping-pong threads on cpu[0] and cpu[pin] */
static cpu_set_t allowed;
static bool run_kq = true, run_raw = true;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls step until warm seconds pass, then counts its ops for secs seconds. */
static double measure(void (*step)(void *), void *ctx, long ops_per_step)
{
	double t0 = now(), start = 0;
	long n = 0, n0 = 0;
	bool counting = false;
	for (;;) {
		step(ctx);
		n++;
		double t = now();
		if (!counting && t - t0 >= warm) {
			counting = true;
			n0 = n;
			start = t;
		} else if (counting && t - start >= secs) {
			if (verbose) /* the whole count, warm-up included, for syscall counts */
				fprintf(stderr, "  %ld steps of %ld ops in %.3f s\n", n,
					ops_per_step, t - t0);
			return (double)(n - n0) * (double)ops_per_step / (t - start);
		}
	}
}

/* ---- two threads: A sends and waits for the reply, B echoes ---- */

struct pp {
	int q[2];  /* A's and B's kq or epoll */
	int fd[4]; /* eventfds (1, 2) or pipes (p1[0], p1[1], p2[0], p2[1]) */
	atomic_int stop;
};

static void pp_run(struct pp *p, void *(*echo)(void *), void (*roundtrip)(void *),
		   void (*send)(struct pp *), double *rate)
{
	pthread_t t;
	pthread_attr_t at;
	cpu_set_t set;
	atomic_init(&p->stop, 0);
	CHECK(pthread_attr_init(&at) == 0);
	if (pin >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu[0], &set);
		CHECK(pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0);
		CPU_ZERO(&set);
		CPU_SET(cpu[pin], &set);
		CHECK(pthread_attr_setaffinity_np(&at, sizeof set, &set) == 0);
	}
	CHECK(pthread_create(&t, &at, echo, p) == 0);
	pthread_attr_destroy(&at);
	*rate = measure(roundtrip, p, 1);
	atomic_store(&p->stop, 1);
	send(p); /* wakes B to see stop */
	pthread_join(t, NULL);
	if (pin >= 0) {
		CHECK(pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed) == 0);
	}
}

static void wait_kq(int kq, uintptr_t ident, short filter)
{
	struct kevent ev;
	int n = kevent(kq, NULL, 0, &ev, 1, NULL);
	CHECK(n == 1 && ev.ident == ident && ev.filter == filter);
}

static void wait_ep(int ep)
{
	struct epoll_event ev;
	int n;
	while ((n = epoll_wait(ep, &ev, 1, -1)) < 0 && errno == EINTR)
		;
	CHECK(n == 1);
}

static void read1(int fd, size_t len)
{
	uint64_t v;
	CHECK(read(fd, &v, len) == (ssize_t)len);
}

static void write1(int fd, size_t len)
{
	uint64_t v = 1;
	CHECK(write(fd, &v, len) == (ssize_t)len);
}

/* USER through kqaio: A waits on q[0] for ident 2, B on q[1] for ident 1. */
static void user_kq_trigger(int kq, uintptr_t ident)
{
	struct kevent ch;
	EV_SET(&ch, ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
	CHECK(kevent(kq, &ch, 1, NULL, 0, NULL) == 0);
}

static void user_kq_send(struct pp *p)
{
	user_kq_trigger(p->q[1], 1);
}

static void user_kq_rt(void *ctx)
{
	struct pp *p = ctx;
	user_kq_trigger(p->q[1], 1);
	wait_kq(p->q[0], 2, EVFILT_USER);
}

static void *user_kq_echo(void *ctx)
{
	struct pp *p = ctx;
	for (;;) {
		wait_kq(p->q[1], 1, EVFILT_USER);
		if (atomic_load(&p->stop))
			return NULL;
		user_kq_trigger(p->q[0], 2);
	}
}

static double bench_user_kq(void)
{
	struct pp p;
	struct kevent ch;
	double rate;
	for (int i = 0; i < 2; i++) {
		CHECK((p.q[i] = kqueue()) >= 0);
		EV_SET(&ch, 2 - i, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
		CHECK(kevent(p.q[i], &ch, 1, NULL, 0, NULL) == 0);
	}
	pp_run(&p, user_kq_echo, user_kq_rt, user_kq_send, &rate);
	close(p.q[0]);
	close(p.q[1]);
	return rate;
}

/* USER raw: eventfd 1 in B's epoll, eventfd 2 in A's; write, epoll_wait, read. */
static void user_raw_send(struct pp *p)
{
	write1(p->fd[1], 8);
}

static void user_raw_rt(void *ctx)
{
	struct pp *p = ctx;
	write1(p->fd[1], 8);
	wait_ep(p->q[0]);
	read1(p->fd[2], 8);
}

static void *user_raw_echo(void *ctx)
{
	struct pp *p = ctx;
	for (;;) {
		wait_ep(p->q[1]);
		read1(p->fd[1], 8);
		if (atomic_load(&p->stop))
			return NULL;
		write1(p->fd[2], 8);
	}
}

static double bench_user_raw(void)
{
	struct pp p;
	double rate;
	for (int i = 0; i < 2; i++) {
		CHECK((p.q[i] = epoll_create1(EPOLL_CLOEXEC)) >= 0);
		CHECK((p.fd[2 - i] = eventfd(0, EFD_CLOEXEC)) >= 0);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = p.fd[2 - i]};
		CHECK(epoll_ctl(p.q[i], EPOLL_CTL_ADD, p.fd[2 - i], &ev) == 0);
	}
	pp_run(&p, user_raw_echo, user_raw_rt, user_raw_send, &rate);
	close(p.q[0]);
	close(p.q[1]);
	close(p.fd[1]);
	close(p.fd[2]);
	return rate;
}

/* Pipe ping-pong: A writes p1, B reads p1 and writes p2, A reads p2.
 * A waits on q[0] for p2[0] (fd[2]), B on q[1] for p1[0] (fd[0]). */
static void pipes_open(struct pp *p)
{
	CHECK(pipe2(p->fd, O_CLOEXEC) == 0);
	CHECK(pipe2(p->fd + 2, O_CLOEXEC) == 0);
}

static void pipes_close(struct pp *p)
{
	for (int i = 0; i < 4; i++)
		close(p->fd[i]);
	close(p->q[0]);
	close(p->q[1]);
}

static void pipe_send(struct pp *p)
{
	write1(p->fd[1], 1);
}

static void pipe_kq_rt(void *ctx)
{
	struct pp *p = ctx;
	write1(p->fd[1], 1);
	wait_kq(p->q[0], (uintptr_t)p->fd[2], EVFILT_READ);
	read1(p->fd[2], 1);
}

static void *pipe_kq_echo(void *ctx)
{
	struct pp *p = ctx;
	for (;;) {
		wait_kq(p->q[1], (uintptr_t)p->fd[0], EVFILT_READ);
		read1(p->fd[0], 1);
		if (atomic_load(&p->stop))
			return NULL;
		write1(p->fd[3], 1);
	}
}

static double bench_pipe_kq(void)
{
	struct pp p;
	struct kevent ch;
	double rate;
	pipes_open(&p);
	for (int i = 0; i < 2; i++) {
		CHECK((p.q[i] = kqueue()) >= 0);
		EV_SET(&ch, p.fd[2 - 2 * i], EVFILT_READ, EV_ADD, 0, 0, NULL);
		CHECK(kevent(p.q[i], &ch, 1, NULL, 0, NULL) == 0);
	}
	pp_run(&p, pipe_kq_echo, pipe_kq_rt, pipe_send, &rate);
	pipes_close(&p);
	return rate;
}

static void pipe_raw_rt(void *ctx)
{
	struct pp *p = ctx;
	write1(p->fd[1], 1);
	wait_ep(p->q[0]);
	read1(p->fd[2], 1);
}

static void *pipe_raw_echo(void *ctx)
{
	struct pp *p = ctx;
	for (;;) {
		wait_ep(p->q[1]);
		read1(p->fd[0], 1);
		if (atomic_load(&p->stop))
			return NULL;
		write1(p->fd[3], 1);
	}
}

static double bench_pipe_raw(void)
{
	struct pp p;
	double rate;
	pipes_open(&p);
	for (int i = 0; i < 2; i++) {
		CHECK((p.q[i] = epoll_create1(EPOLL_CLOEXEC)) >= 0);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = p.fd[2 - 2 * i]};
		CHECK(epoll_ctl(p.q[i], EPOLL_CTL_ADD, p.fd[2 - 2 * i], &ev) == 0);
	}
	pp_run(&p, pipe_raw_echo, pipe_raw_rt, pipe_send, &rate);
	pipes_close(&p);
	return rate;
}

/* ---- 10,000 timers added then deleted; an op is one add or one delete ---- */

struct tmb {
	int q;
	int batch;
	struct kevent *add, *del;
	int *fds;
};

static void timers_kq_cycle(void *ctx)
{
	struct tmb *t = ctx;
	for (int pass = 0; pass < 2; pass++) {
		struct kevent *ch = pass ? t->del : t->add;
		for (int i = 0; i < NTIMERS; i += t->batch) {
			int n = NTIMERS - i < t->batch ? NTIMERS - i : t->batch;
			CHECK(kevent(t->q, ch + i, n, NULL, 0, NULL) == 0);
		}
	}
}

static double bench_timers_kq_batch(int batch)
{
	struct tmb t = {.batch = batch};
	CHECK((t.add = calloc(NTIMERS, sizeof *t.add)) && (t.del = calloc(NTIMERS, sizeof *t.del)));
	for (int i = 0; i < NTIMERS; i++) {
		/* an hour apart from each other, never due during the run */
		EV_SET(&t.add[i], i, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600 + i, NULL);
		EV_SET(&t.del[i], i, EVFILT_TIMER, EV_DELETE, 0, 0, NULL);
	}
	CHECK((t.q = kqueue()) >= 0);
	double rate = measure(timers_kq_cycle, &t, 2 * NTIMERS);
	close(t.q);
	free(t.add);
	free(t.del);
	return rate;
}

static double bench_timers_kq(void)
{
	return bench_timers_kq_batch(TM_BATCH);
}

static double bench_timers1_kq(void)
{
	return bench_timers_kq_batch(1);
}

static void timers_raw_cycle(void *ctx)
{
	struct tmb *t = ctx;
	for (int i = 0; i < NTIMERS; i++) {
		struct itimerspec its = {.it_value = {3600 + i, 0}, .it_interval = {3600 + i, 0}};
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		CHECK(fd >= 0);
		CHECK(timerfd_settime(fd, 0, &its, NULL) == 0);
		CHECK(epoll_ctl(t->q, EPOLL_CTL_ADD, fd, &ev) == 0);
		t->fds[i] = fd;
	}
	for (int i = 0; i < NTIMERS; i++) {
		CHECK(epoll_ctl(t->q, EPOLL_CTL_DEL, t->fds[i], NULL) == 0);
		close(t->fds[i]);
	}
}

static double bench_timers_raw(void)
{
	struct tmb t;
	CHECK((t.fds = calloc(NTIMERS, sizeof *t.fds)));
	CHECK((t.q = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	double rate = measure(timers_raw_cycle, &t, 2 * NTIMERS);
	close(t.q);
	free(t.fds);
	return rate;
}

/* ---- kqueue create/close ---- */

static void create_kq_step(void *ctx)
{
	(void)ctx;
	int q = kqueue();
	CHECK(q >= 0);
	close(q);
}

static void create_raw_step(void *ctx)
{
	(void)ctx;
	int q = epoll_create1(EPOLL_CLOEXEC);
	CHECK(q >= 0);
	close(q);
}

static double bench_create_kq(void)
{
	return measure(create_kq_step, NULL, 1);
}

static double bench_create_raw(void)
{
	return measure(create_raw_step, NULL, 1);
}

/* ---- fds per kq and per knote ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

struct fdcount {
	int empty, full; /* fds of one kq (or epoll and its fds), less the pipes */
};

static struct fdcount fds_kq(void)
{
	struct fdcount c;
	int p[NPIPE][2], base = count_fds();
	struct kevent ch;
	for (int i = 0; i < NPIPE; i++)
		CHECK(pipe2(p[i], O_CLOEXEC) == 0);
	int q = kqueue();
	CHECK(q >= 0);
	c.empty = count_fds() - base - 2 * NPIPE;
	for (int i = 0; i < NUSER; i++) {
		EV_SET(&ch, i, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
		CHECK(kevent(q, &ch, 1, NULL, 0, NULL) == 0);
	}
	for (int i = 0; i < NTIMER; i++) {
		EV_SET(&ch, i, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600, NULL);
		CHECK(kevent(q, &ch, 1, NULL, 0, NULL) == 0);
	}
	for (int i = 0; i < NPIPE; i++) {
		EV_SET(&ch, p[i][0], EVFILT_READ, EV_ADD, 0, 0, NULL);
		CHECK(kevent(q, &ch, 1, NULL, 0, NULL) == 0);
	}
	c.full = count_fds() - base - 2 * NPIPE;
	close(q);
	for (int i = 0; i < NPIPE; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	return c;
}

static struct fdcount fds_raw(void)
{
	struct fdcount c;
	static int fds[NUSER + NTIMER];
	int p[NPIPE][2], base = count_fds();
	struct epoll_event ev = {.events = EPOLLIN};
	struct itimerspec its = {.it_value = {3600, 0}, .it_interval = {3600, 0}};
	for (int i = 0; i < NPIPE; i++)
		CHECK(pipe2(p[i], O_CLOEXEC) == 0);
	int q = epoll_create1(EPOLL_CLOEXEC);
	CHECK(q >= 0);
	c.empty = count_fds() - base - 2 * NPIPE;
	for (int i = 0; i < NUSER + NTIMER; i++) {
		fds[i] = i < NUSER ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
				   : timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		CHECK(fds[i] >= 0);
		if (i >= NUSER)
			CHECK(timerfd_settime(fds[i], 0, &its, NULL) == 0);
		ev.data.fd = fds[i];
		CHECK(epoll_ctl(q, EPOLL_CTL_ADD, fds[i], &ev) == 0);
	}
	for (int i = 0; i < NPIPE; i++) {
		ev.data.fd = p[i][0];
		CHECK(epoll_ctl(q, EPOLL_CTL_ADD, p[i][0], &ev) == 0);
	}
	c.full = count_fds() - base - 2 * NPIPE;
	for (int i = 0; i < NUSER + NTIMER; i++)
		close(fds[i]);
	close(q);
	for (int i = 0; i < NPIPE; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	return c;
}

/* ---- the table ---- */

static void print_fds(const char *title, int kq, int raw, int per)
{
	char ks[32] = "-", rs[32] = "-";
	const char *fmt = per > 1 ? "%.3f" : "%.0f";
	if (run_kq)
		snprintf(ks, sizeof ks, fmt, (double)kq / per);
	if (run_raw)
		snprintf(rs, sizeof rs, fmt, (double)raw / per);
	printf("%-40s %14s %14s %10s\n", title, ks, rs, "-");
}

struct bench {
	const char *name, *title;
	double (*kq)(void), (*raw)(void);
	double target; /* the floor for kqaio/raw, 0 when none */
};

static const struct bench benches[] = {
    {"user", "USER round trips (/s)", bench_user_kq, bench_user_raw, 0.7},
    {"pipe", "pipe ping-pong (round trips/s)", bench_pipe_kq, bench_pipe_raw, 0.7},
    {"timers", "10k timers add+del, 256/call (ops/s)", bench_timers_kq, bench_timers_raw, 0},
    {"timers1", "10k timers add+del, 1/call (ops/s)", bench_timers1_kq, bench_timers_raw, 0},
    {"create", "kqueue create+close (/s) [1]", bench_create_kq, bench_create_raw, 0},
};
#define NBENCH (int)(sizeof benches / sizeof benches[0])

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fputs("usage: kq-bench [-d SECONDS] [-r N] [-p same|split] [-s kq|raw] [-v] [BENCH...]\n"
	      "Runs each benchmark through kqaio's kqueue()/kevent() and through raw\n"
	      "epoll/eventfd/timerfd code in the same process; prints both rates and\n"
	      "kqaio/raw (1.0 = as fast as raw, higher is better).\n"
	      "  -d SECONDS  measured time of each run, after a warm-up of a tenth of it\n"
	      "              (default 1)\n"
	      "  -r N        runs of each side, alternating; the median is printed (default 3)\n"
	      "  -p same     pin the two threads of user and pipe to one CPU; split: to two\n"
	      "              (default: where the scheduler puts them)\n"
	      "  -s SIDE     run only the kq side or only the raw side (for profiling)\n"
	      "  -v          print every run's rate, and its step count, on stderr\n"
	      "BENCH: user pipe timers timers1 create fds (default: all)\n",
	      f);
}

static bool selected(const char *name, char **names, int n)
{
	if (!n)
		return true;
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	char **names = calloc((size_t)argc, sizeof *names);
	int nnames = 0;
	CHECK(names);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		bool known = false;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-v")) {
			verbose = 1;
		} else if (!strcmp(a, "-d") && v) {
			secs = strtod(argv[++i], &end);
			if (*end || !(secs > 0))
				return usage(stderr), 2;
			warm = secs / 10;
		} else if (!strcmp(a, "-r") && v) {
			reps = (int)strtol(argv[++i], &end, 10);
			if (*end || reps < 1)
				return usage(stderr), 2;
		} else if (!strcmp(a, "-s") && v && (!strcmp(v, "kq") || !strcmp(v, "raw"))) {
			run_kq = v[0] == 'k';
			run_raw = !run_kq;
			i++;
		} else if (!strcmp(a, "-p") && v && (!strcmp(v, "same") || !strcmp(v, "split"))) {
			pin = v[1] == 'p';
			i++;
		} else {
			known = !strcmp(a, "fds");
			for (int b = 0; b < NBENCH; b++)
				known |= !strcmp(a, benches[b].name);
			if (!known)
				return usage(stderr), 2;
			names[nnames++] = argv[i];
		}
	}
	CHECK(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
	if (pin >= 0) {
		int n = 0;
		for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
			if (CPU_ISSET(c, &allowed))
				cpu[n++] = c;
		if (n < 1 + pin) {
			fprintf(stderr, "kq-bench: -p split needs two CPUs\n");
			return 2;
		}
	}
	/* the raw timers hold 10,000 fds at once */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Counted first: a kq closed earlier keeps its eventfd until its fd number
	 * is reused, and a reuse in the middle of a count would skew it. */
	bool fds = selected("fds", names, nnames);
	struct fdcount fk = {0}, fr = {0};
	if (fds && run_kq)
		fk = fds_kq();
	if (fds && run_raw)
		fr = fds_raw();

	printf("kqaio kqueue vs raw epoll: median of %d runs of %.3g s each%s\n", reps, secs,
	       pin < 0 ? ""
	       : pin   ? ", threads on two CPUs"
		       : ", threads on one CPU");
	printf("%-40s %14s %14s %10s\n", "benchmark", "kqaio", "raw", "kqaio/raw");
	double ratio[NBENCH] = {0};
	for (int b = 0; b < NBENCH; b++) {
		const struct bench *bn = &benches[b];
		if (!selected(bn->name, names, nnames))
			continue;
		double *k = calloc((size_t)reps, sizeof *k), *r = calloc((size_t)reps, sizeof *r);
		CHECK(k && r);
		for (int i = 0; i < reps; i++) {
			/* alternate which side goes first so neither always runs warmer */
			for (int s = 0; s < 2; s++) {
				bool kq_turn = (s == 0) == (i % 2 == 0);
				if (kq_turn && run_kq)
					k[i] = bn->kq();
				else if (!kq_turn && run_raw)
					r[i] = bn->raw();
			}
			if (verbose)
				fprintf(stderr, "%s run %d: kqaio %.0f raw %.0f\n", bn->name, i + 1,
					k[i], r[i]);
		}
		double km = median(k, reps), rm = median(r, reps);
		free(k);
		free(r);
		char ks[32] = "-", rs[32] = "-", qs[32] = "-";
		if (run_kq)
			snprintf(ks, sizeof ks, "%.0f", km);
		if (run_raw)
			snprintf(rs, sizeof rs, "%.0f", rm);
		if (run_kq && run_raw) {
			ratio[b] = km / rm;
			snprintf(qs, sizeof qs, "%.2f", ratio[b]);
		}
		printf("%-40s %14s %14s %10s\n", bn->title, ks, rs, qs);
		fflush(stdout);
	}
	if (fds) {
		print_fds("fds per kq, empty", fk.empty, fr.empty, 1);
		print_fds("fds per kq, 2100 knotes [2]", fk.full, fr.full, 1);
		print_fds("fds per knote", fk.full - fk.empty, fr.full - fr.empty,
			  NUSER + NTIMER + NPIPE);
	}
	if (selected("create", names, nnames))
		printf("[1] kqaio's kqueue() makes an eventfd and a duplicate of the epoll fd too "
		       "(closed once the fd number is reused); raw makes the epoll fd only\n");
	if (fds)
		printf(
		    "[2] %d USER, %d TIMER, %d pipe READ knotes (the pipes' own fds not counted); "
		    "raw: an eventfd or timerfd per event\n",
		    NUSER, NTIMER, NPIPE);

	bool any = fds && run_kq;
	for (int b = 0; b < NBENCH; b++)
		any |= benches[b].target > 0 && ratio[b] > 0;
	if (any)
		printf("targets (issue 3):\n");
	for (int b = 0; b < NBENCH; b++)
		if (benches[b].target > 0 && ratio[b] > 0)
			printf("  %-38s kqaio/raw %.2f >= %.1f  %s\n", benches[b].title, ratio[b],
			       benches[b].target, ratio[b] >= benches[b].target ? "met" : "MISSED");
	if (fds && run_kq)
		printf("  %-38s %d <= 5  %s\n", "fds per kq with 2100 knotes", fk.full,
		       fk.full <= 5 ? "met" : "MISSED");
	free(names);
	return 0;
}
