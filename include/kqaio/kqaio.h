/* kqaio native extras: version, backend in use, counters. */
#ifndef KQAIO_KQAIO_H
#define KQAIO_KQAIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KQAIO_VERSION_MAJOR 0
#define KQAIO_VERSION_MINOR 1
#define KQAIO_VERSION_PATCH 0
#define KQAIO_VERSION	    "0.1.0"

/* Counters since the process (or, after fork, the child) started using kqaio. */
struct kqaio_stats {
	uint64_t submitted;	/* jobs accepted by aio_* and lio_listio */
	uint64_t completed;	/* jobs that ended, whatever their result */
	uint64_t cancelled;	/* of those, ended by aio_cancel */
	uint64_t failed;	/* of those, ended with an error other than ECANCELED */
	uint64_t rejected;	/* submissions refused with an errno */
	uint64_t bytes_read;	/* bytes moved by completed reads */
	uint64_t bytes_written; /* bytes moved by completed writes */
};

/* The library's version string, e.g. "0.1.0". */
const char *kqaio_version(void);

/* The backend serving seekable files: "pool" (worker threads) or "uring".
 * Choosing happens at first use; calling this triggers it. */
const char *kqaio_backend(void);

/* Copies the counters into *st. size is sizeof(struct kqaio_stats) as the
 * caller knows it, so older callers keep working. Returns 0, or -1/EINVAL. */
int kqaio_get_stats(struct kqaio_stats *st, size_t size);

#ifdef __cplusplus
}
#endif

#endif
