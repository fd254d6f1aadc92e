/* Configuration read once from the environment (KQAIO_*), debug output, and
 * how deep a thread is in kqaio's calls (kq.h). */
#include "common/env.h"
#include "common/kq.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool kq_debug_on;

long kq_env_long(const char *name, long def, long lo, long hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *end) {
		kq_debug("%s=%s is not a number; using %ld", name, s, def);
		return def;
	}
	return v < lo ? lo : v > hi ? hi : v;
}

bool kq_env_flag(const char *name)
{
	const char *s = getenv(name);
	return s && *s && strcmp(s, "0") && strcmp(s, "no");
}

void kq_debug_init(void)
{
	kq_debug_on = kq_env_flag("KQAIO_DEBUG");
}

void kq_debug(const char *fmt, ...)
{
	if (!kq_debug_on)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "kqaio: %s\n", buf);
}

__thread int kq_depth;
__thread uintptr_t kq_frame;

/* A call whose frame is no deeper than the outermost call's: that call was
 * left by siglongjmp, unless this one runs on a signal stack, where the
 * frames of the two stacks do not compare. */
int kq_unwound(void)
{
	stack_t ss;
	return !sigaltstack(NULL, &ss) && !(ss.ss_flags & SS_ONSTACK);
}
