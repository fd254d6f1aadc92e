/* kqaio-bench: measures POSIX AIO on a file or block device — kqaio on each of
 * its backends, the system's glibc, and raw io_uring as the ceiling — with the
 * same workload in one run, and prints IOPS, bandwidth, latency percentiles,
 * CPU per request and the ratio to the ceiling. This file reads the options,
 * prepares the file, runs each engine in a child of its own (forked before any
 * AIO call here, so each starts clean and picks its backend) and reports. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kqaio-bench [OPTION]...\n"
		"Measures POSIX AIO on one file: kqaio (uring and pool backends), glibc's AIO\n"
		"and raw io_uring (the ceiling), the same workload each, one after another.\n"
		"\n"
		"  -w, --workload=W      randread (default), randwrite, read, write, or rw\n"
		"                        (random, half reads and half writes)\n"
		"  -b, --bs=SIZE         bytes per request, a multiple of 512 (default 4k)\n"
		"  -q, --qd=N            requests kept in flight, 1 to 4096 (default 32)\n"
		"  -f, --file=PATH       file or block device to use (default: a file of\n"
		"                        --size created in $TMPDIR or /tmp and removed);\n"
		"                        a missing PATH is created with --size and kept\n"
		"  -s, --size=SIZE       size of the file to create, or of the part of an\n"
		"                        existing file or device to use (default 256M)\n"
		"  -t, --time=SECONDS    measure each engine this long (default 3)\n"
		"  -n, --ops=N           or measure N requests per engine\n"
		"  -d, --direct          O_DIRECT: bypass the page cache (not on tmpfs)\n"
		"      --buffered        through the page cache (the default)\n"
		"      --submit=MODE     single (one aio_read/aio_write each, the default) or\n"
		"                        listio (lio_listio(LIO_NOWAIT) batches of --batch)\n"
		"  -B, --batch=N         requests per lio_listio call, 1 to --qd (default 8)\n"
		"  -c, --completion=MODE how completions are found: suspend (aio_suspend, the\n"
		"                        default), kevent (SIGEV_KEVENT to a kqueue),\n"
		"                        waitcomplete (aio_waitcomplete), signal (SIGEV_SIGNAL,\n"
		"                        sigwaitinfo) or thread (SIGEV_THREAD)\n"
		"  -e, --engines=LIST    comma-separated: kqaio-uring, kqaio-pool, glibc, uring;\n"
		"                        kqaio means both kqaio engines; all (the default)\n"
		"      --verify          check every block read against the pattern the file\n"
		"                        was written with; a mismatch is exit status 1\n"
		"      --force-write     allow writes into a file or device that existed\n"
		"      --json            print one JSON object instead of the table\n"
		"      --csv             print CSV (a header line and a row per engine)\n"
		"  -Q, --quiet           no progress line (it is drawn only on a terminal)\n"
		"  -h, --help            print this help and exit\n"
		"  -V, --version         print the version and exit\n"
		"\n"
		"SIZE takes a k, m, g or t suffix (powers of 1024). Exit status: 0 done,\n"
		"1 an engine failed or --verify found a mismatch, 2 bad usage.\n"
		"See kqaio-bench(1).\n");
}

static _Noreturn void bad(const char *opt, const char *fmt, const char *arg)
{
	fprintf(stderr, "kqaio-bench: %s: ", opt);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'kqaio-bench --help' for more information.\n");
	exit(2);
}

static _Noreturn void die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "kqaio-bench: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t parse_size(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		bad(opt, "bad size '%s' (a number with an optional k, m, g or t suffix)", s);
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	}
	if (shift)
		end++;
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (errno || end == s || *end || (v << shift >> shift) != v)
		bad(opt, "bad size '%s' (a number with an optional k, m, g or t suffix)", s);
	return v << shift;
}

static long parse_int(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		char msg[96];
		snprintf(msg, sizeof msg, "bad value '%%s' (a whole number from %ld to %ld)", lo,
			 hi);
		bad(opt, msg, s);
	}
	return v;
}

static int parse_name(const char *opt, const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	char msg[200] = "unknown value '%s' (one of:";
	for (int i = 0; i < n; i++) {
		strcat(msg, " ");
		strcat(msg, names[i]);
	}
	strcat(msg, ")");
	bad(opt, msg, s);
}

static unsigned parse_engines(const char *s)
{
	unsigned set = 0;
	char buf[256];
	if (strlen(s) >= sizeof buf)
		bad("--engines", "list too long: '%s'", s);
	strcpy(buf, s);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "all"))
			set |= (1u << E_N) - 1;
		else if (!strcmp(t, "kqaio"))
			set |= 1u << E_KQAIO_URING | 1u << E_KQAIO_POOL;
		else
			set |= 1u << parse_name("--engines", t, engine_names, E_N);
	}
	if (!set)
		bad("--engines", "no engine in '%s'", s);
	return set;
}

static void fill(int fd, uint64_t size, const char *path)
{
	enum { CHUNK = 1 << 20 };
	char *buf = malloc(CHUNK);
	if (!buf)
		die("%s%s", "out of memory", "");
	for (uint64_t off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		pattern_fill(buf, off, n);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			die("cannot write %s: %s", path, strerror(errno ? errno : ENOSPC));
	}
	free(buf);
	if (fdatasync(fd) < 0)
		die("fdatasync %s: %s", path, strerror(errno));
}

/* Opens (creating if need be) what will be measured: c->fd, c->file, c->size. */
static void prepare_file(struct config *c, int size_given)
{
	int writes = c->workload != W_RANDREAD && c->workload != W_READ;
	struct stat st;
	if (!c->path) {
		const char *dir = getenv("TMPDIR");
		snprintf(c->file, sizeof c->file, "%s/kqaio-bench-XXXXXX",
			 dir && *dir ? dir : "/tmp");
		if ((c->fd = mkstemp(c->file)) < 0)
			die("cannot create %s: %s", c->file, strerror(errno));
		/* Removed at once: nothing is left behind, whatever ends the run. */
		unlink(c->file);
		c->size -= c->size % c->bs;
		fill(c->fd, c->size, c->file);
	} else if (stat(c->path, &st) < 0 && errno == ENOENT) {
		snprintf(c->file, sizeof c->file, "%s", c->path);
		if ((c->fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
			die("cannot create %s: %s", c->path, strerror(errno));
		c->size -= c->size % c->bs;
		fill(c->fd, c->size, c->path);
	} else {
		snprintf(c->file, sizeof c->file, "%s", c->path);
		if (stat(c->path, &st) < 0)
			die("%s: %s", c->path, strerror(errno));
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
			die("%s: %s", c->path, "not a regular file or block device");
		if (writes && !c->force_write) {
			fprintf(stderr,
				"kqaio-bench: %s exists: a %s workload would overwrite it; add "
				"--force-write if that is what you want\n",
				c->path, workload_names[c->workload]);
			exit(2);
		}
		if ((c->fd = open(c->path, (writes ? O_RDWR : O_RDONLY) | O_CLOEXEC)) < 0)
			die("cannot open %s: %s", c->path, strerror(errno));
		uint64_t have = (uint64_t)st.st_size;
		if (S_ISBLK(st.st_mode) && ioctl(c->fd, BLKGETSIZE64, &have) < 0)
			die("%s: BLKGETSIZE64: %s", c->path, strerror(errno));
		if (!size_given || c->size > have)
			c->size = have;
		c->size -= c->size % c->bs;
		if (!c->size)
			die("%s: %s", c->path, "smaller than one block (--bs)");
	}
	/* Children inherit this descriptor (a forked child keeps its fds). */
	int fl = fcntl(c->fd, F_GETFD);
	fcntl(c->fd, F_SETFD, fl & ~FD_CLOEXEC);
	if (c->direct) {
		fl = fcntl(c->fd, F_GETFL);
		if (fcntl(c->fd, F_SETFL, fl | O_DIRECT) < 0) {
			fprintf(
			    stderr,
			    "kqaio-bench: --direct: the file system of %s refuses O_DIRECT (%s); "
			    "use a file on a disk (e.g. --file /var/tmp/kqaio-bench.dat) or drop "
			    "--direct\n",
			    c->file, strerror(errno));
			exit(1);
		}
	}
}

/* Runs engine e in a child; its result comes back through a pipe. */
static void run_engine(const struct config *c, enum engine e, struct result *r)
{
	int p[2];
	memset(r, 0, sizeof *r);
	r->engine = e;
	if (pipe(p) < 0)
		die("pipe: %s%s", strerror(errno), "");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s%s", strerror(errno), "");
	if (pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		/* A watchdog: a lost completion must not hang the run. */
		alarm(c->ops ? 600 : (unsigned)c->seconds + 120);
		if (e == E_URING)
			engine_uring(c, r);
		else
			engine_aio(c, e, r);
		ssize_t w = write(p[1], r, sizeof *r);
		_exit(w == (ssize_t)sizeof *r ? 0 : 1);
	}
	close(p[1]);
	size_t got = 0;
	while (got < sizeof *r) {
		ssize_t n = read(p[0], (char *)r + got, sizeof *r - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof *r) {
		memset(r, 0, sizeof *r);
		r->engine = e;
		r->status = ST_FAILED;
		if (WIFSIGNALED(st))
			snprintf(r->note, sizeof r->note, "the engine's process died of %s",
				 strsignal(WTERMSIG(st)));
		else
			snprintf(r->note, sizeof r->note, "the engine's process exited with %d",
				 WEXITSTATUS(st));
	}
}

int main(int argc, char **argv)
{
	struct config c = {
	    .workload = W_RANDREAD,
	    .submit = S_SINGLE,
	    .completion = C_SUSPEND,
	    .engines = (1u << E_N) - 1,
	    .bs = 4096,
	    .qd = 32,
	    .batch = 8,
	    .seconds = 3,
	    .size = 256ull << 20,
	    .fd = -1,
	};
	enum { O_BUFFERED = 256, O_SUBMIT, O_VERIFY, O_FORCE, O_JSON, O_CSV };
	static const struct option lo[] = {
	    {"workload", required_argument, NULL, 'w'},
	    {"bs", required_argument, NULL, 'b'},
	    {"qd", required_argument, NULL, 'q'},
	    {"file", required_argument, NULL, 'f'},
	    {"size", required_argument, NULL, 's'},
	    {"time", required_argument, NULL, 't'},
	    {"ops", required_argument, NULL, 'n'},
	    {"direct", no_argument, NULL, 'd'},
	    {"buffered", no_argument, NULL, O_BUFFERED},
	    {"submit", required_argument, NULL, O_SUBMIT},
	    {"batch", required_argument, NULL, 'B'},
	    {"completion", required_argument, NULL, 'c'},
	    {"engines", required_argument, NULL, 'e'},
	    {"verify", no_argument, NULL, O_VERIFY},
	    {"force-write", no_argument, NULL, O_FORCE},
	    {"json", no_argument, NULL, O_JSON},
	    {"csv", no_argument, NULL, O_CSV},
	    {"quiet", no_argument, NULL, 'Q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	int opt, size_given = 0, time_given = 0, batch_given = 0;
	while ((opt = getopt_long(argc, argv, "w:b:q:f:s:t:n:dB:c:e:QhV", lo, NULL)) != -1) {
		switch (opt) {
		case 'w':
			c.workload = parse_name("--workload", optarg, workload_names, 5);
			break;
		case 'b': {
			uint64_t v = parse_size("--bs", optarg);
			if (v < 512 || v % 512 || v > (64u << 20))
				bad("--bs", "bad block size '%s' (a multiple of 512, at most 64m)",
				    optarg);
			c.bs = v;
			break;
		}
		case 'q':
			c.qd = (int)parse_int("--qd", optarg, 1, 4096);
			break;
		case 'f':
			if (!*optarg)
				bad("--file", "empty path%s", "");
			c.path = optarg;
			break;
		case 's':
			c.size = parse_size("--size", optarg);
			size_given = 1;
			break;
		case 't': {
			char *end;
			errno = 0;
			c.seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(c.seconds > 0) || c.seconds > 86400)
				bad("--time", "bad duration '%s' (seconds, more than 0)", optarg);
			time_given = 1;
			break;
		}
		case 'n':
			c.ops = (uint64_t)parse_int("--ops", optarg, 1, LONG_MAX);
			break;
		case 'd':
			c.direct = 1;
			break;
		case O_BUFFERED:
			c.direct = 0;
			break;
		case O_SUBMIT:
			c.submit = parse_name("--submit", optarg, submit_names, 2);
			break;
		case 'B':
			c.batch = (int)parse_int("--batch", optarg, 1, 4096);
			batch_given = 1;
			break;
		case 'c':
			c.completion = parse_name("--completion", optarg, completion_names, 5);
			break;
		case 'e':
			c.engines = parse_engines(optarg);
			break;
		case O_VERIFY:
			c.verify = 1;
			break;
		case O_FORCE:
			c.force_write = 1;
			break;
		case O_JSON:
			c.json = 1;
			break;
		case O_CSV:
			c.csv = 1;
			break;
		case 'Q':
			c.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("kqaio-bench %s\n", kqaio_version());
			return 0;
		default:
			fprintf(stderr, "Try 'kqaio-bench --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc)
		bad(argv[optind], "unexpected argument%s", "");
	if (c.ops && time_given)
		bad("--ops", "give --time or --ops, not both%s", "");
	if (c.json && c.csv)
		bad("--json", "give --json or --csv, not both%s", "");
	if (c.batch > c.qd) {
		if (batch_given)
			bad("--batch", "more than --qd%s", "");
		c.batch = c.qd;
	}
	if (c.size < c.bs)
		bad("--size", "smaller than one block (--bs)%s", "");
	c.progress = !c.quiet && isatty(STDERR_FILENO);

	prepare_file(&c, size_given);
	struct result r[E_N];
	int n = 0, status = 0;
	for (int e = 0; e < E_N; e++) {
		if (!(c.engines & 1u << e))
			continue;
		run_engine(&c, (enum engine)e, &r[n]);
		if (r[n].status == ST_FAILED || r[n].status == ST_MISMATCH) {
			fprintf(stderr, "kqaio-bench: %s: %s\n", engine_names[e], r[n].note);
			status = 1;
		}
		n++;
	}
	if (c.json)
		report_json(stdout, &c, r, n);
	else if (c.csv)
		report_csv(stdout, &c, r, n);
	else
		report_table(stdout, &c, r, n);
	return status;
}
