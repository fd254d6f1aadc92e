/* EVFILT_VNODE on files and directories in a fresh directory on /dev/shm:
 * each NOTE_* for the operation that makes it, only the notes asked for,
 * EV_CLEAR, shared inodes, and many files on one kq. */
#include "kqt.h"

#include <sys/event.h>

static char dir[64];

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[512];
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			rm_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

static void setup(void)
{
	strcpy(dir, "/dev/shm/kqaio-vnode-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
	if (dir[0])
		rm_tree(dir);
}

TestSuite(kq_vnode, .timeout = 30, .init = setup, .fini = teardown);

#define NOTE_ALL (NOTE_DELETE | NOTE_WRITE | NOTE_EXTEND | NOTE_ATTRIB | NOTE_LINK | NOTE_RENAME)

static const struct timespec ts_5s = {5, 0};
static const struct timespec ts_50ms = {0, 50 * 1000000L};

static const char *in_dir(char *buf, const char *name)
{
	snprintf(buf, 256, "%s/%s", dir, name);
	return buf;
}

/* A file in the test directory with size bytes, opened read-write. */
static int make_file(const char *name, size_t size)
{
	char p[256];
	int fd = open(in_dir(p, name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "open %s: %s", p, strerror(errno));
	char buf[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
	cr_assert(size <= sizeof buf);
	cr_assert_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
	return fd;
}

static int kq_new(void)
{
	int kq = kqueue();
	cr_assert(kq >= 0, "kqueue: %s", strerror(errno));
	return kq;
}

static int chg(int kq, int fd, unsigned short flags, unsigned fflags, void *udata)
{
	struct kevent kev;
	EV_SET(&kev, (uintptr_t)fd, EVFILT_VNODE, flags, fflags, 0, udata);
	int r = kevent(kq, &kev, 1, NULL, 0, NULL);
	if (r == 0)
		return 0;
	cr_assert_eq(r, -1, "kevent returned %d", r);
	return errno;
}

static void watch(int kq, int fd, unsigned short flags, unsigned fflags, void *udata)
{
	int e = chg(kq, fd, EV_ADD | flags, fflags, udata);
	cr_assert_eq(e, 0, "EV_ADD vnode fd %d: %s", fd, strerror(e));
}

static int kwait(int kq, struct kevent *ev, int n, const struct timespec *ts)
{
	int r = kevent(kq, NULL, 0, ev, n, ts);
	cr_assert(r >= 0, "kevent: %s", strerror(errno));
	return r;
}

/* Exactly one event, for fd, within 5 s; returns its fflags. */
static unsigned one(int kq, int fd, void *udata)
{
	struct kevent ev[8];
	int n = kwait(kq, ev, 8, &ts_5s);
	cr_assert_eq(n, 1, "fd %d: %d events, want 1 (first fflags 0x%x)", fd, n,
		     n > 0 ? ev[0].fflags : 0);
	cr_assert_eq(ev[0].ident, (uintptr_t)fd, "ident %lu, want %d", (unsigned long)ev[0].ident,
		     fd);
	cr_assert_eq(ev[0].filter, EVFILT_VNODE);
	cr_assert_eq(ev[0].flags & EV_ERROR, 0, "EV_ERROR, data %ld", (long)ev[0].data);
	cr_assert_eq(ev[0].udata, udata);
	return ev[0].fflags;
}

static void none(int kq)
{
	struct kevent ev[4];
	int n = kwait(kq, ev, 4, &ts_50ms);
	cr_assert_eq(n, 0, "unexpected event: ident %lu filter %d fflags 0x%x",
		     (unsigned long)ev[0].ident, ev[0].filter, ev[0].fflags);
}

Test(kq_vnode, write_in_place_is_note_write)
{
	int fd = make_file("f", 8);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, (void *)1);
	none(kq);
	cr_assert_eq(pwrite(fd, "ABCD", 4, 2), 4);
	unsigned ff = one(kq, fd, (void *)1);
	cr_assert_eq(ff, NOTE_WRITE, "fflags 0x%x, want NOTE_WRITE alone", ff);
	none(kq);
	close(kq);
	close(fd);
}

Test(kq_vnode, growing_write_is_note_write_and_extend)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	cr_assert_eq(pwrite(fd, "0123456789", 10, 0), 10);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_WRITE | NOTE_EXTEND, "fflags 0x%x", ff);
	/* Writing inside it again does not extend it. */
	cr_assert_eq(pwrite(fd, "xy", 2, 3), 2);
	ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_WRITE, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, write_through_another_fd_is_seen)
{
	int fd = make_file("f", 4);
	char p[256];
	int other = open(in_dir(p, "f"), O_WRONLY | O_APPEND | O_CLOEXEC);
	cr_assert(other >= 0);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_WRITE | NOTE_EXTEND, NULL);
	cr_assert_eq(write(other, "zz", 2), 2);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_WRITE | NOTE_EXTEND, "fflags 0x%x", ff);
	close(kq);
	close(other);
	close(fd);
}

Test(kq_vnode, fchmod_is_note_attrib)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	cr_assert_eq(fchmod(fd, 0600), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_ATTRIB, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, link_is_note_link)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	char a[256], b[256];
	cr_assert_eq(link(in_dir(a, "f"), in_dir(b, "g")), 0, "link: %s", strerror(errno));
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_LINK, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, unlink_with_fd_open_is_note_delete)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, (void *)9);
	char a[256];
	cr_assert_eq(unlink(in_dir(a, "f")), 0);
	unsigned ff = one(kq, fd, (void *)9);
	cr_assert_eq(ff, NOTE_DELETE, "fflags 0x%x", ff);
	/* The open file still works, and still reports. */
	cr_assert_eq(pwrite(fd, "q", 1, 0), 1);
	ff = one(kq, fd, (void *)9);
	cr_assert_eq(ff, NOTE_WRITE, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, unlink_of_one_of_two_links_is_note_delete)
{
	int fd = make_file("f", 4);
	char a[256], b[256];
	cr_assert_eq(link(in_dir(a, "f"), in_dir(b, "g")), 0);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	cr_assert_eq(unlink(a), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_DELETE, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, rename_is_note_rename)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	char a[256], b[256];
	cr_assert_eq(rename(in_dir(a, "f"), in_dir(b, "h")), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_RENAME, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	return fd;
}

Test(kq_vnode, directory_file_created_is_note_write)
{
	int d = open_dir(dir);
	int kq = kq_new();
	watch(kq, d, EV_CLEAR, NOTE_ALL, (void *)0xd);
	none(kq);
	int fd = make_file("new", 0);
	unsigned ff = one(kq, d, (void *)0xd);
	cr_assert_eq(ff, NOTE_WRITE, "fflags 0x%x, want NOTE_WRITE", ff);
	close(fd);
	/* Removing it writes the directory again. */
	char a[256];
	cr_assert_eq(unlink(in_dir(a, "new")), 0);
	ff = one(kq, d, (void *)0xd);
	cr_assert_eq(ff, NOTE_WRITE, "fflags 0x%x", ff);
	close(kq);
	close(d);
}

Test(kq_vnode, directory_subdirectory_created_is_note_link_and_write)
{
	int d = open_dir(dir);
	int kq = kq_new();
	watch(kq, d, EV_CLEAR, NOTE_ALL, NULL);
	char a[256];
	cr_assert_eq(mkdir(in_dir(a, "sub"), 0755), 0);
	unsigned ff = one(kq, d, NULL);
	cr_assert_eq(ff, NOTE_LINK | NOTE_WRITE, "fflags 0x%x", ff);
	cr_assert_eq(rmdir(a), 0);
	ff = one(kq, d, NULL);
	cr_assert_eq(ff, NOTE_LINK | NOTE_WRITE, "fflags 0x%x", ff);
	close(kq);
	close(d);
}

Test(kq_vnode, directory_not_written_by_writes_to_its_files)
{
	/* Writing or chmod-ing a file leaves its directory unchanged. */
	int fd = make_file("f", 4);
	int d = open_dir(dir);
	int kq = kq_new();
	watch(kq, d, EV_CLEAR, NOTE_ALL, NULL);
	cr_assert_eq(pwrite(fd, "0123456789", 10, 0), 10);
	cr_assert_eq(fchmod(fd, 0600), 0);
	none(kq);
	close(kq);
	close(d);
	close(fd);
}

Test(kq_vnode, only_requested_notes_are_reported)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ATTRIB, NULL);
	cr_assert_eq(pwrite(fd, "0123456789", 10, 0), 10);
	none(kq);
	cr_assert_eq(fchmod(fd, 0600), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_ATTRIB, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, ev_clear_resets_fflags_after_a_report)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR, NOTE_ALL, NULL);
	cr_assert_eq(pwrite(fd, "ab", 2, 0), 2);
	cr_assert_eq(one(kq, fd, NULL), NOTE_WRITE);
	none(kq);
	cr_assert_eq(fchmod(fd, 0600), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_ATTRIB, "fflags 0x%x: NOTE_WRITE was not cleared", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, without_clear_notes_accumulate_and_stay_reported)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, 0, NOTE_ALL, NULL);
	cr_assert_eq(pwrite(fd, "ab", 2, 0), 2);
	cr_assert_eq(one(kq, fd, NULL), NOTE_WRITE);
	cr_assert_eq(one(kq, fd, NULL), NOTE_WRITE); /* level: again */
	cr_assert_eq(fchmod(fd, 0600), 0);
	/* The kernel queues the change at once: wait for the note, not a time. */
	unsigned ff = 0;
	for (int i = 0; i < 5000 && ff != (NOTE_WRITE | NOTE_ATTRIB); i++) {
		ff = one(kq, fd, NULL);
		cr_assert(ff == NOTE_WRITE || ff == (NOTE_WRITE | NOTE_ATTRIB), "fflags 0x%x", ff);
		if (ff != (NOTE_WRITE | NOTE_ATTRIB))
			usleep(1000);
	}
	cr_assert_eq(ff, NOTE_WRITE | NOTE_ATTRIB, "fflags 0x%x", ff);
	/* EV_DELETE ends it. */
	cr_assert_eq(chg(kq, fd, EV_DELETE, 0, NULL), 0);
	none(kq);
	close(kq);
	close(fd);
}

Test(kq_vnode, dispatch_then_enable)
{
	int fd = make_file("f", 4);
	int kq = kq_new();
	watch(kq, fd, EV_CLEAR | EV_DISPATCH, NOTE_WRITE | NOTE_ATTRIB, NULL);
	cr_assert_eq(pwrite(fd, "ab", 2, 0), 2);
	cr_assert_eq(one(kq, fd, NULL), NOTE_WRITE);
	cr_assert_eq(fchmod(fd, 0600), 0);
	none(kq); /* disabled by the report */
	cr_assert_eq(chg(kq, fd, EV_ENABLE, 0, NULL), 0);
	unsigned ff = one(kq, fd, NULL);
	cr_assert_eq(ff, NOTE_ATTRIB, "fflags 0x%x", ff);
	close(kq);
	close(fd);
}

Test(kq_vnode, two_fds_of_one_file_and_deleting_one_knote)
{
	int a = make_file("f", 4);
	char p[256];
	int b = open(in_dir(p, "f"), O_RDWR | O_CLOEXEC);
	cr_assert(b >= 0);
	int kq = kq_new();
	watch(kq, a, EV_CLEAR, NOTE_WRITE, (void *)1);
	watch(kq, b, EV_CLEAR, NOTE_WRITE, (void *)2);
	cr_assert_eq(pwrite(a, "x", 1, 0), 1);
	int seen = 0;
	while (seen != 3) {
		struct kevent ev[4];
		int n = kwait(kq, ev, 4, &ts_5s);
		cr_assert_gt(n, 0, "reports seen: mask %d of 3", seen);
		for (int i = 0; i < n; i++) {
			cr_assert_eq(ev[i].fflags, NOTE_WRITE);
			int bit = ev[i].ident == (uintptr_t)a	? 1
				  : ev[i].ident == (uintptr_t)b ? 2
								: 0;
			cr_assert_neq(bit, 0, "ident %lu", (unsigned long)ev[i].ident);
			cr_assert_eq(ev[i].udata, (void *)(intptr_t)bit);
			cr_assert_eq(seen & bit, 0, "fd %lu reported twice",
				     (unsigned long)ev[i].ident);
			seen |= bit;
		}
	}
	/* The other knote keeps the watch they share. */
	cr_assert_eq(chg(kq, a, EV_DELETE, 0, NULL), 0);
	cr_assert_eq(pwrite(b, "y", 1, 0), 1);
	cr_assert_eq(one(kq, b, (void *)2), NOTE_WRITE);
	close(kq);
	close(b);
	close(a);
}

Test(kq_vnode, two_kqs_on_one_file_both_report)
{
	int fd = make_file("f", 4);
	int kq1 = kq_new(), kq2 = kq_new();
	watch(kq1, fd, EV_CLEAR, NOTE_ATTRIB, (void *)1);
	watch(kq2, fd, EV_CLEAR, NOTE_ATTRIB, (void *)2);
	cr_assert_eq(fchmod(fd, 0640), 0);
	cr_assert_eq(one(kq1, fd, (void *)1), NOTE_ATTRIB);
	cr_assert_eq(one(kq2, fd, (void *)2), NOTE_ATTRIB);
	close(kq1);
	close(kq2);
	close(fd);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#define NFILES 200

Test(kq_vnode, two_hundred_files_on_one_kq_all_report)
{
	int fds[NFILES];
	for (int i = 0; i < NFILES; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%d", i);
		fds[i] = make_file(name, 4);
	}
	int before = count_fds();
	int kq = kq_new();
	static struct kevent ch[NFILES];
	for (int i = 0; i < NFILES; i++)
		EV_SET(&ch[i], (uintptr_t)fds[i], EVFILT_VNODE, EV_ADD | EV_CLEAR, NOTE_WRITE, 0,
		       (void *)(intptr_t)i);
	cr_assert_eq(kevent(kq, ch, NFILES, NULL, 0, NULL), 0, "kevent: %s", strerror(errno));
	int after = count_fds();
	cr_assert_leq(after - before, 5, "%d fds for one kq with %d vnode knotes", after - before,
		      NFILES);
	for (int i = 0; i < NFILES; i++)
		cr_assert_eq(pwrite(fds[i], "w", 1, 0), 1);
	static unsigned char seen[NFILES];
	memset(seen, 0, sizeof seen);
	int got = 0;
	while (got < NFILES) {
		struct kevent ev[64];
		int n = kwait(kq, ev, 64, &ts_5s);
		cr_assert_gt(n, 0, "only %d of %d files reported", got, NFILES);
		for (int j = 0; j < n; j++) {
			int i = (int)(intptr_t)ev[j].udata;
			cr_assert(i >= 0 && i < NFILES, "udata %p", ev[j].udata);
			cr_assert_eq(ev[j].ident, (uintptr_t)fds[i]);
			cr_assert_eq(ev[j].filter, EVFILT_VNODE);
			cr_assert_eq(ev[j].fflags, NOTE_WRITE, "file %d: fflags 0x%x", i,
				     ev[j].fflags);
			cr_assert_eq(seen[i], 0, "file %d reported twice", i);
			seen[i] = 1;
			got++;
		}
	}
	none(kq);
	close(kq);
	for (int i = 0; i < NFILES; i++)
		close(fds[i]);
}

Test(kq_vnode, bad_fd_is_ebadf)
{
	int kq = kq_new();
	int fd = make_file("f", 4);
	close(fd); /* now a closed number */
	cr_assert_eq(chg(kq, fd, EV_ADD, NOTE_WRITE, NULL), EBADF);
	cr_assert_eq(chg(kq, 1 << 20, EV_ADD, NOTE_WRITE, NULL), EBADF);
	struct kevent kev;
	EV_SET(&kev, (uintptr_t)-1, EVFILT_VNODE, EV_ADD, NOTE_WRITE, 0, NULL);
	cr_assert_eq(kevent(kq, &kev, 1, NULL, 0, NULL), -1);
	cr_assert_eq(errno, EBADF);
	/* As an EV_ERROR report when there is room. */
	struct kevent out;
	EV_SET(&kev, (uintptr_t)fd, EVFILT_VNODE, EV_ADD, NOTE_WRITE, 0, (void *)5);
	cr_assert_eq(kevent(kq, &kev, 1, &out, 1, NULL), 1);
	cr_assert_eq(out.flags, EV_ERROR);
	cr_assert_eq(out.data, EBADF);
	cr_assert_eq(out.ident, (uintptr_t)fd);
	cr_assert_eq(out.udata, (void *)5);
	close(kq);
}
