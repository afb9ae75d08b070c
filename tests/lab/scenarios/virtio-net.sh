#!/usr/bin/env bash
# Issue 4's lab proof for virtio-net over a tap, with Debian's stock cloud
# kernel as the L2 guest under our vmm on real KVM (inside L1):
#  - L1 loads tun, creates tap0 (iproute2's `ip`, copied from the host:
#    busybox ip has no tuntap), gives it 192.168.77.1/24 and starts two
#    busybox nc listeners: one receives, one sends 32 MiB of random data;
#  - vmm runs with --net tap=tap0,mac=52:54:00:12:34:56; the guest loads
#    virtio_net (+ net_failover, failover), checks its MAC and the
#    negotiated features, configures 192.168.77.2/24, pings L1, sends 32 MiB
#    to L1 and receives L1's 32 MiB, printing both checksums and timings;
#  - L1 writes the checksums of what it received and sent to /share, and
#    the host compares them with the guest's.
# Transfer rates are printed, not asserted (nested KVM on TCG).
# LAB_L2_VMM=qemu runs the same guest under QEMU microvm (PCIe, userspace
# virtio-net-pci on the same tap, no vhost) for comparison.
#
# usage: virtio-net.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
set -euo pipefail

L2_TIMEOUT=400
GUEST_MAC=52:54:00:12:34:56
TRANSFER_MIB=32

# ---------------------------------------------------------------- guest (L2)
guest_init() {
  cat <<'GUEST'
#!/bin/sh
echo "LAB-GUEST-INIT"
while read -r m; do insmod "/modules/$m" || echo "GUEST-FAIL insmod $m"; done </modules/load-order
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || echo "GUEST-FAIL no eth0 after 10 s"
# Centiseconds of uptime (well past 1 s here, so no leading zero).
now_cs() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}"; }
rate() { [ "$2" -gt 0 ] && echo "$(($1 * 1000 / $2 / 10)).$(($1 * 1000 / $2 % 10)) MiB/s" || echo "-"; }

echo "LAB-GUEST-MAC=$(cat /sys/class/net/eth0/address)"
for d in /sys/bus/virtio/devices/*; do
  [ "$(basename "$(readlink "$d/driver")")" = virtio_net ] && echo "LAB-GUEST-FEATURES=$(cat "$d/features")"
done
ip link set lo up
ip link set eth0 up
ip addr add 192.168.77.2/24 dev eth0
ping -c 20 -i 0.2 -W 10 192.168.77.1 >/tmp/ping.txt 2>&1
cat /tmp/ping.txt
loss=$(sed -n 's/.* \([0-9]*\)% packet loss.*/\1/p' /tmp/ping.txt)
echo "LAB-GUEST-PING-LOSS=${loss:-none}"

# Guest -> L1: L1's listener writes what it gets to a file; nc here
# half-closes at the end of its input and exits when L1 closes.
dd if=/dev/urandom of=/tmp/out.bin bs=1M count=@MIB@ 2>/dev/null
echo "LAB-GUEST-TX-SHA=$(sha256sum /tmp/out.bin | cut -d' ' -f1)"
t0=$(now_cs)
timeout 150 nc 192.168.77.1 5001 </tmp/out.bin >/dev/null || echo "GUEST-FAIL nc to L1 exited with $?"
t1=$(now_cs)
echo "LAB-GUEST-TX-CS=$((t1 - t0)) ($(rate @MIB@ $((t1 - t0))))"

# L1 -> guest: our input must stay open (busybox nc exits at the socket's
# end but half-closes at its input's end): a FIFO we also hold for writing.
mkfifo /tmp/hold
exec 7<>/tmp/hold
t0=$(now_cs)
timeout 150 nc 192.168.77.1 5002 <&7 >/tmp/in.bin || echo "GUEST-FAIL nc from L1 exited with $?"
t1=$(now_cs)
exec 7>&-
echo "LAB-GUEST-RX-BYTES=$(wc -c </tmp/in.bin)"
echo "LAB-GUEST-RX-SHA=$(sha256sum /tmp/in.bin | cut -d' ' -f1)"
echo "LAB-GUEST-RX-CS=$((t1 - t0)) ($(rate @MIB@ $((t1 - t0))))"
for f in rx_packets rx_errors rx_dropped tx_packets tx_errors tx_dropped; do
  printf '%s=%s ' "$f" "$(cat /sys/class/net/eth0/statistics/$f)"
done
echo
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# ------------------------------------------------------------------- L1 side
l1_main() {
  local vmm=$1 ip=$2 mac=$3 mib=$4 work=/share
  . "$LAB_HELPERS"
  l1_require_kvm
  modprobe tun || l1_fail "modprobe tun"
  "$ip" tuntap add dev tap0 mode tap || l1_fail "ip tuntap add dev tap0"
  "$ip" addr add 192.168.77.1/24 dev tap0
  "$ip" link set tap0 up

  if [[ $vmm == vmm:* ]]; then
    # A NIC on something that is no tap fails before boot, with one line.
    local bad_rc=0
    "${vmm#vmm:}" run --kernel "$LAB_GUEST_KERNEL_L1" --net tap=lo >"$work/bad-tap.out" 2>&1 ||
      bad_rc=$?
    echo "$bad_rc" >"$work/bad-tap.rc"
  fi

  dd if=/dev/urandom of=/tmp/to-guest.bin bs=1M count="$mib" 2>/dev/null
  sha256sum /tmp/to-guest.bin | cut -d' ' -f1 >"$work/l1-sent.sha256"
  # The receiver's input stays open (see the guest's side), so it only ends
  # when the guest closes the connection.
  mkfifo /tmp/hold
  exec {hold}<>/tmp/hold
  timeout 600 nc -l -p 5001 <&"$hold" >/tmp/from-guest.bin &
  local rx_pid=$!
  timeout 600 nc -l -p 5002 </tmp/to-guest.bin >/dev/null &
  local tx_pid=$!

  l2_command "$vmm" "$LAB_GUEST_KERNEL_L1" "$work/guest.cpio.gz" "$L2_CMDLINE_DEFAULT" 2 512M
  if [[ $vmm == qemu ]]; then
    L2_CMD=("${L2_CMD[@]/#microvm,acpi=on/microvm,acpi=on,pcie=on}")
    L2_CMD+=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no
      -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=")
  else
    L2_CMD+=(--net "tap=tap0,mac=$mac")
  fi
  echo "=== virtio-net: ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"$work/l2-rc"
  cp "$L2_LOG" "$work/l2-console.log"

  # A guest that finished has made both listeners finish; stop any left.
  kill "$rx_pid" "$tx_pid" 2>/dev/null || true
  wait "$rx_pid" "$tx_pid" 2>/dev/null || true
  exec {hold}>&-
  sha256sum /tmp/from-guest.bin | cut -d' ' -f1 >"$work/l1-received.sha256"
  wc -c </tmp/from-guest.bin >"$work/l1-received.bytes"
  for f in rx_packets rx_errors rx_dropped tx_packets tx_errors tx_dropped; do
    printf '%s=%s ' "$f" "$(cat /sys/class/net/tap0/statistics/$f)"
  done >"$work/l1-tap-stats"
  echo "=== tap0 in L1: $(cat "$work/l1-tap-stats")"
}

# ----------------------------------------------------------------- host side
host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build work l2=${LAB_L2_VMM:-vmm} vmm_spec=vmm:/share/vmm/bin/vmm
  build=$(lab_scenario_build_dir "${1:-}")
  case $l2 in
    vmm) lab_require_built "$build" vmm/vmm || return 1 ;;
    qemu) vmm_spec=qemu ;;
    *)
      echo "FAIL: LAB_L2_VMM must be vmm or qemu, not '$l2'" >&2
      return 1
      ;;
  esac
  command -v ip >/dev/null || {
    echo "FAIL: ip (iproute2) is missing on the host (run scripts/setup.sh)" >&2
    return 1
  }
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-virtio-net.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  [[ $l2 == vmm ]] && lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
  lab_copy_binary "$(command -v ip)" "$work/iproute2" >/dev/null

  guest_init | sed "s/@MIB@/$TRANSFER_MIB/g" >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  lab_guest_modules "$work/extra" virtio_net
  lab_guest_append "$work/guest.cpio.gz" "$work/extra"

  local rc=0
  lab_run_l1 --share "$work" --timeout 900 -- "${BASH_SOURCE[0]}" "$vmm_spec" \
    /share/iproute2/bin/ip "$GUEST_MAC" "$TRANSFER_MIB" || rc=$?

  local log=$work/l2-console.log l2rc why=()
  l2rc=$(cat "$work/l2-rc" 2>/dev/null || echo missing)
  marker() { grep -ao "$1=.*" "$log" 2>/dev/null | head -n1 | cut -d= -f2- | tr -d '\r' || true; }
  ((rc == 0)) || why+=("the L1 script failed with $rc")
  [[ $l2rc == 0 ]] || why+=("vmm exited with '$l2rc', expected 0")
  if ! grep -q "LAB-GUEST-INIT" "$log" 2>/dev/null; then
    why+=("the guest never reached init")
    echo "virtio-net: FAIL"
    printf 'virtio-net:   - %s\n' "${why[@]}"
    return 1
  fi
  grep -q "GUEST-FAIL" "$log" 2>/dev/null && why+=("guest: $(grep -m3 GUEST-FAIL "$log" | tr '\n' ';')")
  local mac features loss tx_sha rx_sha sent received bytes rx_bytes
  mac=$(marker LAB-GUEST-MAC)
  [[ $mac == "$GUEST_MAC" ]] || why+=("the guest's MAC is '$mac', expected $GUEST_MAC")
  features=$(marker LAB-GUEST-FEATURES)
  # The sysfs string has one character per feature bit, bit 0 first.
  local bit name
  for bit in 0:CSUM 1:GUEST_CSUM 5:MAC 7:GUEST_TSO4 11:HOST_TSO4 15:MRG_RXBUF 16:STATUS 32:VERSION_1; do
    name=${bit#*:} bit=${bit%%:*}
    [[ ${features:bit:1} == 1 ]] || why+=("the guest did not negotiate $name (features '$features')")
  done
  local bad
  bad=$(cat "$work/bad-tap.out" 2>/dev/null || true)
  if [[ $l2 == vmm ]] && [[ $(cat "$work/bad-tap.rc" 2>/dev/null) != 1 ||
    $(wc -l <<<"$bad") != 1 || $bad != *"lo is not a single-queue tap"* ]]; then
    why+=("--net tap=lo: expected exit 1 and one line naming lo, got rc $(cat "$work/bad-tap.rc" 2>/dev/null): $bad")
  fi
  loss=$(marker LAB-GUEST-PING-LOSS)
  [[ $loss == 0 ]] || why+=("ping from the guest to L1 lost '$loss'%")
  tx_sha=$(marker LAB-GUEST-TX-SHA)
  received=$(cat "$work/l1-received.sha256" 2>/dev/null || true)
  bytes=$(cat "$work/l1-received.bytes" 2>/dev/null || echo 0)
  if [[ -z $tx_sha || $tx_sha != "$received" ]]; then
    why+=("guest->L1: L1 received $bytes bytes with sha256 '$received', the guest sent '$tx_sha'")
  fi
  rx_sha=$(marker LAB-GUEST-RX-SHA)
  rx_bytes=$(marker LAB-GUEST-RX-BYTES)
  sent=$(cat "$work/l1-sent.sha256" 2>/dev/null || true)
  if [[ -z $sent || $rx_sha != "$sent" ]]; then
    why+=("L1->guest: the guest received $rx_bytes bytes with sha256 '$rx_sha', L1 sent '$sent'")
  fi
  local tx_rate rx_rate
  tx_rate=$(marker LAB-GUEST-TX-CS | sed -n 's/.*(\(.*\))/\1/p')
  rx_rate=$(marker LAB-GUEST-RX-CS | sed -n 's/.*(\(.*\))/\1/p')
  echo "virtio-net: L1's tap0: $(cat "$work/l1-tap-stats" 2>/dev/null)"
  if ((${#why[@]})); then
    echo "virtio-net: FAIL"
    printf 'virtio-net:   - %s\n' "${why[@]}"
    return 1
  fi
  echo "virtio-net: ok ($l2, mac $mac, ping 0% loss, ${TRANSFER_MIB} MiB guest->L1 at ${tx_rate:-?}" \
    "and L1->guest at ${rx_rate:-?}, sha256 matched both ways)"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
