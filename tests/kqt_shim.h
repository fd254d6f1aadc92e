/* A stand-in for the part of Criterion's API the suite uses, for the
 * ThreadSanitizer build only: Criterion's runner cannot start under TSan (its
 * arena maps fixed addresses inside TSan's shadow; Criterion issue #274). Each
 * test still runs in its own process with its timeout. */
#ifndef KQT_SHIM_H
#define KQT_SHIM_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct kqt_opts {
	double timeout;
	void (*init)(void);
	void (*fini)(void);
	bool disabled;
	const char *description;
	int signal;
	int exit_code;
};

void kqt_register(const char *suite, const char *name, void (*fn)(void),
		  const struct kqt_opts *suite_opts, const struct kqt_opts *opts);
void kqt_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
_Noreturn void kqt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TestSuite(s, ...) static const struct kqt_opts kqt_suite_##s = {__VA_ARGS__}

#define Test(s, n, ...)                                                                            \
	static void kqt_fn_##s##_##n(void);                                                        \
	static const struct kqt_opts kqt_opts_##s##_##n = {__VA_ARGS__};                           \
	__attribute__((constructor)) static void kqt_reg_##s##_##n(void)                           \
	{                                                                                          \
		kqt_register(#s, #n, kqt_fn_##s##_##n, &kqt_suite_##s, &kqt_opts_##s##_##n);       \
	}                                                                                          \
	static void kqt_fn_##s##_##n(void)

#define kqt_check_(fatal, cond, expr, ...)                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			kqt_fail(fatal, __FILE__, __LINE__, expr, "" __VA_ARGS__);                 \
	} while (0)

#define cr_assert(c, ...)	     kqt_check_(1, c, #c, __VA_ARGS__)
#define cr_expect(c, ...)	     kqt_check_(0, c, #c, __VA_ARGS__)
#define cr_assert_not(c, ...)	     kqt_check_(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...)	     kqt_check_(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)	     kqt_check_(1, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...)	     kqt_check_(0, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)     kqt_check_(1, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)     kqt_check_(0, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)	     kqt_check_(1, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)     kqt_check_(1, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)	     kqt_check_(1, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)     kqt_check_(1, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)	     kqt_check_(0, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)     kqt_check_(0, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)	     kqt_check_(0, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)     kqt_check_(0, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...)	     kqt_check_(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...)   kqt_check_(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)  kqt_check_(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) kqt_check_(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                                             \
	kqt_check_(1, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_fail(...) kqt_fail(1, __FILE__, __LINE__, "fail", "" __VA_ARGS__)
#define cr_skip_test(...)   kqt_skip("" __VA_ARGS__)
#define cr_log_info(...)    (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...)    cr_log_info(__VA_ARGS__)
#define cr_log_error(...)   cr_log_info(__VA_ARGS__)

#endif
