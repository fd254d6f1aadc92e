#!/bin/bash
# How many system calls one lio_listio of N reads costs: kqaio (each backend)
# against glibc, counted by strace in the same run. Usage: bench/lio-syscalls.sh [N]
set -euo pipefail
n=${1:-256}
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/${BUILD:-build}
prog=$build/bench/lio-syscalls
[ -x "$prog" ] || { echo "build it first: make bench" >&2; exit 1; }
command -v strace >/dev/null || { echo "needs strace (apt-get install strace)" >&2; exit 1; }
file=$(mktemp /var/tmp/kqaio-lio.XXXXXX)
trap 'rm -f "$file"' EXIT
head -c $((n * 4096)) /dev/zero >"$file"
count() { # prints: io_uring_enter calls, read-family calls, fcntl+fstat calls, all calls
	# strace -c columns: % time, seconds, usecs/call, calls, [errors], syscall
	strace -f -qq -c -o /dev/stdout "$@" "$prog" "$file" "$n" 2>/dev/null | awk '
		$NF == "io_uring_enter" { u += $4 }
		$NF ~ /^(pread64|preadv|preadv2|read)$/ { r += $4 }
		$NF ~ /^(fcntl|newfstatat|fstat)$/ { v += $4 }
		$NF == "total" { t = $4 }
		END { printf "%d %d %d %d\n", u, r, v, t }'
}
printf 'one lio_listio(LIO_WAIT) of %d 4 KiB reads on one fd\n' "$n"
printf '%-16s %15s %12s %14s %10s\n' engine io_uring_enter "read calls" "fcntl+fstat" "all calls"
for be in uring pool; do
	set -- $(KQAIO_BACKEND=$be count env LD_PRELOAD="$build/libkqaio.so.0")
	printf '%-16s %15s %12s %14s %10s\n' "kqaio $be" "$1" "$2" "$3" "$4"
done
set -- $(count env)
printf '%-16s %15s %12s %14s %10s\n' "glibc" "$1" "$2" "$3" "$4"
