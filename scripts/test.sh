#!/usr/bin/env bash
# Runs every test: unit and integration tests (release and ASan+UBSan builds),
# then the lab scenarios (real KVM, iommufd and VFIO inside a QEMU/TCG L1).
# The last line is the total: "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh

# Fetch the lab's kernels first: the loader's unit tests also load Debian's
# real bzImage (VMM_TEST_KERNEL) besides their synthetic images.
# shellcheck source=../tests/lab/lib.sh
source tests/lab/lib.sh
lab_prepare
export VMM_TEST_KERNEL=$LAB_GUEST_KERNEL

passed=0
failed=0
declare -a failures=()

# ctest prints "NN% tests passed, F tests failed out of T"; fold it into the totals.
run_ctest() {
  local build_dir=$1 log
  log=$(mktemp)
  if ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout 600 2>&1 | tee "$log"; then :; fi
  local line total bad skipped
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -n1 || true)
  # Skipped tests (no /dev/kvm on this host: they run in the lab) are not passes.
  skipped=$(grep -cE "^\s*[0-9]+ - .*\(Skipped\)$" "$log" || true)
  rm -f "$log"
  if [[ -z $line ]]; then
    failed=$((failed + 1)); failures+=("ctest in $build_dir printed no summary")
    return
  fi
  bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + total - bad - skipped))
  echo "ctest in $build_dir: $((total - bad - skipped)) passed, $bad failed, $skipped skipped"
  failed=$((failed + bad))
  ((bad == 0)) || failures+=("$bad ctest test(s) in $build_dir")
}

build() {
  local dir=$1 type=$2
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >/dev/null
  ninja -C "$dir"
}

# Each phase's start, in seconds since this script began: where CI's time goes.
phase() { echo "== $* (at ${SECONDS}s)"; }

phase "release build and tests"
build build RelWithDebInfo
run_ctest build

phase "ASan+UBSan build and tests"
build build-asan Asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan

phase "lab scenarios (real KVM / iommufd / VFIO inside QEMU)"
lab_log=$(mktemp)
if bash tests/lab/run-all.sh build 2>&1 | tee "$lab_log"; then :; fi
line=$(grep -E "^[0-9]+ passed, [0-9]+ failed" "$lab_log" | tail -n1 || true)
rm -f "$lab_log"
if [[ -z $line ]]; then
  failed=$((failed + 1)); failures+=("the lab run printed no summary")
else
  lab_passed=${line%% passed*}
  lab_failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  passed=$((passed + lab_passed)); failed=$((failed + lab_failed))
  ((lab_failed == 0)) || failures+=("$lab_failed lab scenario(s)")
fi

phase "done"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
((failed == 0))
