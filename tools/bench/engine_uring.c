/* kqaio-bench: the ceiling. The same requests through raw liburing on a ring
 * of --qd entries: prepare a read or write for every free slot, submit them in
 * one io_uring_enter, wait for a completion, take every one that is ready. */
#include "bench.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

struct uslot {
	char *buf;
	uint64_t off;
	double t0;
	int write, busy;
};

void engine_uring(const struct config *c, struct result *r)
{
	struct io_uring ring;
	int e = io_uring_queue_init((unsigned)c->qd, &ring, 0);
	if (e < 0) {
		r->status = ST_NA;
		snprintf(r->note, sizeof r->note, "io_uring unavailable: %s", strerror(-e));
		return;
	}
	struct uslot *slots = calloc((size_t)c->qd, sizeof *slots);
	if (!slots) {
		r->status = ST_FAILED;
		snprintf(r->note, sizeof r->note, "calloc: %s", strerror(ENOMEM));
		return;
	}
	for (int i = 0; i < c->qd; i++)
		if (posix_memalign((void **)&slots[i].buf, 4096, c->bs)) {
			r->status = ST_FAILED;
			snprintf(r->note, sizeof r->note, "posix_memalign: %s", strerror(ENOMEM));
			return;
		}
	static struct lat lat;
	struct gen g;
	gen_init(&g, c);
	struct progress p = {c->progress, engine_names[E_URING], 0, 0};
	uint64_t issued = 0, completed = 0, limit = c->ops ? c->ops : UINT64_MAX;
	double t_start = now_s(), cpu0 = cpu_s(), t = t_start;
	p.start = p.last = t_start;
	int inflight = 0;
	for (;;) {
		int n = 0;
		double t0 = now_s();
		for (int i = 0; i < c->qd && issued < limit; i++) {
			struct uslot *s = &slots[i];
			if (s->busy)
				continue;
			s->off = gen_next(&g, &s->write);
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			if (s->write) {
				pattern_fill(s->buf, s->off, c->bs);
				io_uring_prep_write(sqe, c->fd, s->buf, (unsigned)c->bs, s->off);
			} else {
				io_uring_prep_read(sqe, c->fd, s->buf, (unsigned)c->bs, s->off);
			}
			io_uring_sqe_set_data(sqe, s);
			s->t0 = t0;
			s->busy = 1;
			issued++;
			n++;
		}
		if (n) {
			int sub = io_uring_submit(&ring);
			if (sub != n) {
				r->status = ST_FAILED;
				snprintf(r->note, sizeof r->note, "io_uring_submit: %s",
					 sub < 0 ? strerror(-sub) : "short submission");
				return;
			}
			inflight += n;
		}
		if (!inflight)
			break;
		struct io_uring_cqe *cqe;
		int w = io_uring_wait_cqe(&ring, &cqe);
		if (w == -EINTR)
			continue;
		if (w < 0) {
			r->status = ST_FAILED;
			snprintf(r->note, sizeof r->note, "io_uring_wait_cqe: %s", strerror(-w));
			return;
		}
		t = now_s();
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			struct uslot *s = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			seen++;
			s->busy = 0;
			inflight--;
			if (res != (int)c->bs) {
				if (r->status == ST_OK) {
					r->status = ST_FAILED;
					snprintf(r->note, sizeof r->note, "%s at offset %llu: %s",
						 s->write ? "write" : "read",
						 (unsigned long long)s->off,
						 res < 0 ? strerror(-res) : "short transfer");
				}
				continue;
			}
			if (c->verify && !s->write && r->status == ST_OK &&
			    pattern_check(s->buf, s->off, c->bs, &r->bad_offset)) {
				r->status = ST_MISMATCH;
				snprintf(r->note, sizeof r->note,
					 "data mismatch at offset %llu (in the block at %llu)",
					 (unsigned long long)r->bad_offset,
					 (unsigned long long)s->off);
			}
			lat_add(&lat, (uint64_t)((t - s->t0) * 1e9));
			completed++;
		}
		io_uring_cq_advance(&ring, seen);
		progress_tick(&p, t, completed);
		if (r->status != ST_OK || (!c->ops && t - t_start >= c->seconds))
			limit = issued;
	}
	progress_end(&p);
	r->cpu_us = (cpu_s() - cpu0) * 1e6;
	r->secs = t - t_start;
	r->ops = completed;
	r->bytes = completed * c->bs;
	r->p50 = lat_pct_us(&lat, 0.50);
	r->p99 = lat_pct_us(&lat, 0.99);
	r->p999 = lat_pct_us(&lat, 0.999);
	io_uring_queue_exit(&ring);
}
