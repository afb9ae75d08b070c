#!/usr/bin/env bash
# Benchmark: time to map N GiB of memfd guest RAM into an IOAS and to unmap
# it, on a real kernel with a real (emulated) IOMMU: L1 boots the lab kernel
# behind QEMU's intel-iommu, binds its NVMe to vfio-pci, attaches it to the
# IOAS and runs BUILD_DIR/bench/iommufd_map_bench for each size. This is the
# cost KVM-managed HWPTs will remove. Figures are for QEMU/TCG on the lab
# machine: compare them with each other, not with hardware.
#
# usage: bench/iommufd_map.sh [BUILD_DIR [SIZES_GIB [BENCH_ARGS...]]]
#   SIZES_GIB  comma list, default 1,4,16; sizes that do not fit in L1's
#              memory are reported as skipped
# Results: BUILD_DIR/lab-results/iommufd-map-bench.txt
set -euo pipefail

BENCH_REL=bench/iommufd_map_bench
NVME_CLASS=0x010802

l1_main() {
  local bench=$1 results=$2 sizes=$3
  shift 3
  [[ -c /dev/iommu ]] || { echo "iommufd-map: FAIL: no /dev/iommu in L1"; return 1; }
  local bdf="" d dev
  for d in /sys/bus/pci/devices/*; do
    [[ $(cat "$d/class") == "$NVME_CLASS" ]] && { bdf=$(basename "$d"); break; }
  done
  [[ -n $bdf ]] || { echo "iommufd-map: FAIL: no NVMe in L1"; return 1; }
  dev=/sys/bus/pci/devices/$bdf
  [[ -e $dev/driver ]] && echo "$bdf" >"$dev/driver/unbind"
  echo vfio-pci >"$dev/driver_override"
  echo "$bdf" >/sys/bus/pci/drivers_probe
  # Unlimited pinning for root (RLIMIT_MEMLOCK is not enforced for CAP_IPC_LOCK anyway).
  ulimit -l unlimited 2>/dev/null || true

  local avail_kb fit=() skipped=() s
  avail_kb=$(awk '/MemAvailable/ { print $2 }' /proc/meminfo)
  for s in ${sizes//,/ }; do
    # The memfd plus ~1 GiB for the kernel's page arrays and the rest of L1.
    if (( $(awk -v s="$s" 'BEGIN { print int(s * 1048576) }') + 1048576 <= avail_kb )); then
      fit+=("$s")
    else
      skipped+=("$s")
    fi
  done
  mkdir -p "$(dirname "$results")"
  {
    echo "# iommufd map/unmap benchmark, $(date -u +%FT%TZ)"
    echo "# L1 kernel $(uname -r), $(nproc) vCPUs, MemAvailable ${avail_kb} kB, QEMU/TCG intel-iommu (caching mode), device $bdf"
  } >"$results"
  for s in "${skipped[@]}"; do
    echo "iommufd_map size_gib=$s skipped=\"L1 has only $((avail_kb / 1024)) MiB available\"" | tee -a "$results"
  done
  if ((${#fit[@]})); then
    local list
    list=$(IFS=,; echo "${fit[*]}")
    "$bench" --device "vfio:$bdf" --sizes "$list" "$@" 2>&1 | tee -a "$results"
    local rc=${PIPESTATUS[0]}
    ((rc == 0)) || { echo "iommufd-map: FAIL: the benchmark exited with $rc"; return 1; }
  fi
  echo "iommufd-map: ok"
}

host_main() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  . "$repo/tests/lab/lib.sh"
  local build sizes
  build=$(lab_scenario_build_dir "${1:-}")
  sizes=${2:-1,4,16}
  if (($# > 2)); then shift 2; else set --; fi
  lab_require_built "$build" "$BENCH_REL" || return 1
  local kernel
  kernel=$("$repo/kernel-patches/build-lab-kernel.sh") || { echo "FAIL: lab kernel build failed" >&2; return 1; }
  # As much memory as the host can spare, up to 20 GiB (16 GiB memfd + L1).
  local host_avail_mb memory_mb
  host_avail_mb=$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
  memory_mb=$((host_avail_mb - 3072))
  ((memory_mb > 20480)) && memory_mb=20480
  ((memory_mb < 2048)) && { echo "FAIL: the host has only ${host_avail_mb} MiB available" >&2; return 1; }
  lab_prepare
  local copy
  copy=$(mktemp -d "$build/.lab-l1.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $copy is local
  trap "rm -rf '$copy'" EXIT
  lab_copy_binary "$build/$BENCH_REL" "$copy" >/dev/null
  lab_run_l1 --kernel "$kernel" --iommu --share "$build" --memory "${memory_mb}M" --timeout 5400 -- \
    "${BASH_SOURCE[0]}" "$copy/bin/$(basename "$BENCH_REL")" "$build/lab-results/iommufd-map-bench.txt" "$sizes" "$@"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
