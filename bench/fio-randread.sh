#!/bin/bash
# fio's posixaio engine on glibc vs the same binary under kqaio-run, with fio's
# io_uring engine as the ceiling, measured side by side in one run; prints IOPS
# and the ratios. 4 KiB random reads, O_DIRECT, iodepth 32, one file on disk.
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
here=$(cd "$(dirname "$0")/.." && pwd)
run=$here/${BUILD:-build}/kqaio-run
[ -x "$run" ] || { echo "build kqaio first (make)" >&2; exit 1; }
if [ ! -f "$file" ]; then
	echo "creating $file ($size)" >&2
	fio --name=create --filename="$file" --size="$size" --rw=write --bs=1M \
		--ioengine=psync --end_fsync=1 >/dev/null
fi
iops() { # engine, then an optional wrapper
	local engine=$1; shift
	"$@" fio --name=b --filename="$file" --size="$size" --rw=randread --bs=4k \
		--direct=$direct --iodepth="$depth" --ioengine="$engine" --runtime="$secs" \
		--time_based --output-format=terse | awk -F';' '{print $8; exit}'
}
declare -A sum=()
for ((i = 1; i <= rounds; i++)); do
	g=$(iops posixaio)
	k=$(iops posixaio "$run")
	u=$(iops io_uring)
	printf 'round %d: glibc %s  kqaio %s  io_uring %s IOPS\n' "$i" "$g" "$k" "$u"
	sum[g]=$((${sum[g]:-0} + g)) sum[k]=$((${sum[k]:-0} + k)) sum[u]=$((${sum[u]:-0} + u))
done
g=$((sum[g] / rounds)) k=$((sum[k] / rounds)) u=$((sum[u] / rounds))
echo
echo "4 KiB random read, direct=$direct, iodepth $depth, $file, ${secs}s x $rounds rounds (mean)"
awk -v g="$g" -v k="$k" -v u="$u" -v be="${KQAIO_BACKEND:-default}" 'BEGIN {
	printf "%-34s %10s %12s\n", "engine", "IOPS", "vs io_uring"
	printf "%-34s %10d %12.2f\n", "glibc posixaio", g, g / u
	printf "%-34s %10d %12.2f\n", "kqaio posixaio (" be " backend)", k, k / u
	printf "%-34s %10d %12.2f\n", "fio io_uring (ceiling)", u, 1
	printf "kqaio / glibc: %.2fx\n", k / g
}'
