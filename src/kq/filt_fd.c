/* EVFILT_READ and EVFILT_WRITE: one epoll registration per fd for both.
 *
 * Level-triggered knotes are the kernel's job (EPOLLIN/EPOLLOUT, level): the
 * kernel re-reports them for free. A registration with an EV_CLEAR or
 * NOTE_LOWAT knote is edge-triggered; its level-triggered knotes then wait in
 * the queue and are re-checked with poll() each time. Files epoll refuses
 * (regular files, directories) are always ready. */
#include "kq/kq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>

#define RD_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
#define WR_EVENTS (EPOLLOUT | EPOLLHUP | EPOLLERR)

static struct kq_fdreg *reg_of(struct kq *kq, uintptr_t fd)
{
	return fd < kq->nfds ? kq->fds[fd] : NULL;
}

static int classify(struct kq_fdreg *r, int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		return EBADF;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->kind = KQ_FD_OTHER;
	if (S_ISFIFO(st.st_mode)) {
		r->kind = KQ_FD_PIPE;
		r->pipe_size = fcntl(fd, F_GETPIPE_SZ);
	} else if (S_ISSOCK(st.st_mode)) {
		r->kind = KQ_FD_SOCK; /* listening or not: measure() tells when it matters */
	} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		r->kind = KQ_FD_FILE;
	}
	return 0;
}

static uint32_t wanted(const struct kq_fdreg *r)
{
	uint32_t ev = 0;
	bool edge = false;
	for (int i = 0; i < 2; i++) {
		const struct kq_knote *kn = r->kn[i];
		if (!kn || (kn->status & KN_DISABLED))
			continue;
		ev |= i ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
		edge |= (kn->flags & EV_CLEAR) || (kn->sfflags & NOTE_LOWAT);
	}
	return ev && edge ? ev | EPOLLET : ev;
}

/* Make the epoll registration match the knotes. force re-registers even when
 * nothing changed: the fd number may name a new file since the last time. */
static int sync_reg(struct kq *kq, int fd, struct kq_fdreg *r, bool force)
{
	if (r->always && !force)
		return 0;
	uint32_t want = wanted(r);
	if (want == r->events && !force)
		return 0;
	struct epoll_event ev = {.events = want, .data.u64 = KQ_TOKEN(KQ_TAG_FD, r->gen, fd)};
	if (!want) {
		if (r->events)
			epoll_ctl(kq->wfd, EPOLL_CTL_DEL, fd, NULL);
		r->events = 0;
		return 0;
	}
	int op = r->events || r->always ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	int rc = epoll_ctl(kq->wfd, op, fd, &ev);
	if (rc && op == EPOLL_CTL_MOD && errno == ENOENT) {
		/* Closed since registered, so the kernel dropped it: a new file now. */
		if (classify(r, fd))
			return EBADF;
		rc = epoll_ctl(kq->wfd, EPOLL_CTL_ADD, fd, &ev);
	}
	if (rc && errno == EEXIST)
		rc = epoll_ctl(kq->wfd, EPOLL_CTL_MOD, fd, &ev);
	if (rc && errno == EPERM) {
		r->always = true;
		r->events = 0;
		return 0;
	}
	if (rc)
		return errno;
	r->always = false;
	r->events = want;
	return 0;
}

/* Measure what a report says: bytes readable or writable, EOF.
 * False when a NOTE_LOWAT mark is not reached. */
static bool measure(struct kq_fdreg *r, struct kq_knote *kn, uint32_t revents)
{
	int fd = (int)kn->ident, v = 0;
	bool rd = kn->filter == EVFILT_READ;
	bool eof = rd ? revents & (EPOLLRDHUP | EPOLLHUP) : revents & (EPOLLHUP | EPOLLERR);
	kn->data = 0;
	kn->fflags = 0;
	if (r->kind == KQ_FD_FILE) {
		struct stat st;
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (rd && pos >= 0 && !fstat(fd, &st) && st.st_size > pos)
			kn->data = st.st_size - pos;
		eof = false;
	} else if (rd) {
		/* FIONREAD refuses a listening socket (EINVAL); its data is the
		 * backlog, which TCP_INFO gives for TCP (at least one otherwise). */
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		if (ioctl(fd, FIONREAD, &v) == 0)
			kn->data = v;
		else if (errno == EINVAL && r->kind == KQ_FD_SOCK)
			kn->data = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0
				       ? ti.tcpi_unacked
				       : 1;
	} else if (r->kind == KQ_FD_PIPE) {
		if (ioctl(fd, FIONREAD, &v) == 0 && r->pipe_size > v)
			kn->data = r->pipe_size - v;
	} else if (r->kind == KQ_FD_SOCK) {
		int sz = 0;
		socklen_t len = sizeof sz;
		if (!getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, &len) && !ioctl(fd, SIOCOUTQ, &v) &&
		    sz > v)
			kn->data = sz - v;
	}
	/* FreeBSD puts so_error in fflags and leaves it pending. Linux reads it
	 * only by clearing it (SO_ERROR), and the program's own getsockopt after
	 * a failed connect, or its read after a reset, would then see success:
	 * the error stays the program's to read, fflags stays 0. */
	kn->eflags = eof ? EV_EOF : 0;
	return eof || !(kn->sfflags & NOTE_LOWAT) || kn->data >= kn->sdata;
}

static void queue_check(struct kq *kq, struct kq_knote *kn)
{
	kn->status &= ~KN_FRESH;
	kq_knote_activate(kq, kn);
}

static int fd_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	if (kev->ident > INT_MAX)
		return EBADF;
	int fd = (int)kev->ident;
	if ((size_t)fd >= kq->nfds) {
		size_t n = kq->nfds ? kq->nfds : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct kq_fdreg **f = realloc(kq->fds, n * sizeof *f);
		if (!f)
			return ENOMEM;
		for (size_t i = kq->nfds; i < n; i++)
			f[i] = NULL;
		kq->fds = f;
		kq->nfds = n;
	}
	struct kq_fdreg *r = kq->fds[fd];
	bool fresh = !r;
	if (fresh) {
		if (!(r = calloc(1, sizeof *r)))
			return ENOMEM;
		r->gen = ++kq->gen & 0xffffff;
		int err = classify(r, fd);
		if (err) {
			free(r);
			return err;
		}
		kq->fds[fd] = r;
	}
	r->kn[kn->filter == EVFILT_WRITE] = kn;
	int err = sync_reg(kq, fd, r, !fresh);
	if (err) {
		r->kn[kn->filter == EVFILT_WRITE] = NULL;
		if (fresh) {
			kq->fds[fd] = NULL;
			free(r);
		}
		return err;
	}
	/* An always-ready fd has no epoll to say so; adding an edge-triggered
	 * registration reports the present state as an edge by itself. */
	if (r->always)
		queue_check(kq, kn);
	return 0;
}

static int fd_touch(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	struct kq_fdreg *r = reg_of(kq, kn->ident);
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	if (!(kev->flags & EV_ADD))
		return 0;
	int err = sync_reg(kq, (int)kn->ident, r, true);
	if (!err && !(kn->status & KN_DISABLED) && r->always)
		queue_check(kq, kn);
	return err;
}

static void fd_enable(struct kq *kq, struct kq_knote *kn)
{
	struct kq_fdreg *r = reg_of(kq, kn->ident);
	if (kn->status & KN_DISABLED)
		kq_knote_dequeue(kq, kn);
	sync_reg(kq, (int)kn->ident, r, false);
	if (!(kn->status & KN_DISABLED) && r->always)
		queue_check(kq, kn);
}

static void fd_detach(struct kq *kq, struct kq_knote *kn)
{
	struct kq_fdreg *r = reg_of(kq, kn->ident);
	r->kn[kn->filter == EVFILT_WRITE] = NULL;
	if (r->kn[0] || r->kn[1]) {
		sync_reg(kq, (int)kn->ident, r, false);
		return;
	}
	if (r->events)
		epoll_ctl(kq->wfd, EPOLL_CTL_DEL, (int)kn->ident, NULL);
	kq->fds[kn->ident] = NULL;
	free(r);
}

/* A queued knote about to be reported: fresh from epoll, or checked now. */
static bool fd_event(struct kq *kq, struct kq_knote *kn)
{
	struct kq_fdreg *r = reg_of(kq, kn->ident);
	if (kn->status & KN_FRESH)
		return true;
	if (r->always)
		return measure(r, kn, 0);
	bool rd = kn->filter == EVFILT_READ;
	struct pollfd p = {.fd = (int)kn->ident, .events = rd ? POLLIN | POLLRDHUP : POLLOUT};
	if (poll(&p, 1, 0) != 1 || (p.revents & POLLNVAL))
		return false;
	return measure(r, kn, (uint32_t)p.revents);
}

/* The kernel re-reports a level-triggered registration: no need to queue. */
static void fd_reported(struct kq *kq, struct kq_knote *kn)
{
	struct kq_fdreg *r = reg_of(kq, kn->ident);
	if (r && !r->always && !(r->events & EPOLLET))
		kq_knote_dequeue(kq, kn);
}

int kq_fd_check(struct kq *kq, uintptr_t fd)
{
	struct stat st;
	if (fd > INT_MAX || fstat((int)fd, &st))
		return EBADF;
	struct kq_fdreg *r = reg_of(kq, fd);
	return r && (r->dev != st.st_dev || r->ino != st.st_ino) ? ESTALE : 0;
}

void kq_fd_forget(struct kq *kq, uintptr_t fd)
{
	struct kq_fdreg *r = reg_of(kq, fd);
	if (!r)
		return;
	struct kq_knote *kns[2] = {r->kn[0], r->kn[1]};
	for (int i = 0; i < 2; i++)
		if (kns[i])
			kq_knote_drop(kq, kns[i]);
}

int kq_fd_event(struct kq *kq, uint32_t key, uint32_t gen, uint32_t revents, struct kevent *out,
		int room, uint32_t pass)
{
	struct kq_fdreg *r = reg_of(kq, key);
	if (!r || r->gen != gen)
		return 0;
	struct kq_knote *kns[2] = {r->kn[0], r->kn[1]};
	bool edge = r->events & EPOLLET;
	int n = 0;
	for (int i = 0; i < 2; i++) {
		struct kq_knote *kn = kns[i];
		if (!kn || (kn->status & (KN_DISABLED | KN_DEAD)))
			continue;
		if (!(revents & (i ? WR_EVENTS : RD_EVENTS)) || !measure(r, kn, revents))
			continue;
		if (edge || n >= room || (kn->status & KN_QUEUED) || kn->pass == pass) {
			kn->status |= KN_FRESH;
			kq_knote_activate(kq, kn);
			continue;
		}
		n += kq_report(kq, kn, out + n, pass);
	}
	return n;
}

void kq_fd_free_all(struct kq *kq)
{
	for (size_t i = 0; i < kq->nfds; i++) {
		struct kq_fdreg *r = kq->fds[i];
		if (!r)
			continue;
		for (int k = 0; k < 2; k++)
			if (r->kn[k]) {
				kq_knote_dequeue(kq, r->kn[k]);
				r->kn[k]->status |= KN_DEAD;
				kq_knote_unref(r->kn[k]);
			}
		free(r);
	}
	free(kq->fds);
	kq->fds = NULL;
	kq->nfds = 0;
}

const struct kq_filter kq_filt_read = {
    .filter = EVFILT_READ,
    .attach = fd_attach,
    .touch = fd_touch,
    .enable = fd_enable,
    .detach = fd_detach,
    .event = fd_event,
    .reported = fd_reported,
};

const struct kq_filter kq_filt_write = {
    .filter = EVFILT_WRITE,
    .attach = fd_attach,
    .touch = fd_touch,
    .enable = fd_enable,
    .detach = fd_detach,
    .event = fd_event,
    .reported = fd_reported,
};
