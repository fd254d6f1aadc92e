#!/bin/bash
# libevent's own regression suite (test/regress) on kqaio's kqueue, with
# libevent's epoll backend as the baseline on the same build: every test that
# passes on epoll must pass on kqueue, or be a known exception listed below.
#
# libevent's source comes from Debian (apt-get source, after deriving a deb-src
# entry from the apt sources already configured); it is built unchanged
# against kqaio installed in a scratch prefix. Nothing in libevent is patched:
# its configure finds <sys/event.h> and kqueue() there, its "working kqueue"
# probe passes, and event.c tries kqueue before epoll, so the only build
# configuration is where kqaio's headers and library live.
#
#   tests/interop/libevent.sh [--bench] [BUILD]
#
# BUILD is kqaio's build folder (default: build). The work goes into
# BUILD/interop/libevent and is reused by the next run. The last line is
# "N passed, N failed": N passed counts the tests that pass on epoll and on
# kqueue, N failed those that pass on epoll only and are not known exceptions.
# --bench also times libevent's bench programs on both backends.
set -euo pipefail

bench=0
[ "${1:-}" = --bench ] && { bench=1; shift; }
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$build/interop/libevent
jobs=${KQAIO_INTEROP_JOBS:-4}
per_test=${KQAIO_INTEROP_TIMEOUT:-60}
mkdir -p "$work"

# Tests that pass on epoll and do not on kqueue, each with its reason. A test
# libevent itself skips on kqueue does not pass there, so it is listed too.
known() {
	case $1 in
	main/simpleclose_*)
		echo "needs EV_FEATURE_EARLY_CLOSE (EV_CLOSED), which libevent's kqueue.c does" \
			"not offer on any system: libevent skips it on FreeBSD too"
		;;
	esac
}

say() { printf 'libevent.sh: %s\n' "$*" >&2; }

# --- libevent's source, from the package registry --------------------------
src_entry() {
	grep -Eqs '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list
}
fetch() {
	local dir
	dir=$(find "$work/src" -maxdepth 1 -type d -name 'libevent-*' 2>/dev/null | head -1)
	if [ -n "$dir" ]; then
		echo "$dir"
		return
	fi
	if ! src_entry; then
		if [ "$(id -u)" -ne 0 ]; then
			say "SKIPPED: no deb-src entry in the apt sources, and adding one needs root"
			exit 0
		fi
		# The same archives as the binary entries, for source packages.
		local f out=/etc/apt/sources.list.d/kqaio-src.sources
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -e "$f" ] && [ "$f" != "$out" ] && sed 's/^Types: deb$/Types: deb-src/' "$f"
		done >"$out.tmp"
		mv "$out.tmp" "$out"
		[ -e /etc/apt/sources.list ] &&
			sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/kqaio-src.list
		say "derived a deb-src entry: /etc/apt/sources.list.d/kqaio-src.*"
		apt-get update -qq
	fi
	mkdir -p "$work/src"
	(cd "$work/src" && apt-get source -qq libevent >/dev/null 2>"$work/src/apt.log") ||
		{ cat "$work/src/apt.log" >&2; exit 2; }
	dir=$(find "$work/src" -maxdepth 1 -type d -name 'libevent-*' | head -1)
	# Debian's patches change Makefile.am; regenerate before configuring.
	(cd "$dir" && autoreconf -fi >"$work/src/autoreconf.log" 2>&1) ||
		{ cat "$work/src/autoreconf.log" >&2; exit 2; }
	echo "$dir"
}

# --- libevent built against kqaio ------------------------------------------
configure_and_make() {
	local srcdir=$1 prefix=$work/prefix obj=$work/obj
	make -C "$root" --no-print-directory -s install BUILD="$build" PREFIX="$prefix" >/dev/null
	# libevent links libkqaio.so by rpath: a new kqaio needs no new libevent.
	if [ ! -e "$obj/config.status" ]; then
		rm -rf "$obj" && mkdir -p "$obj"
		# -I…/include/kqaio first: kqaio's <sys/event.h> and <aio.h>.
		(cd "$obj" && "$srcdir/configure" -q --disable-openssl --disable-shared --disable-samples \
			--disable-libevent-install \
			CPPFLAGS="-I$prefix/include/kqaio -I$prefix/include -pthread" \
			LIBS="-L$prefix/lib -Wl,-rpath,$prefix/lib -lkqaio" >"$work/configure.log" 2>&1) ||
			{ tail -30 "$work/configure.log" >&2; exit 2; }
	fi
	grep -q "^#define HAVE_WORKING_KQUEUE 1" "$obj/config.h" ||
		{ say "libevent's configure did not take kqaio's kqueue (see $obj/config.log)"; exit 1; }
	make -C "$obj" -s -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 2; }
	make -C "$obj" -s -j"$(nproc)" test/regress test/bench test/bench_cascade >>"$work/make.log" 2>&1 ||
		{ tail -30 "$work/make.log" >&2; exit 2; }
	# What a program linked to this libevent gets when only kqueue is allowed.
	cc -O2 -I"$srcdir/include" -I"$obj/include" "$root/tests/interop/libevent-method.c" \
		-o "$work/method" "$obj/.libs/libevent_core.a" -L"$prefix/lib" -Wl,-rpath,"$prefix/lib" -lkqaio -pthread
}

# Environment that leaves libevent one backend.
only() {
	local keep=$1 m
	for m in EPOLL POLL SELECT KQUEUE DEVPOLL EVPORT WIN32; do
		[ "$m" = "$keep" ] || printf 'EVENT_NO%s=1\n' "$m"
	done
}

# One regress test, alone in its process group, killed if it hangs.
run_one() {
	local backend=$1 t=$2 out rc
	out=$(env $(only "$backend") timeout -s KILL "$per_test" "$work/obj/test/regress" "$t" 2>&1) && rc=0 || rc=$?
	if [ $rc -eq 0 ] && grep -q '(1 skipped)' <<<"$out"; then
		echo "$t skip"
	elif [ $rc -eq 0 ]; then
		echo "$t ok"
	else
		[ $rc -eq 137 ] && echo "$t hang" || echo "$t fail"
		printf '%s\n' "$out" >"$work/logs/$backend/${t//\//_}.log"
	fi
}
export -f run_one only
export work per_test

suite() {
	local backend=$1
	mkdir -p "$work/logs/$backend"
	rm -f "$work/logs/$backend"/*.log
	xargs -P "$jobs" -I{} bash -c 'run_one "$0" "$1"' "$backend" {} <"$work/tests" | sort >"$work/$backend.result"
}

srcdir=$(fetch)
[ -n "$srcdir" ] || exit 0 # skipped, and said why
say "libevent source: ${srcdir#"$work"/}"
configure_and_make "$srcdir"
method=$(env $(only KQUEUE) "$work/method")
[ "$method" = kqueue ] || { say "event_base_get_method() says '$method', want kqueue"; exit 1; }
say "event_base_get_method() with only kqueue allowed: $method"

# Every test regress lists, by full name.
"$work/obj/test/regress" --list-tests | awk '$1 ~ /\// {print $1}' >"$work/tests"
say "$(wc -l <"$work/tests") tests, $jobs at a time, ${per_test}s each at most"
for backend in KQUEUE EPOLL; do
	start=$(date +%s)
	suite $backend
	say "$backend: $(grep -c ' ok$' "$work/$backend.result") ok, $(grep -c ' skip$' "$work/$backend.result") skipped, $(grep -Ec ' (fail|hang)$' "$work/$backend.result") failed in $(($(date +%s) - start))s"
done

# A test that passed on epoll and not on kqueue gets two more tries alone, so
# that a timing test upset by a busy machine is not taken for a kqueue fault.
passed=0 failed=0 retried=0 excused=0
while read -r t res; do
	[ "$res" = ok ] || continue
	kq=$(awk -v t="$t" '$1 == t {print $2}' "$work/KQUEUE.result")
	if [ "$kq" = fail ] || [ "$kq" = hang ]; then
		for _ in 1 2; do
			kq=$(run_one KQUEUE "$t" | awk '{print $2}')
			[ "$kq" = ok ] && break
		done
		[ "$kq" = ok ] && retried=$((retried + 1))
	fi
	if [ "$kq" = ok ]; then
		passed=$((passed + 1))
	elif [ -n "$(known "$t")" ]; then
		excused=$((excused + 1))
		say "known: $t ($kq on kqueue): $(known "$t")"
	else
		failed=$((failed + 1))
		say "FAILED on kqueue, passes on epoll: $t (log: ${work#"$build"/}/logs/KQUEUE/${t//\//_}.log)"
	fi
done <"$work/EPOLL.result"
extra=$(join <(awk '$2 == "ok" {print $1}' "$work/KQUEUE.result") <(awk '$2 != "ok" {print $1}' "$work/EPOLL.result") | wc -l)
say "of the tests epoll passes, kqueue passes $passed ($retried on a second try), $excused are known exceptions; kqueue also passes $extra that epoll does not"

if [ $bench = 1 ]; then
	"$root/tests/interop/libevent-bench.sh" "$work"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
