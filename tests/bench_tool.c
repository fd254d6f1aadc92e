/* kqaio-bench, the command-line tool, run as a user would: its options and
 * errors, every completion mode on kqaio with --verify, glibc's engine and its
 * n/a rows, lio_listio submission, the JSON and CSV outputs, the default file
 * (created in $TMPDIR, gone afterwards), and --verify catching a corrupted
 * file. The tool is $KQAIO_BUILD/kqaio-bench (else build/kqaio-bench); each
 * run is small (8 MiB, 2000 requests) and no test looks at how fast it was. */
#include "kqt.h"

#include <limits.h>
#include <sys/wait.h>

TestSuite(bench_tool, .timeout = 60);

static const char *tool(void)
{
	static char path[PATH_MAX];
	const char *b = getenv("KQAIO_BUILD");
	snprintf(path, sizeof path, "%s/kqaio-bench", b && *b ? b : "build");
	cr_assert_eq(access(path, X_OK), 0, "%s: %s (build it with make)", path, strerror(errno));
	return path;
}

/* Runs `kqaio-bench ARGS` with sh (stderr joined to stdout unless args
 * redirect it); returns its exit status and what it printed, in out. */
static int bench(char *out, size_t size, const char *args)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", tool(), args);
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen: %s", strerror(errno));
	size_t n = 0, r;
	while (n + 1 < size && (r = fread(out + n, 1, size - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	char sink[4096];
	while (fread(sink, 1, sizeof sink, p) > 0)
		;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The kqaio engine for the backend this run of the suite is about. */
static const char *kqaio_engine(void)
{
	const char *be = getenv("KQAIO_BACKEND");
	return be && !strcmp(be, "pool") ? "kqaio-pool" : "kqaio-uring";
}

/* The CSV row of engine in out: its status and IOPS. 0 if there is none. */
static int csv_row(const char *out, const char *engine, char *status, size_t ssize, double *iops)
{
	char key[64];
	snprintf(key, sizeof key, "\n%s,", engine);
	const char *l = strstr(out, key);
	if (!l)
		return 0;
	l += strlen(key);
	size_t n = strcspn(l, ",");
	snprintf(status, ssize, "%.*s", (int)n, l);
	*iops = atof(l + n + 1);
	return 1;
}

/* Runs engine with args in CSV and checks it measured something; skips when
 * the engine is n/a here (kqaio-uring without io_uring). */
static void expect_ok(const char *engine, const char *args)
{
	char out[16384], cmd[1024], status[32];
	double iops = 0;
	snprintf(cmd, sizeof cmd, "--csv -Q --size 8M --ops 2000 --verify --engines %s %s", engine,
		 args);
	int rc = bench(out, sizeof out, cmd);
	cr_assert(csv_row(out, engine, status, sizeof status, &iops),
		  "no CSV row for %s (exit %d):\n%s", engine, rc, out);
	if (!strcmp(status, "n/a") && !strcmp(engine, "kqaio-uring"))
		cr_skip_test("kqaio-uring is n/a here:\n%s", out);
	cr_assert_eq(rc, 0, "kqaio-bench %s: exit %d\n%s", cmd, rc, out);
	cr_assert_str_eq(status, "ok", "%s: status %s\n%s", engine, status, out);
	cr_assert_gt(iops, 0, "%s: no IOPS\n%s", engine, out);
}

Test(bench_tool, help)
{
	char out[16384];
	cr_assert_eq(bench(out, sizeof out, "--help"), 0, "%s", out);
	static const char *const must[] = {"usage: kqaio-bench",
					   "--workload",
					   "--bs",
					   "--qd",
					   "--file",
					   "--size",
					   "--time",
					   "--ops",
					   "--direct",
					   "--submit",
					   "--batch",
					   "--completion",
					   "--engines",
					   "--verify",
					   "--json",
					   "--csv",
					   "--quiet",
					   "--version",
					   "--force-write"};
	for (size_t i = 0; i < sizeof must / sizeof *must; i++)
		cr_assert(strstr(out, must[i]), "--help does not mention %s:\n%s", must[i], out);
}

Test(bench_tool, version)
{
	char out[256], want[64];
	cr_assert_eq(bench(out, sizeof out, "--version"), 0, "%s", out);
	snprintf(want, sizeof want, "kqaio-bench %s\n", kqaio_version());
	cr_assert_str_eq(out, want);
}

Test(bench_tool, bad_usage_is_exit_2_naming_the_option)
{
	static const struct {
		const char *args, *names;
	} bad[] = {
	    {"--bogus", "--bogus"},
	    {"--workload randjump", "--workload"},
	    {"--size 12x", "--size"},
	    {"--bs 1000", "--bs"},
	    {"--qd 0", "--qd"},
	    {"--completion poll", "--completion"},
	    {"--engines glibc,nope", "--engines"},
	    {"--time 1 --ops 5", "--ops"},
	    {"--qd 4 --batch 8 --submit listio", "--batch"},
	};
	char out[4096];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int rc = bench(out, sizeof out, bad[i].args);
		cr_assert_eq(rc, 2, "kqaio-bench %s: exit %d, not 2\n%s", bad[i].args, rc, out);
		cr_assert(strstr(out, bad[i].names),
			  "kqaio-bench %s: message does not name %s:\n%s", bad[i].args,
			  bad[i].names, out);
		cr_assert(strstr(out, "--help"), "kqaio-bench %s: no hint at --help:\n%s",
			  bad[i].args, out);
	}
}

Test(bench_tool, kqaio_suspend)
{
	expect_ok(kqaio_engine(), "--completion suspend");
}

Test(bench_tool, kqaio_kevent)
{
	expect_ok(kqaio_engine(), "--completion kevent");
}

Test(bench_tool, kqaio_waitcomplete)
{
	expect_ok(kqaio_engine(), "--completion waitcomplete");
}

Test(bench_tool, kqaio_signal)
{
	expect_ok(kqaio_engine(), "--completion signal");
}

Test(bench_tool, kqaio_thread)
{
	expect_ok(kqaio_engine(), "--completion thread");
}

Test(bench_tool, kqaio_listio_rw)
{
	expect_ok(kqaio_engine(), "--submit listio --batch 4 --workload rw --completion kevent");
}

Test(bench_tool, glibc_suspend)
{
	expect_ok("glibc", "--completion suspend");
}

Test(bench_tool, glibc_listio_signal)
{
	expect_ok("glibc", "--submit listio --batch 8 --completion signal");
}

Test(bench_tool, raw_uring)
{
	expect_ok("uring", "--workload read");
}

Test(bench_tool, glibc_kevent_is_na)
{
	char out[16384], status[32];
	double iops;
	int rc = bench(out, sizeof out, "--csv -Q --size 8M --ops 100 -e glibc -c kevent");
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(csv_row(out, "glibc", status, sizeof status, &iops), "%s", out);
	cr_assert_str_eq(status, "n/a", "%s", out);
	cr_assert(strstr(out, "SIGEV_KEVENT"), "no reason given:\n%s", out);
	rc = bench(out, sizeof out, "-Q --size 8M --ops 100 -e glibc -c waitcomplete");
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "glibc") && strstr(out, "n/a: ") && strstr(out, "aio_waitcomplete"),
		  "the table has no n/a row with its reason:\n%s", out);
}

Test(bench_tool, json_names_every_engine)
{
	char out[16384];
	int rc = bench(out, sizeof out, "--json -Q --size 8M --ops 500 2>/dev/null");
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	cr_assert_eq(out[0], '{', "%s", out);
	cr_assert(strstr(out, "\"engines\": ["), "%s", out);
	static const char *const e[] = {"kqaio-uring", "kqaio-pool", "glibc", "uring"};
	for (size_t i = 0; i < 4; i++) {
		char key[64];
		snprintf(key, sizeof key, "{\"engine\": \"%s\", \"status\": \"", e[i]);
		cr_assert(strstr(out, key), "no %s object:\n%s", e[i], out);
	}
	/* Balanced braces and brackets, outside strings. */
	int depth = 0, in_str = 0;
	for (const char *p = out; *p; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = 0;
			continue;
		}
		if (*p == '"')
			in_str = 1;
		else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			cr_assert_geq(--depth, 0, "%s", out);
	}
	cr_assert_eq(depth, 0, "unbalanced JSON:\n%s", out);
}

Test(bench_tool, csv_header_and_rows)
{
	char out[16384];
	int rc = bench(out, sizeof out, "--csv -Q --size 8M --ops 500 -e kqaio,uring 2>/dev/null");
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	const char *header = "engine,status,iops,mibs,p50_us,p99_us,p999_us,cpu_us_per_io,ratio,";
	cr_assert_eq(strncmp(out, header, strlen(header)), 0, "header:\n%s", out);
	int lines = 0, fields0 = -1;
	for (char *l = out; *l; l = strchr(l, '\n') + 1) {
		cr_assert(strchr(l, '\n'), "unterminated line:\n%s", out);
		int fields = 1, q = 0;
		for (char *p = l; *p != '\n'; p++) {
			q ^= *p == '"';
			fields += !q && *p == ',';
		}
		if (fields0 < 0)
			fields0 = fields;
		cr_assert_eq(fields, fields0, "line %d has %d fields, the header %d:\n%s", lines,
			     fields, fields0, out);
		lines++;
	}
	cr_assert_eq(lines, 4, "a header and 3 rows expected:\n%s", out);
}

Test(bench_tool, default_file_in_tmpdir_is_removed)
{
	char dir[] = "/tmp/kqaio-bench-test-XXXXXX", args[512], out[16384];
	cr_assert(mkdtemp(dir));
	snprintf(args, sizeof args, "-Q --size 8M --ops 200 -e kqaio-pool,glibc");
	char cmd[700];
	snprintf(cmd, sizeof cmd, "env TMPDIR=%s %s %s 2>&1", dir, tool(), args);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = 0;
	int st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d\n%s", st, out);
	/* The header names the file it measured: in $TMPDIR. */
	char where[64];
	snprintf(where, sizeof where, "%s/kqaio-bench-", dir);
	cr_assert(strstr(out, where), "the file was not made in $TMPDIR (%s):\n%s", dir, out);
	cr_assert_eq(rmdir(dir), 0, "$TMPDIR is not empty afterwards: %s", strerror(errno));

	/* A $TMPDIR that does not exist is an error, not a silent /tmp. */
	snprintf(cmd, sizeof cmd, "env TMPDIR=%s %s %s 2>&1", dir, tool(), args);
	p = popen(cmd, "r");
	cr_assert(p);
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = 0;
	st = pclose(p);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d\n%s", st, out);
	cr_assert(strstr(out, dir), "%s", out);
}

Test(bench_tool, verify_catches_corruption)
{
	char path[] = "/tmp/kqaio-bench-test-XXXXXX", args[600], out[16384];
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	unlink(path);
	/* A missing --file is created with the pattern, and kept. */
	snprintf(args, sizeof args, "-Q --file %s --size 1M --ops 256 -w read --verify", path);
	int rc = bench(out, sizeof out, args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "--file was not kept");
	cr_assert_eq(st.st_size, 1 << 20);

	/* One byte wrong in block 37: every engine reports exactly that offset. */
	fd = open(path, O_WRONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, "X", 1, 37 * 4096 + 1001), 1);
	close(fd);
	rc = bench(out, sizeof out, args);
	cr_assert_eq(rc, 1, "a corrupted file verified (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "mismatch at offset 152553"), "offset not reported:\n%s", out);

	/* Without --verify nobody looks; a write workload on an existing file
	 * needs --force-write. */
	snprintf(args, sizeof args, "-Q --file %s --ops 256 -w read", path);
	rc = bench(out, sizeof out, args);
	cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
	snprintf(args, sizeof args, "-Q --file %s --ops 256 -w write", path);
	rc = bench(out, sizeof out, args);
	cr_assert_eq(rc, 2, "exit %d\n%s", rc, out);
	cr_assert(strstr(out, "--force-write"), "%s", out);
	unlink(path);
}
