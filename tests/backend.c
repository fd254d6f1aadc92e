/* Backend choice: io_uring refused for real (a seccomp filter makes
 * io_uring_setup fail with EPERM) leaves everything working on the pool, and
 * KQAIO_DEBUG says why; KQAIO_BACKEND forces a choice. */
#include "kqt.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

TestSuite(backend, .timeout = 30);

static void refuse_io_uring(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof *f, .filter = f};
	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0, "seccomp: %s",
		     strerror(errno));
	cr_assert_eq(syscall(__NR_io_uring_setup, 8, NULL), -1);
	cr_assert_eq(errno, EPERM, "the filter refuses io_uring_setup");
}

/* Runs some of everything: reads, writes, a list, an fsync. */
static void some_work(void)
{
	int fd = kqt_file(1 << 20);
	static char bufs[16][4096];
	struct aiocb cbs[16], *list[16];
	for (int i = 0; i < 16; i++) {
		kqt_cb(&cbs[i], fd, bufs[i], 4096, (off_t)i * 8192);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	cr_assert_eq(lio_listio(LIO_WAIT, list, 16, NULL), 0);
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 4096);
		cr_assert(kqt_check(bufs[i], (off_t)i * 8192, 4096));
	}
	kqt_fill(bufs[0], 0, 4096);
	kqt_cb(&cbs[0], fd, bufs[0], 4096, 0);
	cr_assert_eq(aio_write(&cbs[0]), 0);
	kqt_cb(&cbs[1], fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &cbs[1]), 0);
	cr_assert_eq(kqt_wait(&cbs[1]), 0);
	cr_assert_eq(kqt_wait(&cbs[0]), 4096);
}

Test(backend, refused_io_uring_falls_back_to_the_pool)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	int saved = dup(2);
	dup2(p[1], 2);
	setenv("KQAIO_DEBUG", "1", 1);
	setenv("KQAIO_BACKEND", "uring", 1); /* even when asked for */
	refuse_io_uring();
	const char *be = kqaio_backend(); /* first use: the probe runs here */
	dup2(saved, 2);
	close(p[1]);
	char msg[4096] = "";
	ssize_t n = read(p[0], msg, sizeof msg - 1);
	msg[n > 0 ? n : 0] = 0;
	cr_assert_str_eq(be, "pool");
	cr_assert(strstr(msg, "io_uring refused") && strstr(msg, "permitted"),
		  "KQAIO_DEBUG did not say why: %s", msg);
	some_work();
}

Test(backend, kqaio_backend_variable_forces_the_pool)
{
	setenv("KQAIO_BACKEND", "pool", 1);
	cr_assert_str_eq(kqaio_backend(), "pool");
	some_work();
}

Test(backend, uring_is_the_default_where_it_works)
{
	unsetenv("KQAIO_BACKEND");
	int fd = (int)syscall(__NR_io_uring_setup, 8, &(char[120]){0});
	if (fd < 0)
		cr_skip_test("io_uring is not available here: %s", strerror(errno));
	close(fd);
	cr_assert_str_eq(kqaio_backend(), "uring");
	some_work();
}
