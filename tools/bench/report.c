/* kqaio-bench: the results as a table (with a header line naming the workload
 * and the machine), as one JSON object, or as CSV with stable column names. */
#include "bench.h"

#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

static void size_str(uint64_t v, char *buf, size_t size)
{
	if (v && !(v % (1ull << 30)))
		snprintf(buf, size, "%lluG", (unsigned long long)(v >> 30));
	else if (v && !(v % (1ull << 20)))
		snprintf(buf, size, "%lluM", (unsigned long long)(v >> 20));
	else if (v && !(v % 1024))
		snprintf(buf, size, "%lluk", (unsigned long long)(v >> 10));
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
}

void describe(const struct config *c, char *buf, size_t size)
{
	char bs[32], sz[32], len[48], sub[48];
	size_str(c->bs, bs, sizeof bs);
	size_str(c->size, sz, sizeof sz);
	if (c->ops)
		snprintf(len, sizeof len, "%llu requests", (unsigned long long)c->ops);
	else
		snprintf(len, sizeof len, "%g s", c->seconds);
	if (c->submit == S_LISTIO)
		snprintf(sub, sizeof sub, "lio_listio batches of %d", c->batch);
	else
		snprintf(sub, sizeof sub, "single submission");
	snprintf(buf, size, "%s %s, qd %d, %s, %s, %s completion, %s per engine%s; %s (%s)",
		 workload_names[c->workload], bs, c->qd, c->direct ? "O_DIRECT" : "buffered", sub,
		 completion_names[c->completion], len, c->verify ? ", verified" : "", c->file, sz);
}

static void machine(char *buf, size_t size)
{
	struct utsname u;
	char date[32] = "";
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm))
		strftime(date, sizeof date, "%Y-%m-%d", &tm);
	if (uname(&u) < 0)
		strcpy(u.release, "?");
	snprintf(buf, size, "%ld CPUs, Linux %s, %s, kqaio %s", sysconf(_SC_NPROCESSORS_ONLN),
		 u.release, date, kqaio_version());
}

double ceiling_iops(const struct result *r, int n)
{
	for (int i = 0; i < n; i++)
		if (r[i].engine == E_URING && r[i].status == ST_OK && r[i].secs > 0)
			return (double)r[i].ops / r[i].secs;
	return 0;
}

static double iops(const struct result *r)
{
	return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

static double mibs(const struct result *r)
{
	return r->secs > 0 ? (double)r->bytes / r->secs / (1 << 20) : 0;
}

static double cpu_per_io(const struct result *r)
{
	return r->ops ? r->cpu_us / (double)r->ops : 0;
}

static const char *status_name(enum status s)
{
	return s == ST_OK ? "ok" : s == ST_NA ? "n/a" : s == ST_FAILED ? "failed" : "mismatch";
}

void report_table(FILE *f, const struct config *c, const struct result *r, int n)
{
	char d[4600], m[200];
	describe(c, d, sizeof d);
	machine(m, sizeof m);
	double ceil = ceiling_iops(r, n);
	fprintf(f, "kqaio-bench: %s\nmachine: %s\n\n", d, m);
	fprintf(f, "%-12s %10s %9s %9s %9s %9s %10s %6s\n", "engine", "IOPS", "MiB/s", "p50 us",
		"p99 us", "p99.9 us", "CPU us/IO", "ratio");
	for (int i = 0; i < n; i++) {
		if (r[i].status != ST_OK) {
			fprintf(f, "%-12s %s: %s\n", engine_names[r[i].engine],
				status_name(r[i].status), r[i].note);
			continue;
		}
		fprintf(f, "%-12s %10.0f %9.1f %9.1f %9.1f %9.1f %10.2f ",
			engine_names[r[i].engine], iops(&r[i]), mibs(&r[i]), r[i].p50, r[i].p99,
			r[i].p999, cpu_per_io(&r[i]));
		if (ceil > 0)
			fprintf(f, "%6.2f\n", iops(&r[i]) / ceil);
		else
			fprintf(f, "%6s\n", "-");
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void report_json(FILE *f, const struct config *c, const struct result *r, int n)
{
	char d[4600], m[200];
	describe(c, d, sizeof d);
	machine(m, sizeof m);
	double ceil = ceiling_iops(r, n);
	fprintf(f, "{\n  \"tool\": \"kqaio-bench\",\n  \"version\": ");
	json_str(f, kqaio_version());
	fprintf(f, ",\n  \"description\": ");
	json_str(f, d);
	fprintf(f, ",\n  \"machine\": ");
	json_str(f, m);
	fprintf(f, ",\n  \"workload\": \"%s\",\n  \"bs\": %zu,\n  \"qd\": %d,\n",
		workload_names[c->workload], c->bs, c->qd);
	fprintf(f, "  \"submit\": \"%s\",\n  \"batch\": %d,\n  \"completion\": \"%s\",\n",
		submit_names[c->submit], c->batch, completion_names[c->completion]);
	fprintf(f,
		"  \"direct\": %s,\n  \"verify\": %s,\n  \"file\": ", c->direct ? "true" : "false",
		c->verify ? "true" : "false");
	json_str(f, c->file);
	fprintf(f, ",\n  \"size\": %llu,\n  \"engines\": [", (unsigned long long)c->size);
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s\n    {\"engine\": \"%s\", \"status\": \"%s\"", i ? "," : "",
			engine_names[r[i].engine], status_name(r[i].status));
		if (r[i].status == ST_OK) {
			fprintf(
			    f,
			    ", \"iops\": %.0f, \"mibs\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
			    "\"p999_us\": %.2f, \"cpu_us_per_io\": %.3f, \"ops\": %llu, "
			    "\"seconds\": %.3f",
			    iops(&r[i]), mibs(&r[i]), r[i].p50, r[i].p99, r[i].p999,
			    cpu_per_io(&r[i]), (unsigned long long)r[i].ops, r[i].secs);
			if (ceil > 0)
				fprintf(f, ", \"ratio\": %.3f", iops(&r[i]) / ceil);
		}
		if (r[i].backend[0])
			fprintf(f, ", \"backend\": \"%s\"", r[i].backend);
		if (r[i].note[0]) {
			fprintf(f, ", \"note\": ");
			json_str(f, r[i].note);
		}
		fputc('}', f);
	}
	fprintf(f, "\n  ]\n}\n");
}

static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void report_csv(FILE *f, const struct config *c, const struct result *r, int n)
{
	double ceil = ceiling_iops(r, n);
	fprintf(f, "engine,status,iops,mibs,p50_us,p99_us,p999_us,cpu_us_per_io,ratio,workload,bs,"
		   "qd,submit,batch,completion,direct,ops,seconds,backend,note\n");
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s,%s,", engine_names[r[i].engine], status_name(r[i].status));
		if (r[i].status == ST_OK) {
			fprintf(f, "%.0f,%.2f,%.2f,%.2f,%.2f,%.3f,", iops(&r[i]), mibs(&r[i]),
				r[i].p50, r[i].p99, r[i].p999, cpu_per_io(&r[i]));
			if (ceil > 0)
				fprintf(f, "%.3f", iops(&r[i]) / ceil);
		} else {
			fprintf(f, ",,,,,,");
		}
		fprintf(f, ",%s,%zu,%d,%s,%d,%s,%d,%llu,%.3f,%s,", workload_names[c->workload],
			c->bs, c->qd, submit_names[c->submit], c->batch,
			completion_names[c->completion], c->direct, (unsigned long long)r[i].ops,
			r[i].secs, r[i].backend);
		csv_str(f, r[i].note);
		fputc('\n', f);
	}
}
