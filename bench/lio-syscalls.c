/* One lio_listio(LIO_WAIT) of N 4 KiB reads of FILE; run under strace -c by
 * bench/lio-syscalls.sh to count the system calls a list costs. */
#include <aio.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: lio-syscalls FILE N\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY), n = atoi(argv[2]);
	char *buf = malloc((size_t)n * 4096);
	struct aiocb *cbs = calloc((size_t)n, sizeof *cbs), **l = calloc((size_t)n, sizeof *l);
	if (fd < 0 || n <= 0 || !buf || !cbs || !l)
		return 2;
	for (int i = 0; i < n; i++) {
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = buf + (size_t)i * 4096;
		cbs[i].aio_nbytes = 4096;
		cbs[i].aio_offset = (off_t)i * 4096;
		cbs[i].aio_lio_opcode = LIO_READ;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		l[i] = &cbs[i];
	}
	if (lio_listio(LIO_WAIT, l, n, NULL)) {
		perror("lio_listio");
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (aio_return(&cbs[i]) != 4096)
			return 1;
	return 0;
}
