#!/usr/bin/env bash
# Issue 4's lab proof for virtio-console, with Debian's stock cloud kernel as
# the L2 guest under our vmm on real KVM (inside L1):
#  1. `--console socket=/tmp/con.sock`: an L1 client (socat) connects; the
#     guest opens /dev/hvc0 in raw mode, announces itself until the client
#     answers, sends a 256 KiB payload that L1 checks by sha256, then reads a
#     160 KiB payload from L1 and checks it. The client then leaves while the guest
#     may still be reading (a disconnect is not an error); vmm must exit 0
#     and remove its socket;
#  2. `console=hvc0` on the guest cmdline with `--console file=...`: the
#     kernel's boot messages (from the virtio driver's start on) and init's
#     output must land in the file;
#  3. bad --console values fail before boot with one line naming them.
#
# usage: virtio-console.sh [BUILD_DIR]   (default: $LAB_BUILD_DIR or build)
set -euo pipefail

L2_TIMEOUT=300
TO_HOST_BYTES=$((256 * 1024))
TO_GUEST_BYTES=$((160 * 1024))

# ---------------------------------------------------------------- guest (L2)
guest_init() {
  cat <<'GUEST'
#!/bin/sh
case " $(cat /proc/cmdline) " in
  *" console=hvc0 "*)
    # /dev/console is hvc0 here: this line goes to the --console file.
    echo "LAB-GUEST-INIT" >/dev/ttyS0
    echo "LAB-HVC0-INIT: init's output on /dev/console"
    echo "LAB-GUEST-CONSOLE=$(cat /sys/class/tty/console/active 2>/dev/null)" >/dev/ttyS0
    echo "LAB-GUEST-POWEROFF" >/dev/ttyS0
    poweroff -f
    ;;
esac
echo "LAB-GUEST-INIT"
grep -i virtio /proc/interrupts | head -8
if [ ! -c /dev/hvc0 ]; then
  echo "GUEST-FAIL no /dev/hvc0"
  poweroff -f
fi
exec 3<>/dev/hvc0
# Raw: no echo, no newline translation, no signals; bytes pass unchanged.
stty raw -echo -iexten cs8 <&3 || echo "GUEST-FAIL stty on /dev/hvc0"
# Announce readiness until L1's client answers with its go byte: output
# while no client is connected is dropped by design, and the client sends
# nothing before this (Linux drops input that arrives while its driver is
# still registering the port).
i=0 go=""
while [ $i -lt 120 ] && [ "$go" != G ]; do
  printf 'LAB-READY\n' >&3
  go=$(timeout 1 head -c 1 <&3 2>/dev/null)
  i=$((i + 1))
done
[ "$go" = G ] || echo "GUEST-FAIL no go byte from L1 after $i tries"
printf 'LAB-PAYLOAD\n' >&3
cat /lab/to-host.bin >&3
echo "LAB-GUEST-SENT=$(sha256sum </lab/to-host.bin | cut -d' ' -f1) after $i ready lines"
# L1 may have answered more ready lines: its payload starts after LAB-BACK.
line=""
while [ "${line%LAB-BACK}" = "$line" ]; do
  IFS= read -r line <&3 || break
done
want=$(cat /lab/to-guest.size)
timeout 240 head -c "$want" <&3 >/tmp/got.bin
size=$(wc -c </tmp/got.bin)
sum=$(sha256sum </tmp/got.bin | cut -d' ' -f1)
if [ "$sum" = "$(cat /lab/to-guest.sha256)" ]; then
  echo "LAB-GUEST-RECEIVED-OK size=$size"
else
  echo "GUEST-FAIL received $size of $want bytes, sha256 $sum"
fi
exec 3<&-
echo "LAB-GUEST-POWEROFF"
poweroff -f
GUEST
}

# ------------------------------------------------------------------- L1 side
# The socket's client: connects as soon as vmm listens, answers the guest's
# LAB-READY lines with a go byte, takes the guest's payload (after its
# LAB-PAYLOAD line), sends its own (after LAB-BACK) and leaves. Every wait
# is bounded.
console_client() {
  local sock=$1 socat=$2 out=$3 back=$4 n=$5 log=$6 i line
  for ((i = 0; i < 600; i++)); do
    [[ -S $sock ]] && break
    sleep 0.1
  done
  [[ -S $sock ]] || {
    echo "CLIENT-FAIL no socket at $sock after 60 s" >>"$log"
    return 1
  }
  # shellcheck disable=SC2153 # CON_PID is set by coproc
  coproc CON { exec "$socat" - "UNIX-CONNECT:$sock"; }
  local con_pid=$CON_PID con_in=${CON[1]} con_out=${CON[0]} found=0
  # Answer each ready line with the go byte until the payload starts.
  while IFS= read -r -t 280 line <&"$con_out"; do
    case $line in
      LAB-READY) printf G >&"$con_in" ;;
      LAB-PAYLOAD)
        found=1
        break
        ;;
      *) echo "CLIENT-NOTE unexpected line '$line'" >>"$log" ;;
    esac
  done
  if ((!found)); then
    echo "CLIENT-FAIL no LAB-PAYLOAD line from the guest (last line '${line:-}')" >>"$log"
    kill "$con_pid" 2>/dev/null || true
    return 1
  fi
  timeout 240 head -c "$n" <&"$con_out" >"$out" || true
  echo "L1-RECEIVED=$(wc -c <"$out") $(sha256sum <"$out" | cut -d' ' -f1)" >>"$log"
  printf 'LAB-BACK\n' >&"$con_in"
  cat "$back" >&"$con_in"
  exec {con_in}>&-
  # socat ends once its input is done and the socket is quiet (its -t 0.5 s).
  for ((i = 0; i < 300; i++)); do
    kill -0 "$con_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$con_pid" 2>/dev/null || true
  echo "CLIENT-DONE" >>"$log"
}

l1_main() {
  local vmm=$1 work=/share rc
  . "$LAB_HELPERS"
  l1_require_kvm
  local socat=$work/socat/bin/socat sock=/tmp/con.sock

  echo "=== 1. --console socket=$sock: data both ways"
  : >"$work/client.log"
  console_client "$sock" "$socat" /tmp/from-guest.bin "$work/to-guest.bin" \
    "$(cat "$work/to-host.size")" "$work/client.log" &
  local client=$!
  l2_command "vmm:$vmm" "$LAB_GUEST_KERNEL_L1" "$work/guest.cpio.gz" "$L2_CMDLINE_DEFAULT" 1 512M
  L2_CMD+=(--console "socket=$sock")
  echo "=== ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"$work/l2-rc-socket"
  cp "$L2_LOG" "$work/l2-socket.log"
  wait "$client" || echo "CLIENT-EXIT=$?" >>"$work/client.log"
  [[ -e $sock ]] && echo "SOCKET-LEFT-BEHIND" >>"$work/client.log"

  echo "=== 2. console=hvc0 with --console file=/tmp/hvc0.log"
  l2_command "vmm:$vmm" "$LAB_GUEST_KERNEL_L1" "$work/guest.cpio.gz" "console=hvc0 panic=-1" 1 512M
  L2_CMD+=(--console "file=/tmp/hvc0.log")
  echo "=== ${L2_CMD[*]}"
  l2_run "$L2_TIMEOUT" "${L2_CMD[@]}"
  echo "$L2_RC" >"$work/l2-rc-file"
  cp "$L2_LOG" "$work/l2-file.log"
  cp /tmp/hvc0.log "$work/hvc0.log" 2>/dev/null || true
  echo "--- /tmp/hvc0.log: $(wc -l </tmp/hvc0.log) lines; first and last:"
  head -n 3 /tmp/hvc0.log
  tail -n 4 /tmp/hvc0.log

  echo "=== 3. bad --console values fail before boot"
  : >"$work/bad.log"
  touch /tmp/taken.sock
  for value in socket=/tmp/taken.sock socket=/no/such/dir/con.sock file=/no/such/dir/out.log; do
    rc=0
    timeout 60 "$vmm" run --kernel "$LAB_GUEST_KERNEL_L1" --serial none --console "$value" \
      >/tmp/bad.out 2>&1 || rc=$?
    echo "BAD $value rc=$rc lines=$(wc -l </tmp/bad.out) $(head -c 300 /tmp/bad.out)" >>"$work/bad.log"
  done
  cat "$work/bad.log"
}

# ----------------------------------------------------------------- host side
host_main() {
  . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  local build work
  build=$(lab_scenario_build_dir "${1:-}")
  lab_require_built "$build" vmm/vmm || return 1
  command -v socat >/dev/null || {
    echo "FAIL: socat is missing on the host (run scripts/setup.sh)" >&2
    return 1
  }
  lab_prepare
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-virtio-console.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
  lab_copy_binary "$(command -v socat)" "$work/socat" >/dev/null

  # The payloads: to-host.bin rides in the guest's initramfs, to-guest.bin
  # in the share (L1 sends it); each side gets the other's expectations.
  local extra=$work/extra
  mkdir -p "$extra/lab"
  head -c "$TO_HOST_BYTES" /dev/urandom >"$extra/lab/to-host.bin"
  head -c "$TO_GUEST_BYTES" /dev/urandom >"$work/to-guest.bin"
  sha256sum <"$work/to-guest.bin" | cut -d' ' -f1 >"$extra/lab/to-guest.sha256"
  echo "$TO_GUEST_BYTES" >"$extra/lab/to-guest.size"
  echo "$TO_HOST_BYTES" >"$work/to-host.size"
  local to_host_sum
  to_host_sum=$(sha256sum <"$extra/lab/to-host.bin" | cut -d' ' -f1)

  guest_init >"$work/init.sh"
  lab_guest_initramfs "$work/guest.cpio.gz" "$work/init.sh"
  lab_guest_append "$work/guest.cpio.gz" "$extra"

  local rc=0
  lab_run_l1 --share "$work" --timeout 900 -- "${BASH_SOURCE[0]}" /share/vmm/bin/vmm || rc=$?

  local log=$work/l2-socket.log client=$work/client.log hvc=$work/hvc0.log why=()
  ((rc == 0)) || why+=("the L1 script failed with $rc")
  local rc_socket rc_file
  rc_socket=$(cat "$work/l2-rc-socket" 2>/dev/null || echo missing)
  rc_file=$(cat "$work/l2-rc-file" 2>/dev/null || echo missing)
  [[ $rc_socket == 0 ]] || why+=("socket boot: vmm exited with '$rc_socket', expected 0")
  [[ $rc_file == 0 ]] || why+=("file boot: vmm exited with '$rc_file', expected 0")
  grep -q "LAB-GUEST-INIT" "$log" 2>/dev/null || why+=("socket boot: the guest never reached init")
  grep -q "GUEST-FAIL" "$log" 2>/dev/null && why+=("guest: $(grep -m3 GUEST-FAIL "$log" | tr '\n' ';')")
  grep -q "CLIENT-FAIL" "$client" 2>/dev/null && why+=("L1 client: $(grep -m2 CLIENT-FAIL "$client" | tr '\n' ';')")
  grep -q "listening on /tmp/con.sock" "$log" 2>/dev/null || why+=("vmm did not log its listening socket")
  grep -q "client connected on /tmp/con.sock" "$log" 2>/dev/null || why+=("vmm did not log the client's connection")
  # The guest's payload, as L1 received it.
  local got
  got=$(sed -n 's/^L1-RECEIVED=//p' "$client" 2>/dev/null | tail -n1)
  [[ $got == "$TO_HOST_BYTES $to_host_sum" ]] ||
    why+=("L1 received '${got:-nothing}' from the guest, expected '$TO_HOST_BYTES $to_host_sum'")
  grep -q "LAB-GUEST-RECEIVED-OK size=$TO_GUEST_BYTES" "$log" 2>/dev/null ||
    why+=("the guest did not verify L1's $TO_GUEST_BYTES-byte payload")
  grep -q "CLIENT-DONE" "$client" 2>/dev/null || why+=("the L1 client did not finish")
  grep -q "SOCKET-LEFT-BEHIND" "$client" 2>/dev/null && why+=("vmm left /tmp/con.sock behind")
  # console=hvc0 into the file.
  grep -q "LAB-GUEST-INIT" "$work/l2-file.log" 2>/dev/null || why+=("file boot: the guest never reached init")
  grep -q "LAB-GUEST-CONSOLE=hvc0" "$work/l2-file.log" 2>/dev/null ||
    why+=("file boot: the guest's active console is not hvc0")
  # Linux loses what it prints before its virtio_console driver has bound
  # port 0 (hvc registers the console, and replays the log into it, before the
  # driver can find the port; drivers/char/virtio_console.c), so the file
  # starts late in boot: these come after that.
  grep -aq "Freeing unused kernel" "$hvc" 2>/dev/null || why+=("file boot: no 'Freeing unused kernel' boot message in the --console file")
  grep -aq "Run /init as init process" "$hvc" 2>/dev/null || why+=("file boot: no 'Run /init' boot message in the --console file")
  grep -aq "LAB-HVC0-INIT" "$hvc" 2>/dev/null || why+=("file boot: init's /dev/console output is not in the --console file")
  # Bad values: exit 1, one line naming the path, before any boot.
  local value
  for value in "socket=/tmp/taken.sock:/tmp/taken.sock" "socket=/no/such/dir/con.sock:/no/such/dir" \
    "file=/no/such/dir/out.log:/no/such/dir"; do
    grep -q "^BAD ${value%%:*} rc=1 lines=1 .*${value#*:}" "$work/bad.log" 2>/dev/null ||
      why+=("--console ${value%%:*}: not one line naming ${value#*:} with exit 1 ($(grep "^BAD ${value%%:*} " "$work/bad.log" 2>/dev/null | head -c 200))")
  done
  if ((${#why[@]})); then
    echo "virtio-console: FAIL"
    printf 'virtio-console:   - %s\n' "${why[@]}"
    return 1
  fi
  local lines
  lines=$(wc -l <"$hvc")
  echo "virtio-console: ok (socket: guest->L1 $TO_HOST_BYTES B and L1->guest $TO_GUEST_BYTES B sha256 matched, client left cleanly; console=hvc0: $lines boot lines in the file; bad values rejected before boot)"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
