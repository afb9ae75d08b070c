# shellcheck shell=bash
# shellcheck disable=SC2034 # L2_* results are read by the scripts that source this
# Helpers for scripts running inside L1 (bash). lab_run_l1 copies this file
# to /lab/helpers.sh and exports LAB_HELPERS=/lab/helpers.sh; source it with
#   . "$LAB_HELPERS"
#
# The L2 guest initramfs from tests/lab/guest/report-init.sh prints marker
# lines that l2_run parses:
#   LAB-GUEST-INIT               first line of guest userspace
#   LAB-GUEST-NPROC=<n>          CPUs the guest sees
#   LAB-GUEST-MEMTOTAL-KB=<n>    MemTotal from /proc/meminfo
#   LAB-GUEST-UPTIME=<s>         guest uptime when init ran
#   LAB-GUEST-POWEROFF           last line before `poweroff -f`
#   LAB-GUEST-MARK=<name>        a point of a guest's own (a benchmark's
#                                "device ready"): l2_run times it

# Guest kernel command line used by every lab L2 boot.
L2_CMDLINE_DEFAULT="console=ttyS0 quiet panic=-1"

l1_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

l1_require_kvm() {
  [[ -c /dev/kvm ]] || l1_fail "no /dev/kvm in L1 (kvm_amd did not load?)"
}

# Puts the library directories of a lab_copy_binary DESTDIR on
# LD_LIBRARY_PATH, so that programs started directly by path (a test that
# spawns build/vmm/vmm, say) find the libraries L1 lacks. L1's own ld.so and
# glibc come from the same host as the copies.
l1_export_libs() {
  local d dirs=""
  for d in "$1"/lib/x86_64-linux-gnu "$1"/usr/lib/x86_64-linux-gnu "$1"/lib64 "$1"/usr/lib64; do
    [[ -d $d ]] && dirs+="$d:"
  done
  export LD_LIBRARY_PATH="${dirs%:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

# Microseconds since the epoch, without forking (bash 5 EPOCHREALTIME).
l1_now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s' "$t"
}

# Sets the array L2_CMD to a command line that boots KERNEL with INITRD,
# CMDLINE, CPUS and MEM (e.g. 512M) under VMM, which is "vmm:PATH" (our
# vmm binary or wrapper) or "qemu" (QEMU microvm from the lab's bundle).
l2_command() {
  local vmm=$1 kernel=$2 initrd=$3 cmdline=$4 cpus=$5 mem=$6
  case $vmm in
    vmm:*)
      L2_CMD=("${vmm#vmm:}" run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline"
        --cpus "$cpus" --memory "$mem" --serial stdio)
      ;;
    qemu)
      # -nodefaults: no default NIC or other devices our vmm lacks either.
      # Guest RAM on a shared memfd, as ours is (what passthrough needs), so
      # that l2_run splits guest RAM from the VMM's own memory alike in both.
      L2_CMD=("$LAB_QEMU_L1" -L "$LAB_QEMU_DATADIR_L1/qemu" -L "$LAB_QEMU_DATADIR_L1/seabios"
        -M microvm,acpi=on,memory-backend=l2ram -enable-kvm -cpu host -m "$mem" -smp "$cpus"
        -object "memory-backend-memfd,id=l2ram,size=$mem,share=on"
        -nodefaults -no-user-config -nographic -serial stdio -no-reboot
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline")
      ;;
    *)
      echo "l2_command: unknown VMM '$vmm' (want vmm:PATH or qemu)" >&2
      return 2
      ;;
  esac
}

# Prints each thread of process $1 with its state and kernel stack: where a
# hung VMM waits (a vCPU in KVM_RUN, a thread blocked on a lock, ...).
l1_dump_threads() {
  local t comm state
  for t in /proc/"$1"/task/*; do
    [[ -d $t ]] || continue
    read -r comm <"$t/comm" || comm='?'
    state=$(awk '/^State:/ { print $2 $3 }' "$t/status" 2>/dev/null)
    echo "  thread ${t##*/} ($comm) $state"
    sed 's/^/      /' "$t/stack" 2>/dev/null | head -n 12
  done
}

# l1_trace_kvm_exits PID : what a hung VMM's vCPUs are doing, for the log
# of a timeout: each thread's user/system CPU ticks, then one second of
# KVM's exits and injected interrupts for those threads (a guest spinning in
# the guest, one exiting in a loop, and one never entered look different).
# Diagnostics only: the verdict is already the timeout's.
l1_trace_kvm_exits() {
  local t trace=/sys/kernel/tracing
  for t in /proc/"$1"/task/*; do
    [[ -r $t/stat ]] || continue
    awk -v tid="${t##*/}" '{ print "  thread " tid ": utime=" $14 " stime=" $15 " ticks" }' "$t/stat" 2>/dev/null
  done
  mount -t tracefs nodev "$trace" 2>/dev/null || true
  [[ -w $trace/set_event_pid ]] || return 0
  ls /proc/"$1"/task >"$trace/set_event_pid" 2>/dev/null || return 0
  # A scenario may have its own tracing set up (boot-stock-linux filters
  # kvm_exit): put every event's enable and filter back afterwards.
  local e d
  local -A was_enabled=() was_filter=()
  for e in kvm/kvm_exit kvm/kvm_inj_virq kvm/kvm_apic_accept_irq kvm/kvm_nested_vmexit; do
    d=$trace/events/$e
    [[ -w $d/enable ]] || continue
    was_enabled[$e]=$(<"$d/enable") was_filter[$e]=$(<"$d/filter")
    echo 0 >"$d/filter"
    echo 1 >"$d/enable"
  done
  : >"$trace/trace"
  echo "  one second of KVM events for its threads:"
  timeout 1 cat "$trace/trace_pipe" 2>/dev/null | head -n 60 | sed 's/^/    /' || true
  for e in "${!was_enabled[@]}"; do
    d=$trace/events/$e
    echo "${was_enabled[$e]}" >"$d/enable"
    [[ ${was_filter[$e]} == none ]] || echo "${was_filter[$e]}" >"$d/filter"
  done
  : >"$trace/set_event_pid"
  return 0
}

# l1_trace_guest_failures_start : from now on, records every guest shutdown
# (SVM exit 0x7f: a triple fault, whose registers KVM on AMD resets before
# the VMM sees the exit, so this record is the only one of the guest RIP)
# and every exception KVM injects; l2_run prints them when its VMM reports
# a guest failure. Diagnostics only. No-op without tracefs.
l1_trace_guest_failures_start() {
  local trace=/sys/kernel/tracing
  mount -t tracefs nodev "$trace" 2>/dev/null || true
  [[ -w $trace/events/kvm/kvm_exit/filter && -w $trace/trace ]] || return 0
  {
    echo 'exit_reason==127' >"$trace/events/kvm/kvm_exit/filter"
    echo 1 >"$trace/events/kvm/kvm_exit/enable"
    echo 1 >"$trace/events/kvm/kvm_inj_exception/enable"
    : >"$trace/trace"
  } 2>/dev/null || true
}

l1_trace_guest_failures_show() {
  echo "l2_run: the VMM reported a guest failure (exit 2); KVM's guest shutdowns and injected exceptions:"
  tail -n 40 /sys/kernel/tracing/trace 2>/dev/null | grep -v '^#' | sed 's/^/  /' || true
}

# l1_sample_memory PID : raises L2_OWN_KB to the VMM's own resident memory
# and L2_GUEST_KB to its resident guest RAM, if larger. Guest RAM is the Rss
# of the process's memfd mappings (both VMMs back it with a shared memfd);
# the rest of its Rss is the VMM's own. (RssShmem would not do: binaries
# staged on L1's tmpfs count as shmem too.)
l1_sample_memory() {
  local own guest
  read -r own guest < <(awk '
    /^[0-9a-f]+-[0-9a-f]+ / { memfd = ($6 ~ /^\/memfd:/) }
    /^Rss:/ { if (memfd) guest += $2; else own += $2 }
    END { print own + 0, guest + 0 }' "/proc/$1/smaps" 2>/dev/null) || return 0
  ((${own:-0} > L2_OWN_KB)) && L2_OWN_KB=$own
  ((${guest:-0} > L2_GUEST_KB)) && L2_GUEST_KB=$guest
  return 0
}

# l2_run TIMEOUT_SEC CMD... : runs an L2 VMM, streams its console to stdout
# (prefixed "L2| "), and sets:
#   L2_PID          the VMM's process id (set before the first console line)
#   L2_RC           the VMM's exit code (124 when it was killed on timeout)
#   L2_INIT_MS      ms from process start to the LAB-GUEST-INIT line ("" if never)
#   L2_TOTAL_MS     ms from process start to its exit
#   L2_HWM_KB       the VMM's VmHWM (peak RSS) at its last console line
#   L2_OWN_KB, L2_GUEST_KB  with L2_SAMPLE_MEMORY=1 (benchmarks: it forks
#                   per line), see l1_sample_memory; else 0
#   L2_NPROC, L2_MEMTOTAL_KB, L2_GUEST_UPTIME  from the guest's markers
#   L2_MARK_MS      associative: NAME -> ms from process start to the first
#                   LAB-GUEST-MARK=NAME line (empty when the guest printed none)
#   L2_LOG          file with the whole console output
# With L2_ON_LINE_PATTERN (a glob) and L2_ON_LINE_CMD set, the first console
# line matching the pattern starts `eval "$L2_ON_LINE_CMD"` in the
# background (it sees L2_PID), so that L1 can act while the guest is at a
# known point without sleeping; l2_run waits for it before returning and
# sets L2_ON_LINE_RC (empty when it never started). The command must bound
# itself.
# The deadline is enforced by `read -t` on the console, so nothing sleeps and a
# silent, hung VMM is killed when the time is up.
l2_run() {
  local limit=$1
  shift
  L2_RC=0 L2_INIT_MS="" L2_TOTAL_MS="" L2_HWM_KB="" L2_OWN_KB=0 L2_GUEST_KB=0
  L2_NPROC="" L2_MEMTOTAL_KB="" L2_GUEST_UPTIME=""
  declare -gA L2_MARK_MS=()
  L2_LOG=$(mktemp /tmp/l2-console.XXXXXX)
  local fifo
  fifo=$(mktemp -u /tmp/l2-fifo.XXXXXX)
  mkfifo "$fifo"
  local t0 deadline pid line now left k v mark timed_out=0
  l1_trace_guest_failures_start
  t0=$(l1_now_us)
  deadline=$((t0 + limit * 1000000))
  "$@" </dev/null >"$fifo" 2>&1 &
  pid=$!
  L2_PID=$pid L2_ON_LINE_RC=""
  local on_line_pid=""
  exec {L2_FD}<"$fifo"
  while :; do
    now=$(l1_now_us)
    left=$(((deadline - now) / 1000))
    if ((left <= 0)); then
      timed_out=1
      break
    fi
    if IFS= read -r -t "$((left / 1000)).$(printf '%03d' $((left % 1000)))" -u "$L2_FD" line; then
      :
    else
      local st=$?
      if ((st > 128)); then
        timed_out=1
        break
      fi
      # EOF; keep a last line that had no newline.
      [[ -z $line ]] && break
    fi
    line=${line%$'\r'}
    printf 'L2| %s\n' "$line"
    printf '%s\n' "$line" >>"$L2_LOG"
    # shellcheck disable=SC2053 # the pattern is a glob on purpose
    if [[ -n ${L2_ON_LINE_PATTERN:-} && -z $on_line_pid && $line == $L2_ON_LINE_PATTERN ]]; then
      eval "$L2_ON_LINE_CMD" &
      on_line_pid=$!
    fi
    # VmHWM only grows, so the last sample is the peak up to guest power-off.
    if [[ -r /proc/$pid/status ]]; then
      while read -r k v _; do
        [[ $k == VmHWM: ]] && L2_HWM_KB=$v
      done <"/proc/$pid/status" 2>/dev/null || true
      if ((${L2_SAMPLE_MEMORY:-0})); then l1_sample_memory "$pid"; fi
    fi
    case $line in
      *LAB-GUEST-INIT*) [[ -n $L2_INIT_MS ]] || L2_INIT_MS=$((($(l1_now_us) - t0) / 1000)) ;;
      *LAB-GUEST-NPROC=*) L2_NPROC=${line##*LAB-GUEST-NPROC=} ;;
      *LAB-GUEST-MEMTOTAL-KB=*) L2_MEMTOTAL_KB=${line##*LAB-GUEST-MEMTOTAL-KB=} ;;
      *LAB-GUEST-UPTIME=*) L2_GUEST_UPTIME=${line##*LAB-GUEST-UPTIME=} ;;
      *LAB-GUEST-MARK=*)
        mark=${line##*LAB-GUEST-MARK=} mark=${mark%%[[:space:]]*}
        [[ -z $mark || -n ${L2_MARK_MS[$mark]:-} ]] || L2_MARK_MS[$mark]=$((($(l1_now_us) - t0) / 1000))
        ;;
    esac
  done
  if ((timed_out)); then
    echo "l2_run: TIMEOUT after ${limit}s: killing the VMM (pid $pid); its threads were:" >&2
    l1_dump_threads "$pid" >&2
    l1_trace_kvm_exits "$pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  exec {L2_FD}<&-
  wait "$pid" || L2_RC=$?
  if [[ -n $on_line_pid ]]; then
    L2_ON_LINE_RC=0
    wait "$on_line_pid" || L2_ON_LINE_RC=$?
  fi
  ((timed_out)) && L2_RC=124
  ((L2_RC == 2)) && l1_trace_guest_failures_show
  L2_TOTAL_MS=$((($(l1_now_us) - t0) / 1000))
  rm -f "$fifo"
  # Trim what a guest might print around the values (spaces, \r).
  L2_NPROC=${L2_NPROC//[!0-9]/}
  L2_MEMTOTAL_KB=${L2_MEMTOTAL_KB//[!0-9]/}
  return 0
}

# l1_find_pci_class CLASS : prints the address of the first PCI function of
# class CLASS (sysfs spelling, e.g. 0x010802 for NVMe); nothing if none.
l1_find_pci_class() {
  local d
  for d in /sys/bus/pci/devices/*; do
    [[ $(cat "$d/class" 2>/dev/null) == "$1" ]] && { basename "$d"; return 0; }
  done
  return 0
}

# l1_bind_vfio_pci BDF : hands PCI function BDF to vfio-pci (unbinding its
# driver first, driver_override + drivers_probe) and prints its VFIO cdev
# (/dev/vfio/devices/vfioN). Fails with a message when it does not bind or
# has no cdev.
l1_bind_vfio_pci() {
  local bdf=$1 dev=/sys/bus/pci/devices/$1 entry cdev=""
  if [[ -e $dev/driver ]]; then
    echo "$bdf" >"$dev/driver/unbind"
  fi
  echo vfio-pci >"$dev/driver_override"
  echo "$bdf" >/sys/bus/pci/drivers_probe
  [[ $(basename "$(readlink "$dev/driver")") == vfio-pci ]] || {
    echo "FAIL: $bdf did not bind to vfio-pci" >&2
    return 1
  }
  for entry in "$dev"/vfio-dev/vfio*; do [[ -e $entry ]] && cdev=$(basename "$entry") && break; done
  [[ -n $cdev && -c /dev/vfio/devices/$cdev ]] || {
    echo "FAIL: $bdf has no VFIO cdev (CONFIG_VFIO_DEVICE_CDEV?)" >&2
    return 1
  }
  echo "/dev/vfio/devices/$cdev"
}

# Converts a size such as 256M, 4G, 512 (MiB) into KiB.
l1_size_kb() {
  local s=$1 n=${1%[KkMmGg]}
  case $s in
    *[Kk]) echo "$n" ;;
    *[Gg]) echo $((n * 1024 * 1024)) ;;
    *) echo $((n * 1024)) ;;
  esac
}

# Prints seconds with milliseconds from a millisecond count.
l1_ms_to_s() {
  [[ -n $1 ]] || {
    echo "-"
    return
  }
  printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# l1_gtest_counts LOG : sets GTEST_PASSED, GTEST_SKIPPED and GTEST_FAILED from
# a gtest run's summary lines (PASSED is empty when the run printed none, i.e.
# it crashed or was killed).
l1_gtest_counts() {
  GTEST_PASSED=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) tests?\..*/\1/p' "$1" | tail -n1)
  GTEST_SKIPPED=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) tests?,.*/\1/p' "$1" | tail -n1)
  GTEST_FAILED=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) tests?,.*/\1/p' "$1" | tail -n1)
  GTEST_SKIPPED=${GTEST_SKIPPED:-0} GTEST_FAILED=${GTEST_FAILED:-0}
}

# l1_median NUMBER... : the median of the numbers given (decimals allowed;
# blank when there are none), for the benchmarks.
l1_median() {
  local -a v
  mapfile -t v < <(printf '%s\n' "$@" | grep -E '^[0-9]+(\.[0-9]+)?$' | sort -g)
  ((${#v[@]})) || return 0
  echo "${v[$((${#v[@]} / 2))]}"
}

# l1_ratio A B : A/B with two decimals, "-" when either is missing or B is 0.
l1_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f\n", a / b }'
}

# l1_bench_stage DIR HAS_VMM : copies what a benchmark boots into L1's RAM
# (DIR on tmpfs) so that neither VMM pays for 9p: QEMU's bundle (and points
# LAB_QEMU_L1/LAB_QEMU_DATADIR_L1 at the copy), /share/vmm when HAS_VMM is 1,
# the guest kernel (DIR/vmlinuz) and /share/guest.cpio.gz (DIR/initrd).
l1_bench_stage() {
  local dir=$1 has_vmm=$2
  mkdir -p "$dir"
  cp -r "$(dirname "$(dirname "$LAB_QEMU_L1")")" "$dir/qemu"
  LAB_QEMU_L1=$dir/qemu/bin/qemu-system-x86_64 LAB_QEMU_DATADIR_L1=$dir/qemu/share
  ((has_vmm)) && cp -r /share/vmm "$dir/vmm"
  cp "$LAB_GUEST_KERNEL_L1" "$dir/vmlinuz"
  cp /share/guest.cpio.gz "$dir/initrd"
}
