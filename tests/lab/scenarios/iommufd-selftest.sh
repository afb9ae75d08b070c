#!/usr/bin/env bash
# iommufd on a real kernel, no-IOMMU profile: L1 boots the lab kernel
# (kernel-patches/build-lab-kernel.sh, cached) with the iommufd selftest
# driver and no emulated IOMMU, then
#   1. runs the kernel's own iommufd selftest (tools/testing/selftests/iommu,
#      built from the same source) and fails if fewer tests pass than the
#      baseline in kernel-patches/selftests/iommufd-baseline;
#   2. runs the kernel's iommufd_fail_nth (every allocation failure point of
#      seven call chains injected in turn) against the same baseline file,
#      and fails on any kernel WARNING/BUG/Oops it provokes;
#   3. runs our selftest-driver and bad-input lab tests
#      (BUILD_DIR/tests/lab/iommufd/iommufd_lab_tests), where a skip is a failure.
# Results also go to BUILD_DIR/lab-results/iommufd-selftest.txt.
#
# usage: iommufd-selftest.sh [BUILD_DIR [GTEST_ARGS...]]
set -euo pipefail

TEST_REL=tests/lab/iommufd/iommufd_lab_tests
SELFTEST_TIMEOUT=900
TESTS_TIMEOUT=600

# kselftest_counts LOG : sets KSELFTEST_PASS, KSELFTEST_FAIL and
# KSELFTEST_SKIP from a kselftest harness run's "# Totals:" line (all empty
# when the run printed none, i.e. it crashed or was killed), and
# KSELFTEST_TOTAL to the number of TAP results it printed.
kselftest_counts() {
  local totals
  totals=$(grep -a '^# Totals:' "$1" | tail -n1 || true)
  # "# Totals: pass:180 fail:10 xfail:0 xpass:0 skip:0 error:0"
  KSELFTEST_PASS=$(sed -nE 's/^# Totals: pass:([0-9]+) .*/\1/p' <<<"$totals")
  KSELFTEST_FAIL=$(sed -nE 's/^# Totals: pass:[0-9]+ fail:([0-9]+) .*/\1/p' <<<"$totals")
  KSELFTEST_SKIP=$(sed -nE 's/.* skip:([0-9]+) .*/\1/p' <<<"$totals")
  KSELFTEST_TOTAL=$(grep -acE '^(not )?ok [0-9]+ ' "$1" || true)
}

# Inside L1: $1 kernel selftest binary, $2 iommufd_fail_nth binary, $3 our
# test wrapper, $4 minimum selftest passes, $5 minimum fail_nth passes, $6
# results file.
l1_main() {
  local selftest=$1 fail_nth=$2 tests=$3 min_pass=$4 fail_nth_min=$5 results=$6 rc=0
  shift 6
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  [[ -c /dev/iommu ]] || { echo "iommufd-selftest: FAIL: no /dev/iommu in L1 (kernel $(uname -r))"; return 1; }
  mkdir -p "$(dirname "$results")"
  {
    echo "kernel: $(uname -r) ($(uname -v))"
    echo "memory: $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB, hugepages: $(cat /proc/sys/vm/nr_hugepages)"
  } >"$results"

  # 1. The kernel's own selftest. Its harness forks per test and prints TAP
  #    plus a "# Totals:" line.
  local log=/tmp/kernel-selftest.log start=$SECONDS
  (cd /tmp && timeout -k 10 "$SELFTEST_TIMEOUT" "$selftest") >"$log" 2>&1 || rc=$?
  kselftest_counts "$log"
  local pass=$KSELFTEST_PASS fail=$KSELFTEST_FAIL skip=$KSELFTEST_SKIP total=$KSELFTEST_TOTAL
  grep -aE '^not ok ' "$log" | sed 's/^/iommufd-selftest: kernel selftest /' || true
  echo "iommufd-selftest: kernel selftest passed ${pass:-?} of ${total:-?} (fail ${fail:-?}, skip ${skip:-?}), exit $rc, $((SECONDS - start))s; baseline >= $min_pass"
  {
    echo "kernel selftest: pass ${pass:-?} of ${total:-?}, fail ${fail:-?}, skip ${skip:-?}, $((SECONDS - start)) s"
    grep -aE '^not ok ' "$log" | sed 's/^/  /' || true
  } >>"$results"
  cp "$log" "$(dirname "$results")/iommufd-kernel-selftest.log" 2>/dev/null || true
  if [[ -z $pass ]]; then
    echo "iommufd-selftest: FAIL: the kernel selftest printed no totals (exit $rc); tail of its output:"
    tail -n 20 "$log"
    return 1
  fi
  if ((pass < min_pass)); then
    echo "iommufd-selftest: FAIL: only $pass kernel selftests passed, the baseline is $min_pass"
    return 1
  fi

  # 2. iommufd_fail_nth: its tests pass unless an error path misbehaves; what
  #    it really looks for are kernel splats, so those fail the step too. The
  #    injected -ENOMEMs make the kernel log hundreds of errors: keep them off
  #    the console and read the log afterwards instead.
  grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug
  local console_level splats
  console_level=$(cut -f1 /proc/sys/kernel/printk)
  echo 1 >/proc/sys/kernel/printk
  dmesg -c >/dev/null
  log=/tmp/kernel-fail-nth.log start=$SECONDS rc=0
  (cd /tmp && timeout -k 10 "$SELFTEST_TIMEOUT" "$fail_nth") >"$log" 2>&1 || rc=$?
  echo "$console_level" >/proc/sys/kernel/printk
  splats=$(dmesg | grep -acE 'WARNING:|BUG:|Oops|general protection fault|UBSAN|KASAN' || true)
  kselftest_counts "$log"
  pass=$KSELFTEST_PASS fail=$KSELFTEST_FAIL total=$KSELFTEST_TOTAL
  grep -aE '^not ok ' "$log" | sed 's/^/iommufd-selftest: kernel fail_nth /' || true
  echo "iommufd-selftest: kernel fail_nth passed ${pass:-?} of ${total:-?} (fail ${fail:-?}), exit $rc, kernel splats $splats, $((SECONDS - start))s; baseline >= $fail_nth_min"
  {
    echo "kernel fail_nth: pass ${pass:-?} of ${total:-?}, fail ${fail:-?}, kernel splats $splats, $((SECONDS - start)) s"
    grep -aE '^not ok ' "$log" | sed 's/^/  /' || true
  } >>"$results"
  cp "$log" "$(dirname "$results")/iommufd-kernel-fail-nth.log" 2>/dev/null || true
  if ((splats > 0)); then
    echo "iommufd-selftest: FAIL: iommufd_fail_nth provoked kernel splats:"
    dmesg | grep -aE -A12 'WARNING:|BUG:|Oops|general protection fault|UBSAN|KASAN' | head -n 60
    return 1
  fi
  if [[ -z $pass ]] || ((pass < fail_nth_min)); then
    echo "iommufd-selftest: FAIL: ${pass:-no} iommufd_fail_nth tests passed (exit $rc), the baseline is $fail_nth_min; tail of its output:"
    tail -n 20 "$log"
    return 1
  fi

  # 3. Our tests against the selftest driver.
  rc=0
  log=/tmp/gtest.log
  start=$SECONDS
  IOMMUFD_LAB_REQUIRE=selftest timeout -k 10 "$TESTS_TIMEOUT" "$tests" --gtest_color=no \
    --gtest_filter='SelftestDriver.*:BadInput.*' "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  l1_gtest_counts "$log"
  local passed=$GTEST_PASSED skipped=$GTEST_SKIPPED failed=$GTEST_FAILED
  echo "iommufd-selftest: our lab tests passed=${passed:-0} skipped=${skipped:-0} failed=${failed:-0} exit=$rc $((SECONDS - start))s"
  echo "our lab tests (selftest driver + bad input): passed ${passed:-0}, skipped ${skipped:-0}, failed ${failed:-0}" >>"$results"
  if ((rc != 0)) || ((${failed:-0} > 0)) || [[ -z $passed ]] || ((${skipped:-0} > 0)); then
    echo "iommufd-selftest: FAIL: our lab tests (exit $rc)"
    return 1
  fi
  echo "iommufd-selftest: ok"
}

# Sections 1 and 2 of the vendored uAPI header must be, verbatim, what the
# lab kernel exports (the kernel tree the library is tested against): a new
# linux-source-6.12 whose uAPI moved fails here, with the diff, instead of
# somewhere in a test. $1: the lab kernel's usr/include.
check_vendored_uapi() {
  local include=$1 header=$LAB_REPO_ROOT/iommufd_backend/uapi/iommufd_uapi.h tmp name rc=0
  tmp=$(mktemp -d)
  # A section's body runs from the line after its closing " * ===... */"
  # marker to the next "/* ===..." line.
  awk -v dir="$tmp" '
    /^\/\* =+$/ { body = 0; out = ""; next }
    /^ \* 1\. linux\/iommufd\.h/ { out = dir "/iommufd.h"; next }
    /^ \* 2\. linux\/vfio\.h/ { out = dir "/vfio.h"; next }
    /^ \* =+ \*\/$/ { body = (out != ""); next }
    body { print > out }
  ' "$header"
  for name in iommufd.h vfio.h; do
    # The header separates sections with one blank line the kernel file lacks.
    if ! diff -u "$include/linux/$name" <(sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$tmp/$name") \
      >"$tmp/$name.diff"; then
      echo "iommufd-selftest: FAIL: the vendored linux/$name (iommufd_uapi.h) differs from the lab kernel's ($include):"
      head -n 40 "$tmp/$name.diff"
      rc=1
    fi
  done
  ((rc == 0)) && echo "iommufd-selftest: vendored uAPI sections match the lab kernel's linux/iommufd.h and linux/vfio.h"
  rm -rf "$tmp"
  return "$rc"
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build
  build=$(lab_scenario_build_dir "${1:-}")
  (($#)) && shift
  lab_require_built "$build" "$TEST_REL" || return 1
  local kernel kdir baseline min_pass fail_nth_min
  kernel=$("$LAB_REPO_ROOT/kernel-patches/build-lab-kernel.sh") || {
    echo "FAIL: building the lab kernel failed" >&2
    return 1
  }
  kdir=$(dirname "$kernel")
  check_vendored_uapi "$kdir/usr/include" || return 1
  baseline=$LAB_REPO_ROOT/kernel-patches/selftests/iommufd-baseline
  min_pass=$(sed -nE 's/^min_pass=([0-9]+).*/\1/p' "$baseline")
  fail_nth_min=$(sed -nE 's/^fail_nth_min_pass=([0-9]+).*/\1/p' "$baseline")
  [[ -n $min_pass ]] || { echo "FAIL: no min_pass= in $baseline" >&2; return 1; }
  [[ -n $fail_nth_min ]] || { echo "FAIL: no fail_nth_min_pass= in $baseline" >&2; return 1; }
  lab_prepare
  local copy
  copy=$(mktemp -d "$build/.lab-l1.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $copy is local
  trap "rm -rf '$copy'" EXIT
  lab_copy_binary "$build/$TEST_REL" "$copy" >/dev/null
  # hugepages: the selftest's *_huge dirty-tracking variants map 64 and
  # 128 MiB of 2 MiB pages (with 16, as LAB.md first tried, those 10 fail).
  lab_run_l1 --kernel "$kernel" --share "$build" --memory 4G --append "hugepages=128" \
    --timeout $((2 * SELFTEST_TIMEOUT + TESTS_TIMEOUT + 300)) -- "${BASH_SOURCE[0]}" \
    "$kdir/iommufd-selftest" "$kdir/iommufd-fail-nth" "$copy/bin/$(basename "$TEST_REL")" \
    "$min_pass" "$fail_nth_min" "$build/lab-results/iommufd-selftest.txt" "$@"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
