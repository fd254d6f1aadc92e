/* Engine start-up on first use, aio_init, and starting afresh in a forked
 * child: the one file that names the backends (kq_aio.be). */
#include "aio/backend/backend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "kq/post.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void state_reset(void)
{
	kq_list_init(&kq_aio.active);
	kq_list_init(&kq_aio.done);
	kq_aio.njobs = 0;
	kq_aio.waiters = 0;
	kq_aio.broadcast = 0;
	/* The parent's jobs and lists are not ours: leave them, don't reuse them. */
	kq_aio.free_jobs = NULL;
	kq_aio.reaped = NULL;
	kq_aio.free_lists = NULL;
	kq_aio.pid = getpid();
}

static void fork_prepare(void)
{
	/* Already done; the call orders this thread after start-up for ThreadSanitizer,
	 * which cannot see the lock glibc holds around its atfork list. */
	kq_aio_init();
	kq_notify_fork_prepare();
	pthread_mutex_lock(&kq_aio.lock);
	kq_tpool_fork_prepare(&kq_aio.workers);
	KQ_BE_EACH(fork_prepare);
}

static void fork_parent(void)
{
	KQ_BE_EACH(fork_parent);
	kq_tpool_fork_parent(&kq_aio.workers);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_notify_fork_parent();
}

static void fork_child(void)
{
	KQ_BE_EACH(fork_child);
	kq_tpool_fork_child(&kq_aio.workers);
	pthread_mutex_unlock(&kq_aio.lock);
	kq_notify_fork_child();
	__atomic_add_fetch(&kq_epoch, 1, __ATOMIC_RELEASE);
	state_reset();
	kq_fd_fork_child();
	kq_stats_reset();
}

/* io_uring where it works, unless KQAIO_BACKEND says otherwise; the pool
 * wherever io_uring is refused (seccomp, kernel.io_uring_disabled, ENOSYS). */
static void pick_backend(void)
{
	const char *be = getenv("KQAIO_BACKEND");
	kq_aio.be[KQ_BE_INLINE] = &kq_be_inline;
	kq_aio.be[KQ_BE_STREAM] = &kq_be_stream;
	kq_aio.be[KQ_BE_MAIN] = kq_aio.be[KQ_BE_POOL] = &kq_be_pool;
	if (be && !strcmp(be, "pool")) {
		kq_debug("backend pool (KQAIO_BACKEND), %ld threads at most", kq_config.threads);
		return;
	}
	if (be && *be && strcmp(be, "uring"))
		kq_debug("KQAIO_BACKEND=%s is not a backend (uring, pool); choosing", be);
	int err = kq_uring_start();
	if (err) {
		kq_debug("io_uring refused (%s); backend pool", strerror(err));
		return;
	}
	kq_aio.be[KQ_BE_MAIN] = &kq_be_uring;
	kq_debug("backend uring; streams on the pool, %ld threads at most", kq_config.threads);
}

/* kevent() may be where a SIGEV_KEVENT request's owner waits for it. */
static void flush_held(void)
{
	KQ_BE_EACH(flush);
}

static void init_once(void)
{
	kq_debug_init();
	kq_config.max_jobs = kq_env_long("KQAIO_MAX_JOBS", 65536, 1, 1L << 24);
	kq_config.listio_max = kq_env_long("KQAIO_LISTIO_MAX", 65536, 1, 1L << 24);
	kq_config.threads = kq_env_long("KQAIO_THREADS", 64, 1, 4096);
	kq_config.idle_ms = kq_env_long("KQAIO_IDLE_MS", 1000, 1, 3600 * 1000);
	kq_config.stats = kq_env_flag("KQAIO_STATS");
	const char *batch = getenv("KQAIO_BATCH");
	kq_config.batch = !batch || !*batch	       ? KQ_BATCH_ADAPTIVE
			  : kq_env_flag("KQAIO_BATCH") ? KQ_BATCH_ALWAYS
						       : KQ_BATCH_NEVER;
	kq_config.inline_max = kq_env_long("KQAIO_INLINE", 65536, 0, 1L << 30);
	const char *copier = getenv("KQAIO_COPIER");
	kq_config.copier = !copier || !*copier || kq_env_flag("KQAIO_COPIER");
	kq_config.spin_ns = kq_env_long("KQAIO_SPIN", 50, 0, 10000) * 1000;
	state_reset();
	/* I/O workers need little stack: reads and writes go straight to the kernel. */
	kq_tpool_init(&kq_aio.workers, "kqaio-io", (int)kq_config.threads, (int)kq_config.idle_ms,
		      64 * 1024);
	kq_stats_init();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	pick_backend();
	kq_post_set_flush(flush_held);
}

void kq_aio_init(void)
{
	pthread_once(&once, init_once);
}

KQ_API void aio_init(const struct aioinit *init)
{
	KQ_ENTER(nested);
	kq_aio_init();
	if (!init)
		return;
	int idle_ms = init->aio_idle_time > 0 ? init->aio_idle_time * 1000 : 0;
	kq_tpool_tune(&kq_aio.workers, init->aio_threads, idle_ms);
}

KQ_API const char *kqaio_backend(void)
{
	kq_aio_init();
	return kq_aio.be[KQ_BE_MAIN]->name;
}
