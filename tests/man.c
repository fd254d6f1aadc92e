/* The man pages: every file in man/ renders with man-db and groff without a
 * single warning, and every exported public function has its page man/NAME.3.
 * Needs the Debian packages man-db and groff-base. The source root is
 * $KQAIO_SRC, else the current directory (make runs the tests from the root). */
#include "kqt.h"

#include <dirent.h>
#include <limits.h>
#include <sys/wait.h>

TestSuite(man, .timeout = 60);

static const char *const public_functions[] = {
    "aio_read",		"aio_write",  "aio_readv",     "aio_writev",	"aio_fsync",
    "aio_error",	"aio_return", "aio_suspend",   "aio_cancel",	"lio_listio",
    "aio_waitcomplete", "aio_init",   "kqaio_version", "kqaio_backend", "kqaio_get_stats",
    "kqueue",		"kqueuex",    "kevent",
};

/* The absolute path of the source tree's man/ directory, into buf. */
static void man_dir(char *buf, size_t size)
{
	const char *src = getenv("KQAIO_SRC");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/man", src && *src ? src : ".");
	cr_assert(realpath(path, buf), "man directory %s: %s (set KQAIO_SRC to the source root)",
		  path, strerror(errno));
	cr_assert_lt(strlen(buf), size);
}

/* Runs cmd with sh; returns its exit status and what it printed, in out. */
static int run(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");
	cr_assert(p, "popen: %s", strerror(errno));
	size_t n = 0, r;
	while (n + 1 < size && (r = fread(out + n, 1, size - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	char sink[4096];
	while (fread(sink, 1, sizeof sink, p) > 0) /* drain what did not fit */
		;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

Test(man, pages_render_without_warnings)
{
	char out[16384];
	cr_assert_eq(run("command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1", out,
			 sizeof out),
		     0,
		     "man or groff is missing: install the Debian packages man-db and groff-base");
	char dir[PATH_MAX];
	man_dir(dir, sizeof dir);

	/* `.so man3/aio_read.3` is resolved from man's working directory, as under
	 * $(MANDIR): give it one whose man1, man3 and man7 are our man/. */
	char tmp[] = "/tmp/kqaio-man-XXXXXX";
	cr_assert(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
	static const char *const sections[] = {"man1", "man3", "man7"};
	char link[PATH_MAX + 16];
	for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
		snprintf(link, sizeof link, "%s/%s", tmp, sections[i]);
		cr_assert_eq(symlink(dir, link), 0, "symlink %s: %s", link, strerror(errno));
	}

	DIR *d = opendir(dir);
	cr_assert(d, "opendir %s: %s", dir, strerror(errno));
	int pages = 0, bad = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cr_assert(!strchr(e->d_name, '\''), "odd file name man/%s", e->d_name);
		char page[PATH_MAX + 256], rendered[PATH_MAX + 16], cmd[3 * PATH_MAX + 512];
		snprintf(page, sizeof page, "%s/%s", dir, e->d_name);
		struct stat st;
		cr_assert_eq(stat(page, &st), 0, "stat %s: %s", page, strerror(errno));
		if (!S_ISREG(st.st_mode))
			continue;
		pages++;
		snprintf(rendered, sizeof rendered, "%s/out", tmp);
		/* Anything at all on stderr (man-db's or troff's) is a defect. */
		snprintf(cmd, sizeof cmd,
			 "cd '%s' && LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -E UTF-8 -l '%s' "
			 "2>&1 >'%s'",
			 tmp, page, rendered);
		int status = run(cmd, out, sizeof out);
		struct stat rs;
		int empty = stat(rendered, &rs) < 0 || rs.st_size == 0;
		if (status || out[0] || empty) {
			bad++;
			cr_log_error("man/%s: exit status %d%s\n%s", e->d_name, status,
				     empty ? ", no output" : "", out);
		}
		unlink(rendered);
	}
	closedir(d);
	for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
		snprintf(link, sizeof link, "%s/%s", tmp, sections[i]);
		unlink(link);
	}
	rmdir(tmp);
	cr_assert_gt(pages, 0, "no pages in %s", dir);
	cr_assert_eq(bad, 0, "%d of %d man pages render with warnings or errors (see above)", bad,
		     pages);
}

Test(man, every_public_function_has_a_page)
{
	char dir[PATH_MAX];
	man_dir(dir, sizeof dir);
	int missing = 0;
	for (size_t i = 0; i < sizeof public_functions / sizeof *public_functions; i++) {
		char page[PATH_MAX + 320];
		snprintf(page, sizeof page, "%s/%s.3", dir, public_functions[i]);
		struct stat st;
		if (stat(page, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
			missing++;
			cr_log_error("no man page man/%s.3 for %s()", public_functions[i],
				     public_functions[i]);
			continue;
		}
		/* A link page (`.so man3/other.3`) must name a page that exists. */
		FILE *f = fopen(page, "r");
		cr_assert(f, "%s: %s", page, strerror(errno));
		char line[512] = "";
		if (!fgets(line, sizeof line, f))
			line[0] = '\0';
		fclose(f);
		char target[256];
		if (sscanf(line, ".so man3/%255s", target) == 1 && has_suffix(target, ".3")) {
			snprintf(page, sizeof page, "%s/%s", dir, target);
			if (stat(page, &st) < 0) {
				missing++;
				cr_log_error("man/%s.3 links to missing man/%s",
					     public_functions[i], target);
			}
		}
	}
	static const char *const others[] = {"kqaio.7", "kqaio-run.1", "kqaio-bench.1"};
	for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
		char page[PATH_MAX + 64];
		snprintf(page, sizeof page, "%s/%s", dir, others[i]);
		struct stat st;
		if (stat(page, &st) < 0) {
			missing++;
			cr_log_error("no man page man/%s", others[i]);
		}
	}
	cr_assert_eq(missing, 0, "%d man pages missing (see above)", missing);
}
