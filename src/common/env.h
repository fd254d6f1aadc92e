/* Configuration read once from the environment (KQAIO_*), and debug output. */
#ifndef KQ_COMMON_ENV_H
#define KQ_COMMON_ENV_H

#include <stdbool.h>

/* The integer in $name, clamped to [lo, hi]; def when unset or not a number. */
long kq_env_long(const char *name, long def, long lo, long hi);
/* True when $name is set to something other than "", "0" or "no". */
bool kq_env_flag(const char *name);

extern bool kq_debug_on;
void kq_debug_init(void);
/* Prints "kqaio: ..." to stderr, only when KQAIO_DEBUG is set. */
void kq_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
