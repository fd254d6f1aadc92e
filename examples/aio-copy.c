/* aio-copy: copy a file with a window of asynchronous reads and writes in
 * flight, waiting with aio_suspend — the shape of most POSIX AIO programs. */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kqaio/kqaio.h>

enum { DEPTH = 16, CHUNK = 256 * 1024 };

struct slot {
	struct aiocb cb;
	int writing; /* 0: reading into buf, 1: writing buf out */
	char *buf;
};

static void die(const char *what)
{
	fprintf(stderr, "aio-copy: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: aio-copy SOURCE DEST\n");
		return 2;
	}
	int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0)
		die("open");
	struct stat st;
	if (fstat(in, &st) < 0)
		die("fstat");
	static struct slot slots[DEPTH];
	const struct aiocb *wait[DEPTH];
	off_t next = 0;
	int busy = 0;
	for (int i = 0; i < DEPTH; i++)
		if (!(slots[i].buf = malloc(CHUNK)))
			die("malloc");
	/* Start a read in every free slot, then turn finished reads into writes. */
	for (;;) {
		for (int i = 0; i < DEPTH && next < st.st_size; i++) {
			struct slot *s = &slots[i];
			if (s->cb.aio_buf)
				continue;
			memset(&s->cb, 0, sizeof s->cb);
			s->cb.aio_fildes = in;
			s->cb.aio_buf = s->buf;
			s->cb.aio_nbytes = CHUNK;
			s->cb.aio_offset = next;
			s->cb.aio_sigevent.sigev_notify = SIGEV_NONE;
			s->writing = 0;
			if (aio_read(&s->cb) < 0)
				die("aio_read");
			next += CHUNK;
			busy++;
		}
		if (!busy)
			break;
		int n = 0;
		for (int i = 0; i < DEPTH; i++)
			wait[n++] = slots[i].cb.aio_buf ? &slots[i].cb : NULL;
		if (aio_suspend(wait, n, NULL) < 0 && errno != EINTR)
			die("aio_suspend");
		for (int i = 0; i < DEPTH; i++) {
			struct slot *s = &slots[i];
			if (!s->cb.aio_buf || aio_error(&s->cb) == EINPROGRESS)
				continue;
			ssize_t r = aio_return(&s->cb);
			if (r < 0)
				die(s->writing ? "write" : "read");
			if (!s->writing && r > 0) {
				s->cb.aio_fildes = out;
				s->cb.aio_nbytes = (size_t)r;
				s->writing = 1;
				if (aio_write(&s->cb) < 0)
					die("aio_write");
				continue;
			}
			s->cb.aio_buf = NULL; /* slot free again */
			busy--;
		}
	}
	struct aiocb sync = {.aio_fildes = out};
	sync.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (aio_fsync(O_SYNC, &sync) < 0)
		die("aio_fsync");
	const struct aiocb *one[1] = {&sync};
	while (aio_error(&sync) == EINPROGRESS)
		aio_suspend(one, 1, NULL);
	if (aio_return(&sync) < 0)
		die("fsync");
	struct kqaio_stats s;
	kqaio_get_stats(&s, sizeof s);
	printf("copied %lld bytes with %llu requests on kqaio %s (%s backend)\n",
	       (long long)st.st_size, (unsigned long long)s.completed, kqaio_version(),
	       kqaio_backend());
	return 0;
}
