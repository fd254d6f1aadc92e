/* Per open file: the duplicate every job does its I/O through, so a job
 * reads and writes the file its fd named at submission whatever the number
 * names later (FreeBSD holds a file reference per job); submission order for
 * streams and O_APPEND writes; and the write list that makes aio_fsync a
 * barrier for earlier writes on its file. */
#include "aio/aio.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

_Static_assert(offsetof(struct kq_fd, gen) == 0, "reuse clears all of a kq_fd after gen");

static struct kq_fd *free_fds;
static struct kq_link live = {&live, &live}; /* every kq_fd holding a duplicate */

#define STATX_MNT_ID_UNIQUE_ 0x4000U /* Linux 6.8; not in older headers */

/* The last mount asked about, per thread: most programs read from one. Only
 * a unique mount id (never reused) may key this; without one, ask each time. */
static __thread uint64_t last_mnt;
static __thread int last_mem = -1;

static int memory_fs(int fd, const struct statx *sx)
{
	int unique = !!(sx->stx_mask & STATX_MNT_ID_UNIQUE_);
	if (unique && last_mem >= 0 && sx->stx_mnt_id == last_mnt)
		return last_mem;
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return 0;
	int mem = sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
	if (unique) {
		last_mnt = sx->stx_mnt_id;
		last_mem = mem;
	}
	return mem;
}

/* What each thread last learned of a few fds, each with the kq_fd of its
 * file: while our duplicate there is the same open file description as the
 * program's fd (F_DUPFD_QUERY, Linux 6.10), the inode and the access mode
 * are what they were, and one fcntl replaces fcntl and statx. Only a
 * seekable file's duplicate outlives its jobs; a stream is asked about each
 * time. */
#ifndef F_DUPFD_QUERY
#define F_DUPFD_QUERY 1027
#endif
enum { HINTS = 16 };
static __thread struct hint {
	int fd, kfd;
	uint32_t epoch, gen; /* kq_epoch, and f->gen when kfd was f's */
	struct kq_fd *f;     /* never freed: only reused, with gen bumped */
	struct kq_fdinfo fi;
} hints[HINTS];
static int query_off; /* the kernel has no F_DUPFD_QUERY: ask each time */

static int hinted(int fd, struct kq_fdinfo *fi)
{
	struct hint *h = &hints[fd & (HINTS - 1)];
	if (!h->f || h->fd != fd || h->epoch != __atomic_load_n(&kq_epoch, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&query_off, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&h->f->gen, __ATOMIC_SEQ_CST) != h->gen)
		return 0;
	int r = fcntl(fd, F_DUPFD_QUERY, h->kfd);
	if (r < 0 && errno == EINVAL)
		__atomic_store_n(&query_off, 1, __ATOMIC_RELAXED);
	/* Unchanged after the call: kfd was not yet closed (release bumps gen
	 * first), so it was still our duplicate when the kernel compared. */
	if (r != 1 || __atomic_load_n(&h->f->gen, __ATOMIC_SEQ_CST) != h->gen)
		return 0;
	*fi = h->fi;
	return 1;
}

/* Lock held: f now holds fi's file for this thread's next submissions. */
static void hint(const struct kq_fdinfo *fi, struct kq_fd *f)
{
	if (!f->keep)
		return;
	struct hint *h = &hints[fi->fd & (HINTS - 1)];
	h->fd = fi->fd;
	h->kfd = f->kfd;
	h->epoch = __atomic_load_n(&kq_epoch, __ATOMIC_RELAXED);
	h->gen = __atomic_load_n(&f->gen, __ATOMIC_RELAXED);
	h->f = f;
	h->fi = *fi;
}

int kq_fd_describe(int fd, struct kq_fdinfo *fi, int fresh_fl)
{
	if (fi->fd != fd) {
		if (fd >= 0 && hinted(fd, fi)) {
			/* F_SETFL may have changed O_APPEND since: a write asks. */
			if (fresh_fl &&
			    (fi->fl = fcntl(fd, F_GETFL)) != hints[fd & (HINTS - 1)].fi.fl)
				fi->kind = 0;
		} else {
			fi->fd = fd;
			fi->fl = fcntl(fd, F_GETFL);
			fi->kind = 0;
		}
	}
	if (fi->fl < 0 || (fi->fl & O_PATH))
		return EBADF;
	if (!fi->kind) {
		/* The mount too: it tells a tmpfs file (backend/inline.c) without
		 * another call, where the kernel has unique mount ids. */
		struct statx sx;
		unsigned mask =
		    STATX_TYPE | STATX_INO | (kq_config.inline_max ? STATX_MNT_ID_UNIQUE_ : 0);
		if (statx(fd, "", AT_EMPTY_PATH, mask, &sx) < 0)
			return EBADF;
		mode_t mode = sx.stx_mode;
		fi->dev = (uint64_t)sx.stx_dev_major << 32 | sx.stx_dev_minor;
		fi->ino = sx.stx_ino;
		fi->mem = S_ISREG(mode) && kq_config.inline_max && memory_fs(fd, &sx);
		/* Character devices that seek (/dev/zero, /dev/null) take offsets like
		 * files; ttys, pipes and sockets are streams. */
		fi->kind =
		    S_ISREG(mode) || S_ISBLK(mode) || (S_ISCHR(mode) && lseek(fd, 0, SEEK_CUR) >= 0)
			? KQ_FD_SEEKABLE
			: KQ_FD_STREAM;
	}
	return 0;
}

static int same_file(const struct kq_fd *f, const struct kq_fdinfo *fi)
{
	return f->dev == fi->dev && f->ino == fi->ino && f->fl == fi->fl;
}

struct kq_fd *kq_fd_lookup(const struct kq_fdinfo *fi)
{
	struct kq_fd *f = fi->fd < kq_aio.nfds ? kq_aio.fds[fi->fd] : NULL;
	return f && same_file(f, fi) ? f : NULL;
}

static void forget(struct kq_fd *f);

/* The state of the file fi describes, with a duplicate of its fd; 0 or errno. */
static int fd_get(const struct kq_fdinfo *fi, struct kq_fd **fp)
{
	int fd = fi->fd;
	if (fd >= kq_aio.nfds) {
		int n = kq_aio.nfds ? kq_aio.nfds : 64;
		while (n <= fd)
			n *= 2;
		struct kq_fd **t = realloc(kq_aio.fds, sizeof *t * (size_t)n);
		if (!t)
			return EAGAIN;
		memset(t + kq_aio.nfds, 0, sizeof *t * (size_t)(n - kq_aio.nfds));
		kq_aio.fds = t;
		__atomic_store_n(&kq_aio.nfds, n, __ATOMIC_RELAXED); /* kq_fd_closed looks first */
	}
	struct kq_fd *f = kq_aio.fds[fd];
	if (f && same_file(f, fi)) {
		hint(fi, f);
		*fp = f;
		return 0;
	}
	/* The number was closed and names another file now: the old state
	 * stays with the jobs still using it. */
	if (f)
		forget(f);
	if ((f = free_fds))
		free_fds = f->next_free;
	else if ((f = malloc(sizeof *f)))
		f->gen = 0;
	else
		return EAGAIN;
	/* All but gen, which a thread's hint may be reading (and which must
	 * never come back to a value a hint holds). */
	memset((char *)f + sizeof f->gen, 0, sizeof *f - sizeof f->gen);
	f->kfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (f->kfd < 0) {
		int err = errno == EBADF ? EBADF : EAGAIN; /* EMFILE: out of descriptors */
		f->next_free = free_fds;
		free_fds = f;
		return err;
	}
	f->fd = fd;
	f->dev = fi->dev;
	f->ino = fi->ino;
	f->fl = fi->fl;
	f->keep = fi->kind == KQ_FD_SEEKABLE;
	kq_list_init(&f->rq);
	kq_list_init(&f->wq);
	kq_list_init(&f->wb);
	kq_list_add_tail(&live, &f->link);
	kq_aio.fds[fd] = f;
	hint(fi, f);
	*fp = f;
	return 0;
}

/* Lets the duplicate go. The memory is kept for the next file, never freed:
 * an event the poller took before the DEL may still name it. */
static void release(struct kq_fd *f)
{
	if (f->registered)
		epoll_ctl(kq_aio.epfd, EPOLL_CTL_DEL, f->kfd, NULL);
	__atomic_add_fetch(&f->gen, 1, __ATOMIC_SEQ_CST); /* before the number is free */
	kq_close(f->kfd);
	f->kfd = -1;
	f->registered = 0;
	f->armed = 0;
	if (f->fd < kq_aio.nfds && kq_aio.fds[f->fd] == f)
		kq_aio.fds[f->fd] = NULL;
	kq_list_del(&f->link);
	f->next_free = free_fds;
	free_fds = f;
}

/* The number no longer names f's file: its jobs keep it, the last lets go. */
static void forget(struct kq_fd *f)
{
	f->gone = 1;
	if (f->fd < kq_aio.nfds && kq_aio.fds[f->fd] == f)
		kq_aio.fds[f->fd] = NULL;
	if (!f->refs)
		release(f);
}

/* The last job on the file is over. A stream's duplicate goes now, so that a
 * close by the program closes the socket. A seekable file's stays until the
 * program closes its fd (kq_fd_closed) or the number names another file:
 * closing a duplicate would drop the process's fcntl() record locks on the
 * file, which POSIX ties to any close of it, and the next job needs no dup. */
void kq_fd_put(struct kq_fd *f)
{
	if (--f->refs)
		return;
	if (!f->keep || f->gone)
		release(f);
}

void kq_fd_closed(int fd)
{
	if (fd < 0 || fd >= __atomic_load_n(&kq_aio.nfds, __ATOMIC_RELAXED))
		return; /* most closes: never an AIO fd */
	pthread_mutex_lock(&kq_aio.lock);
	struct kq_fd *f = fd < kq_aio.nfds ? kq_aio.fds[fd] : NULL; /* again, under the lock */
	if (f)
		forget(f);
	pthread_mutex_unlock(&kq_aio.lock);
}

void kq_fd_fork_child(void)
{
	/* The table describes the parent's jobs; their duplicates are ours to close. */
	for (struct kq_link *l; (l = kq_list_first(&live));) {
		struct kq_fd *f = kq_container_of(l, struct kq_fd, link);
		kq_list_del(l);
		kq_close(f->kfd);
	}
	kq_aio.fds = NULL;
	__atomic_store_n(&kq_aio.nfds, 0, __ATOMIC_RELAXED);
	free_fds = NULL;
}

static int is_sync(const struct kq_job *j)
{
	return j->op == KQ_OP_FSYNC || j->op == KQ_OP_FDSYNC;
}

int kq_fd_enqueue(struct kq_job *j, const struct kq_fdinfo *fi)
{
	struct kq_fd *f;
	int err = fd_get(fi, &f);
	if (err)
		return err;
	f->refs++;
	j->fdst = f;
	j->kfd = f->kfd;
	if (j->flags & KQ_J_INLINE) {
		if (kq_aio.be[KQ_BE_INLINE]->queue(j) == 0)
			return 0;
		j->flags &= (uint8_t)~KQ_J_INLINE;
	}
	int sync = is_sync(j);
	if (sync && !kq_list_empty(&f->wb)) {
		/* Only a write can head the list: fsyncs leave it as they reach the head. */
		kq_list_add_tail(&f->wb, &j->wlink);
		kq_job_move(j, KQ_W_BARRIER);
		return 0;
	}
	if (j->op == KQ_OP_WRITE)
		kq_list_add_tail(&f->wb, &j->wlink);
	if (j->flags & KQ_J_ORDERED) {
		struct kq_link *q = j->op == KQ_OP_READ ? &f->rq : &f->wq;
		int head = kq_list_empty(q);
		kq_list_add_tail(q, &j->qlink);
		if (!head) {
			kq_job_move(j, KQ_W_ORDER);
			return 0;
		}
	}
	kq_dispatch(j);
	return 0;
}

void kq_fd_job_done(struct kq_job *j)
{
	struct kq_fd *f = j->fdst;
	if (!f)
		return;
	if (!kq_list_empty(&j->wlink)) {
		kq_list_del(&j->wlink);
		struct kq_link *l;
		while ((l = kq_list_first(&f->wb))) {
			struct kq_job *s = kq_container_of(l, struct kq_job, wlink);
			if (!is_sync(s))
				break;
			kq_list_del(l);
			kq_dispatch(s);
		}
	}
	if (j->flags & KQ_J_ORDERED) {
		struct kq_link *q = j->op == KQ_OP_READ ? &f->rq : &f->wq;
		int was_head = q->next == &j->qlink;
		kq_list_del(&j->qlink);
		struct kq_link *l = kq_list_first(q);
		if (was_head && l)
			kq_dispatch(kq_container_of(l, struct kq_job, qlink));
	}
	j->fdst = NULL;
	kq_fd_put(f);
}
