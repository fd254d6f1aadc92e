/* Counters, the native kqaio_* queries, and the KQAIO_STATS summary at exit. */
#include "aio/aio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

static struct kqaio_stats st;

#define ADD(field, n) __atomic_add_fetch(&st.field, (n), __ATOMIC_RELAXED)

void kq_stats_submitted(void)
{
	ADD(submitted, 1);
}

void kq_stats_rejected(void)
{
	ADD(rejected, 1);
}

void kq_stats_completed(int op, ssize_t res, int err)
{
	ADD(completed, 1);
	if (err == ECANCELED)
		ADD(cancelled, 1);
	else if (err)
		ADD(failed, 1);
	else if (op == KQ_OP_READ)
		ADD(bytes_read, (uint64_t)res);
	else if (op == KQ_OP_WRITE)
		ADD(bytes_written, (uint64_t)res);
}

void kq_stats_reset(void)
{
	memset(&st, 0, sizeof st);
}

KQ_API const char *kqaio_version(void)
{
	return KQAIO_VERSION;
}

KQ_API int kqaio_get_stats(struct kqaio_stats *out, size_t size)
{
	if (!out || size > sizeof st) {
		errno = EINVAL;
		return -1;
	}
	struct kqaio_stats now;
	uint64_t *src = (uint64_t *)&st, *dst = (uint64_t *)&now;
	for (size_t i = 0; i < sizeof st / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	memcpy(out, &now, size);
	return 0;
}

static void print_stats(void)
{
	struct kqaio_stats s;
	kqaio_get_stats(&s, sizeof s);
	fprintf(stderr,
		"kqaio: pid %d backend %s: %llu submitted, %llu completed (%llu cancelled, "
		"%llu failed), %llu rejected, %llu bytes read, %llu bytes written\n",
		(int)getpid(), kq_aio.be[KQ_BE_MAIN]->name, (unsigned long long)s.submitted,
		(unsigned long long)s.completed, (unsigned long long)s.cancelled,
		(unsigned long long)s.failed, (unsigned long long)s.rejected,
		(unsigned long long)s.bytes_read, (unsigned long long)s.bytes_written);
}

void kq_stats_init(void)
{
	if (kq_config.stats)
		atexit(print_stats);
}
