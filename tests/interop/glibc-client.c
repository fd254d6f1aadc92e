/* A plain POSIX AIO program built against glibc alone (no kqaio headers or
 * library): the test runs it under kqaio-run to prove the drop-in ABI. */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char path[] = "/dev/shm/kqaio-client-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 2;
	unlink(path);
	static char out[64][512], in[64][512];
	struct aiocb cbs[64];
	struct aiocb *list[64];
	memset(cbs, 0, sizeof cbs);
	for (int i = 0; i < 64; i++) {
		memset(out[i], 'a' + i % 26, sizeof out[i]);
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = out[i];
		cbs[i].aio_nbytes = sizeof out[i];
		cbs[i].aio_offset = (off_t)i * 512;
		cbs[i].aio_lio_opcode = LIO_WRITE;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		list[i] = &cbs[i];
	}
	if (lio_listio(LIO_WAIT, list, 64, NULL) != 0)
		return 3;
	for (int i = 0; i < 64; i++)
		if (aio_return(&cbs[i]) != 512)
			return 4;
	for (int i = 0; i < 64; i++) {
		cbs[i].aio_buf = in[i];
		if (aio_read(&cbs[i]) != 0)
			return 5;
	}
	for (int i = 0; i < 64; i++) {
		const struct aiocb *one[1] = {&cbs[i]};
		while (aio_error(&cbs[i]) == EINPROGRESS)
			aio_suspend(one, 1, NULL);
		if (aio_return(&cbs[i]) != 512 || memcmp(in[i], out[i], 512))
			return 6;
	}
	cbs[0].aio_buf = in[0];
	if (aio_fsync(O_SYNC, &cbs[0]) != 0)
		return 7;
	while (aio_error(&cbs[0]) == EINPROGRESS)
		usleep(1000);
	if (aio_return(&cbs[0]) != 0)
		return 8;
	puts("ok");
	return 0;
}
