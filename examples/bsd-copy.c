/* bsd-copy: copy a file the BSD way. Reads go out as one lio_listio() batch
 * of 8 x 128 KiB, the writes of that data as another; each batch reports
 * once, as an EVFILT_LIO event, to a kqueue. The same kevent() loop prints
 * progress on an EVFILT_TIMER once a second and watches a pipe with
 * EVFILT_READ: Ctrl-C writes to it, and the copy stops after the batches in
 * flight. Two batches alternate, so one reads while the other writes. A last
 * aio_fsync() reports as an EVFILT_AIO event. Only <aio.h>, <sys/event.h>
 * and POSIX: it builds as is on FreeBSD, and on Linux against kqaio. */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NREQ = 8, CHUNK = 128 * 1024 };
enum { IDLE, READING, WRITING };

struct batch {
	int state, n;
	struct aiocb cb[NREQ];
	struct aiocb *list[NREQ]; /* the EVFILT_LIO event's ident */
	char *buf[NREQ];
};

static int in, out, kq, wake[2];
static off_t size, next, copied;

static void die(const char *what)
{
	fprintf(stderr, "bsd-copy: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void on_sigint(int sig)
{
	(void)sig;
	int e = errno;
	ssize_t r = write(wake[1], "", 1); /* async-signal-safe; the kevent loop sees it */
	(void)r;
	errno = e;
}

/* Submits the batch's list; its EVFILT_LIO event carries the batch as udata. */
static void submit(struct batch *b)
{
	struct sigevent sig;
	memset(&sig, 0, sizeof sig);
	sig.sigev_notify = SIGEV_KEVENT;
	sig.sigev_notify_kqueue = kq;
	sig.sigev_value.sival_ptr = b;
	if (lio_listio(LIO_NOWAIT, b->list, b->n, &sig) < 0)
		die(b->state == READING ? "lio_listio (reads)" : "lio_listio (writes)");
}

/* Queues reads of the next chunks of the source, up to NREQ of them. */
static void start_reads(struct batch *b)
{
	for (b->n = 0; b->n < NREQ && next < size; b->n++, next += CHUNK) {
		struct aiocb *cb = &b->cb[b->n];
		memset(cb, 0, sizeof *cb);
		cb->aio_fildes = in;
		cb->aio_buf = b->buf[b->n];
		cb->aio_nbytes = CHUNK;
		cb->aio_offset = next;
		cb->aio_lio_opcode = LIO_READ;
		cb->aio_sigevent.sigev_notify = SIGEV_NONE; /* the list reports for all */
		b->list[b->n] = cb;
	}
	b->state = b->n ? READING : IDLE;
	if (b->n)
		submit(b);
}

/* The batch's list is done: reap every entry, then turn reads into writes. */
static void batch_done(struct batch *b)
{
	int writes = 0;
	for (int i = 0; i < b->n; i++) {
		struct aiocb *cb = b->list[i]; /* writes refill list[0..i] only */
		ssize_t r = aio_return(cb);
		if (r < 0)
			die(b->state == READING ? "read" : "write");
		if (b->state == WRITING) {
			if ((size_t)r != cb->aio_nbytes) {
				errno = EIO;
				die("short write");
			}
			copied += r;
		} else if (r < (ssize_t)cb->aio_nbytes && cb->aio_offset + r < size) {
			errno = EIO; /* short only at the end of the file */
			die("short read");
		} else if (r > 0) { /* the same aiocb, now writing what it read */
			cb->aio_fildes = out;
			cb->aio_nbytes = (size_t)r;
			cb->aio_lio_opcode = LIO_WRITE;
			b->list[writes++] = cb;
		}
	}
	if (b->state == READING && writes) {
		b->state = WRITING;
		b->n = writes;
		submit(b);
	} else {
		b->state = IDLE;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bsd-copy SOURCE DEST\n"
		"Copies SOURCE to DEST with lio_listio() batches of %d x %d KiB whose\n"
		"completions, a progress timer and Ctrl-C all arrive through one kqueue.\n",
		NREQ, CHUNK / 1024);
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	struct stat st;
	if ((in = open(argv[1], O_RDONLY)) < 0 || fstat(in, &st) < 0)
		die(argv[1]);
	if ((out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die(argv[2]);
	size = st.st_size;
	if ((kq = kqueue()) < 0)
		die("kqueue");
	if (pipe(wake) < 0 || fcntl(wake[1], F_SETFL, O_NONBLOCK) < 0)
		die("pipe");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0)
		die("sigaction");

	struct kevent ch[2];
	EV_SET(&ch[0], 1, EVFILT_TIMER, EV_ADD, 0, 1000, NULL); /* every 1000 ms */
	EV_SET(&ch[1], wake[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
	if (kevent(kq, ch, 2, NULL, 0, NULL) < 0)
		die("kevent (register)");

	static struct batch batches[2];
	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < NREQ; j++)
			if (!(batches[i].buf[j] = malloc(CHUNK)))
				die("malloc");
		start_reads(&batches[i]);
	}
	int stopping = 0, syncing = 0, synced = 0;
	struct aiocb sync;
	for (;;) {
		if (batches[0].state == IDLE && batches[1].state == IDLE && !syncing) {
			if (stopping || synced)
				break;
			memset(&sync, 0,
			       sizeof sync); /* all written: flush, reported by kevent too */
			sync.aio_fildes = out;
			sync.aio_sigevent.sigev_notify = SIGEV_KEVENT;
			sync.aio_sigevent.sigev_notify_kqueue = kq;
			if (aio_fsync(O_SYNC, &sync) < 0)
				die("aio_fsync");
			syncing = 1;
		}
		struct kevent ev[4];
		int n = kevent(kq, NULL, 0, ev, 4, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("kevent");
		for (int i = 0; i < n; i++) {
			if (ev[i].flags & EV_ERROR) {
				errno = (int)ev[i].data;
				die("kevent (event)");
			}
			if (ev[i].filter == EVFILT_TIMER) {
				printf("%lld of %lld MiB\n", (long long)(copied >> 20),
				       (long long)(size >> 20));
				fflush(stdout);
			} else if (ev[i].filter == EVFILT_READ) {
				char c;
				if (read(wake[0], &c, 1) == 1 && !stopping)
					fprintf(stderr, "bsd-copy: interrupted, finishing the "
							"batches in flight\n");
				stopping = 1;
			} else if (ev[i].filter == EVFILT_LIO) {
				struct batch *b = ev[i].udata;
				batch_done(b);
				if (b->state == IDLE && !stopping)
					start_reads(b);
			} else if (ev[i].filter == EVFILT_AIO) { /* the fsync */
				if (aio_return(&sync) < 0)
					die("fsync");
				syncing = 0;
				synced = 1;
			}
		}
	}
	printf("copied %lld of %lld bytes%s\n", (long long)copied, (long long)size,
	       stopping ? " (interrupted)" : "");
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < NREQ; j++)
			free(batches[i].buf[j]);
	close(kq);
	close(wake[0]);
	close(wake[1]);
	if (close(out) < 0)
		die("close");
	close(in);
	return stopping ? 130 : 0;
}
