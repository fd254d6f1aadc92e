#!/bin/bash
# libevent's own benchmarks (test/bench, test/bench_cascade) on kqaio's kqueue
# and on epoll, from the build that tests/interop/libevent.sh made. Rounds
# alternate the backends; each run prints 25 timings of its own, a run counts
# its median, and the table gives the median over the rounds. "kqueue/epoll"
# is epoll's time over kqueue's: above 1 means kqueue was faster.
#
#   tests/interop/libevent-bench.sh [-r ROUNDS] [WORK]
#
# WORK is the libevent work folder (default: build/interop/libevent).
set -euo pipefail

rounds=5
[ "${1:-}" = -r ] && { rounds=$2; shift 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$root/build/interop/libevent}
t=$work/obj/test
[ -x "$t/bench" ] || { echo "libevent-bench.sh: no $t/bench: run tests/interop/libevent.sh first" >&2; exit 2; }

median() { sort -n | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# One run: the median of the 25 timings (microseconds) it prints.
run() {
	local method=$1
	shift
	case $1 in
	bench) "$t/bench" -m "$method" "${@:2}" 2>/dev/null | median ;; # stderr: its Xcount lines
	# bench_cascade has no -m: the environment leaves it one backend.
	bench_cascade)
		if [ "$method" = kqueue ]; then
			EVENT_NOEPOLL=1 EVENT_NOPOLL=1 EVENT_NOSELECT=1 "$t/bench_cascade" "${@:2}" | median
		else
			EVENT_NOKQUEUE=1 EVENT_NOPOLL=1 EVENT_NOSELECT=1 "$t/bench_cascade" "${@:2}" | median
		fi
		;;
	esac
}

cases=(
	"bench -n 100 -a 1 -w 100"
	"bench -n 1000 -a 10 -w 1000"
	"bench -n 5000 -a 100 -w 5000"
	"bench_cascade -n 100"
	"bench_cascade -n 1000"
)
printf '%-32s %12s %12s %13s\n' "libevent program" "kqueue us" "epoll us" "kqueue/epoll"
for c in "${cases[@]}"; do
	read -ra argv <<<"$c"
	: >"$work/bench.kq"
	: >"$work/bench.ep"
	for _ in $(seq "$rounds"); do
		run kqueue "${argv[@]}" >>"$work/bench.kq"
		run epoll "${argv[@]}" >>"$work/bench.ep"
	done
	kq=$(median <"$work/bench.kq")
	ep=$(median <"$work/bench.ep")
	printf '%-32s %12s %12s %13s\n' "$c" "$kq" "$ep" "$(awk -v k="$kq" -v e="$ep" 'BEGIN {printf "%.2fx", e / k}')"
done
echo "(medians of $rounds interleaved rounds; each round the median of 25 timings)"
