/* kqaio-bench: what every engine shares — the block pattern and its check, the
 * request generator, clocks and the live progress line. */
#include "bench.h"

#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *const workload_names[] = {"randread", "randwrite", "read", "write", "rw"};
const char *const submit_names[] = {"single", "listio"};
const char *const completion_names[] = {"suspend", "kevent", "waitcomplete", "signal", "thread"};
const char *const engine_names[] = {"kqaio-uring", "kqaio-pool", "glibc", "uring"};

static const uint64_t MIX = 0x6b71616b71616b71ull; /* "kqakqakq" */

void pattern_fill(void *buf, uint64_t off, size_t len)
{
	uint64_t *w = buf;
	for (size_t i = 0; i < len / 8; i++)
		w[i] = (off + 8 * i) ^ MIX;
}

int pattern_check(const void *buf, uint64_t off, size_t len, uint64_t *bad)
{
	const uint64_t *w = buf;
	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != ((off + 8 * i) ^ MIX)) {
			uint64_t want = (off + 8 * i) ^ MIX;
			const unsigned char *a = (const void *)&w[i], *b = (const void *)&want;
			int j = 0;
			while (j < 7 && a[j] == b[j])
				j++;
			*bad = off + 8 * i + (uint64_t)j;
			return 1;
		}
	return 0;
}

void gen_init(struct gen *g, const struct config *c)
{
	g->state = 0x9e3779b97f4a7c15ull;
	g->next_seq = 0;
	g->nblocks = c->size / c->bs;
	g->w = c->workload;
	g->bs = c->bs;
}

static uint64_t rnd(struct gen *g)
{
	/* splitmix64 */
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t gen_next(struct gen *g, int *write)
{
	uint64_t blk;
	switch (g->w) {
	case W_READ:
	case W_WRITE:
		blk = g->next_seq++ % g->nblocks;
		*write = g->w == W_WRITE;
		break;
	case W_RW: {
		uint64_t r = rnd(g);
		blk = (r >> 1) % g->nblocks;
		*write = (int)(r & 1);
		break;
	}
	default:
		blk = rnd(g) % g->nblocks;
		*write = g->w == W_RANDWRITE;
	}
	return blk * g->bs;
}

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void progress_tick(struct progress *p, double now, uint64_t ops)
{
	if (!p->on || now - p->last < 0.25)
		return;
	p->last = now;
	double t = now - p->start;
	fprintf(stderr, "\r\033[K%s: %.1f s, %llu requests, %.0f IOPS", p->name, t,
		(unsigned long long)ops, t > 0 ? (double)ops / t : 0.0);
}

void progress_end(struct progress *p)
{
	if (p->on && p->last > p->start)
		fputs("\r\033[K", stderr);
}
