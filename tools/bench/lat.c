/* kqaio-bench: the latency histogram (log-linear buckets in nanoseconds) and
 * its percentiles. */
#include "bench.h"

static int bucket(uint64_t ns)
{
	if (ns < LAT_SUB)
		return (int)ns;
	int e = 63 - __builtin_clzll(ns); /* 2^e <= ns, e >= 6 */
	int i = LAT_SUB + (e - 6) * LAT_SUB + (int)((ns >> (e - 6)) & (LAT_SUB - 1));
	return i < LAT_BUCKETS ? i : LAT_BUCKETS - 1;
}

/* The middle of bucket i, in nanoseconds. */
static double value(int i)
{
	if (i < LAT_SUB)
		return i;
	int e = (i - LAT_SUB) / LAT_SUB + 6, sub = (i - LAT_SUB) % LAT_SUB;
	double width = (double)(1ull << (e - 6));
	return ((double)(1ull << e) + sub * width) + width / 2;
}

void lat_add(struct lat *l, uint64_t ns)
{
	l->b[bucket(ns)]++;
	l->n++;
}

double lat_pct_us(const struct lat *l, double p)
{
	if (!l->n)
		return 0;
	uint64_t want = (uint64_t)(p * (double)l->n), seen = 0;
	if (want >= l->n)
		want = l->n - 1;
	for (int i = 0; i < LAT_BUCKETS; i++) {
		seen += l->b[i];
		if (seen > want)
			return value(i) / 1e3;
	}
	return value(LAT_BUCKETS - 1) / 1e3;
}
