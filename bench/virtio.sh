#!/usr/bin/env bash
# virtio benchmark: our vmm against QEMU (-M microvm with PCIe, the same
# virtio-pci devices), both on L1's real KVM in ONE L1 run, with Debian's
# stock cloud kernel as the guest (2 vCPUs, 512M). A benchmark, not a test:
# run-all.sh does not run it.
#
# virtio-blk: a 256 MiB raw image in L1's RAM (tmpfs), so the host side costs
#   the same for both; the guest runs bench/guest/disk_io_bench (O_DIRECT,
#   queue depth 1, 4 KiB) for sequential and random reads and writes.
#   QEMU: -drive cache=writeback,aio=threads (its default) ~ our vmm's
#   buffered preadv/pwritev.
# virtio-net: a persistent tap in L1 (10.0.2.1) per VMM run; the guest runs
#   iperf3 against iperf3 -s in L1, guest->L1 (tx) then L1->guest (rx).
#   QEMU's virtio-net runs in QEMU's own threads (vhost=off), as ours does.
#
# Runs are interleaved (vmm, qemu, vmm, ...) N times; prints every run, the
# medians and the ratios vmm/qemu (higher is better for both).
#
# usage: bench/virtio.sh [N] [BUILD_DIR]   (N default 3; BUILD_DIR default build)
# Absolute figures under nested TCG depend on host load: compare within a run.
set -euo pipefail

BENCH_CPUS=2
BENCH_MEMORY=512M
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_L2_TIMEOUT=300
DISK_MODES=(seqread seqwrite randread randwrite)

guest_init() {
  cat <<'GUEST'
#!/bin/sh
echo "LAB-GUEST-INIT"
while read -r m; do insmod "/modules/$m" || echo "GUEST-FAIL insmod $m"; done </modules/load-order
secs=5
for arg in $(cat /proc/cmdline); do
  case $arg in vbench.secs=*) secs=${arg#vbench.secs=} ;; esac
done
if [ -e /sys/block/vda ]; then
  [ -b /dev/vda ] || mknod /dev/vda b "$(cut -d: -f1 /sys/block/vda/dev)" "$(cut -d: -f2 /sys/block/vda/dev)"
  for mode in seqread seqwrite randread randwrite; do
    /disk_io_bench /dev/vda "$mode" 4096 "$secs" || echo "GUEST-FAIL disk_io_bench $mode"
  done
fi
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 10.0.2.2/24 dev eth0 || echo "GUEST-FAIL eth0"
  for dir in tx rx; do
    flag=; [ $dir = rx ] && flag=-R
    out=$(/iperf3/bin/iperf3 -c 10.0.2.1 -t "$secs" -f m $flag 2>&1) || echo "GUEST-FAIL iperf3 $dir: $out"
    mbps=$(echo "$out" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") print $(i-1) }')
    echo "NET-BENCH dir=$dir mbps=$mbps"
  done
fi
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# Sets L2_CMD for VMM ("vmm:PATH" or "qemu") with the disk or the tap.
bench_command() {
  local vmm=$1 what=$2 b=$3
  l2_command "$vmm" "$b/vmlinuz" "$b/initrd" "$L2_CMDLINE_DEFAULT vbench.secs=$BENCH_SECONDS" \
    "$BENCH_CPUS" "$BENCH_MEMORY"
  case $vmm:$what in
    vmm:*:disk) L2_CMD+=(--disk "path=$b/disk.img") ;;
    vmm:*:net) L2_CMD+=(--net "tap=benchtap0,mac=52:54:00:12:34:56") ;;
    qemu:disk)
      L2_CMD+=(-drive "file=$b/disk.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0)
      ;;
    qemu:net)
      L2_CMD+=(-netdev "tap,id=n0,ifname=benchtap0,script=no,downscript=no,vhost=off"
        -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=)
      ;;
  esac
  # QEMU's virtio-pci devices need microvm's PCIe host bridge.
  [[ $vmm == qemu ]] && L2_CMD=("${L2_CMD[@]/#microvm,acpi=on/microvm,acpi=on,pcie=on}")
  return 0
}

l1_main() {
  local n=$1 has_vmm=$2 has_net=$3 i v what
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  # The VMMs, kernel, initramfs and disk image live in L1's RAM (tmpfs).
  local b=/tmp/bench
  l1_bench_stage "$b" "$has_vmm"
  cp -r /share/iperf3 "$b/iperf3"
  # Written once, so that reads hit data, not holes.
  dd if=/dev/urandom of="$b/disk.img" bs=1M count=256 2>/dev/null
  local -a whats=(disk)
  if ((has_net)); then
    whats+=(net)
    modprobe tun
    /share/ip/bin/ip tuntap add dev benchtap0 mode tap vnet_hdr
    /share/ip/bin/ip addr add 10.0.2.1/24 dev benchtap0
    /share/ip/bin/ip link set benchtap0 up
    "$b/iperf3/bin/iperf3" -s -D -B 10.0.2.1
  fi
  local -a vmms=(qemu)
  ((has_vmm)) && vmms=("vmm:$b/vmm/bin/vmm" qemu)
  local -A results=()
  local rows=() failed=0 key line
  for ((i = 1; i <= n; i++)); do
    for what in "${whats[@]}"; do
      for v in "${vmms[@]}"; do
        local name=${v%%:*}
        bench_command "$v" "$what" "$b"
        l2_run "$BENCH_L2_TIMEOUT" "${L2_CMD[@]}" >"$b/console.log" 2>&1
        if ((L2_RC != 0)) || grep -q GUEST-FAIL "$L2_LOG"; then
          echo "bench: $name $what run $i FAILED (exit $L2_RC); its console:"
          tail -n 30 "$b/console.log"
          failed=1
          continue
        fi
        while read -r line; do
          case $line in
            DISK-BENCH*)
              local mode iops
              mode=$(sed -E 's/.*mode=([a-z]+).*/\1/' <<<"$line")
              iops=$(sed -E 's/.*iops=([0-9]+).*/\1/' <<<"$line")
              results[$name:$mode]+=" $iops"
              rows+=("$(printf '%-5s %3d  disk %-9s %8s IOPS' "$name" "$i" "$mode" "$iops")")
              ;;
            NET-BENCH*)
              local dir mbps
              dir=$(sed -E 's/.*dir=([a-z]+).*/\1/' <<<"$line")
              mbps=$(sed -E 's/.*mbps=([0-9.]*).*/\1/' <<<"$line")
              results[$name:net-$dir]+=" $mbps"
              rows+=("$(printf '%-5s %3d  net  %-9s %8s Mbit/s' "$name" "$i" "$dir" "$mbps")")
              ;;
          esac
        done < <(grep -aE "^(DISK|NET)-BENCH" "$L2_LOG")
      done
    done
  done
  echo
  echo "virtio benchmark: Debian $(basename "$LAB_GUEST_KERNEL_L1"), $BENCH_CPUS vCPUs, $BENCH_MEMORY, ${BENCH_SECONDS}s per measurement, in L1 on nested KVM"
  printf '%s\n' "${rows[@]}"
  echo
  echo "medians (and vmm/qemu; higher is better):"
  local -a keys=()
  for key in "${DISK_MODES[@]}"; do keys+=("$key"); done
  ((has_net)) && keys+=(net-tx net-rx)
  for key in "${keys[@]}"; do
    local mv mq unit=IOPS
    [[ $key == net-* ]] && unit=Mbit/s
    # shellcheck disable=SC2086 # word lists
    mv=$(l1_median ${results[vmm:$key]:-}) mq=$(l1_median ${results[qemu:$key]:-})
    printf '  %-10s vmm %10s  qemu %10s  %-7s ratio %s\n' "$key" "${mv:--}" "${mq:--}" "$unit" \
      "$(l1_ratio "$mv" "$mq")"
  done
  return "$failed"
}

host_main() {
  local n=${1:-3} root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build=$(realpath -m "${2:-$root/build}")
  [[ $n =~ ^[1-9][0-9]*$ ]] || {
    echo "usage: bench/virtio.sh [N] [BUILD_DIR]" >&2
    return 2
  }
  . "$root/tests/lab/lib.sh"
  lab_require_built "$build" bench/disk_io_bench || return 1
  lab_prepare
  local work has_vmm=0 has_net=1
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-bench.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  if [[ -x $build/vmm/vmm ]]; then
    lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
    has_vmm=1
    if ! "$build/vmm/vmm" run --help 2>/dev/null | grep -q -- "--net"; then
      echo "bench: this vmm has no --net: benchmarking virtio-blk only" >&2
      has_net=0
    fi
  else
    echo "bench: $build/vmm/vmm is not built: measuring QEMU alone" >&2
  fi
  lab_copy_binary "$(command -v iperf3)" "$work/iperf3" >/dev/null
  lab_copy_binary "$(command -v ip)" "$work/ip" >/dev/null
  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  local extra=$work/extra
  lab_guest_modules "$extra" virtio_blk virtio_net
  cp "$build/bench/disk_io_bench" "$extra/disk_io_bench"
  cp -r "$work/iperf3" "$extra/iperf3"
  lab_guest_append "$work/guest.cpio.gz" "$extra"
  local runs=$((n * 2 * (1 + has_net)))
  lab_run_l1 --share "$work" --timeout $((runs * BENCH_L2_TIMEOUT + 300)) -- \
    "${BASH_SOURCE[0]}" "$n" "$has_vmm" "$has_net"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
