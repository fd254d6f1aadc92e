/* A spinning thread's hint to the CPU that it is waiting. */
#ifndef KQ_COMMON_CPU_H
#define KQ_COMMON_CPU_H

static inline void kq_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
