#!/usr/bin/env bash
# Issue 4's lab proof for virtio-vsock run by the host kernel's vhost-vsock,
# with Debian's stock cloud kernel as the L2 guest under our vmm on real KVM
# (inside L1, which plays the host):
#  - before `modprobe vhost_vsock`, `vmm --vsock cid=3` must fail before boot
#    with one line naming the module;
#  - after it, the vhost tests of virtio_vsock_tests run for real in L1 (CID
#    claiming, a host socket's handshake through rings the test drives);
#  - the guest (vmw_vsock_virtio_transport and its dependencies loaded from
#    the stock kernel's modules) boots twice: with MSI-X (vhost writes the
#    vectors' irqfds) and with pci=nomsi (INTx, which the VMM relays). Each
#    time it sends 8 MiB to L1 (VSOCK-CONNECT:2) and receives 8 MiB from L1
#    (L1 connects to CID 3), each file's sha256 computed on both ends; then
#    it unloads and reloads its vsock driver (a device reset that stops
#    vhost, and a fresh start) and sends 1 MiB more;
#  - while the guest holds CID 3, a second vmm asking for it must fail before
#    boot with one line saying it is in use.
# socat moves the data on both sides.
#
# usage: virtio-vsock.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
set -euo pipefail

L2_TIMEOUT=420
MIB_EACH_WAY=8
# Extra guest kernel parameters for both boots, handed to the L1 side as an
# argument (L1's environment is fixed).
L2_EXTRA_CMDLINE=${L2_EXTRA_CMDLINE-}

# ---------------------------------------------------------------- guest (L2)
guest_init() {
  cat <<'GUEST'
#!/bin/sh
echo "LAB-GUEST-INIT"
S=/socat/bin/socat
while read -r m; do insmod "/modules/$m" || echo "GUEST-FAIL insmod $m"; done </modules/load-order
cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }   # uptime in centiseconds
for d in /sys/bus/virtio/devices/*; do
  [ "$(cat "$d/device")" = "0x0013" ] &&
    echo "LAB-GUEST-VSOCK-DRIVER=$(basename "$(readlink "$d/driver")")"
done
grep -E "virtio|PCI-MSI" /proc/interrupts | head -12
mib=$(cat /mib)

echo "---- guest -> host"
dd if=/dev/urandom of=/tmp/out.bin bs=1M count="$mib" 2>/dev/null
echo "LAB-GUEST-SENT-SHA=$(sha256sum /tmp/out.bin | cut -d' ' -f1)"
t0=$(cs)
if timeout 300 $S -u OPEN:/tmp/out.bin VSOCK-CONNECT:2:5001; then
  echo "LAB-GUEST-SEND-CS=$(($(cs) - t0))"
else
  echo "GUEST-FAIL sending to the host (VSOCK-CONNECT:2:5001)"
fi
rm -f /tmp/out.bin

echo "---- host -> guest"
t0=$(cs)
if timeout 300 $S -u VSOCK-LISTEN:5000 CREATE:/tmp/in.bin; then
  echo "LAB-GUEST-RECV-CS=$(($(cs) - t0))"
  echo "LAB-GUEST-RECV-SHA=$(sha256sum /tmp/in.bin | cut -d' ' -f1)"
else
  echo "GUEST-FAIL receiving from the host (VSOCK-LISTEN:5000)"
fi
rm -f /tmp/in.bin
# Interrupts the guest took from the device (MSI-X vectors, or the INTx line).
grep virtio /proc/interrupts
echo "LAB-GUEST-VIRTIO-IRQS=$(awk '/virtio/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts)"

echo "---- driver reset"
# Closed sockets may hold the module for a moment while their close handshake ends.
i=0; until rmmod vmw_vsock_virtio_transport 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
if ! grep -q "^vmw_vsock_virtio_transport " /proc/modules && insmod /modules/vmw_vsock_virtio_transport.ko; then
  dd if=/dev/urandom of=/tmp/again.bin bs=1M count=1 2>/dev/null
  echo "LAB-GUEST-RESET-SHA=$(sha256sum /tmp/again.bin | cut -d' ' -f1)"
  timeout 120 $S -u OPEN:/tmp/again.bin VSOCK-CONNECT:2:5003 ||
    echo "GUEST-FAIL sending after the driver reset (VSOCK-CONNECT:2:5003)"
else
  echo "GUEST-FAIL reloading vmw_vsock_virtio_transport"
fi
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# ------------------------------------------------------------------- L1 side
# Runs in the background while the guest boots: receives the guest's file,
# checks that a second VM cannot take CID 3, then sends L1's file to the
# guest. Writes KEY=VALUE lines to stdout, files to DIR.
l1_transfers() {
  local vmm=$1 socat=$2 dir=$3 rc
  rc=0
  timeout 400 "$socat" -u VSOCK-LISTEN:5001 CREATE:/tmp/from-guest.bin || rc=$?
  echo "recv_rc=$rc"
  [[ -f /tmp/from-guest.bin ]] && echo "from_guest_sha=$(sha256sum /tmp/from-guest.bin | cut -d' ' -f1)"
  # The guest is up and owns CID 3 now.
  rc=0
  timeout 120 "$vmm" run --kernel "$LAB_GUEST_KERNEL_L1" --memory 256M --serial none \
    --vsock cid=3 >"$dir/busy.out" 2>&1 || rc=$?
  echo "busy_rc=$rc"
  # socat retries the connection (bounded) until the guest listens.
  rc=0
  timeout 300 "$socat" -u OPEN:/tmp/to-guest.bin VSOCK-CONNECT:3:5000,retry=1000,interval=0.2 || rc=$?
  echo "send_rc=$rc"
}

l1_after_reset() {
  local socat=$1 rc=0
  timeout 400 "$socat" -u VSOCK-LISTEN:5003 CREATE:/tmp/after-reset.bin || rc=$?
  echo "reset_rc=$rc"
  [[ -f /tmp/after-reset.bin ]] && echo "after_reset_sha=$(sha256sum /tmp/after-reset.bin | cut -d' ' -f1)"
}

# One boot of the guest with extra kernel parameters CMDLINE; results in
# /share/NAME/.
l1_round() {
  local name=$1 cmdline=$2 vmm=$3 mib=$4 socat=$5 dir=/share/$1
  mkdir -p "$dir"
  rm -f /tmp/from-guest.bin /tmp/after-reset.bin
  head -c $((mib * 1024 * 1024)) /dev/urandom >/tmp/to-guest.bin
  sha256sum /tmp/to-guest.bin | cut -d' ' -f1 >"$dir/to-guest.sha"
  l1_transfers "${vmm#vmm:}" "$socat" "$dir" >"$dir/transfers.env" 2>"$dir/transfers.err" &
  local transfers=$!
  l1_after_reset "$socat" >"$dir/after-reset.env" 2>"$dir/after-reset.err" &
  local after_reset=$!
  l2_command "$vmm" "$LAB_GUEST_KERNEL_L1" /share/guest.cpio.gz "$L2_CMDLINE_DEFAULT $cmdline" 2 512M
  L2_CMD+=(--vsock cid=3)
  echo "=== virtio-vsock ($name): ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"$dir/l2-rc"
  cp "$L2_LOG" "$dir/l2-console.log"
  # With the guest gone, anything still waiting on it can only time out.
  kill "$transfers" "$after_reset" 2>/dev/null || true
  wait "$transfers" "$after_reset" 2>/dev/null || true
}

l1_main() {
  local vmm=$1 mib=$2 extra_cmdline=${3:-} work=/share
  local socat=$work/socat/bin/socat tests=$work/tests/bin/virtio_vsock_tests rc
  . "$LAB_HELPERS"
  l1_require_kvm

  echo "=== virtio-vsock: without the vhost_vsock module"
  rc=0
  timeout 120 "${vmm#vmm:}" run --kernel "$LAB_GUEST_KERNEL_L1" --memory 256M --serial none \
    --vsock cid=3 >"$work/nomodule.out" 2>&1 || rc=$?
  echo "$rc" >"$work/nomodule-rc"
  cat "$work/nomodule.out"

  modprobe vhost_vsock || l1_fail "modprobe vhost_vsock failed"
  [[ -c /dev/vhost-vsock ]] || l1_fail "no /dev/vhost-vsock after modprobe vhost_vsock"

  echo "=== virtio-vsock: vhost tests on the real /dev/vhost-vsock"
  rc=0
  timeout -k 10 300 "$tests" --gtest_color=no --gtest_filter='Vhost*' >"$work/gtest.log" 2>&1 || rc=$?
  echo "$rc" >"$work/gtest-rc"
  cat "$work/gtest.log"

  # vhost writes the MSI-X vectors' irqfds itself; with pci=nomsi the VMM
  # relays its interrupts to INTx.
  l1_round msix "$extra_cmdline" "$vmm" "$mib" "$socat"
  l1_round intx "$extra_cmdline pci=nomsi" "$vmm" "$mib" "$socat"
}

# ----------------------------------------------------------------- host side
# check_round NAME DIR: appends what is wrong with one guest boot to WHY and
# sets SUMMARY.
check_round() {
  local name=$1 dir=$2/$1 log=$2/$1/l2-console.log env=$2/$1/transfers.env l2rc sent got irqs
  value() { sed -n "s/^$1=//p" "$2" 2>/dev/null | tail -n1; }
  guest() { grep -ao "$1=[0-9a-f]*" "$log" 2>/dev/null | tail -n1 | cut -d= -f2; }
  l2rc=$(cat "$dir/l2-rc" 2>/dev/null || echo missing)
  [[ $l2rc == 0 ]] || WHY+=("$name: vmm exited with '$l2rc', expected 0")
  grep -q "LAB-GUEST-INIT" "$log" 2>/dev/null || WHY+=("$name: the guest never reached init")
  grep -q "GUEST-FAIL" "$log" 2>/dev/null && WHY+=("$name: guest: $(grep -m3 GUEST-FAIL "$log" | tr '\n' ';')")
  grep -q "LAB-GUEST-VSOCK-DRIVER=vmw_vsock_virtio_transport" "$log" 2>/dev/null ||
    WHY+=("$name: no virtio vsock device bound to vmw_vsock_virtio_transport in the guest")
  irqs=$(sed -n 's/.*LAB-GUEST-VIRTIO-IRQS=\([0-9]*\).*/\1/p' "$log" 2>/dev/null | tail -n1)
  ((${irqs:-0} > 0)) || WHY+=("$name: the guest counted no virtio interrupts ('$irqs')")
  if [[ $name == msix ]]; then
    grep -Eq "PCI-MSI.*virtio[0-9]+-rx" "$log" 2>/dev/null || WHY+=("$name: the rx queue has no MSI-X vector")
  else
    grep -Eq "IO-APIC.*virtio[0-9]+$" "$log" 2>/dev/null || WHY+=("$name: virtio is not on an IO-APIC line")
    grep -q "PCI-MSI" "$log" 2>/dev/null && WHY+=("$name: virtio used MSI-X despite pci=nomsi")
  fi
  sent=$(guest LAB-GUEST-SENT-SHA)
  got=$(value from_guest_sha "$env")
  [[ -n $sent && $sent == "$got" ]] ||
    WHY+=("$name: guest -> L1: the guest sent sha256 '$sent', L1 received '$got' (recv_rc=$(value recv_rc "$env"))")
  sent=$(cat "$dir/to-guest.sha" 2>/dev/null)
  got=$(guest LAB-GUEST-RECV-SHA)
  [[ -n $sent && $sent == "$got" ]] ||
    WHY+=("$name: L1 -> guest: L1 sent sha256 '$sent', the guest received '$got' (send_rc=$(value send_rc "$env"))")
  sent=$(guest LAB-GUEST-RESET-SHA)
  got=$(value after_reset_sha "$dir/after-reset.env")
  [[ -n $sent && $sent == "$got" ]] ||
    WHY+=("$name: after the driver reset: the guest sent sha256 '$sent', L1 received '$got'")
  # A second VM for the same CID: refused before boot, in one line.
  [[ $(value busy_rc "$env") == 1 ]] || WHY+=("$name: a second vmm with cid=3 exited '$(value busy_rc "$env")', expected 1")
  grep -q '^vmm: error: .*already in use' "$dir/busy.out" 2>/dev/null ||
    WHY+=("$name: a second vmm with cid=3 did not say the CID is in use: $(head -c 300 "$dir/busy.out" 2>/dev/null | tr '\n' '|')")
  local send_cs recv_cs
  send_cs=$(sed -n 's/.*LAB-GUEST-SEND-CS=\([0-9]*\).*/\1/p' "$log" 2>/dev/null | tail -n1)
  recv_cs=$(sed -n 's/.*LAB-GUEST-RECV-CS=\([0-9]*\).*/\1/p' "$log" 2>/dev/null | tail -n1)
  SUMMARY+="$name: ${send_cs:-?}0 ms out, ${recv_cs:-?}0 ms in, $irqs interrupts; "
}

host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build work
  build=$(lab_scenario_build_dir "${1:-}")
  lab_require_built "$build" vmm/vmm || return 1
  lab_require_built "$build" tests/unit/virtio/virtio_vsock_tests || return 1
  command -v socat >/dev/null || {
    echo "FAIL: socat is missing on the host (run scripts/setup.sh)" >&2
    return 1
  }
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-virtio-vsock.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
  lab_copy_binary "$build/tests/unit/virtio/virtio_vsock_tests" "$work/tests" >/dev/null
  lab_copy_binary "$(command -v socat)" "$work/socat" >/dev/null

  # Guest initramfs: busybox + our init, plus the stock kernel's vsock
  # modules and socat, appended as a second cpio archive.
  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  local extra=$work/extra
  lab_guest_modules "$extra" vmw_vsock_virtio_transport
  lab_copy_binary "$(command -v socat)" "$extra/socat" >/dev/null
  echo "$MIB_EACH_WAY" >"$extra/mib"
  lab_guest_append "$work/guest.cpio.gz" "$extra"

  local rc=0
  lab_run_l1 --share "$work" --timeout 1500 -- "${BASH_SOURCE[0]}" \
    vmm:/share/vmm/bin/vmm "$MIB_EACH_WAY" "$L2_EXTRA_CMDLINE" || rc=$?

  WHY=() SUMMARY=""
  ((rc == 0)) || WHY+=("the L1 script failed with $rc")
  # Before boot, without the module: exit 1 and one error line naming it.
  local nomodule_rc
  nomodule_rc=$(cat "$work/nomodule-rc" 2>/dev/null || echo missing)
  [[ $nomodule_rc == 1 ]] || WHY+=("vmm without vhost_vsock exited '$nomodule_rc', expected 1")
  [[ $(grep -c '^vmm: error:' "$work/nomodule.out" 2>/dev/null) == 1 ]] &&
    grep -q '^vmm: error: .*modprobe vhost_vsock' "$work/nomodule.out" ||
    WHY+=("vmm without vhost_vsock did not say so in one line: $(head -c 300 "$work/nomodule.out" 2>/dev/null | tr '\n' '|')")
  # The vhost unit tests, for real: none may skip.
  local passed skipped
  passed=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) tests?\..*/\1/p' "$work/gtest.log" 2>/dev/null | tail -n1)
  skipped=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) tests?,.*/\1/p' "$work/gtest.log" 2>/dev/null | tail -n1)
  [[ $(cat "$work/gtest-rc" 2>/dev/null) == 0 && -n $passed ]] ||
    WHY+=("virtio_vsock_tests --gtest_filter=Vhost* failed in L1: $(grep -m3 -E 'FAILED|Failure' "$work/gtest.log" 2>/dev/null | tr '\n' ';')")
  [[ ${skipped:-0} == 0 ]] || WHY+=("$skipped vhost tests skipped in L1, where /dev/vhost-vsock exists")
  check_round msix "$work"
  check_round intx "$work"

  if ((${#WHY[@]})); then
    echo "virtio-vsock: FAIL"
    printf 'virtio-vsock:   - %s\n' "${WHY[@]}"
    return 1
  fi
  echo "virtio-vsock: ok (MSI-X and INTx guests each sent and received ${MIB_EACH_WAY} MiB," \
    "sha256 matched on both ends, and 1 MiB after a driver reset; ${SUMMARY}busy CID and" \
    "missing module refused before boot; $passed vhost tests passed in L1)"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
