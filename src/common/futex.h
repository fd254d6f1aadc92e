/* Futex waits with absolute CLOCK_MONOTONIC deadlines, and deadline helpers. */
#ifndef KQ_COMMON_FUTEX_H
#define KQ_COMMON_FUTEX_H

#include <stdint.h>
#include <time.h>

/* Sleeps while *word == val, until woken, the deadline (NULL: none) or a
 * signal. Returns 0 (woken or value changed), ETIMEDOUT or EINTR. A signal
 * always interrupts, even under an SA_RESTART handler, as POSIX asks of
 * aio_suspend and lio_listio. */
int kq_futex_wait(uint32_t *word, uint32_t val, const struct timespec *deadline);
void kq_futex_wake(uint32_t *word, int n);

/* *out = now + rel on CLOCK_MONOTONIC. Returns EINVAL for a malformed rel. */
int kq_deadline(const struct timespec *rel, struct timespec *out);

/* Now on CLOCK_MONOTONIC, in ns. */
int64_t kq_now_ns(void);

#endif
