#!/bin/bash
# Submit-to-kevent latency of a 4 KiB tmpfs read (p50, p99, p99.9), against
# aio_suspend() and raw io_uring in the same run, once per kqaio backend.
# Usage: bench/aio-kevent-latency.sh [-n N] [-w N] [-f FILE]  (see --help)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
prog=$here/$build/bench/aio-kevent-latency
make -C "$here" --no-print-directory -s BUILD="$build" "$build/bench/aio-kevent-latency" >/dev/null
case " $* " in
*" -h "* | *" --help "*) exec "$prog" --help ;;
esac
for be in uring pool; do
	echo "== KQAIO_BACKEND=$be"
	KQAIO_BACKEND=$be "$prog" "$@"
	echo
done
