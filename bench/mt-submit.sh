#!/bin/bash
# Many threads submitting at once: total IOPS of T threads each keeping D reads
# in flight, on glibc and on kqaio's backends, side by side in one run.
# Usage: bench/mt-submit.sh [-f FILE] [-d DEPTH] [-t SECONDS]  (default: a 256 MiB file on tmpfs)
set -euo pipefail
file=/dev/shm/kqaio-bench-256m depth=8 secs=3
while [ $# -gt 0 ]; do
	case $1 in
	-f) file=$2; shift ;;
	-d) depth=$2; shift ;;
	-t) secs=$2; shift ;;
	*) echo "usage: bench/mt-submit.sh [-f FILE] [-d DEPTH] [-t SECONDS]" >&2; exit 2 ;;
	esac
	shift
done
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/${BUILD:-build}
prog=$build/bench/mt-submit
[ -x "$prog" ] || { echo "build it first: make bench" >&2; exit 1; }
[ -f "$file" ] || head -c $((256 << 20)) /dev/urandom >"$file"
echo "4 KiB random reads of $file, $depth in flight per thread, ${secs}s each (IOPS)"
printf '%-8s %12s %12s %12s %14s\n' threads glibc "kqaio uring" "kqaio pool" "uring / glibc"
for t in 1 2 4 8; do
	g=$("$prog" "$file" "$t" "$depth" "$secs")
	u=$(KQAIO_BACKEND=uring LD_PRELOAD="$build/libkqaio.so.0" "$prog" "$file" "$t" "$depth" "$secs")
	p=$(KQAIO_BACKEND=pool LD_PRELOAD="$build/libkqaio.so.0" "$prog" "$file" "$t" "$depth" "$secs")
	printf '%-8s %12d %12d %12d %14.2f\n' "$t" "$g" "$u" "$p" "$(awk -v u="$u" -v g="$g" 'BEGIN { print u / g }')"
done
