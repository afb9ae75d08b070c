#!/usr/bin/env bash
# Runs the project's KVM integration tests (gtest binary
# BUILD_DIR/tests/integration/vmm_integration_tests) inside L1, where
# /dev/kvm is real. On the host they skip themselves for lack of KVM, so here
# a run where every test skipped is a failure, as is any failed test.
#
# usage: boot-kvm-integration.sh [BUILD_DIR [GTEST_ARGS...]]
#
# The build directory is the share, also visible in L1 at its host path, so
# paths the build baked into the binary (test guests) resolve in L1 too.
set -euo pipefail

TEST_REL=tests/integration/vmm_integration_tests
TEST_TIMEOUT=600

# Inside L1: $1 = the build dir's host path, $2 = the copied test wrapper.
l1_main() {
  local build=$1 bin=$2 rc=0 log=/tmp/gtest.log
  shift 2
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  # The tests start build/vmm/vmm by its path: give it its libraries.
  l1_export_libs "$(dirname "$(dirname "$bin")")"
  cd "$build/$(dirname "$TEST_REL")"
  timeout -k 10 "$TEST_TIMEOUT" "$bin" --gtest_color=no "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  l1_gtest_counts "$log"
  local passed=$GTEST_PASSED skipped=$GTEST_SKIPPED failed=$GTEST_FAILED
  echo "boot-kvm-integration: passed=${passed:-0} skipped=${skipped:-0} failed=${failed:-0} exit=$rc"
  if ((rc == 124)); then
    echo "boot-kvm-integration: FAIL: the tests did not finish within ${TEST_TIMEOUT}s"
    return 1
  elif ((rc != 0)) || ((${failed:-0} > 0)); then
    echo "boot-kvm-integration: FAIL: test failures (exit code $rc)"
    return 1
  elif [[ -z $passed ]]; then
    echo "boot-kvm-integration: FAIL: no gtest summary in the output (crashed?)"
    return 1
  elif ((passed == 0)); then
    echo "boot-kvm-integration: FAIL: all ${skipped:-0} tests skipped even with /dev/kvm present"
    return 1
  fi
  echo "boot-kvm-integration: ok"
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build
  build=$(lab_scenario_build_dir "${1:-}")
  (($#)) && shift
  lab_require_built "$build" "$TEST_REL" || return 1
  lab_prepare
  # The copy with its libraries lives in the build dir (the share) only for
  # this run.
  local copy
  copy=$(mktemp -d "$build/.lab-l1.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $copy is local
  trap "rm -rf '$copy'" EXIT
  lab_copy_binary "$build/$TEST_REL" "$copy" >/dev/null
  # Only for vmm's libraries (l1_export_libs): the tests run $build/vmm/vmm.
  [[ -x $build/vmm/vmm ]] && lab_copy_binary "$build/vmm/vmm" "$copy" >/dev/null
  lab_run_l1 --share "$build" --timeout $((TEST_TIMEOUT + 300)) -- "${BASH_SOURCE[0]}" \
    "$build" "$copy/bin/$(basename "$TEST_REL")" "$@"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
