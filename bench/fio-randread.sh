#!/bin/bash
# fio's posixaio engine on glibc vs the same binary under kqaio-run, with fio's
# io_uring engine as the ceiling, measured side by side in one run; prints IOPS,
# CPU time per I/O and the ratios. 4 KiB random reads, O_DIRECT (or buffered),
# iodepth 32, one file.
set -euo pipefail
usage() {
	cat <<USAGE
usage: bench/fio-randread.sh [-f FILE] [-s SIZE] [-t SECONDS] [-r ROUNDS] [-d DEPTH] [--buffered]
  -f FILE      file to read (created if missing; default /var/tmp/kqaio-bench-1g)
  -s SIZE      its size (default 1G)
  -t SECONDS   runtime of each fio run (default 10)
  -r ROUNDS    rounds; engines alternate within a round (default 3)
  -d DEPTH     iodepth (default 32)
  --buffered   page-cache reads instead of O_DIRECT
Environment: BUILD (default build) names the kqaio build to preload.
USAGE
}
file=/var/tmp/kqaio-bench-1g size=1G secs=10 rounds=3 depth=32 direct=1
while [ $# -gt 0 ]; do
	case $1 in
	-f) file=$2; shift ;;
	-s) size=$2; shift ;;
	-t) secs=$2; shift ;;
	-r) rounds=$2; shift ;;
	-d) depth=$2; shift ;;
	--buffered) direct=0 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/fio-common.sh"
fio_bench_init
fio_bench_file "$file" "$size"
measure() { # engine, then an optional wrapper: prints "IOPS CPU-microseconds-per-I/O"
	local engine=$1; shift
	"$@" fio --name=b --filename="$file" --size="$size" --rw=randread --bs=4k \
		--direct=$direct --iodepth="$depth" --ioengine="$engine" --runtime="$secs" \
		--time_based --output-format=terse |
		awk -F';' '{printf "%d %.2f\n", $8, ($88 + $89) * 1e4 / ($8 ? $8 : 1); exit}'
}
backend=$(fio_bench_backend "$file")
results=$(for ((i = 1; i <= rounds; i++)); do
	echo "glibc $(measure posixaio)"
	echo "kqaio $(measure posixaio "$run")"
	echo "uring $(measure io_uring)"
done)
echo "$results" | awk '{printf "round %d: %-6s %8d IOPS %6.2f us CPU/IO\n", int((NR + 2) / 3), $1, $2, $3}'
echo
echo "4 KiB random read, direct=$direct, iodepth $depth, $file, ${secs}s x $rounds rounds (mean)"
echo "$results" | awk -v be="$backend" '
	{ n[$1]++; iops[$1] += $2; cpu[$1] += $3 }
	END {
		for (e in n) { iops[e] /= n[e]; cpu[e] /= n[e] }
		u = iops["uring"]
		printf "%-30s %10s %12s %14s\n", "engine", "IOPS", "vs io_uring", "CPU us per I/O"
		printf "%-30s %10d %12.2f %14.2f\n", "glibc posixaio", iops["glibc"], iops["glibc"] / u, cpu["glibc"]
		printf "%-30s %10d %12.2f %14.2f\n", "kqaio posixaio (" be ")", iops["kqaio"], iops["kqaio"] / u, cpu["kqaio"]
		printf "%-30s %10d %12.2f %14.2f\n", "fio io_uring (ceiling)", u, 1, cpu["uring"]
		printf "kqaio / glibc: %.2fx\n", iops["kqaio"] / iops["glibc"]
	}'
