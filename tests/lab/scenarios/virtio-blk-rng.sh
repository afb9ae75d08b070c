#!/usr/bin/env bash
# Issue 4's lab proof for PCI, virtio-blk and virtio-rng, with Debian's stock
# cloud kernel as the L2 guest under our vmm on real KVM (inside L1):
#  - the host builds an ext4 image with a data file and its checksum
#    (mke2fs -d) and a small read-only disk; L1 makes a third, 16 MiB of
#    random bytes in its own tmpfs, served with queues=2;
#  - the guest loads virtio_blk/virtio-rng (modules in the stock kernel),
#    shows its PCI devices (lspci -vv: IDs, BARs, MSI-X, the virtio
#    capabilities, all checked per function), verifies the file's checksum,
#    writes a new file with its checksum, checks the read-only disk refuses
#    writes, sees 2 queues on the third disk, discards its first 4 MiB and
#    zeroes the next 4 MiB (util-linux blkdiscard, -z: WRITE_ZEROES), reads
#    /dev/hwrng, and powers off;
#  - vmm must exit 0; L1 then finds the zeroed range zero, the last 8 MiB
#    untouched and (on tmpfs) the discarded range a hole; the host finds the
#    new file intact in the image (debugfs) and the filesystem clean
#    (e2fsck -fn).
#
# usage: virtio-blk-rng.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
set -euo pipefail

L2_TIMEOUT=300
# Extra guest kernel parameters (e.g. L2_EXTRA_CMDLINE=pci=noacpi to find
# the bus through 0xCF8 probing instead of the DSDT's PCI0).
L2_EXTRA_CMDLINE=${L2_EXTRA_CMDLINE-}

# ---------------------------------------------------------------- guest (L2)
guest_init() {
  cat <<'GUEST'
#!/bin/sh
echo "LAB-GUEST-INIT"
while read -r m; do insmod "/modules/$m" || echo "GUEST-FAIL insmod $m"; done </modules/load-order
mkdev() { [ -b "/dev/$1" ] || mknod "/dev/$1" b "$(cut -d: -f1 /sys/block/$1/dev)" "$(cut -d: -f2 /sys/block/$1/dev)"; }
i=0; while [ ! -e /sys/block/vdc ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "---- lspci"
/lspci/bin/lspci -vv -nn -i /lspci/pci.ids 2>&1 || echo "GUEST-FAIL lspci"
echo "---- sysfs"
for d in /sys/bus/pci/devices/*; do
  echo "PCI $(basename $d) $(cat $d/vendor):$(cat $d/device) class=$(cat $d/class) irq=$(cat $d/irq) driver=$(basename "$(readlink $d/driver 2>/dev/null)")"
done
grep -E "virtio|PCI-MSI" /proc/interrupts | head -20
echo "---- disk"
mkdev vda; mkdev vdb
echo "LAB-GUEST-VDA-SERIAL=$(cat /sys/block/vda/serial 2>/dev/null)"
echo "LAB-GUEST-VDB-RO=$(cat /sys/block/vdb/ro)"
mkdir -p /mnt
if mount -t ext4 /dev/vda /mnt; then
  want=$(cat /mnt/data.sha256)
  got=$(sha256sum /mnt/data.bin | cut -d' ' -f1)
  [ "$want" = "$got" ] && echo "LAB-GUEST-CHECKSUM-OK" || echo "GUEST-FAIL checksum $got != $want"
  dd if=/dev/urandom of=/mnt/new.bin bs=64k count=64 2>/dev/null
  sum=$(sha256sum /mnt/new.bin | cut -d' ' -f1)
  echo "$sum" > /mnt/new.sha256
  sync
  umount /mnt && echo "LAB-GUEST-WROTE=$sum"
else
  echo "GUEST-FAIL mount /dev/vda"
fi
if dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null; then
  echo "GUEST-FAIL wrote to the read-only disk"
else
  echo "LAB-GUEST-RO-REFUSED"
fi
echo "---- discard, write-zeroes, queues"
mkdev vdc
echo "LAB-GUEST-VDC-MQ=$(ls /sys/block/vdc/mq | wc -l)"
echo "LAB-GUEST-VDC-DISCARD-MAX=$(cat /sys/block/vdc/queue/discard_max_bytes)"
echo "LAB-GUEST-VDC-ZEROES-MAX=$(cat /sys/block/vdc/queue/write_zeroes_max_bytes)"
if /blkdiscard/bin/blkdiscard -o 0 -l 4194304 /dev/vdc; then
  echo "LAB-GUEST-DISCARD-OK"
else
  echo "GUEST-FAIL blkdiscard"
fi
if /blkdiscard/bin/blkdiscard -z -o 4194304 -l 4194304 /dev/vdc; then
  left=$(dd if=/dev/vdc bs=1M skip=4 count=4 iflag=direct 2>/dev/null | tr -d '\000' | wc -c)
  echo "LAB-GUEST-ZEROED-NONZERO-BYTES=$left"
else
  echo "GUEST-FAIL blkdiscard -z"
fi
echo "---- rng"
echo "LAB-GUEST-RNG=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
n=$(dd if=/dev/hwrng bs=1024 count=64 2>/dev/null | wc -c)
echo "LAB-GUEST-HWRNG-BYTES=$n"
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# ------------------------------------------------------------------- L1 side
l1_main() {
  # The L1 environment is fixed: the extra command line arrives as $2.
  local vmm=$1 extra_cmdline=${2:-} work=/share
  . "$LAB_HELPERS"
  l1_require_kvm
  l2_command "$vmm" "$LAB_GUEST_KERNEL_L1" "$work/guest.cpio.gz" \
    "$L2_CMDLINE_DEFAULT $extra_cmdline" 2 512M
  # The queues=2 disk lives in L1's own memory, where (tmpfs) discard can
  # punch holes; on 9p (/share) fallocate is not there at all.
  local mq=/tmp/mq.img mib=$((1024 * 1024))
  dd if=/dev/urandom of=$mq bs=1M count=16 2>/dev/null
  dd if=$mq bs=1M skip=8 count=8 2>/dev/null | sha256sum | cut -d' ' -f1 >"$work/mq-tail.before"
  echo "$(stat -f -c %T /tmp) $(stat -c %b $mq)" >"$work/mq-blocks.before"
  L2_CMD+=(--disk "path=$work/disk.img,serial=lab-disk-0" --disk "path=$work/ro.img,readonly=on"
    --disk "path=$mq,queues=2" --rng)
  echo "=== virtio-blk-rng: ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"$work/l2-rc"
  cp "$L2_LOG" "$work/l2-console.log"
  # What the guest's discard and write-zeroes left in the image.
  dd if=$mq bs=1M skip=8 count=8 2>/dev/null | sha256sum | cut -d' ' -f1 >"$work/mq-tail.after"
  dd if=$mq bs=1M skip=4 count=4 2>/dev/null | tr -d '\000' | wc -c >"$work/mq-zeroed.nonzero"
  echo "$(stat -f -c %T /tmp) $(stat -c %b $mq) $((4 * mib / 512))" >"$work/mq-blocks.after"
}

# ----------------------------------------------------------------- host side
# The `lspci -vv` section of function $2 (00:01.0) in console log $1.
lspci_function() {
  tr -d '\r' <"$1" | awk -v slot="$2" '
    /^---- / { p = 0 }
    /^[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]\.[0-7] / { p = ($1 == slot) }
    p'
}

# Appends to `why` each fixed string of $3... missing from file $1 ($2 names it).
check_lines() {
  local file=$1 name=$2 line
  shift 2
  for line in "$@"; do
    grep -qF -- "$line" "$file" || why+=("lspci $name: no '$line'")
  done
}

# What every virtio function of ours shows: BAR 0 64-bit prefetchable 16K,
# BAR 2 32-bit 4K with the MSI-X table and PBA, the common, notify, ISR and
# PCI_CFG capabilities at their offsets in BAR 0, bus mastering on and INTx
# disabled (Linux's doing once MSI-X is on: the bit must stick).
check_virtio_function() {
  local file=$1 name=$2
  [[ -s $file ]] || {
    why+=("lspci $name: function missing from the output")
    return
  }
  grep -Eq "Region 0: Memory at [0-9a-f]+ \(64-bit, prefetchable\) \[size=16K\]" "$file" ||
    why+=("lspci $name: BAR 0 is not a 64-bit prefetchable 16K region")
  grep -Eq "Region 2: Memory at [0-9a-f]+ \(32-bit, non-prefetchable\) \[size=4K\]" "$file" ||
    why+=("lspci $name: BAR 2 is not a 32-bit 4K region")
  grep -q "Region 1\|Region 3\|Region 4\|Region 5\|I/O ports at" "$file" &&
    why+=("lspci $name: BARs other than 0 and 2")
  check_lines "$file" "$name" "Subsystem: Red Hat, Inc. Device [1af4:0040]" "BusMaster+" "DisINTx+" \
    "Vector table: BAR=2 offset=00000000" "PBA: BAR=2 offset=00000800" \
    "VirtIO: CommonCfg" "BAR=0 offset=00000000 size=00000040" \
    "VirtIO: Notify" "multiplier=00000004" \
    "VirtIO: ISR" "BAR=0 offset=00001000 size=00000004" \
    "VirtIO: <unknown>" "Kernel driver in use: virtio-pci"
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
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-virtio-blk.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null

  # The disk: ext4 made on the host with a file and its checksum.
  mkdir -p "$work/content"
  head -c 3M /dev/urandom >"$work/content/data.bin"
  sha256sum "$work/content/data.bin" | cut -d' ' -f1 >"$work/content/data.sha256"
  mke2fs -q -t ext4 -d "$work/content" "$work/disk.img" 64M
  truncate -s 8M "$work/ro.img"

  # Guest initramfs: busybox + our init, plus the stock kernel's virtio
  # modules and lspci, appended as a second cpio archive.
  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  local extra=$work/extra
  lab_guest_modules "$extra" virtio_blk virtio-rng
  lab_copy_binary "$(command -v lspci)" "$extra/lspci" >/dev/null
  local blkdiscard
  blkdiscard=$(command -v blkdiscard || echo /sbin/blkdiscard)
  lab_copy_binary "$blkdiscard" "$extra/blkdiscard" >/dev/null
  for ids in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids; do
    [[ -f $ids ]] && { cp "$ids" "$extra/lspci/pci.ids"; break; }
  done
  lab_guest_append "$work/guest.cpio.gz" "$extra"

  local rc=0
  lab_run_l1 --share "$work" --timeout 900 -- "${BASH_SOURCE[0]}" vmm:/share/vmm/bin/vmm "$L2_EXTRA_CMDLINE" || rc=$?
  local log=$work/l2-console.log l2rc
  l2rc=$(cat "$work/l2-rc" 2>/dev/null || echo missing)
  local why=()
  ((rc == 0)) || why+=("the L1 script failed with $rc")
  [[ $l2rc == 0 ]] || why+=("vmm exited with '$l2rc', expected 0")
  grep -q "LAB-GUEST-INIT" "$log" 2>/dev/null || why+=("the guest never reached init")
  grep -q "GUEST-FAIL" "$log" 2>/dev/null && why+=("guest: $(grep -m3 GUEST-FAIL "$log" | tr '\n' ';')")
  grep -Eq "Virtio (1.0 )?block device \[1af4:1042\]" "$log" || why+=("lspci shows no virtio block device")
  grep -Eq "Virtio (1.0 )?RNG \[1af4:1044\]" "$log" || why+=("lspci shows no virtio RNG")
  grep -q "MSI-X: Enable+" "$log" || why+=("lspci shows no enabled MSI-X")
  # Each virtio function as we expose it: slots in --disk/--rng order.
  # disk.img: one queue, 60 bytes of config; mq.img: 2 queues; rng: none.
  lspci_function "$log" 00:01.0 >"$work/lspci-vda"
  lspci_function "$log" 00:03.0 >"$work/lspci-vdc"
  lspci_function "$log" 00:04.0 >"$work/lspci-rng"
  local f
  for f in vda vdc rng; do
    check_virtio_function "$work/lspci-$f" "$f"
  done
  check_lines "$work/lspci-vda" vda "VirtIO: DeviceCfg" "BAR=0 offset=00002000 size=0000003c" \
    "BAR=0 offset=00003000 size=00000004" "MSI-X: Enable+ Count=2 Masked-" "[1af4:1042]"
  check_lines "$work/lspci-vdc" vdc "VirtIO: DeviceCfg" "BAR=0 offset=00003000 size=00000008" \
    "MSI-X: Enable+ Count=3 Masked-"
  check_lines "$work/lspci-rng" rng "BAR=0 offset=00003000 size=00000004" \
    "MSI-X: Enable+ Count=2 Masked-" "[1af4:1044]"
  grep -q "VirtIO: DeviceCfg" "$work/lspci-rng" && why+=("lspci: the rng has a device config capability")
  grep -q "LAB-GUEST-VDC-MQ=2" "$log" || why+=("the queues=2 disk does not show 2 queues in /sys/block/vdc/mq")
  grep -Eq "LAB-GUEST-VDC-DISCARD-MAX=[1-9]" "$log" || why+=("vdc does not offer discard")
  grep -Eq "LAB-GUEST-VDC-ZEROES-MAX=[1-9]" "$log" || why+=("vdc does not offer write-zeroes")
  grep -q "LAB-GUEST-DISCARD-OK" "$log" || why+=("blkdiscard failed in the guest")
  grep -q "LAB-GUEST-ZEROED-NONZERO-BYTES=0" "$log" || why+=("the guest does not read back zeroes after blkdiscard -z")
  [[ $(cat "$work/mq-zeroed.nonzero" 2>/dev/null) == 0 ]] ||
    why+=("L1: the zeroed range of mq.img holds $(cat "$work/mq-zeroed.nonzero" 2>/dev/null) non-zero bytes")
  [[ -s $work/mq-tail.before && $(cat "$work/mq-tail.before") == $(cat "$work/mq-tail.after" 2>/dev/null) ]] ||
    why+=("L1: the last 8 MiB of mq.img changed")
  local fs before after hole
  read -r fs before <"$work/mq-blocks.before" || true
  read -r _ after hole <"$work/mq-blocks.after" || true
  local discard_note="discard: no hole on $fs"
  if [[ $fs == tmpfs ]]; then
    # 8 MiB discarded or zeroed (tmpfs zeroes by punching) = 16384 blocks.
    if [[ -n $before && -n $after ]] && ((before - after >= 2 * hole)); then
      discard_note="discard+zeroes freed $((before - after)) blocks"
    else
      why+=("L1: mq.img kept ${after:-?} of ${before:-?} blocks after 8 MiB of discard/zeroes on tmpfs")
    fi
  fi
  grep -q "LAB-GUEST-CHECKSUM-OK" "$log" || why+=("the guest did not verify the host's file")
  grep -q "LAB-GUEST-VDA-SERIAL=lab-disk-0" "$log" || why+=("vda's serial is not lab-disk-0")
  grep -q "LAB-GUEST-VDB-RO=1" "$log" || why+=("vdb is not read-only in the guest")
  grep -q "LAB-GUEST-RO-REFUSED" "$log" || why+=("the read-only disk accepted a write")
  grep -q "LAB-GUEST-RNG=virtio_rng" "$log" || why+=("/dev/hwrng is not virtio_rng")
  grep -q "LAB-GUEST-HWRNG-BYTES=65536" "$log" || why+=("/dev/hwrng did not give 64 KiB")
  # After vmm exited: the guest's new file must be in the image, intact.
  local want got
  want=$(grep -ao "LAB-GUEST-WROTE=[0-9a-f]*" "$log" | cut -d= -f2 || true)
  got=$(debugfs -R "cat /new.bin" "$work/disk.img" 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [[ -z $want || $want != "$got" ]]; then
    why+=("host: new.bin in the image has sha256 $got, the guest wrote '$want'")
  fi
  e2fsck -fn "$work/disk.img" >/dev/null 2>&1 || why+=("host: e2fsck -fn found errors in the image")
  if ((${#why[@]})); then
    echo "virtio-blk-rng: FAIL"
    printf 'virtio-blk-rng:   - %s\n' "${why[@]}"
    return 1
  fi
  echo "virtio-blk-rng: ok (checksum verified in the guest, new file $got verified on the host, rng 64 KiB, 2 queues, $discard_note)"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
