/* kqaio-bench: the types and functions its files share — the parsed options,
 * one engine's result (sent from the child that measured it to the parent
 * through a pipe), the latency histogram, the block pattern and the engines. */
#ifndef KQAIO_BENCH_H
#define KQAIO_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum workload { W_RANDREAD, W_RANDWRITE, W_READ, W_WRITE, W_RW };
enum submit { S_SINGLE, S_LISTIO };
enum completion { C_SUSPEND, C_KEVENT, C_WAITCOMPLETE, C_SIGNAL, C_THREAD };
enum engine { E_KQAIO_URING, E_KQAIO_POOL, E_GLIBC, E_URING, E_N };

extern const char *const workload_names[];
extern const char *const submit_names[];
extern const char *const completion_names[];
extern const char *const engine_names[];

struct config {
	enum workload workload;
	enum submit submit;
	enum completion completion;
	unsigned engines; /* bit (1 << enum engine) per engine to run */
	size_t bs;
	int qd, batch;
	double seconds; /* measure for this long, when ops is 0 */
	uint64_t ops;	/* or this many requests */
	int direct, verify, quiet, json, csv, force_write;
	const char *path; /* what the user named, or NULL */
	char file[4096];  /* what is measured (path or the created file) */
	uint64_t size;	  /* bytes of the file used: a multiple of bs */
	int fd;		  /* open on file; children inherit it */
	int progress;	  /* draw the live line (stderr is a terminal, not --quiet) */
};

enum status { ST_OK, ST_NA, ST_FAILED, ST_MISMATCH };

struct result {
	enum engine engine;
	enum status status;
	char note[200];	       /* why n/a or failed; the mismatch */
	char backend[16];      /* kqaio_backend() in the child, for kqaio engines */
	uint64_t ops;	       /* requests completed in the measured interval */
	uint64_t bytes;	       /* bytes they moved */
	double secs;	       /* the measured interval */
	double cpu_us;	       /* user + system CPU of the child over it */
	double p50, p99, p999; /* latency, submit to reaped, microseconds */
	uint64_t bad_offset;   /* ST_MISMATCH: the first wrong byte's file offset */
};

/* lat.c: a log-linear latency histogram in nanoseconds (64 buckets per power
 * of two, so a percentile is within 1.6% of the true value). */
enum { LAT_SUB = 64, LAT_BUCKETS = LAT_SUB + 40 * LAT_SUB };
struct lat {
	uint64_t n;
	uint64_t b[LAT_BUCKETS];
};
void lat_add(struct lat *l, uint64_t ns);
double lat_pct_us(const struct lat *l, double p);

/* The pattern: every 8-byte word of the file holds its own offset, mixed with
 * a constant, so each block says where it belongs. */
void pattern_fill(void *buf, uint64_t off, size_t len);
/* 0 if buf holds the pattern for off, else 1 and the first bad offset in *bad. */
int pattern_check(const void *buf, uint64_t off, size_t len, uint64_t *bad);

/* The request stream every engine issues: offsets and kinds from a seeded
 * generator, identical for every engine. */
struct gen {
	uint64_t state, next_seq, nblocks;
	enum workload w;
	size_t bs;
};
void gen_init(struct gen *g, const struct config *c);
/* The next request's offset; *write says whether it is a write. */
uint64_t gen_next(struct gen *g, int *write);

double now_s(void);
double cpu_s(void);

/* Progress: a line on stderr redrawn about four times a second, erased at the end. */
struct progress {
	int on;
	const char *name;
	double start, last;
};
void progress_tick(struct progress *p, double now, uint64_t ops);
void progress_end(struct progress *p);

/* Engines: each runs in its own child, fills r (status, numbers) and returns. */
void engine_aio(const struct config *c, enum engine e, struct result *r);
void engine_uring(const struct config *c, struct result *r);

/* report.c */
void report_table(FILE *f, const struct config *c, const struct result *r, int n);
void report_json(FILE *f, const struct config *c, const struct result *r, int n);
void report_csv(FILE *f, const struct config *c, const struct result *r, int n);
/* "randread 4k qd 32, buffered, ..." : the header line the outputs share. */
void describe(const struct config *c, char *buf, size_t size);
double ceiling_iops(const struct result *r, int n);

#endif
