/* T threads, each keeping D 4 KiB random reads of FILE in flight with aio_read
 * and aio_suspend for S seconds; prints the total IOPS. bench/mt-submit.sh runs
 * it on glibc and under kqaio to see how submission scales with threads. */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fd, depth;
static long blocks;
static volatile int stop;

static void *run(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
	struct aiocb *cbs = calloc((size_t)depth, sizeof *cbs);
	const struct aiocb **l = calloc((size_t)depth, sizeof *l);
	char *buf = malloc((size_t)depth * 4096);
	long done = 0;
	for (int i = 0; i < depth; i++) {
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = buf + (size_t)i * 4096;
		cbs[i].aio_nbytes = 4096;
		cbs[i].aio_offset = (off_t)(rand_r(&seed) % blocks) * 4096;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		l[i] = &cbs[i];
		if (aio_read(&cbs[i]))
			abort();
	}
	while (!stop) {
		aio_suspend(l, depth, NULL);
		for (int i = 0; i < depth; i++) {
			if (aio_error(&cbs[i]) == EINPROGRESS)
				continue;
			if (aio_return(&cbs[i]) != 4096)
				abort();
			done++;
			cbs[i].aio_offset = (off_t)(rand_r(&seed) % blocks) * 4096;
			if (aio_read(&cbs[i]))
				abort();
		}
	}
	for (int i = 0; i < depth; i++) {
		while (aio_error(&cbs[i]) == EINPROGRESS)
			aio_suspend(&l[i], 1, NULL);
		aio_return(&cbs[i]);
	}
	return (void *)done;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: mt-submit FILE THREADS DEPTH SECONDS\n");
		return 2;
	}
	struct stat st;
	fd = open(argv[1], O_RDONLY);
	int threads = atoi(argv[2]), secs = atoi(argv[4]);
	depth = atoi(argv[3]);
	if (fd < 0 || fstat(fd, &st) || threads < 1 || depth < 1 || secs < 1)
		return 2;
	blocks = st.st_size / 4096;
	pthread_t t[256];
	for (int i = 0; i < threads && i < 256; i++)
		pthread_create(&t[i], NULL, run, (void *)(uintptr_t)(i + 1));
	sleep((unsigned)secs);
	stop = 1;
	long total = 0;
	for (int i = 0; i < threads && i < 256; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (long)r;
	}
	printf("%ld\n", total / secs);
	return 0;
}
