/* Installation: `make install PREFIX=<a temporary prefix>` from the build the
 * suite is running on, then the examples built out of tree with nothing but
 * `pkg-config` flags against the installed copy — linked to libkqaio.so, to
 * libkqaio.a (kqaio-static.pc), and fully static — and run on a file; the
 * installed man pages and kqaio-run; and `make uninstall` leaving no file
 * behind. It checks packaging, not runtime behaviour: the sanitizer builds
 * skip it. The source root is $KQAIO_SRC, the build $KQAIO_BUILD (make check
 * sets both), else . and ./build. */
#include "kqt.h"

#include <limits.h>
#include <sys/wait.h>

/* snprintf into an array, asserting that it fit. */
#define fmt(buf, ...)                                                                              \
	cr_assert_lt((size_t)snprintf(buf, sizeof buf, __VA_ARGS__), sizeof buf, "%s is too long", \
		     #buf)

static char tmp[64]; /* this test's temporary directory; the prefix is tmp/prefix */

static void remove_tmp(void)
{
	if (tmp[0]) {
		char cmd[128];
		fmt(cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0) {
			/* Nothing more to do: it is under /tmp. */
		}
	}
}

TestSuite(install, .timeout = 60, .fini = remove_tmp);

/* Runs cmd with sh, stderr with stdout; returns its exit status and what it
 * printed, in out. */
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

/* Like run, but the command must succeed. */
#define must(out, ...)                                                                             \
	do {                                                                                       \
		char cmd_[8192];                                                                   \
		fmt(cmd_, __VA_ARGS__);                                                            \
		int st_ = run(cmd_, out, sizeof out);                                              \
		cr_assert_eq(st_, 0, "exit status %d of\n  %s\n%s", st_, cmd_, out);               \
	} while (0)

static char src[PATH_MAX], build[PATH_MAX], prefix[PATH_MAX + 64];

/* Make as a command line: the source and build trees, and none of the
 * variables of the make that may be running this suite (MAKEFLAGS would pass
 * on its SAN=, its TESTFLAGS= and its jobserver). */
static char make[3 * PATH_MAX];

/* Skips under the sanitizers; finds the trees; makes tmp; checks that the build
 * is up to date, so that `make install` only copies (it must not build under a
 * running suite); installs into tmp/prefix. */
static void install(void)
{
	const char *san = getenv("KQAIO_SAN");
	if (san && *san)
		cr_skip_test("the %s build: the install test checks packaging, run it in the plain "
			     "build",
			     san);
	char out[16384];
	cr_assert_eq(
	    run("command -v pkg-config && command -v make && command -v readelf", out, sizeof out),
	    0, "pkg-config, make or readelf is missing: run scripts/deps\n%s", out);

	const char *s = getenv("KQAIO_SRC"), *b = getenv("KQAIO_BUILD");
	if (!(s && *s))
		s = ".";
	cr_assert(realpath(s, src), "source tree %s: %s", s, strerror(errno));
	char path[PATH_MAX + 32];
	if (!(b && *b)) {
		fmt(path, "%s/build", src);
		b = path;
	}
	cr_assert(realpath(b, build), "build directory %s: %s (set KQAIO_BUILD)", b,
		  strerror(errno));
	/* The build as the Makefile names it (build, not /abs/build), so that the
	 * dependency files it wrote apply. */
	size_t n = strlen(src);
	const char *rel = !strncmp(build, src, n) && build[n] == '/' ? build + n + 1 : build;
	fmt(make,
	    "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -C '%s' SAN= "
	    "BUILD='%s'",
	    src, rel);

	fmt(tmp, "/tmp/kqaio-install-XXXXXX");
	cr_assert(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
	fmt(prefix, "%s/prefix", tmp);

	char cmd[4 * PATH_MAX];
	fmt(cmd, "%s -q all 2>&1", make);
	int st = run(cmd, out, sizeof out);
	cr_assert_eq(st, 0,
		     "%s is not up to date (make -q all: status %d): the install test installs "
		     "the build the suite runs on and must not rebuild it; run make first\n%s",
		     build, st, out);
	must(out, "%s install PREFIX='%s' 2>&1", make, prefix);
}

/* tmp/src: size bytes of the test pattern. */
static void source_file(size_t size)
{
	char path[PATH_MAX];
	fmt(path, "%s/src", tmp);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	char buf[65536];
	for (size_t off = 0; off < size; off += sizeof buf) {
		size_t k = size - off < sizeof buf ? size - off : sizeof buf;
		kqt_fill(buf, (off_t)off, k);
		cr_assert_eq(pwrite(fd, buf, k, (off_t)off), (ssize_t)k);
	}
	close(fd);
}

/* The C compiler for the out-of-tree builds: $CC, else cc. */
static const char *cc(void)
{
	const char *c = getenv("CC");
	return c && *c ? c : "cc";
}

/* The examples, copied into tmp: they build there with pkg-config's flags
 * alone, nothing pointing into the source tree. */
static void copy_examples(void)
{
	char out[4096];
	must(out, "cp '%s/examples/aio-copy.c' '%s/examples/bsd-copy.c' '%s/' 2>&1", src, src, tmp);
}

/* Copies tmp/src with tmp/prog into tmp/dst (env before the program), checks
 * the copy, and returns what the program printed in out. */
static void copy_with(const char *prog, const char *env, char *out, size_t size)
{
	char cmd[4 * PATH_MAX];
	fmt(cmd, "cd '%s' && rm -f dst && %s ./%s src dst 2>&1 && cmp src dst 2>&1", tmp, env,
	    prog);
	int st = run(cmd, out, size);
	cr_assert_eq(st, 0, "exit status %d of\n  %s\n%s", st, cmd, out);
}

/* The flags pkg-config gives for pc (and options), checked to name the prefix
 * and nothing in the source or build tree. */
static void pc_flags(const char *opts, const char *pc, char *flags, size_t size)
{
	char cmd[2 * PATH_MAX];
	fmt(cmd, "PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config %s %s 2>&1", prefix, opts, pc);
	int st = run(cmd, flags, size);
	cr_assert_eq(st, 0, "%s: status %d\n%s", cmd, st, flags);
	flags[strcspn(flags, "\n")] = '\0';
	cr_assert(strstr(flags, prefix), "%s: %s does not name the prefix %s", cmd, flags, prefix);
	cr_assert(!strstr(flags, src) && !strstr(flags, build),
		  "%s: %s points into the source tree %s", cmd, flags, src);
}

/* Builds tmp/NAME.c into tmp/bin with extra cc options and the flags. */
static void compile(const char *name, const char *bin, const char *opts, const char *flags)
{
	char out[16384];
	must(out, "cd '%s' && %s -std=gnu11 -O2 -Wall -Wextra -Werror %s %s.c -o %s %s 2>&1", tmp,
	     cc(), opts, name, bin, flags);
}

/* The examples' report names kqaio and its version: kqaio served the copy. */
static void says_kqaio(const char *prog, const char *out)
{
	char want[64];
	fmt(want, "on kqaio %s (", kqaio_version());
	if (!strncmp(prog, "aio-copy", 8))
		cr_assert(strstr(out, want), "%s did not report kqaio %s:\n%s", prog,
			  kqaio_version(), out);
	else
		cr_assert(strstr(out, " of ") && strstr(out, "copied "), "%s:\n%s", prog, out);
}

/* The dynamic section of tmp/bin. */
static void dynamic(const char *bin, char *out, size_t size)
{
	char cmd[PATH_MAX + 64];
	fmt(cmd, "readelf -d '%s/%s' 2>&1", tmp, bin);
	cr_assert_eq(run(cmd, out, size), 0, "%s\n%s", cmd, out);
}

static const char *const examples[] = {"aio-copy", "bsd-copy"};

Test(install, shared_link_against_the_installed_library)
{
	install();
	copy_examples();
	source_file((1 << 20) + 12345);
	char flags[4096], out[16384], env[PATH_MAX + 64], want[PATH_MAX + 128];
	pc_flags("--cflags --libs", "kqaio", flags, sizeof flags);
	cr_assert(!strstr(flags, "libkqaio.a"), "kqaio.pc links the archive: %s", flags);
	fmt(env, "LD_LIBRARY_PATH='%s/lib'", prefix);
	fmt(want, "libkqaio.so.0 => %s/lib/libkqaio.so.0 ", prefix);
	for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
		const char *ex = examples[i];
		compile(ex, ex, "", flags);
		dynamic(ex, out, sizeof out);
		cr_assert(strstr(out, "[libkqaio.so.0]"), "%s does not need libkqaio.so.0:\n%s", ex,
			  out);
		/* It loads the installed copy, and no other kqaio. */
		must(out, "cd '%s' && %s ldd ./%s", tmp, env, ex);
		cr_assert(strstr(out, want), "%s does not load %s/lib/libkqaio.so.0:\n%s", ex,
			  prefix, out);
		cr_assert(!strstr(out, build), "%s loads from the build %s:\n%s", ex, build, out);
		copy_with(ex, env, out, sizeof out);
		says_kqaio(ex, out);
	}
}

Test(install, static_link_against_the_installed_archive)
{
	install();
	copy_examples();
	source_file((1 << 20) + 4321);
	char flags[4096], out[16384];
	/* kqaio-static.pc: libkqaio.a in the program, liburing and libc shared. */
	pc_flags("--cflags --libs", "kqaio-static", flags, sizeof flags);
	for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
		char bin[64];
		fmt(bin, "%s-static", examples[i]);
		compile(examples[i], bin, "", flags);
		dynamic(bin, out, sizeof out);
		cr_assert(!strstr(out, "libkqaio"), "%s still needs libkqaio:\n%s", bin, out);
		cr_assert(strstr(out, "[liburing.so"), "%s: liburing is not shared:\n%s", bin, out);
		copy_with(bin, "", out, sizeof out);
		says_kqaio(bin, out);
	}
	/* Fully static: -static, and kqaio.pc's private libraries. */
	pc_flags("--cflags --libs --static", "kqaio", flags, sizeof flags);
	cr_assert(strstr(flags, "-luring"), "pkg-config --static omits liburing: %s", flags);
	for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
		char bin[64];
		fmt(bin, "%s-full", examples[i]);
		compile(examples[i], bin, "-static", flags);
		dynamic(bin, out, sizeof out);
		cr_assert(strstr(out, "no dynamic section"), "%s is not static:\n%s", bin, out);
		copy_with(bin, "", out, sizeof out);
		says_kqaio(bin, out);
	}
}

Test(install, man_pages_and_kqaio_run)
{
	install();
	char out[16384], want[PATH_MAX + 128];
	/* man finds the pages under the prefix (MANPATH only there) and renders
	 * them there; a link page (.so) resolves to its target in the prefix. */
	static const char *const pages[][3] = {
	    {"7", "kqaio", "kqaio"},	    {"3", "aio_read", "aio_read"},
	    {"3", "aio_readv", "aio_read"}, {"3", "kqueue", "kqueue"},
	    {"3", "kevent", "kqueue"},	    {"1", "kqaio-run", "kqaio-run"},
	};
	for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
		must(out, "MANPATH='%s/share/man' man -w %s %s 2>&1", prefix, pages[i][0],
		     pages[i][1]);
		fmt(want, "%s/share/man/man%s/%s.%s\n", prefix, pages[i][0], pages[i][2],
		    pages[i][0]);
		cr_assert_str_eq(out, want, "man -w %s %s: %s, not %s", pages[i][0], pages[i][1],
				 out, want);
		must(out,
		     "MANPATH='%s/share/man' LC_ALL=C.UTF-8 MANWIDTH=80 man -P cat %s %s 2>&1 "
		     ">/dev/null",
		     prefix, pages[i][0], pages[i][1]);
		cr_assert_eq(out[0], '\0', "man %s %s under the prefix:\n%s", pages[i][0],
			     pages[i][1], out);
	}

	/* kqaio-run: executable, its version, and it preloads the installed library. */
	char tool[PATH_MAX + 64], lib[PATH_MAX + 64];
	fmt(tool, "%s/bin/kqaio-run", prefix);
	struct stat st;
	cr_assert_eq(stat(tool, &st), 0, "%s: %s", tool, strerror(errno));
	cr_assert((st.st_mode & 0777) == 0755, "%s has mode %o", tool, st.st_mode & 0777);
	must(out, "'%s' --version 2>&1", tool);
	fmt(want, "kqaio-run %s\n", kqaio_version());
	cr_assert_str_eq(out, want);
	must(out, "env -u KQAIO_LIB -u LD_PRELOAD '%s' sh -c 'echo \"$LD_PRELOAD\"'", tool);
	fmt(lib, "%s/lib/libkqaio.so.0\n", prefix);
	cr_assert_str_eq(out, lib, "kqaio-run preloads %s, not the installed %s", out, lib);
	lib[strlen(lib) - 1] = '\0';
	cr_assert_eq(access(lib, R_OK), 0, "%s: %s", lib, strerror(errno));
}

Test(install, uninstall_removes_every_file)
{
	install();
	char out[16384];
	must(out, "find '%s' ! -type d | wc -l", prefix);
	cr_assert_gt(atoi(out), 20, "make install installed %s files", out);
	must(out, "%s uninstall PREFIX='%s' 2>&1", make, prefix);
	/* Directories may stay (a shared prefix has them anyway); no file may. */
	must(out, "find '%s' ! -type d", prefix);
	cr_assert_eq(out[0], '\0', "make uninstall left these behind:\n%s", out);
}
