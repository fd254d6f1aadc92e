/* A buffer whose first touch by the kernel blocks until the test releases it
 * (userfaultfd), so a worker can be held inside a read or write on purpose. */
#ifndef KQT_STALL_H
#define KQT_STALL_H

#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "kqt.h"

struct kqt_stall {
	int uffd;
	char *buf;
	size_t len;
};

/* A read of tmpfs into a stalled buffer would stall its submitter, not a
 * worker: reads of tmpfs are done inline (KQAIO_INLINE). A test's .init,
 * so it runs before the library reads its environment. */
static inline void kqt_stall_no_inline(void)
{
	setenv("KQAIO_INLINE", "0", 1);
}

/* Skips the test where userfaultfd is not allowed. */
static inline void kqt_stall_init(struct kqt_stall *s, size_t len)
{
	s->len = len;
	s->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (s->uffd < 0)
		cr_skip_test("userfaultfd: %s", strerror(errno));
	struct uffdio_api api = {.api = UFFD_API};
	cr_assert_eq(ioctl(s->uffd, UFFDIO_API, &api), 0);
	s->buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(s->buf != MAP_FAILED);
	struct uffdio_register reg = {.range = {(uintptr_t)s->buf, len},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	cr_assert_eq(ioctl(s->uffd, UFFDIO_REGISTER, &reg), 0);
}

/* Waits until some thread is blocked on the buffer. */
static inline void kqt_stall_wait_blocked(struct kqt_stall *s)
{
	struct pollfd p = {.fd = s->uffd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 10000), 1, "nothing touched the stalled buffer");
}

/* Maps zero pages in and wakes whoever was blocked. */
static inline void kqt_stall_release(struct kqt_stall *s)
{
	struct uffdio_zeropage z = {.range = {(uintptr_t)s->buf, s->len}};
	cr_assert_eq(ioctl(s->uffd, UFFDIO_ZEROPAGE, &z), 0);
}

#endif
