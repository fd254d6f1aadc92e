#!/bin/bash
# The whole comparison (make bench): fio's posixaio engine on glibc and under
# kqaio-run, and fio's io_uring engine as the ceiling, 4 KiB random reads of
# one file: O_DIRECT on disk and buffered on tmpfs, at iodepth 1 and 32, and
# eight threads at iodepth 4 each on the disk (--numjobs=8 --thread). The
# engines alternate within each round; the table gives medians over the
# rounds, and ratios of kqaio to the peers measured in the same run.
set -euo pipefail
usage() {
	cat <<USAGE
usage: bench/compare.sh [-t SECONDS] [-r ROUNDS] [-d DISKFILE] [-m MEMFILE] [-s SIZE]
  -t SECONDS   runtime of each fio run (default 4)
  -r ROUNDS    interleaved rounds (default 5)
  -d DISKFILE  file on disk, read with O_DIRECT (default /var/tmp/kqaio-bench-1g)
  -m MEMFILE   file on tmpfs, read buffered (default /dev/shm/kqaio-bench-256m)
  -s SIZE      size of a file created here (default 1G on disk, 256M on tmpfs)
Environment: BUILD (default build) names the kqaio build to preload; KQAIO_*
settings reach kqaio (KQAIO_BATCH=0, KQAIO_BACKEND=pool, ...).
USAGE
}
secs=4 rounds=5 disk=/var/tmp/kqaio-bench-1g mem=/dev/shm/kqaio-bench-256m size=
while [ $# -gt 0 ]; do
	case $1 in
	-t) secs=$2; shift ;;
	-r) rounds=$2; shift ;;
	-d) disk=$2; shift ;;
	-m) mem=$2; shift ;;
	-s) size=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
. "$(dirname "$0")/fio-common.sh"
fio_bench_init
fio_bench_file "$disk" "${size:-1G}"
fio_bench_file "$mem" "${size:-256M}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# One fio run: "config engine IOPS p50-completion-latency-us"
measure() { # config file direct depth threads engine [wrapper...]
	local cfg=$1 file=$2 direct=$3 depth=$4 jobs=$5 eng=$6 ioengine=posixaio many=
	shift 6
	[ "$eng" = uring ] && ioengine=io_uring
	[ "$jobs" -gt 1 ] && many="--numjobs=$jobs --thread --group_reporting"
	"$@" fio --name=b --filename="$file" --rw=randread --bs=4k --direct="$direct" \
		--iodepth="$depth" $many --ioengine="$ioengine" --runtime="$secs" --time_based \
		--output-format=terse |
		awk -F';' -v c="$cfg" -v e="$eng" '{split($24, p, "="); print c, e, $8, p[2]; exit}'
}
configs=("disk-direct-qd1 $disk 1 1 1" "disk-direct-qd32 $disk 1 32 1"
	"disk-8thr-qd4 $disk 1 4 8" "tmpfs-qd1 $mem 0 1 1" "tmpfs-qd32 $mem 0 32 1")
backend=$(fio_bench_backend "$mem")
for ((i = 1; i <= rounds; i++)); do
	echo "round $i of $rounds" >&2
	for c in "${configs[@]}"; do
		set -- $c
		measure "$@" glibc >>"$out"
		measure "$@" kqaio "$run" >>"$out"
		measure "$@" uring >>"$out"
	done
done
echo "fio 4 KiB random reads, ${secs}s runs, median of $rounds interleaved rounds;" \
	"kqaio backend $backend; $(date -u +%F)"
sort -k1,1 -k2,2 -k3,3n "$out" | awk '
	{ k = $1 " " $2; n[k]++; iops[k, n[k]] = $3; lat[k, n[k]] = $4; cfg[$1] = 1 }
	function med(a, k,   m, i, v, j, t) {
		m = n[k]
		for (i = 1; i <= m; i++) v[i] = a[k, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
	}
	END {
		printf "%-17s %9s %9s %9s %9s %9s %8s %8s %8s %8s\n", "config", "glibc", "kqaio",
			"io_uring", "kq/uring", "kq/glibc", "p50 gl", "p50 kq", "p50 ur", "kq/ur"
		split("disk-direct-qd1 disk-direct-qd32 disk-8thr-qd4 tmpfs-qd1 tmpfs-qd32", order, " ")
		for (o = 1; o <= 5; o++) {
			c = order[o]
			if (!(c in cfg)) continue
			g = med(iops, c " glibc"); q = med(iops, c " kqaio"); u = med(iops, c " uring")
			lg = med(lat, c " glibc"); lq = med(lat, c " kqaio"); lu = med(lat, c " uring")
			printf "%-17s %9d %9d %9d %9.2f %9.2f %8d %8d %8d %8.2f\n", c, g, q, u,
				q / u, q / g, lg, lq, lu, lq / lu
		}
		print "(IOPS; p50: median completion latency in us, fio clat)"
	}'
