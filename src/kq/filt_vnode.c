/* EVFILT_VNODE: file changes through one inotify fd per kq.
 *
 * The knote names an fd; inotify wants a path, and /proc/self/fd/N leads to
 * the very inode the fd holds. Knotes on one inode share its watch. What
 * inotify calls IN_ATTRIB is told apart by the link count: fewer links is
 * NOTE_DELETE (an unlink, as FreeBSD reports it), more is NOTE_LINK. */
#include "kq/kq.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK                                                                                 \
	(IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_CREATE | IN_DELETE |           \
	 IN_MOVED_FROM | IN_MOVED_TO | IN_MASK_ADD)

static int ensure_fd(struct kq *kq)
{
	if (kq->inofd >= 0)
		return 0;
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KQ_TOKEN(KQ_TAG_VNODE, 0, 0)};
	if (epoll_ctl(kq->wfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = errno;
		kq_close(fd);
		return err;
	}
	kq->inofd = fd;
	return 0;
}

static int vnode_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	struct stat st;
	if (kev->ident > INT_MAX || fstat((int)kev->ident, &st))
		return EBADF;
	int err = ensure_fd(kq);
	if (err)
		return err;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", (int)kev->ident);
	int wd = inotify_add_watch(kq->inofd, path, WATCH_MASK);
	if (wd < 0)
		return errno == ENOENT ? EBADF : errno;
	kn->u.vnode.wd = wd;
	kn->u.vnode.size = st.st_size;
	kn->u.vnode.nlink = st.st_nlink;
	kq_list_add_tail(&kq->vnodes, &kn->flink);
	return 0;
}

static void vnode_detach(struct kq *kq, struct kq_knote *kn)
{
	kq_list_del(&kn->flink);
	if (kn->u.vnode.wd < 0)
		return;
	for (struct kq_link *l = kq->vnodes.next; l != &kq->vnodes; l = l->next)
		if (kq_container_of(l, struct kq_knote, flink)->u.vnode.wd == kn->u.vnode.wd)
			return; /* another knote still uses the watch */
	inotify_rm_watch(kq->inofd, kn->u.vnode.wd);
}

static void vnode_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->fflags)
		kq_knote_activate(kq, kn);
}

static bool vnode_event(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	return kn->fflags != 0;
}

static void vnode_clear(struct kq *kq, struct kq_knote *kn)
{
	(void)kq;
	kn->fflags = 0;
}

static unsigned translate(struct kq_knote *kn, uint32_t mask)
{
	unsigned note = 0;
	if (mask & IN_MODIFY)
		note |= NOTE_WRITE;
	if (mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
		note |= NOTE_WRITE | ((mask & IN_ISDIR) ? NOTE_LINK : 0);
	if (mask & IN_DELETE_SELF)
		note |= NOTE_DELETE;
	if (mask & IN_MOVE_SELF)
		note |= NOTE_RENAME;
	if (mask & (IN_MODIFY | IN_ATTRIB)) {
		struct stat st;
		if (!fstat((int)kn->ident, &st)) {
			if (st.st_size > kn->u.vnode.size)
				note |= NOTE_EXTEND;
			if ((mask & IN_ATTRIB) && st.st_nlink < kn->u.vnode.nlink)
				note |= NOTE_DELETE;
			else if ((mask & IN_ATTRIB) && st.st_nlink > kn->u.vnode.nlink)
				note |= NOTE_LINK;
			else if (mask & IN_ATTRIB)
				note |= NOTE_ATTRIB;
			kn->u.vnode.size = st.st_size;
			kn->u.vnode.nlink = st.st_nlink;
		} else if (mask & IN_ATTRIB) {
			note |= NOTE_ATTRIB;
		}
	}
	return note;
}

/* The inotify fd is readable: turn its events into notes on the knotes. */
void kq_vnode_read(struct kq *kq)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	while (kq->inofd >= 0 && (len = read(kq->inofd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ie = (const struct inotify_event *)p;
			p += sizeof *ie + ie->len;
			for (struct kq_link *l = kq->vnodes.next; l != &kq->vnodes; l = l->next) {
				struct kq_knote *kn = kq_container_of(l, struct kq_knote, flink);
				if (kn->u.vnode.wd != ie->wd)
					continue;
				if (ie->mask & IN_IGNORED) {
					kn->u.vnode.wd = -1; /* the inode is gone */
					continue;
				}
				/* On a directory, IN_MODIFY and IN_ATTRIB with a name are
				 * about an entry's contents, not the directory. */
				uint32_t mask =
				    ie->len ? ie->mask & ~(IN_MODIFY | IN_ATTRIB) : ie->mask;
				unsigned note = translate(kn, mask) & kn->sfflags;
				if (!note)
					continue;
				kn->fflags |= note;
				kq_knote_activate(kq, kn);
			}
		}
	}
}

const struct kq_filter kq_filt_vnode = {
    .filter = EVFILT_VNODE,
    .attach = vnode_attach,
    .enable = vnode_enable,
    .detach = vnode_detach,
    .event = vnode_event,
    .clear = vnode_clear,
};
