# Sourced by the fio benchmarks (compare.sh, fio-randread.sh): the kqaio-run
# to preload with, the files they read, and which backend kqaio chose.

# Sets run to the kqaio-run of the build in BUILD (default build).
fio_bench_init() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	run=$here/${BUILD:-build}/kqaio-run
	[ -x "$run" ] || { echo "build kqaio first (make)" >&2; exit 1; }
	command -v fio >/dev/null || { echo "fio is missing (scripts/deps)" >&2; exit 1; }
}

# Writes FILE of SIZE, synced, unless it is there.
fio_bench_file() { # file size
	[ -f "$1" ] && return
	echo "creating $1 ($2)" >&2
	fio --name=create --filename="$1" --size="$2" --rw=write --bs=1M --ioengine=psync \
		--end_fsync=1 >/dev/null
}

# Prints the backend kqaio serves fio's posixaio engine with, reading FILE.
fio_bench_backend() { # file
	KQAIO_STATS=1 "$run" fio --name=p --filename="$1" --rw=read --bs=4k --ioengine=posixaio \
		--number_ios=1 --thread 2>&1 >/dev/null | sed -n 's/.* backend \([a-z]*\):.*/\1/p'
}
