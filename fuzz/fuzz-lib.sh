# Sourced by fuzz/smoke and fuzz/run: paths, the build, the target list.
# shellcheck shell=bash

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BERTH_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=$(nproc 2>/dev/null || echo 2)
# Every berth_fuzz_target() of fuzz/CMakeLists.txt: a new target is run without
# being listed twice.
mapfile -t targets < <(sed -n 's/^berth_fuzz_target(\(fuzz_[a-z0-9_]*\).*/\1/p' "$root/fuzz/CMakeLists.txt")

# Configures build-fuzz once (clang, ASan+UBSan, libFuzzer) and builds every target.
fuzz_build() {
	if [ ! -f "$build/CMakeCache.txt" ]; then
		CC=clang cmake -S "$root" -B "$build" -DBERTH_FUZZ=ON -DBERTH_SANITIZE=ON \
			>/dev/null
	fi
	local log
	log=$(mktemp)
	if ! cmake --build "$build" -j"$jobs" --target fuzz >"$log" 2>&1; then
		grep -E "error|Error" "$log" | head -30 >&2
		rm -f "$log"
		echo "fuzz: the build failed ($build)" >&2
		return 1
	fi
	rm -f "$log"
	for t in "${targets[@]}"; do
		[ -x "$build/fuzz/$t" ] || {
			echo "fuzz: $t was not built" >&2
			return 1
		}
	done
}

# Scratch space on tmpfs when there is one: the targets create and remove
# files on every run, and the loader fsyncs.
fuzz_scratch() {
	local base=/tmp
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		base=/dev/shm
	fi
	mktemp -d "$base/berth-fuzz.XXXXXX"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
