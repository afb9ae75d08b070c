#!/usr/bin/env bash
# NVMe passthrough benchmark: our vmm against QEMU, both passing the same
# VFIO device through on L1's real KVM in ONE L1 run. --iommu profile: L1 is
# the lab kernel (kernel-patches/build-lab-kernel.sh, cached) behind QEMU's
# intel-iommu with an emulated NVMe at 0000:00:10.0 whose namespace is a
# 256 MiB image of random bytes this script writes on the host (so that reads
# hit data). L1 binds the NVMe to vfio-pci once; then Debian's stock cloud
# kernel boots N times under each VMM, interleaved (vmm, qemu, vmm, ...), 2
# vCPUs, 512M:
#   vmm   --device vfio=0000:00:10.0 (VFIO cdev + iommufd)
#   qemu  -M microvm,acpi=on,pcie=on with
#         -object iommufd,id=iommufd0 -device vfio-pci,host=BDF,iommufd=iommufd0
#         (BENCH_QEMU_MACHINE / BENCH_QEMU_BACKEND below choose otherwise)
# A benchmark, not a test: run-all.sh does not run it.
#
# Measured per boot, inside L1:
#   init   time from starting the VMM process to the guest's first init line;
#          both VMMs pin and map all guest RAM into the IOAS before the guest
#          runs, so this includes that (what KVM-managed HWPTs will remove)
#   nvme   time from start to /dev/nvme0n1 existing in the guest (the nvme
#          driver's reset and namespace scan over the passed-through BARs)
#   uptime the guest kernel's own uptime when init ran (init - uptime is
#          roughly the VMM's time before the guest's first instruction)
#   I/O    bench/guest/disk_io_bench on /dev/nvme0n1: sequential and random
#          4 KiB O_DIRECT reads and writes at queue depth 1, BENCH_SECONDS
#          each (default 5), IOPS
# Every request goes guest -> passed-through doorbell -> L0 QEMU's emulated
# NVMe (TCG) -> a file on the host, and its completion comes back as an MSI-X
# interrupt through VFIO's eventfd into KVM's irqfd, in both VMMs: the
# ratios show what each VMM adds on the way (BAR traps, interrupt routing),
# the absolute IOPS mostly show the lab.
# Prints a table per VMM, the medians and the ratios vmm/qemu.
#
# usage: bench/vfio.sh [N] [BUILD_DIR]   (N default 3; BUILD_DIR default build)
# Needs BUILD_DIR/vmm/vmm and BUILD_DIR/bench/disk_io_bench.
# Absolute figures under nested TCG depend on host load: compare within a run.
set -euo pipefail

BENCH_CPUS=2
BENCH_MEMORY=512M
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_L2_TIMEOUT=300
BENCH_IMAGE_MIB=256
NVME_CLASS=0x010802
DISK_MODES=(seqread seqwrite randread randwrite)
# QEMU's side: the machine (microvm: microvm,acpi=on,pcie=on; q35) and the
# VFIO backend (iommufd: -object iommufd, the cdev; container: the legacy
# /dev/vfio/vfio container, which the lab kernel serves from iommufd,
# CONFIG_IOMMUFD_VFIO_CONTAINER).
BENCH_QEMU_MACHINE=${BENCH_QEMU_MACHINE:-microvm}
BENCH_QEMU_BACKEND=${BENCH_QEMU_BACKEND:-iommufd}

guest_init() {
  cat <<'GUEST'
#!/bin/sh
echo "LAB-GUEST-INIT"
read -r uptime _ </proc/uptime
echo "LAB-GUEST-UPTIME=$uptime"
# Debian's cloud kernel builds nvme in; load-order lists what is not.
[ -s /modules/load-order ] && while read -r m; do insmod "/modules/$m" || echo "GUEST-FAIL insmod $m"; done </modules/load-order
secs=5
for arg in $(cat /proc/cmdline); do
  case $arg in vbench.secs=*) secs=${arg#vbench.secs=} ;; esac
done
# The controller resets and scans its namespaces asynchronously: wait for
# the disk, bounded (30 s), looking every 0.1 s.
i=0; while [ ! -b /dev/nvme0n1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
if [ -b /dev/nvme0n1 ]; then
  echo "LAB-GUEST-MARK=nvme"
  for mode in seqread seqwrite randread randwrite; do
    /disk_io_bench /dev/nvme0n1 "$mode" 4096 "$secs" || echo "GUEST-FAIL disk_io_bench $mode"
  done
  awk '/nvme/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; if ($0 ~ /MSI-?X/) x++ }
    END { printf "LAB-GUEST-NVME-IRQS=%d MSI-X-VECTORS=%d\n", s, x }' /proc/interrupts
else
  echo "GUEST-FAIL no /dev/nvme0n1 after 30 s"
fi
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# Prints how QEMU is configured, for the output.
qemu_config() {
  local m
  case $BENCH_QEMU_MACHINE in
    microvm) m="-M microvm,acpi=on,pcie=on" ;;
    *) m="-M $BENCH_QEMU_MACHINE" ;;
  esac
  case $BENCH_QEMU_BACKEND in
    iommufd) echo "$m, -object iommufd,id=iommufd0 -device vfio-pci,host=BDF,iommufd=iommufd0" ;;
    *) echo "$m, -device vfio-pci,host=BDF (legacy VFIO container: /dev/vfio/vfio, served by iommufd)" ;;
  esac
}

# Sets L2_CMD for VMM ("vmm:PATH" or "qemu") with the NVMe at BDF.
bench_command() {
  local vmm=$1 bdf=$2 b=$3
  l2_command "$vmm" "$b/vmlinuz" "$b/initrd" "$L2_CMDLINE_DEFAULT vbench.secs=$BENCH_SECONDS" \
    "$BENCH_CPUS" "$BENCH_MEMORY"
  case $vmm in
    vmm:*) L2_CMD+=(--device "vfio=$bdf") ;;
    qemu)
      case $BENCH_QEMU_MACHINE in
        # vfio-pci needs microvm's PCIe host bridge.
        microvm) L2_CMD=("${L2_CMD[@]/#microvm,acpi=on/microvm,acpi=on,pcie=on}") ;;
        *) L2_CMD=("${L2_CMD[@]/#microvm,acpi=on,/$BENCH_QEMU_MACHINE,}") ;;
      esac
      case $BENCH_QEMU_BACKEND in
        iommufd) L2_CMD+=(-object "iommufd,id=iommufd0" -device "vfio-pci,host=$bdf,iommufd=iommufd0") ;;
        *) L2_CMD+=(-device "vfio-pci,host=$bdf") ;;
      esac
      ;;
  esac
  return 0
}

l1_main() {
  local n=$1 i v
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  [[ -c /dev/iommu ]] || l1_fail "no /dev/iommu in L1 (the lab kernel has CONFIG_IOMMUFD; was --iommu given?)"
  local bdf cdev
  bdf=$(l1_find_pci_class "$NVME_CLASS")
  [[ -n $bdf ]] || l1_fail "no NVMe controller in L1"
  cdev=$(l1_bind_vfio_pci "$bdf") || l1_fail "binding $bdf to vfio-pci"
  echo "bench: NVMe $bdf bound to vfio-pci, cdev $cdev, IOMMU group $(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")")"
  # Both VMMs, the kernel and the initramfs in L1's RAM (tmpfs), not over 9p.
  local b=/tmp/bench
  l1_bench_stage "$b" 1
  local -a vmms=("vmm:$b/vmm/bin/vmm" qemu)
  local -A results=() rows=() iops=()
  local failed=0 line key
  for ((i = 1; i <= n; i++)); do
    for v in "${vmms[@]}"; do
      local name=${v%%:*}
      bench_command "$v" "$bdf" "$b"
      l2_run "$BENCH_L2_TIMEOUT" "${L2_CMD[@]}" >"$b/console.log" 2>&1
      if ((L2_RC != 0)) || [[ -z $L2_INIT_MS ]] || grep -q GUEST-FAIL "$L2_LOG"; then
        echo "bench: $name run $i FAILED (exit $L2_RC): ${L2_CMD[*]}"
        echo "bench: the guest's last console lines, then the VMM's own:"
        grep -a '^L2| ' "$b/console.log" | tail -n 30 || true
        grep -av '^L2| ' "$b/console.log" | tail -n 30 || true
        failed=1
        continue
      fi
      iops=()
      while read -r line; do
        local mode
        mode=$(sed -E 's/.*mode=([a-z]+).*/\1/' <<<"$line")
        iops[$mode]=$(sed -E 's/.*iops=([0-9]+).*/\1/' <<<"$line")
        results[$name:$mode]+=" ${iops[$mode]}"
      done < <(grep -aE "^DISK-BENCH" "$L2_LOG")
      local nvme_ms=${L2_MARK_MS[nvme]:-} irqs
      irqs=$(grep -ao 'LAB-GUEST-NVME-IRQS=[0-9]*' "$L2_LOG" | tail -n1 | cut -d= -f2)
      results[$name:init]+=" $L2_INIT_MS" results[$name:nvme]+=" $nvme_ms"
      results[$name:uptime]+=" ${L2_GUEST_UPTIME:-}"
      rows[$name]+="$(printf '%-5s %3d %8s %8s %9s %9s %9s %9s %9s %8s' "$name" "$i" \
        "$(l1_ms_to_s "$L2_INIT_MS")" "$(l1_ms_to_s "$nvme_ms")" "${L2_GUEST_UPTIME:--}" \
        "${iops[seqread]:--}" "${iops[seqwrite]:--}" "${iops[randread]:--}" "${iops[randwrite]:--}" \
        "${irqs:--}")"$'\n'
    done
  done
  echo
  echo "NVMe passthrough benchmark: Debian $(basename "$LAB_GUEST_KERNEL_L1"), $BENCH_CPUS vCPUs, $BENCH_MEMORY, L1 $(uname -r) on nested KVM behind QEMU/TCG intel-iommu"
  echo "  device: L1's emulated NVMe $bdf (1b36:0010, $BENCH_IMAGE_MIB MiB namespace) on vfio-pci"
  echo "  vmm:    --device vfio=$bdf (VFIO cdev + iommufd)"
  echo "  qemu:   $(qemu_config)"
  echo "  I/O:    disk_io_bench on /dev/nvme0n1, 4 KiB O_DIRECT, queue depth 1, ${BENCH_SECONDS}s per mode"
  local hdr
  hdr=$(printf '%-5s %3s %8s %8s %9s %9s %9s %9s %9s %8s' VMM run "init(s)" "nvme(s)" "uptime(s)" \
    seqread seqwrite randread randwrite "nvme-irq")
  for v in "${vmms[@]}"; do
    local name=${v%%:*}
    echo
    echo "$name (I/O in IOPS):"
    echo "$hdr"
    printf '%s' "${rows[$name]:-}"
  done
  echo
  echo "medians (vmm/qemu: times lower is better, IOPS higher is better):"
  for key in init nvme uptime "${DISK_MODES[@]}"; do
    local mv mq unit=IOPS
    # shellcheck disable=SC2086 # word lists
    mv=$(l1_median ${results[vmm:$key]:-}) mq=$(l1_median ${results[qemu:$key]:-})
    case $key in
      init | nvme)
        unit=s
        [[ -n $mv ]] && mv=$(l1_ms_to_s "$mv")
        [[ -n $mq ]] && mq=$(l1_ms_to_s "$mq")
        ;;
      uptime) unit=s ;;
    esac
    printf '  %-10s vmm %10s  qemu %10s  %-5s ratio %s\n' "$key" "${mv:--}" "${mq:--}" "$unit" \
      "$(l1_ratio "$mv" "$mq")"
  done
  return "$failed"
}

host_main() {
  local n=${1:-3} root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build=$(realpath -m "${2:-$root/build}")
  [[ $n =~ ^[1-9][0-9]*$ ]] || {
    echo "usage: bench/vfio.sh [N] [BUILD_DIR]" >&2
    return 2
  }
  case $BENCH_QEMU_MACHINE:$BENCH_QEMU_BACKEND in
    microvm:iommufd | microvm:container | q35:iommufd | q35:container) ;;
    *)
      echo "bench: BENCH_QEMU_MACHINE is microvm or q35, BENCH_QEMU_BACKEND iommufd or container" >&2
      return 2
      ;;
  esac
  . "$root/tests/lab/lib.sh"
  lab_require_built "$build" vmm/vmm || return 1
  lab_require_built "$build" bench/disk_io_bench || return 1
  local kernel
  kernel=$("$root/kernel-patches/build-lab-kernel.sh") || {
    echo "bench: building the lab kernel failed" >&2
    return 1
  }
  lab_prepare
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-bench-vfio.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
  # The NVMe's namespace, written once so that reads hit data, not holes.
  head -c $((BENCH_IMAGE_MIB << 20)) /dev/urandom >"$work/nvme.img"
  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  local extra=$work/extra
  lab_guest_modules "$extra" nvme
  cp "$build/bench/disk_io_bench" "$extra/disk_io_bench"
  lab_guest_append "$work/guest.cpio.gz" "$extra"
  # Each boot is bounded by BENCH_L2_TIMEOUT; L1 by all of them plus its own
  # boot and the staging. L1's environment is fixed: the settings go as
  # arguments.
  lab_run_l1 --kernel "$kernel" --iommu --nvme-image "$work/nvme.img" --share "$work" --memory 4G \
    --timeout $((n * 2 * BENCH_L2_TIMEOUT + 300)) -- \
    "${BASH_SOURCE[0]}" "$n" "$BENCH_SECONDS" "$BENCH_QEMU_MACHINE" "$BENCH_QEMU_BACKEND"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  BENCH_SECONDS=$2 BENCH_QEMU_MACHINE=$3 BENCH_QEMU_BACKEND=$4
  l1_main "$1"
else
  host_main "$@"
fi
