/* A program with more static thread-local data than a small thread stack holds:
 * kqaio's threads must still start, and file and pipe jobs must complete. */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__thread char big_tls[1 << 17];

static ssize_t wait_for(struct aiocb *cb)
{
	const struct aiocb *l[1] = {cb};
	while (aio_error(cb) == EINPROGRESS)
		aio_suspend(l, 1, NULL);
	return aio_return(cb);
}

int main(void)
{
	big_tls[0] = 1;
	int p[2];
	if (pipe(p))
		return 2;
	char in[8] = "", out[8] = "";
	struct aiocb r, f;
	memset(&r, 0, sizeof r);
	r.aio_fildes = p[0];
	r.aio_buf = in;
	r.aio_nbytes = 4;
	r.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (aio_read(&r))
		return 3;
	memset(&f, 0, sizeof f);
	f.aio_fildes = open("/proc/self/exe", 0);
	f.aio_buf = out;
	f.aio_nbytes = 4;
	f.aio_sigevent.sigev_notify = SIGEV_NONE;
	if (f.aio_fildes < 0 || aio_read(&f) || wait_for(&f) != 4 || memcmp(out, "\177ELF", 4))
		return 4;
	if (write(p[1], "ping", 4) != 4 || wait_for(&r) != 4 || memcmp(in, "ping", 4))
		return 5;
	puts("ok");
	return 0;
}
