/* The ABI: glibc's struct aiocb layout, exactly the public names exported and
 * unversioned, and an unmodified glibc program served through kqaio-run. */
#include "kqt.h"

#include <stddef.h>

TestSuite(abi, .timeout = 60);

Test(abi, aiocb_layout_is_glibc)
{
	cr_assert_eq(sizeof(struct aiocb), 168);
	cr_assert_eq(offsetof(struct aiocb, aio_fildes), 0);
	cr_assert_eq(offsetof(struct aiocb, aio_lio_opcode), 4);
	cr_assert_eq(offsetof(struct aiocb, aio_reqprio), 8);
	cr_assert_eq(offsetof(struct aiocb, aio_buf), 16);
	cr_assert_eq(offsetof(struct aiocb, aio_nbytes), 24);
	cr_assert_eq(offsetof(struct aiocb, aio_sigevent), 32);
	cr_assert_eq(offsetof(struct aiocb, __error_code), 112);
	cr_assert_eq(offsetof(struct aiocb, __return_value), 120);
	cr_assert_eq(offsetof(struct aiocb, aio_offset), 128);
	cr_assert_eq(offsetof(struct aiocb, __glibc_reserved), 136);
	cr_assert_eq(SIGEV_SIGNAL, 0);
	cr_assert_eq(SIGEV_NONE, 1);
	cr_assert_eq(SIGEV_THREAD, 2);
	cr_assert_eq(SIGEV_KEVENT, 3);
	cr_assert_eq(SIGEV_THREAD_ID, 4);
	struct aiocb cb;
	cr_assert_eq((void *)&cb.aio_iov, (void *)&cb.aio_buf);
	cr_assert_eq((void *)&cb.aio_iovcnt, (void *)&cb.aio_nbytes);
	cr_assert_eq((void *)&cb.aio_sigevent.sigev_notify_kqueue,
		     (void *)&cb.aio_sigevent.sigev_signo);
}

static const char *const exported[] = {
    "aio_cancel",    "aio_cancel64", "aio_error",    "aio_error64",   "aio_fsync",
    "aio_fsync64",   "aio_init",     "aio_read",     "aio_read64",    "aio_readv",
    "aio_return",    "aio_return64", "aio_suspend",  "aio_suspend64", "aio_waitcomplete",
    "aio_write",     "aio_write64",  "aio_writev",   "kqaio_backend", "kqaio_get_stats",
    "kqaio_version", "lio_listio",   "lio_listio64", "kqueue",	      "kqueuex",
    "kevent",	     "sigaction",    "signal",	     "close",
};

static const char *build_dir(void)
{
	const char *b = getenv("KQAIO_BUILD");
	cr_assert(b, "KQAIO_BUILD is not set (run through make check)");
	return b;
}

Test(abi, exports_exactly_the_public_api_unversioned)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libkqaio.so", build_dir());
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	int seen[sizeof exported / sizeof *exported] = {0};
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, p)) {
		char addr[64], type[8], name[256];
		if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
			continue;
		if (type[0] != 'T' && type[0] != 'D' && type[0] != 'B' && type[0] != 'W')
			continue;
		n++;
		cr_expect(!strchr(name, '@'), "%s is versioned", name);
		int ok = 0;
		for (size_t i = 0; i < sizeof exported / sizeof *exported; i++)
			if (!strcmp(name, exported[i]))
				ok = seen[i] = 1;
		cr_expect(ok, "exported symbol %s is not public API", name);
	}
	cr_assert_eq(pclose(p), 0);
	for (size_t i = 0; i < sizeof exported / sizeof *exported; i++)
		cr_expect(seen[i], "%s is not exported", exported[i]);
	cr_assert_eq(n, (int)(sizeof exported / sizeof *exported));
}

/* The counts in a KQAIO_STATS line: "kqaio: pid N backend NAME: COUNTS". */
static const char *counts_of(const char *line)
{
	const char *b = strstr(line, " backend ");
	cr_assert(b, "%s", line);
	const char *c = strstr(b, ": ");
	cr_assert(c, "%s", line);
	return c + 2;
}

/* Runs cmd, returns its exit status; its output (stdout and stderr) in out. */
static int run(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	size_t got = fread(out, 1, len - 1, p);
	out[got] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(abi, unmodified_glibc_program_runs_on_kqaio)
{
	char cmd[1024], out[8192];
	snprintf(cmd, sizeof cmd, "cd %s && KQAIO_STATS=1 ./kqaio-run ./tests/glibc-client 2>&1",
		 build_dir());
	cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
	unsigned long long sub = 0, done = 0;
	const char *l = strstr(out, "kqaio: pid");
	cr_assert(l, "no KQAIO_STATS line: kqaio did not serve it\n%s", out);
	cr_assert_eq(sscanf(counts_of(l), "%llu submitted, %llu completed", &sub, &done), 2, "%s",
		     l);
	cr_assert_eq(sub, 129, "64 list writes, 64 reads and one fsync: %s", l);
	cr_assert_eq(done, 129, "%s", l);
	/* Without the preload the same binary uses glibc and prints no stats. */
	snprintf(cmd, sizeof cmd, "cd %s && KQAIO_STATS=1 ./tests/glibc-client 2>&1", build_dir());
	cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
	cr_assert(!strstr(out, "kqaio:"), "%s", out);
}

Test(abi, fio_posixaio_verifies_through_kqaio, .timeout = 120)
{
	if (system("command -v fio >/dev/null 2>&1"))
		cr_skip_test("fio is not installed (scripts/deps installs it)");
	char file[] = "/dev/shm/kqaio-fio-XXXXXX";
	int fd = mkstemp(file);
	cr_assert(fd >= 0);
	close(fd);
	char cmd[2048];
	static char out[65536];
	/* fio is not built with sanitizers: its own leaks and the races TSan cannot
	 * see it guard against are not ours to report (glibc-client covers that). */
	snprintf(cmd, sizeof cmd,
		 "cd %s && ASAN_OPTIONS=detect_leaks=0 TSAN_OPTIONS=report_bugs=0 "
		 "KQAIO_STATS=1 ./kqaio-run fio --name=verify --ioengine=posixaio "
		 "--filename=%s --size=32M --bs=4k --rw=randwrite --iodepth=32 "
		 "--verify=crc32c --verify_fatal=1 --verify_state_save=0 --thread "
		 "--output-format=terse 2>&1",
		 build_dir(), file);
	int rc = run(cmd, out, sizeof out);
	unlink(file);
	cr_assert_eq(rc, 0, "fio failed:\n%s", out);
	const char *l = strstr(out, "kqaio: pid");
	cr_assert(l, "kqaio did not serve fio:\n%s", out);
	unsigned long long sub = 0, done = 0, cancelled, failed = 1, rejected, rd = 0, wr = 0;
	cr_assert_eq(sscanf(counts_of(l),
			    "%llu submitted, %llu completed (%llu cancelled, %llu failed), "
			    "%llu rejected, %llu bytes read, %llu bytes written",
			    &sub, &done, &cancelled, &failed, &rejected, &rd, &wr),
		     7, "%s", l);
	cr_assert_eq(failed, 0);
	cr_assert_eq(wr, 32ull << 20, "fio wrote the whole file through kqaio: %s", l);
	cr_assert_eq(rd, 32ull << 20, "and read it back to verify: %s", l);
	cr_assert_eq(sub, done);
}

Test(abi, library_and_tools_carry_the_version)
{
	char cmd[512], out[256];
	snprintf(cmd, sizeof cmd, "%s/kqaio-run --version", build_dir());
	cr_assert_eq(run(cmd, out, sizeof out), 0);
	cr_assert_str_eq(out, "kqaio-run " KQAIO_VERSION "\n");
	snprintf(cmd, sizeof cmd, "%s/libkqaio.so." KQAIO_VERSION, build_dir());
	cr_assert_eq(access(cmd, R_OK), 0, "%s is missing", cmd);
	snprintf(cmd, sizeof cmd, "readelf -d %s/libkqaio.so | grep -q 'SONAME.*libkqaio.so.0]'",
		 build_dir());
	cr_assert_eq(system(cmd), 0, "SONAME is not libkqaio.so.0");
}
