#!/usr/bin/env bash
# Issue 2's lab proof: our vmm boots Debian's stock cloud kernel with a
# busybox initramfs on real KVM (inside L1), with 1 vCPU / 256M and with
# 4 vCPUs / 4G; the guest must see that many CPUs and about that much memory,
# and vmm must exit 0 after the guest powers off.
#
# usage: boot-stock-linux.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
# LAB_L2_VMM=qemu boots the same guests with QEMU microvm instead, to check
# the lab itself independently of vmm.
#
# The same file runs on both sides: on the host it prepares a share and boots
# L1, which runs this file again with LAB_IN_L1=1.
set -euo pipefail

# CPUs and memory of each guest boot.
CONFIGS=("1 256M" "4 4G")
L2_TIMEOUT=300

# Inside L1: boot each configuration and check what the guest reported.
l1_main() {
  local vmm=$1 initrd=$2 failed=0 cfg cpus mem mem_kb
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  for cfg in "${CONFIGS[@]}"; do
    read -r cpus mem <<<"$cfg"
    echo "=== boot-stock-linux: $cpus vCPU(s), $mem, with ${vmm%%:*} ==="
    l2_command "$vmm" "$LAB_GUEST_KERNEL_L1" "$initrd" "$L2_CMDLINE_DEFAULT" "$cpus" "$mem"
    # A guest triple fault (the known lab flake, docs/LAB.md) fails this
    # boot; run-all.sh reruns the scenario once for it, and l2_run has
    # printed KVM's record of where the guest died.
    l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
    mem_kb=$(l1_size_kb "$mem")
    local why=()
    ((L2_RC == 0)) || why+=("the VMM exited with $L2_RC")
    [[ -n $L2_INIT_MS ]] || why+=("the guest never reached init (no LAB-GUEST-INIT line)")
    [[ $L2_NPROC == "$cpus" ]] || why+=("the guest saw '${L2_NPROC}' CPUs, expected $cpus")
    # The kernel keeps a few tens of MB for itself (image, memmap): accept
    # > 85% of the RAM given, or less than 64 MiB missing for small guests.
    if [[ -z $L2_MEMTOTAL_KB ]]; then
      why+=("the guest reported no MemTotal")
    elif ((L2_MEMTOTAL_KB > mem_kb)); then
      why+=("MemTotal ${L2_MEMTOTAL_KB} kB exceeds the ${mem_kb} kB given")
    elif ((L2_MEMTOTAL_KB * 100 <= mem_kb * 85 && mem_kb - L2_MEMTOTAL_KB >= 65536)); then
      why+=("MemTotal ${L2_MEMTOTAL_KB} kB is too far below the ${mem_kb} kB given")
    fi
    local summary
    summary="nproc=${L2_NPROC:-?} MemTotal=${L2_MEMTOTAL_KB:-?}kB init after $(l1_ms_to_s "$L2_INIT_MS")s exit=$L2_RC"
    if ((${#why[@]})); then
      failed=1
      echo "boot-stock-linux: FAIL ($cpus vCPUs, $mem): $summary"
      printf 'boot-stock-linux:   - %s\n' "${why[@]}"
    else
      echo "boot-stock-linux: ok ($cpus vCPUs, $mem): $summary"
    fi
  done
  return "$failed"
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build l2=${LAB_L2_VMM:-vmm} vmm_spec work
  build=$(lab_scenario_build_dir "${1:-}")
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-boot-stock.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  case $l2 in
    vmm)
      [[ -x $build/vmm/vmm ]] || {
        echo "FAIL: $build/vmm/vmm is not built (cmake -S . -B build && cmake --build build --target vmm)" >&2
        return 1
      }
      lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
      vmm_spec=vmm:/share/vmm/bin/vmm
      ;;
    qemu) vmm_spec=qemu ;;
    *)
      echo "FAIL: LAB_L2_VMM must be vmm or qemu, not '$l2'" >&2
      return 1
      ;;
  esac
  lab_guest_initramfs "$work/guest.cpio.gz" "$LAB_DIR/guest/report-init.sh"
  lab_run_l1 --share "$work" --timeout 900 -- "${BASH_SOURCE[0]}" "$vmm_spec" /share/guest.cpio.gz
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
