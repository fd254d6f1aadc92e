/* The runner behind tests/kqt_shim.h (ThreadSanitizer build only): a process
 * per test, a timeout per test, --filter GLOB, and "N passed, N failed". */
#include "kqt_shim.h"

#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test {
	const char *suite, *name;
	void (*fn)(void);
	struct kqt_opts o;
};

static struct test tests[1024];
static int ntests, failures;

void kqt_register(const char *suite, const char *name, void (*fn)(void), const struct kqt_opts *so,
		  const struct kqt_opts *o)
{
	if (ntests == (int)(sizeof tests / sizeof *tests))
		abort();
	struct test *t = &tests[ntests++];
	t->suite = suite;
	t->name = name;
	t->fn = fn;
	t->o = *o;
	if (!t->o.timeout)
		t->o.timeout = so->timeout;
	if (!t->o.init)
		t->o.init = so->init;
	if (!t->o.fini)
		t->o.fini = so->fini;
	t->o.disabled |= so->disabled;
}

void kqt_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
{
	fprintf(stderr, "[----] %s:%d: Assertion failed: %s\n", file, line, expr);
	if (*fmt) {
		va_list ap;
		va_start(ap, fmt);
		fputs("[----]   ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	fflush(stderr);
	failures++;
	if (fatal)
		_exit(1);
}

void kqt_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("[SKIP] ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
	_exit(77);
}

/* A test running in a child: its output goes to a file of its own, printed
 * whole when it ends, so tests running side by side do not mix lines. */
struct child {
	const struct test *t;
	pid_t pid;
	int pfd, out;
	struct timespec deadline;
};

static void start(const struct test *t, struct child *c)
{
	fflush(NULL);
	c->t = t;
	c->out = (int)syscall(SYS_memfd_create, "kqt-out", 0);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		if (c->out >= 0) {
			dup2(c->out, 1);
			dup2(c->out, 2);
		}
		alarm(t->o.timeout > 0 ? (unsigned)(t->o.timeout + 0.999) : 60);
		if (t->o.init)
			t->o.init();
		t->fn();
		if (t->o.fini)
			t->o.fini();
		_exit(failures ? 1 : 0);
	}
	c->pid = pid;
	c->pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* The child's alarm is only a first try: a test may block, catch or
	 * reset SIGALRM, so the runner keeps its own deadline, a little later. */
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += (t->o.timeout > 0 ? (int)(t->o.timeout + 0.999) : 60) + 5;
}

static void print_output(int fd)
{
	char buf[4096];
	ssize_t n;
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	fflush(stderr);
}

/* Reaps c, killed first if late; 0 passed, 1 failed, 2 skipped. */
static int finish(struct child *c, int late)
{
	const struct test *t = c->t;
	int st;
	if (late)
		kill(-c->pid, SIGKILL);
	waitpid(c->pid, &st, 0);
	kill(-c->pid, SIGKILL); /* anything the test left running */
	if (c->pfd >= 0)
		close(c->pfd);
	if (c->out >= 0) {
		print_output(c->out);
		close(c->out);
	}
	if (late) {
		fprintf(stderr, "[----] %s::%s: timed out (killed by the runner)\n", t->suite,
			t->name);
		return 1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		return 2;
	if (t->o.signal)
		return WIFSIGNALED(st) && WTERMSIG(st) == t->o.signal ? 0 : 1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == t->o.exit_code)
		return 0;
	if (WIFSIGNALED(st))
		fprintf(stderr, "[----] %s::%s: %s\n", t->suite, t->name,
			WTERMSIG(st) == SIGALRM ? "timed out" : strsignal(WTERMSIG(st)));
	return 1;
}

static long ms_until(const struct timespec *d)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (d->tv_sec - now.tv_sec) * 1000 + (d->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms;
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	int jobs = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--filter") && i + 1 < argc)
			filter = argv[++i];
		else if (!strncmp(argv[i], "--filter=", 9))
			filter = argv[i] + 9;
		else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
			jobs = atoi(argv[++i]);
	}
	if (jobs < 1 || jobs > 16)
		jobs = 1;
	int passed = 0, failed = 0, skipped = 0, next = 0, running = 0;
	struct child c[16];
	for (;;) {
		while (running < jobs && next < ntests) {
			const struct test *t = &tests[next++];
			char id[256];
			snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
			if (t->o.disabled || (filter && fnmatch(filter, id, 0)))
				continue;
			start(t, &c[running++]);
		}
		if (!running)
			break;
		/* Wait for the first child to end, or the nearest deadline. */
		struct pollfd p[16];
		long wait = 60000;
		for (int i = 0; i < running; i++) {
			p[i] = (struct pollfd){.fd = c[i].pfd, .events = POLLIN};
			long ms = ms_until(&c[i].deadline);
			if (ms < wait)
				wait = ms;
		}
		if (poll(p, (nfds_t)running, (int)(wait < 100 ? 100 : wait)) < 0 && errno != EINTR)
			wait = 100;
		for (int i = 0; i < running; i++) {
			int late = !ms_until(&c[i].deadline);
			if (!late && !(p[i].revents & POLLIN) && c[i].pfd >= 0)
				continue;
			int r = finish(&c[i], late && !(p[i].revents & POLLIN));
			if (r == 0)
				passed++;
			else if (r == 2)
				skipped++;
			else {
				failed++;
				fprintf(stderr, "[FAIL] %s::%s\n", c[i].t->suite, c[i].t->name);
			}
			c[i] = c[--running];
			p[i] = p[running];
			i--;
		}
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
