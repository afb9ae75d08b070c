#!/usr/bin/env bash
# iommufd + VFIO cdev on a real kernel, --iommu profile: L1 boots the lab
# kernel behind QEMU's intel-iommu (caching mode) with an emulated NVMe,
# binds the NVMe to vfio-pci (driver_override + drivers_probe), and runs our
# VFIO lab tests (BUILD_DIR/tests/lab/iommufd/iommufd_lab_tests, VfioNvme.*):
# open the cdev, bind to iommufd, attach to an IOAS, map memory, read config
# space and BAR0, let the controller DMA an Identify through our IOAS, detach.
# A skip is a failure here. Results also go to BUILD_DIR/lab-results/iommufd-vfio.txt.
#
# usage: iommufd-vfio.sh [BUILD_DIR [GTEST_ARGS...]]
set -euo pipefail

TEST_REL=tests/lab/iommufd/iommufd_lab_tests
TESTS_TIMEOUT=600
NVME_CLASS=0x010802

# Inside L1: $1 our test wrapper, $2 results file.
l1_main() {
  local tests=$1 results=$2 rc=0
  shift 2
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  [[ -c /dev/iommu ]] || { echo "iommufd-vfio: FAIL: no /dev/iommu in L1"; return 1; }
  dmesg | grep -aE 'DMAR: (IOMMU enabled|Intel\(R\) Virtualization|dmar[0-9]: reg_base_addr)|cap [0-9a-f]+ ecap' | head -n 4 || true
  local bdf dev cdev
  bdf=$(l1_find_pci_class "$NVME_CLASS")
  [[ -n $bdf ]] || { echo "iommufd-vfio: FAIL: no NVMe controller in L1 (was --iommu given?)"; return 1; }
  dev=/sys/bus/pci/devices/$bdf
  if [[ -e $dev/driver ]]; then
    echo "iommufd-vfio: unbinding $bdf from $(basename "$(readlink "$dev/driver")")"
  fi
  cdev=$(l1_bind_vfio_pci "$bdf") || { echo "iommufd-vfio: FAIL: binding $bdf to vfio-pci"; return 1; }
  echo "iommufd-vfio: $bdf bound to vfio-pci, cdev $cdev, iommu group $(basename "$(readlink "$dev/iommu_group")")"

  mkdir -p "$(dirname "$results")"
  local log=/tmp/gtest.log start=$SECONDS
  IOMMUFD_LAB_REQUIRE=vfio IOMMUFD_LAB_VFIO_BDF=$bdf timeout -k 10 "$TESTS_TIMEOUT" "$tests" --gtest_color=no \
    --gtest_filter='VfioNvme.*' "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  l1_gtest_counts "$log"
  local passed=$GTEST_PASSED skipped=$GTEST_SKIPPED failed=$GTEST_FAILED
  echo "iommufd-vfio: our VFIO lab tests passed=${passed:-0} skipped=${skipped:-0} failed=${failed:-0} exit=$rc $((SECONDS - start))s"
  {
    echo "kernel: $(uname -r); device: $bdf"
    grep -aE '^(hw info|NVMe CAP|BAR0 mmap|Identify via DMA|NEST_PARENT on VT-d|PASID attach):' "$log" || true
    echo "our VFIO lab tests: passed ${passed:-0}, skipped ${skipped:-0}, failed ${failed:-0}"
  } >"$results"
  if ((rc != 0)) || ((${failed:-0} > 0)) || [[ -z $passed ]] || ((${skipped:-0} > 0)); then
    echo "iommufd-vfio: FAIL: VFIO lab tests (exit $rc)"
    return 1
  fi
  echo "iommufd-vfio: ok"
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build
  build=$(lab_scenario_build_dir "${1:-}")
  (($#)) && shift
  lab_require_built "$build" "$TEST_REL" || return 1
  local kernel
  kernel=$("$LAB_REPO_ROOT/kernel-patches/build-lab-kernel.sh") || {
    echo "FAIL: building the lab kernel failed" >&2
    return 1
  }
  lab_prepare
  local copy
  copy=$(mktemp -d "$build/.lab-l1.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $copy is local
  trap "rm -rf '$copy'" EXIT
  lab_copy_binary "$build/$TEST_REL" "$copy" >/dev/null
  lab_run_l1 --kernel "$kernel" --iommu --share "$build" --memory 4G --timeout $((TESTS_TIMEOUT + 300)) -- \
    "${BASH_SOURCE[0]}" "$copy/bin/$(basename "$TEST_REL")" "$build/lab-results/iommufd-vfio.txt" "$@"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
