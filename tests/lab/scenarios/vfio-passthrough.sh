#!/usr/bin/env bash
# The point of the project, proven: a real PCI device passed through to a
# stock Linux guest by our vmm, over VFIO cdev + iommufd. --iommu profile:
# L1 is the lab kernel behind QEMU's intel-iommu (caching mode, interrupt
# remapping) with an emulated NVMe at 0000:00:10.0 whose namespace is an
# image this script prepares; L2 is Debian's stock cloud kernel under vmm.
#
#  - the host writes 16 MiB of random bytes at the start of a 64 MiB image
#    and gives it to L1's NVMe;
#  - L1 checks bad input first, before anything boots: the NVMe still bound
#    to L1's nvme driver, a PCI address that does not exist, /dev/iommu
#    missing (renamed away for one run) must each make vmm exit 1 with one
#    line naming the problem and what to do; then it binds the NVMe to
#    vfio-pci;
#  - round 1 (--device vfio=PCI-ADDRESS): the guest sees the controller
#    (lspci: IDs, class, BAR 0 as L1 sees it, MSI-X enabled, MSI and the ROM
#    hidden, the nvme driver), /dev/nvme0n1 appears, it reads the host's
#    16 MiB with O_DIRECT (DMA into guest RAM through our IOAS) and checks
#    their sha256, writes 8 MiB of its own at 32 MiB and reads them back,
#    counts the controller's MSI-X interrupts in /proc/interrupts and powers
#    off. Meanwhile, as soon as the guest's init runs, L1 starts a second vmm
#    on the same device, which must exit 1 saying it is in use, and lists
#    the first vmm's threads (no thread of ours in the interrupt path: only
#    the main thread and the vCPUs exist);
#  - round 2 (--device vfio=/dev/vfio/devices/vfioN, the same device in the
#    same L1): a second boot after the first vmm reset and released it reads
#    round 1's 8 MiB back and checks them;
#  - round 3 (pci=nomsi in the guest): the same on INTx, VFIO's INTx
#    eventfd into a resample irqfd on the _PRT's IOAPIC pin;
#  - the host then finds round 1's bytes at 32 MiB of the image and the
#    first 16 MiB untouched.
#
# usage: vfio-passthrough.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
set -euo pipefail

L2_TIMEOUT=400
L1_TIMEOUT=1500
NVME_CLASS=0x010802
PATTERN_MIB=16  # the host's pattern, at offset 0
WRITE_MIB=8     # the guest's, at offset WRITE_AT_MIB
WRITE_AT_MIB=32

# ---------------------------------------------------------------- guest (L2)
guest_init() {
  cat <<GUEST
#!/bin/sh
echo "LAB-GUEST-INIT"
round=\$(sed -n 's/.*lab\.round=\([0-9]*\).*/\1/p' /proc/cmdline)
# Debian's cloud kernel builds nvme in; load-order lists what is not.
[ -s /modules/load-order ] && while read -r m; do insmod "/modules/\$m" || echo "GUEST-FAIL insmod \$m"; done </modules/load-order
# The controller resets and scans its namespaces asynchronously: wait for
# it, bounded, checking every 0.1 s.
i=0; while [ ! -b /dev/nvme0n1 ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done
if [ -b /dev/nvme0n1 ]; then echo "LAB-GUEST-NVME-READY-AFTER-DS=\$i"; else echo "GUEST-FAIL no /dev/nvme0n1 after 30 s"; fi
echo "---- lspci"
/lspci/bin/lspci -vv -nn -i /lspci/pci.ids 2>&1 || echo "GUEST-FAIL lspci"
echo "---- sysfs"
for d in /sys/bus/pci/devices/*; do
  echo "PCI \$(basename \$d) \$(cat \$d/vendor):\$(cat \$d/device) class=\$(cat \$d/class) irq=\$(cat \$d/irq) driver=\$(basename "\$(readlink \$d/driver 2>/dev/null)")"
done
echo "LAB-GUEST-NVME-MODEL=\$(cat /sys/class/nvme/nvme0/model 2>/dev/null | tr -d ' ')"
echo "LAB-GUEST-NVME-SECTORS=\$(cat /sys/block/nvme0n1/size 2>/dev/null)"
sha() { dd if=/dev/nvme0n1 bs=1M skip=\$1 count=\$2 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
got=\$(sha 0 $PATTERN_MIB)
if [ "\$got" = "\$(cat /expected.sha256)" ]; then echo "LAB-GUEST-READ-OK"; else echo "GUEST-FAIL read sha256 \$got, the host wrote \$(cat /expected.sha256)"; fi
if [ "\$round" = 1 ]; then
  dd if=/dev/urandom of=/tmp/new.bin bs=1M count=$WRITE_MIB 2>/dev/null
  sum=\$(sha256sum /tmp/new.bin | cut -d' ' -f1)
  if dd if=/tmp/new.bin of=/dev/nvme0n1 bs=1M seek=$WRITE_AT_MIB oflag=direct conv=fsync 2>/dev/null; then
    echo "LAB-GUEST-WROTE=\$sum"
  else
    echo "GUEST-FAIL writing /dev/nvme0n1"
  fi
  back=\$(sha $WRITE_AT_MIB $WRITE_MIB)
  [ "\$back" = "\$sum" ] && echo "LAB-GUEST-READBACK-OK" || echo "GUEST-FAIL read back \$back, wrote \$sum"
else
  echo "LAB-GUEST-REREAD=\$(sha $WRITE_AT_MIB $WRITE_MIB)"
fi
echo "---- interrupts"
grep -E "CPU|nvme" /proc/interrupts
# Per nvme vector line: the counts of every CPU, summed.
awk '/nvme/ { n++; if (\$0 ~ /MSI-?X/) x++; if (\$0 ~ /IO-APIC/) y++
    for (i = 2; i <= NF && \$i ~ /^[0-9]+\$/; i++) s += \$i }
  END { printf "LAB-GUEST-NVME-IRQS=%d\nLAB-GUEST-NVME-VECTORS=%d\nLAB-GUEST-NVME-MSIX-VECTORS=%d\nLAB-GUEST-NVME-INTX-LINES=%d\n", s, n, x, y }' /proc/interrupts
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# ------------------------------------------------------------------- L1 side
# vmm with the guest and `--device ARG`, expecting it to refuse before boot:
# writes rc=N and the output to /share/NAME.out.
l1_refusal() {
  local name=$1 vmm=$2 arg=$3 rc=0
  timeout 120 "$vmm" run --kernel "$LAB_GUEST_KERNEL_L1" --initrd /share/guest.cpio.gz \
    --memory 256M --serial none --device "$arg" >"/share/$name.out" 2>&1 || rc=$?
  echo "rc=$rc" >"/share/$name.rc"
  echo "=== vfio-passthrough: refusal '$name' ($arg): exit $rc: $(head -c 300 "/share/$name.out")"
}

# Started by l2_run when the guest's init runs (round 1): the device is
# bound to the first vmm now. Lists that vmm's threads, then tries a second
# vmm on the same device.
l1_while_running() {
  local vmm=$1 arg=$2 t
  for t in /proc/"$L2_PID"/task/*; do
    cat "$t/comm"
  done >/share/threads.txt 2>/dev/null || true
  l1_refusal busy "$vmm" "$arg"
}

l1_round() {
  local round=$1 vmm=$2 arg=$3 cmdline=${4:-}
  l2_command "vmm:$vmm" "$LAB_GUEST_KERNEL_L1" /share/guest.cpio.gz \
    "$L2_CMDLINE_DEFAULT lab.round=$round $cmdline" 2 512M
  L2_CMD+=(--device "$arg")
  echo "=== vfio-passthrough round $round: ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"/share/round$round.rc"
  echo "${L2_ON_LINE_RC:-}" >"/share/round$round.on-line-rc"
  cp "$L2_LOG" "/share/round$round.log"
  echo "=== vfio-passthrough round $round: vmm exit $L2_RC, guest init after $(l1_ms_to_s "$L2_INIT_MS") s, total $(l1_ms_to_s "$L2_TOTAL_MS") s"
}

l1_main() {
  local vmm=/share/vmm/bin/vmm lspci=/share/lspci/bin/lspci
  . "$LAB_HELPERS"
  l1_require_kvm
  [[ -c /dev/iommu ]] || l1_fail "no /dev/iommu in L1 (the lab kernel has CONFIG_IOMMUFD; was --iommu given?)"
  local bdf
  bdf=$(l1_find_pci_class "$NVME_CLASS")
  [[ -n $bdf ]] || l1_fail "no NVMe controller in L1"
  echo "=== vfio-passthrough: NVMe $bdf, driver $(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver" 2>/dev/null)")"
  "$lspci" -vv -nn -s "$bdf" -i /share/lspci/pci.ids >/share/l1-lspci.txt 2>&1 || true

  # Bad input, each before any guest runs.
  l1_refusal host-driver "$vmm" "vfio=$bdf"
  l1_refusal no-device "$vmm" "vfio=0000:7f:00.0"
  local cdev
  cdev=$(l1_bind_vfio_pci "$bdf") || l1_fail "binding $bdf to vfio-pci"
  echo "=== vfio-passthrough: $bdf bound to vfio-pci, cdev $cdev"
  mv /dev/iommu /dev/iommu.hidden
  l1_refusal no-iommu "$vmm" "vfio=$bdf"
  mv /dev/iommu.hidden /dev/iommu

  # Round 1 by PCI address; the second vmm and the thread list at init.
  L2_ON_LINE_PATTERN='*LAB-GUEST-INIT*'
  L2_ON_LINE_CMD="l1_while_running '$vmm' 'vfio=$bdf'"
  l1_round 1 "$vmm" "vfio=$bdf"
  unset L2_ON_LINE_PATTERN L2_ON_LINE_CMD
  # Round 2: the same device again, by its cdev.
  l1_round 2 "$vmm" "vfio=$cdev"
  # Round 3: INTx (the guest may not use MSI-X): VFIO's INTx eventfd into
  # a resample irqfd, level-triggered through the _PRT's IOAPIC pin.
  l1_round 3 "$vmm" "vfio=$bdf" pci=nomsi
}

# ----------------------------------------------------------------- host side
# The `lspci -vv` section of function $2 (00:01.0) in console log $1.
lspci_function() {
  tr -d '\r' <"$1" | awk -v slot="$2" '
    /^---- / { p = 0 }
    /^[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]\.[0-7] / { p = ($1 == slot) }
    p'
}

# value KEY FILE: the value of the last KEY=... marker in FILE.
value() { grep -ao "$1=[^ ]*" "$2" 2>/dev/null | tail -n1 | cut -d= -f2 | tr -d '\r'; }

# A refusal: exit 1, exactly one line, starting "vmm: error: --device", and
# containing every other argument.
check_refusal() {
  local name=$1 work=$2 out rc
  shift 2
  out=$work/$name.out
  rc=$(cut -d= -f2 "$work/$name.rc" 2>/dev/null || echo missing)
  [[ $rc == 1 ]] || why+=("$name: vmm exited '$rc', expected 1: $(head -c 300 "$out" 2>/dev/null | tr '\n' '|')")
  [[ $(wc -l <"$out" 2>/dev/null) == 1 ]] || why+=("$name: not one line: $(head -c 400 "$out" 2>/dev/null | tr '\n' '|')")
  grep -q '^vmm: error: --device vfio=' "$out" 2>/dev/null || why+=("$name: the line does not name the flag: $(head -c 300 "$out" 2>/dev/null)")
  local part
  for part in "$@"; do
    grep -qF -- "$part" "$out" 2>/dev/null || why+=("$name: no '$part' in: $(head -c 300 "$out" 2>/dev/null)")
  done
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build work
  build=$(lab_scenario_build_dir "${1:-}")
  lab_require_built "$build" vmm/vmm || return 1
  command -v lspci >/dev/null || {
    echo "FAIL: lspci (pciutils) is missing on the host (run scripts/setup.sh)" >&2
    return 1
  }
  local kernel
  kernel=$("$LAB_REPO_ROOT/kernel-patches/build-lab-kernel.sh") || {
    echo "FAIL: building the lab kernel failed" >&2
    return 1
  }
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-vfio.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
  lab_copy_binary "$(command -v lspci)" "$work/lspci" >/dev/null
  local ids
  for ids in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids; do
    [[ -f $ids ]] && { cp "$ids" "$work/lspci/pci.ids"; break; }
  done

  # The NVMe's namespace: the host's pattern, then zeroes.
  local image=$work/nvme.img
  head -c $((PATTERN_MIB << 20)) /dev/urandom >"$image"
  truncate -s 64M "$image"
  local pattern_sha
  pattern_sha=$(head -c $((PATTERN_MIB << 20)) "$image" | sha256sum | cut -d' ' -f1)

  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  local extra=$work/extra
  lab_guest_modules "$extra" nvme
  lab_copy_binary "$(command -v lspci)" "$extra/lspci" >/dev/null
  cp "$work/lspci/pci.ids" "$extra/lspci/pci.ids" 2>/dev/null || true
  echo "$pattern_sha" >"$extra/expected.sha256"
  lab_guest_append "$work/guest.cpio.gz" "$extra"

  local rc=0
  lab_run_l1 --kernel "$kernel" --iommu --nvme-image "$image" --share "$work" --memory 4G \
    --timeout "$L1_TIMEOUT" -- "${BASH_SOURCE[0]}" || rc=$?

  local why=()
  ((rc == 0)) || why+=("the L1 script failed with $rc")
  check_refusal host-driver "$work" "is bound to nvme, not vfio-pci" "driver_override" "drivers_probe"
  check_refusal no-device "$work" "no PCI device 0000:7f:00.0"
  check_refusal no-iommu "$work" "/dev/iommu" "CONFIG_IOMMUFD"
  check_refusal busy "$work" "is in use"

  local round log l2rc
  for round in 1 2 3; do
    log=$work/round$round.log
    l2rc=$(cat "$work/round$round.rc" 2>/dev/null || echo missing)
    [[ $l2rc == 0 ]] || why+=("round $round: vmm exited '$l2rc', expected 0")
    grep -q "LAB-GUEST-INIT" "$log" 2>/dev/null || why+=("round $round: the guest never reached init")
    grep -q "LAB-GUEST-POWEROFF" "$log" 2>/dev/null || why+=("round $round: the guest did not finish")
    grep -q "GUEST-FAIL" "$log" 2>/dev/null && why+=("round $round: guest: $(grep -a -m3 GUEST-FAIL "$log" | tr '\n' ';')")
    grep -q "LAB-GUEST-READ-OK" "$log" || why+=("round $round: the guest did not read the host's $PATTERN_MIB MiB intact")
    local irqs msix
    irqs=$(value LAB-GUEST-NVME-IRQS "$log")
    msix=$(value LAB-GUEST-NVME-MSIX-VECTORS "$log")
    [[ ${irqs:-0} -gt 0 ]] || why+=("round $round: no nvme interrupt counted in the guest's /proc/interrupts")
    if ((round < 3)); then
      [[ ${msix:-0} -ge 2 ]] || why+=("round $round: ${msix:-0} nvme MSI-X vectors in /proc/interrupts, expected the admin queue and at least one I/O queue")
    else
      [[ ${msix:-0} == 0 && $(value LAB-GUEST-NVME-INTX-LINES "$log") -ge 1 ]] ||
        why+=("round 3 (pci=nomsi): nvme is not on an IO-APIC INTx line ($msix MSI-X vectors)")
    fi

    # The controller as the guest sees it, against L1's view of the device.
    lspci_function "$log" 00:01.0 >"$work/lspci-round$round"
    local f=$work/lspci-round$round line
    local -a lines=("[1b36:0010]" "Non-Volatile memory controller [0108]"
      "Kernel driver in use: nvme" "BusMaster+")
    if ((round < 3)); then
      lines+=("MSI-X: Enable+" "DisINTx+")
    else
      lines+=("MSI-X: Enable-" "DisINTx-" "Interrupt: pin A routed to IRQ")
    fi
    for line in "${lines[@]}"; do
      grep -qF -- "$line" "$f" || why+=("round $round: guest lspci of 00:01.0 has no '$line'")
    done
    grep -q "Expansion ROM" "$f" && why+=("round $round: the guest sees an expansion ROM")
    grep -qE "MSI: Enable" "$f" && why+=("round $round: the guest sees the MSI capability")
    local l1_bar0 l2_bar0
    l1_bar0=$(grep -aoE "Region 0: Memory at [0-9a-f]+ \([^)]*\) \[size=[0-9KMG]+\]" "$work/l1-lspci.txt" | sed -E 's/at [0-9a-f]+ //')
    l2_bar0=$(grep -aoE "Region 0: Memory at [0-9a-f]+ \([^)]*\) \[size=[0-9KMG]+\]" "$f" | sed -E 's/at [0-9a-f]+ //')
    [[ -n $l2_bar0 && $l2_bar0 == "$l1_bar0" ]] || why+=("round $round: guest BAR 0 '$l2_bar0' is not L1's '$l1_bar0'")
  done
  local wrote reread
  wrote=$(value LAB-GUEST-WROTE "$work/round1.log")
  grep -q "LAB-GUEST-READBACK-OK" "$work/round1.log" || why+=("round 1: the guest did not read its own write back")
  for round in 2 3; do
    reread=$(value LAB-GUEST-REREAD "$work/round$round.log")
    [[ -n $wrote && $reread == "$wrote" ]] || why+=("round $round: the guest read '$reread' at $WRITE_AT_MIB MiB, round 1 wrote '$wrote'")
  done

  # No VMM thread in the interrupt path: the first vmm had only its main
  # thread and its vCPUs. (KVM's own per-VM kernel workers, kvm-nx-lpage-
  # recovery and the like, are listed among the process's tasks too.)
  local others
  others=$(grep -Evc '^(vcpu[0-9]+|kvm-.*)$' "$work/threads.txt" 2>/dev/null || true)
  [[ -s $work/threads.txt && $others == 1 ]] ||
    why+=("round 1: vmm threads besides the vCPUs: $(tr '\n' ' ' <"$work/threads.txt" 2>/dev/null)")
  [[ $(cat "$work/round1.on-line-rc" 2>/dev/null) == 0 ]] || why+=("round 1: the check while the guest ran failed")

  # After both VMs: the image holds the guest's bytes, the host's untouched.
  local image_write image_pattern
  image_write=$(dd if="$image" bs=1M skip=$WRITE_AT_MIB count=$WRITE_MIB 2>/dev/null | sha256sum | cut -d' ' -f1)
  image_pattern=$(head -c $((PATTERN_MIB << 20)) "$image" | sha256sum | cut -d' ' -f1)
  [[ -n $wrote && $image_write == "$wrote" ]] || why+=("host: the image has sha256 $image_write at $WRITE_AT_MIB MiB, the guest wrote '$wrote'")
  [[ $image_pattern == "$pattern_sha" ]] || why+=("host: the first $PATTERN_MIB MiB of the image changed")

  if ((${#why[@]})); then
    echo "vfio-passthrough: FAIL"
    printf 'vfio-passthrough:   - %s\n' "${why[@]}"
    return 1
  fi
  local irqs1 irqs2 irqs3 vectors1 threads
  irqs1=$(value LAB-GUEST-NVME-IRQS "$work/round1.log")
  irqs2=$(value LAB-GUEST-NVME-IRQS "$work/round2.log")
  irqs3=$(value LAB-GUEST-NVME-IRQS "$work/round3.log")
  vectors1=$(value LAB-GUEST-NVME-MSIX-VECTORS "$work/round1.log")
  threads=$(grep -Ec '^vcpu[0-9]+$' "$work/threads.txt")
  echo "vfio-passthrough: ok (NVMe 1b36:0010 passed through in 3 boots of one L1, by PCI address and by cdev; the guest read $PATTERN_MIB MiB of the host's bytes by DMA, sha256 ok each time, and wrote $WRITE_MIB MiB, verified by the guest, by two more boots and in the image on the host; nvme interrupts: MSI-X $irqs1 and $irqs2 on $vectors1 vectors, INTx (pci=nomsi) $irqs3; vmm threads: main + $threads vCPUs; 4 bad inputs refused in one line each)"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
