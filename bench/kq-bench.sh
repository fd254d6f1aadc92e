#!/bin/bash
# kqueue()/kevent() against raw epoll, eventfd and timerfd in one run: USER
# round trips, pipe ping-pong, 10,000 timers, create/close, fds per kq.
# Usage: bench/kq-bench.sh [-d SECONDS] [-r N] [-s kq|raw] [-v] [BENCH...]  (see --help)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
make -C "$here" --no-print-directory -s BUILD="$build" bench >/dev/null
exec "$here/$build/bench/kq-bench" "$@"
