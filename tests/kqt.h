/* Shared helpers for kqaio's tests: temporary files with a known pattern, waits. */
#ifndef KQT_H
#define KQT_H

#include <aio.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#ifdef KQT_SHIM
#include "kqt_shim.h"
#else
#include <criterion/criterion.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

/* The byte at file offset off of every pattern file. */
static inline unsigned char kqt_byte(off_t off)
{
	return (unsigned char)((off * 131 + (off >> 12) * 7) & 0xff);
}

static inline void kqt_fill(void *buf, off_t off, size_t len)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = kqt_byte(off + (off_t)i);
}

static inline int kqt_check(const void *buf, off_t off, size_t len)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i < len; i++)
		if (p[i] != kqt_byte(off + (off_t)i))
			return 0;
	return 1;
}

/* An unlinked file in dir (NULL: /dev/shm, tmpfs), size bytes of the pattern. */
static inline int kqt_file_in(const char *dir, size_t size)
{
	char path[256];
	snprintf(path, sizeof path, "%s/kqaio-test-XXXXXX", dir ? dir : "/dev/shm");
	int fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
	unlink(path);
	char buf[65536];
	for (size_t off = 0; off < size; off += sizeof buf) {
		size_t n = size - off < sizeof buf ? size - off : sizeof buf;
		kqt_fill(buf, (off_t)off, n);
		cr_assert(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n);
	}
	return fd;
}

static inline int kqt_file(size_t size)
{
	return kqt_file_in(NULL, size);
}

/* A directory on a real disk (not tmpfs) for tests that want one. */
static inline const char *kqt_disk_dir(void)
{
	const char *d = getenv("KQAIO_TEST_DISK_DIR");
	return d ? d : "/var/tmp";
}

/* A file of size bytes of the pattern on disk, opened O_DIRECT (reads go to
 * the device); skips the test where the disk has no O_DIRECT. */
static inline int kqt_direct_file(size_t size)
{
	int fd = kqt_file_in(kqt_disk_dir(), size);
	cr_assert_eq(fsync(fd), 0);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int dfd = open(path, O_RDONLY | O_DIRECT);
	close(fd);
	if (dfd < 0)
		cr_skip_test("no O_DIRECT in %s", kqt_disk_dir());
	return dfd;
}

static inline void kqt_cb(struct aiocb *cb, int fd, void *buf, size_t n, off_t off)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = n;
	cb->aio_offset = off;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

/* Waits for cb with aio_suspend and returns aio_return's value. */
static inline ssize_t kqt_wait(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS) {
		int r = aio_suspend(l, 1, NULL);
		cr_assert(r == 0 || errno == EINTR, "aio_suspend: %s", strerror(errno));
	}
	return aio_return(cb);
}

static inline void kqt_block_sig(int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
}

/* Takes one pending sig (blocked) within ms milliseconds; 0 if none came. */
static inline int kqt_take_sig(int sig, siginfo_t *si, long ms)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int r;
	do
		r = sigtimedwait(&s, si, &ts);
	while (r < 0 && errno == EINTR);
	return r == sig;
}

/* The syscall thread tid sleeps in, once it is a or b (within 2 s); -1 if it
 * never is. */
static inline long kqt_sleeping_in(pid_t tid, long a, long b)
{
	char path[64], line[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	for (int i = 0; i < 400; i++) {
		FILE *f = fopen(path, "r");
		long nr = -1;
		if (f && fgets(line, sizeof line, f))
			nr = atol(line);
		if (f)
			fclose(f);
		if (nr == a || nr == b)
			return nr;
		usleep(5 * 1000);
	}
	return -1;
}

/* Threads of this process; with a name, only those named so (kqaio-io...). */
static inline int kqt_count_threads(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	cr_assert(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (!name) {
			n++;
			continue;
		}
		char path[300], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof comm, f))
				comm[0] = 0;
			fclose(f);
		}
		comm[strcspn(comm, "\n")] = 0;
		n += !strcmp(comm, name);
	}
	closedir(d);
	return n;
}

/* Loop devices are shared by the whole machine: tests in parallel processes
 * take turns, holding this lock until the test's process exits. */
static inline void kqt_loop_lock(void)
{
	int fd = open("/tmp/kqaio-tests-loop.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "loop lock: %s", strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0, "loop lock: %s", strerror(errno));
}

/* Attaches a loop device over a fresh file of size bytes in kqt_disk_dir() (its name
 * starts with prefix) and puts its name (/dev/loopN) in dev. Skips the test when not
 * root or when losetup fails; takes kqt_loop_lock() first. */
static inline void kqt_loop_attach(const char *prefix, off_t size, char *dev, size_t len)
{
	if (geteuid() != 0)
		cr_skip_test("not root: no loop device");
	char path[256];
	snprintf(path, sizeof path, "%s/%s-XXXXXX", kqt_disk_dir(), prefix);
	int f = mkstemp(path);
	cr_assert(f >= 0, "mkstemp %s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(f, size), 0);
	close(f);
	char cmd[400];
	kqt_loop_lock();
	snprintf(cmd, sizeof cmd, "losetup --find --show %s 2>/dev/null", path);
	FILE *p = popen(cmd, "r");
	char line[64] = "";
	if (p) {
		if (!fgets(line, sizeof line, p))
			line[0] = 0;
		pclose(p);
	}
	/* The loop device holds the file; its name is no longer needed. */
	unlink(path);
	line[strcspn(line, "\n")] = 0;
	if (strncmp(line, "/dev/loop", 9) != 0)
		cr_skip_test("losetup failed (no loop devices here?)");
	snprintf(dev, len, "%s", line);
}

/* Detaches the loop device named in dev, if any, and empties dev. */
static inline void kqt_loop_detach(char *dev)
{
	if (dev[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "losetup -d %s 2>/dev/null", dev);
		if (system(cmd) != 0) {
			/* Already gone: autoclear detached it when the last fd closed. */
		}
		dev[0] = 0;
	}
}

/* Polls cond for up to ms milliseconds. */
#define kqt_eventually(cond, ms)                                                                   \
	({                                                                                         \
		int ok_ = 0;                                                                       \
		for (int i_ = 0; i_ < (ms) && !(ok_ = !!(cond)); i_++)                             \
			usleep(1000);                                                              \
		ok_;                                                                               \
	})

#endif
