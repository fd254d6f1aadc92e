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

static int run(const struct test *t)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		alarm(t->o.timeout > 0 ? (unsigned)(t->o.timeout + 0.999) : 60);
		if (t->o.init)
			t->o.init();
		t->fn();
		if (t->o.fini)
			t->o.fini();
		_exit(failures ? 1 : 0);
	}
	/* The child's alarm is only a first try: a test may block, catch or
	 * reset SIGALRM, so the runner keeps its own deadline, a little later. */
	int secs = (t->o.timeout > 0 ? (int)(t->o.timeout + 0.999) : 60) + 5;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), st, late = 0;
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		while ((late = poll(&p, 1, secs * 1000)) < 0 && errno == EINTR)
			;
		late = late == 0;
		close(pfd);
	}
	if (late)
		kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
	kill(-pid, SIGKILL); /* anything the test left running */
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

int main(int argc, char **argv)
{
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--filter") && i + 1 < argc)
			filter = argv[++i];
		else if (!strncmp(argv[i], "--filter=", 9))
			filter = argv[i] + 9;
		else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
			i++; /* tests run one at a time here */
	}
	int passed = 0, failed = 0, skipped = 0;
	for (int i = 0; i < ntests; i++) {
		const struct test *t = &tests[i];
		char id[256];
		snprintf(id, sizeof id, "%s/%s", t->suite, t->name);
		if (t->o.disabled || (filter && fnmatch(filter, id, 0)))
			continue;
		int r = run(t);
		if (r == 0)
			passed++;
		else if (r == 2)
			skipped++;
		else {
			failed++;
			fprintf(stderr, "[FAIL] %s::%s\n", t->suite, t->name);
		}
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
