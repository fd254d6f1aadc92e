#!/bin/bash
# LTP's open_posix_testsuite AIO conformance tests, built against glibc and
# run three ways: glibc's AIO, and kqaio-run on each backend (uring, pool).
# LTP is not packaged by Debian: pass a checkout of
# https://github.com/linux-test-project/ltp (only testcases/open_posix_testsuite
# is used). Exit codes are classified as LTP does: 0 PASS, 1 FAIL,
# 2 UNRESOLVED, 4 UNSUPPORTED, 5 UNTESTED; 137 (killed at TIMEOUT) HANG.
#
# Usage: tests/interop/ltp-aio.sh LTP_DIR [test-filter-regex]
#        e.g. tests/interop/ltp-aio.sh ~/ltp 'aio_cancel/(5|7)-1'
# Env:   TIMEOUT (default 20), KQAIO_RUN (default build/kqaio-run),
#        MODES (default "glibc uring pool"), OUT (default /tmp/kqaio-ltp)
# Where kqaio differs from glibc on purpose, kqaio(7) says why (Differences
# from glibc).

set -u

case "${1:-}" in
"" | -h | --help)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$1/testcases/open_posix_testsuite
INC=$SRC/include
[ -d "$SRC/conformance/interfaces/aio_read" ] || {
	echo "ltp-aio: no open_posix_testsuite under $1" >&2
	exit 2
}
OUT=${OUT:-/tmp/kqaio-ltp}
BIN=$OUT/bin
RES=$OUT/results
TIMEOUT=${TIMEOUT:-20}
KQAIO_RUN=${KQAIO_RUN:-$HERE/../../build/kqaio-run}
MODES=${MODES:-"glibc uring pool"}
FILTER=${2:-.}
IFACES="aio_cancel aio_error aio_fsync aio_read aio_return aio_suspend aio_write lio_listio"

mkdir -p "$BIN" "$RES"
for m in $MODES; do mkdir -p "$RES/$m"; done

classify() {
	case "$1" in
	0) echo PASS ;;
	1) echo FAIL ;;
	2) echo UNRESOLVED ;;
	4) echo UNSUPPORTED ;;
	5) echo UNTESTED ;;
	137) echo HANG ;;
	*) echo "FAIL($1)" ;;
	esac
}

# ---- collect tests: .c files that define main() ----
tests=()
for i in $IFACES; do
	for f in "$SRC/conformance/interfaces/$i"/*.c; do
		[ -e "$f" ] || continue
		t="$i/$(basename "$f" .c)"
		echo "$t" | grep -Eq -- "$FILTER" || continue
		grep -Eq '(^|[^_[:alnum:]])main[[:space:]]*\(' "$f" || continue
		tests+=("$t")
	done
done
# natural sort within each interface (1-1, 2-1, ..., 10-1)
mapfile -t tests < <(printf '%s\n' "${tests[@]}" | sort -t/ -k1,1 -k2,2V)

# ---- build ----
declare -A built
for t in "${tests[@]}"; do
	out="$BIN/${t/\//_}"
	log="$RES/build_${t/\//_}.log"
	if gcc -D_GNU_SOURCE -I "$INC" -pthread -o "$out" \
		"$SRC/conformance/interfaces/$t.c" -lrt >"$log" 2>&1; then
		built[$t]=1
	else
		built[$t]=0
	fi
done

# ---- run ----
run_one() { # mode test
	local mode=$1 t=$2 scratch rc log
	log="$RES/$mode/${t/\//_}.log"
	scratch=$(mktemp -d /tmp/ltp-aio-XXXXXX)
	case "$mode" in
	glibc)
		(cd "$scratch" && TMPDIR="$scratch" timeout -s KILL "$TIMEOUT" \
			"$BIN/${t/\//_}") >"$log" 2>&1 </dev/null ;;
	uring | pool)
		(cd "$scratch" && TMPDIR="$scratch" KQAIO_BACKEND=$mode \
			timeout -s KILL "$TIMEOUT" "$KQAIO_RUN" "$BIN/${t/\//_}") \
			>"$log" 2>&1 </dev/null ;;
	esac
	rc=$?
	rm -rf "$scratch"
	echo "$rc"
}

declare -A R
: >"$RES/results.tsv"
for t in "${tests[@]}"; do
	line="$t"
	for m in $MODES; do
		if [ "${built[$t]}" = 1 ]; then
			rc=$(run_one "$m" "$t")
			R[$t,$m]=$(classify "$rc")
		else
			R[$t,$m]=build-fail
		fi
		line="$line	${R[$t,$m]}"
	done
	echo "$line" >>"$RES/results.tsv"
done

# ---- report ----
hdr="test"; for m in $MODES; do hdr="$hdr | $m"; done
printf '%-22s' "test"; for m in $MODES; do printf ' | %-12s' "$m"; done; echo
printf '%s\n' "$(printf -- '-%.0s' $(seq 1 $((22 + 15 * $(echo $MODES | wc -w)))))"
for t in "${tests[@]}"; do
	printf '%-22s' "$t"
	for m in $MODES; do printf ' | %-12s' "${R[$t,$m]}"; done
	diff=""
	for m in $MODES; do
		[ "${R[$t,$m]}" != "${R[$t,glibc]:-${R[$t,$m]}}" ] && diff="  <-- differs"
	done
	echo "$diff"
done
echo
echo "Totals:"
for cat in PASS FAIL UNRESOLVED UNSUPPORTED UNTESTED HANG build-fail; do
	printf '  %-12s' "$cat"
	for m in $MODES; do
		n=0
		for t in "${tests[@]}"; do
			v=${R[$t,$m]}
			[ "$cat" = FAIL ] && [[ $v == FAIL* ]] && v=FAIL
			[ "$v" = "$cat" ] && n=$((n + 1))
		done
		printf ' %s=%-4d' "$m" "$n"
	done
	echo
done
echo "  total tests: ${#tests[@]}   (logs: $RES/<mode>/<iface>_<test>.log)"
