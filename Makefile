# kqaio — GNU Make build. `make` builds the library, tools and examples into
# $(BUILD); `make check` runs the test suite; SAN=asan|tsan builds sanitized
# copies into their own folders (make check-asan / check-tsan).

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

SAN ?=
ifeq ($(SAN),)
BUILD ?= build
else
BUILD ?= build-$(SAN)
endif

VERSION := $(shell sed -n 's/^#define KQAIO_VERSION[[:space:]]*"\(.*\)"/\1/p' include/kqaio/kqaio.h)
SOMAJOR := 0

CC      ?= cc
OPT     ?= -O2
CFLAGS_BASE := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
	-Iinclude/kqaio -Iinclude -Isrc
SANFLAGS_asan := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SANFLAGS_tsan := -fsanitize=thread
SANFLAGS := $(SANFLAGS_$(SAN))
# A sanitized libkqaio preloaded into an unsanitized program needs its runtime first.
SANRT_asan = $(shell $(CC) -print-file-name=libasan.so)
SANRT_tsan = $(shell $(CC) -print-file-name=libtsan.so)
SANRT = $(SANRT_$(SAN))
# glibc marks the aio_* arguments nonnull; we check them and answer EINVAL instead.
LIB_CFLAGS := $(CFLAGS_BASE) $(SANFLAGS) -fPIC -fvisibility=hidden "-D__attribute_nonnull__(p)=" $(CFLAGS)
LIBS := -pthread -luring

LIB_SRCS := $(wildcard src/common/*.c src/aio/*.c src/aio/backend/*.c src/kq/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
SO      := $(BUILD)/libkqaio.so
A       := $(BUILD)/libkqaio.a

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
TEST_SRCS := $(filter-out tests/kqt_shim.c,$(wildcard tests/*.c))
# Criterion's runner cannot start under ThreadSanitizer (Criterion issue #274):
# the TSan build runs the same tests through tests/kqt_shim.c instead.
ifeq ($(SAN),tsan)
TEST_SRCS += tests/kqt_shim.c
TEST_FRAMEWORK := -DKQT_SHIM -Wno-format-zero-length
else
TEST_FRAMEWORK := -lcriterion
endif
TEST_BIN := $(BUILD)/tests/kqaio-tests
TOOLS := $(BUILD)/kqaio-run $(BUILD)/kqaio-bench
BENCH_TOOL_SRCS := $(wildcard tools/bench/*.c)

# Flags for programs linked against the freshly built shared library.
PROG_CFLAGS := $(CFLAGS_BASE) $(SANFLAGS) $(CFLAGS)
PROG_LDFLAGS := -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lkqaio -pthread

.PHONY: bench benches all lib tools examples tests check check-asan check-tsan check-all check-interop \
	bench-libevent soak deps demo plot \
	install uninstall clean format

all: lib tools examples benches

lib: $(SO) $(A)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(SO).$(VERSION): $(LIB_OBJS)
	$(CC) $(SANFLAGS) -shared -Wl,-soname,libkqaio.so.$(SOMAJOR) -Wl,--no-undefined \
		-o $@ $(LIB_OBJS) $(LIBS)

$(SO): $(SO).$(VERSION)
	ln -sf libkqaio.so.$(VERSION) $(BUILD)/libkqaio.so.$(SOMAJOR)
	ln -sf libkqaio.so.$(VERSION) $@

$(A): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

tools: $(TOOLS)

# Benchmark programs (bench/*.c), built against glibc alone: the scripts beside
# them run each twice, as built and with kqaio preloaded, to compare in one run.
# Those using kqueue or SIGEV_KEVENT link the library itself (and liburing for
# raw io_uring peers).
LINKED_BENCHES := kq-bench aio-kevent-latency
BENCH_SRCS := $(filter-out $(LINKED_BENCHES:%=bench/%.c),$(wildcard bench/*.c))
BENCHES := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
benches: $(BENCHES) $(patsubst %,$(BUILD)/bench/%,$(notdir $(basename $(wildcard $(LINKED_BENCHES:%=bench/%.c)))))

# The whole comparison: fio posixaio on glibc and under kqaio-run against fio
# io_uring, O_DIRECT on disk and tmpfs, depth 1 and 32, one table of medians
# and ratios (bench/compare.sh; BENCHFLAGS passes options, e.g. -r 7).
bench: deps all
	bench/compare.sh $(BENCHFLAGS)

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread $(SANFLAGS) $< -o $@

$(LINKED_BENCHES:%=$(BUILD)/bench/%): $(BUILD)/bench/%: bench/%.c $(SO)
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) $< -o $@ $(PROG_LDFLAGS) -luring

$(BUILD)/kqaio-run: tools/kqaio-run.in $(SO)
	sed -e 's|@KQAIO_LIB@|$(if $(SANRT),$(SANRT):)$(abspath $(BUILD))/libkqaio.so.$(SOMAJOR)|' \
		-e 's|@KQAIO_VERSION@|$(VERSION)|' $< > $@
	chmod +x $@

# kqaio-bench links kqaio (its aio_* are kqaio's), liburing for the ceiling and
# libdl for dlvsym, through which it finds glibc's own aio_* at run time.
$(BUILD)/kqaio-bench: $(BENCH_TOOL_SRCS) tools/bench/bench.h $(SO)
	$(CC) $(PROG_CFLAGS) $(BENCH_TOOL_SRCS) -o $@ $(PROG_LDFLAGS) -luring -ldl

examples: $(EXAMPLES)

$(BUILD)/examples/%: examples/%.c $(SO)
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) $< -o $@ $(PROG_LDFLAGS)

tests: $(TEST_BIN) $(BUILD)/tests/glibc-client $(BUILD)/tests/big-tls

$(BUILD)/tests/big-tls: tests/interop/big-tls.c $(SO)
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) $< -o $@ $(PROG_LDFLAGS)

# Built against glibc alone: the drop-in test runs it under kqaio-run.
$(BUILD)/tests/glibc-client: tests/interop/glibc-client.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror $(SANFLAGS) $< -o $@

$(TEST_BIN): $(TEST_SRCS) $(wildcard tests/*.h) $(SO) $(TOOLS)
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) -Wno-missing-field-initializers $(TEST_SRCS) -o $@ $(PROG_LDFLAGS) \
		$(TEST_FRAMEWORK)

deps:
	@scripts/deps

# The whole suite, once per backend. KQAIO_TEST_JOBS sets the parallelism.
TEST_ENV = KQAIO_BUILD=$(abspath $(BUILD)) KQAIO_SRC=$(CURDIR) KQAIO_SAN=$(SAN) \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp TSAN_OPTIONS=die_after_fork=0
# Then, unsanitized, libevent's own regress suite on our kqueue (check-interop).
check: deps
	@$(MAKE) --no-print-directory all tests
	@echo "== backend pool"
	KQAIO_BACKEND=pool $(TEST_ENV) $(TEST_BIN) --jobs $${KQAIO_TEST_JOBS:-2} $(TESTFLAGS)
	@echo "== backend uring"
	KQAIO_BACKEND=uring $(TEST_ENV) $(TEST_BIN) --jobs $${KQAIO_TEST_JOBS:-2} $(TESTFLAGS)
ifeq ($(SAN),)
	@$(MAKE) --no-print-directory check-interop
endif

# libevent (Debian's source) built against kqaio: its test/regress on kqueue,
# then on epoll, in about two minutes; bench-libevent adds libevent's benchmarks.
check-interop: deps all
	@echo "== libevent's regress suite, kqueue against epoll"
	tests/interop/libevent.sh $(BUILD)

bench-libevent: deps all
	tests/interop/libevent.sh --bench $(BUILD)

check-asan:
	@$(MAKE) --no-print-directory SAN=asan check

check-tsan:
	@$(MAKE) --no-print-directory SAN=tsan check

check-all: check check-asan check-tsan

# Ten minutes of the soak tests, five on each backend (make check runs them briefly).
SOAK_SECONDS ?= 300
soak: deps
	@$(MAKE) --no-print-directory all tests
	for be in pool uring; do \
		KQAIO_BACKEND=$$be KQAIO_SOAK_SECONDS=$$(($(SOAK_SECONDS) / 3)) \
		KQAIO_KEVENT_SOAK_SECONDS=$$(($(SOAK_SECONDS) * 2 / 3)) $(TEST_ENV) $(TEST_BIN) \
		--jobs 1 --timeout $$(($(SOAK_SECONDS) + 120)) --filter '*soak*/*' || exit 1; \
	done

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo $(BUILD)

# pkg-config files: kqaio.pc links libkqaio.so (and, with --static, names what
# a fully static link needs); kqaio-static.pc links libkqaio.a into the program.
PCFILES := kqaio.pc kqaio-static.pc

# IOPS against queue depth for kqaio, glibc and raw io_uring, into doc/qd-iops.png
# and doc/qd-iops.csv (about two minutes; not part of make check).
plot: deps
	@$(MAKE) --no-print-directory all
	@scripts/plot $(BUILD)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/kqaio/sys $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man1
	install -m 755 $(SO).$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libkqaio.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libkqaio.so.$(SOMAJOR)
	ln -sf libkqaio.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libkqaio.so
	install -m 644 $(A) $(DESTDIR)$(LIBDIR)/
	install -m 644 include/kqaio/*.h $(DESTDIR)$(INCLUDEDIR)/kqaio/
	install -m 644 include/kqaio/sys/event.h $(DESTDIR)$(INCLUDEDIR)/kqaio/sys/
	sed -e 's|@KQAIO_LIB@|$(LIBDIR)/libkqaio.so.$(SOMAJOR)|' -e 's|@KQAIO_VERSION@|$(VERSION)|' tools/kqaio-run.in \
		> $(DESTDIR)$(BINDIR)/kqaio-run
	chmod 755 $(DESTDIR)$(BINDIR)/kqaio-run
	$(CC) $(PROG_CFLAGS) $(BENCH_TOOL_SRCS) -o $(DESTDIR)$(BINDIR)/kqaio-bench \
		-L$(BUILD) -Wl,-rpath,$(LIBDIR) -lkqaio -pthread -luring -ldl
	for pc in $(PCFILES); do \
		sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
			-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
			$$pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$pc || exit 1; done
	for m in $(wildcard man/*.[137]); do \
		s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libkqaio.so* $(DESTDIR)$(LIBDIR)/libkqaio.a
	rm -rf $(DESTDIR)$(INCLUDEDIR)/kqaio
	rm -f $(DESTDIR)$(BINDIR)/kqaio-run $(DESTDIR)$(BINDIR)/kqaio-bench \
		$(PCFILES:%=$(DESTDIR)$(PKGCONFIGDIR)/%)
	for m in $(wildcard man/*.[137]); do \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan

-include $(LIB_OBJS:.o=.d)
