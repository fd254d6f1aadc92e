/* EVFILT_PROC: NOTE_EXIT through a pidfd per watched process. */
#include "kq/kq.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int proc_attach(struct kq *kq, struct kq_knote *kn, const struct kevent *kev)
{
	if (kev->ident == 0 || kev->ident > INT32_MAX)
		return ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)kev->ident, 0);
	if (fd < 0)
		return errno == EINVAL ? ESRCH : errno;
	/* pidfd_open gives no O_CLOEXEC flag, but pidfds are close-on-exec. */
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = KQ_TOKEN(KQ_TAG_PROC, kn->gen, kev->ident)};
	if (epoll_ctl(kq->wfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = errno;
		kq_close(fd);
		return err;
	}
	kn->u.proc.pidfd = fd;
	return 0;
}

static void proc_detach(struct kq *kq, struct kq_knote *kn)
{
	if (kn->u.proc.pidfd < 0)
		return;
	epoll_ctl(kq->wfd, EPOLL_CTL_DEL, kn->u.proc.pidfd, NULL);
	kq_close(kn->u.proc.pidfd);
	kn->u.proc.pidfd = -1;
}

static void proc_enable(struct kq *kq, struct kq_knote *kn)
{
	if (kn->eflags & EV_EOF)
		kq_knote_activate(kq, kn);
}

/* The pidfd polls readable once the process has exited. The status comes from
 * waitid(WNOWAIT), which leaves the zombie for the parent's own wait. */
void kq_proc_event(struct kq *kq, uint32_t pid, uint32_t gen)
{
	struct kq_knote *kn = kq_knote_find(kq, pid, EVFILT_PROC);
	if (!kn || kn->gen != gen || kn->u.proc.pidfd < 0)
		return;
	siginfo_t si = {0};
	int status = 0;
	if (waitid((idtype_t)P_PIDFD, (id_t)kn->u.proc.pidfd, &si, WEXITED | WNOHANG | WNOWAIT) ==
	    0) {
		if (!si.si_pid)
			return; /* not yet */
		if (si.si_code == CLD_EXITED)
			status = (si.si_status & 0xff) << 8;
		else if (si.si_code == CLD_KILLED)
			status = si.si_status & 0x7f;
		else if (si.si_code == CLD_DUMPED)
			status = (si.si_status & 0x7f) | 0x80;
	} /* else not our child: it has exited, its status is not ours to see */
	proc_detach(kq, kn);
	kn->eflags = EV_EOF;
	kn->flags |= EV_ONESHOT;
	kn->fflags = kn->sfflags & NOTE_EXIT;
	kn->data = kn->fflags ? status : 0;
	kq_knote_activate(kq, kn);
}

void kq_proc_fork_child(struct kq *kq)
{
	for (size_t i = 0; kq->hash && i <= kq->hmask; i++)
		for (struct kq_knote *kn = kq->hash[i]; kn; kn = kn->hnext)
			if (kn->filter == EVFILT_PROC && kn->u.proc.pidfd >= 0)
				kq_close(kn->u.proc.pidfd);
}

const struct kq_filter kq_filt_proc = {
    .filter = EVFILT_PROC,
    .attach = proc_attach,
    .enable = proc_enable,
    .detach = proc_detach,
};
