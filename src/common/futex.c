/* Futex waits with absolute CLOCK_MONOTONIC deadlines, and deadline helpers. */
#include "common/futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int kq_futex_wait(uint32_t *word, uint32_t val, const struct timespec *deadline)
{
	/* With no deadline the kernel restarts the wait after an SA_RESTART
	 * handler; a far deadline makes every signal end it with EINTR. */
	struct timespec far;
	if (!deadline) {
		clock_gettime(CLOCK_MONOTONIC, &far);
		far.tv_sec += 365 * 24 * 3600;
		deadline = &far;
	}
	long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, deadline,
			 NULL, FUTEX_BITSET_MATCH_ANY);
	if (r == 0 || errno == EAGAIN)
		return 0;
	return errno == ETIMEDOUT ? ETIMEDOUT : errno == EINTR ? EINTR : 0;
}

void kq_futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

int kq_deadline(const struct timespec *rel, struct timespec *out)
{
	if (rel->tv_sec < 0 || rel->tv_nsec < 0 || rel->tv_nsec >= 1000000000L)
		return EINVAL;
	clock_gettime(CLOCK_MONOTONIC, out);
	if (rel->tv_sec > INT_MAX) {
		out->tv_sec += INT_MAX;
		return 0;
	}
	out->tv_sec += rel->tv_sec;
	out->tv_nsec += rel->tv_nsec;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
	return 0;
}

int64_t kq_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
