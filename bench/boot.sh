#!/usr/bin/env bash
# Boot benchmark: our vmm against QEMU microvm, both on L1's real KVM in ONE
# L1 run, booting Debian's stock cloud kernel with the lab's busybox
# initramfs (2 vCPUs, 512M), N times each, interleaved (vmm, qemu, vmm, ...)
# so that a busy host slows both alike. A benchmark, not a test: run-all.sh
# does not run it.
#
# Measured per boot, inside L1:
#   init   time from starting the VMM process to the guest's first init line
#          (LAB-GUEST-INIT on the console, timestamped as it arrives)
#   total  time from start to the VMM's exit after the guest powered off
#   uptime the guest kernel's own uptime when init ran
#   RSS    the VMM's peak RSS (VmHWM), sampled at every console line up to the
#          guest's last line before power-off, split into the VMM's own
#          memory and the guest RAM it holds
#          (both VMMs back guest RAM with a shared memfd; l1_sample_memory)
# Prints a table, medians and the ratios vmm/qemu.
#
# usage: bench/boot.sh [N] [BUILD_DIR]      (N default 3; BUILD_DIR default build)
# Without a built vmm it benchmarks QEMU alone and says so.
# Absolute times under nested TCG depend on host load: compare within a run.
set -euo pipefail

BENCH_CPUS=2
BENCH_MEMORY=512M
BENCH_L2_TIMEOUT=300

l1_main() {
  local n=$1 has_vmm=$2 i v
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  # Run both VMMs, the kernel and the initramfs from L1's RAM, not over 9p, so
  # that neither pays for file transfer from the host.
  local b=/tmp/bench
  l1_bench_stage "$b" "$has_vmm"
  local -a vmms=(qemu)
  ((has_vmm)) && vmms=("vmm:$b/vmm/bin/vmm" qemu)
  local mem_mb=${BENCH_MEMORY%M}
  local -A init=() total=() rss=() own=() guest=()
  local rows=() failed=0
  for ((i = 1; i <= n; i++)); do
    for v in "${vmms[@]}"; do
      local name=${v%%:*}
      l2_command "$v" "$b/vmlinuz" "$b/initrd" "$L2_CMDLINE_DEFAULT" "$BENCH_CPUS" "$BENCH_MEMORY"
      L2_SAMPLE_MEMORY=1 l2_run "$BENCH_L2_TIMEOUT" "${L2_CMD[@]}" >"$b/console.log" 2>&1
      if ((L2_RC != 0)) || [[ -z $L2_INIT_MS ]]; then
        echo "bench: $name run $i FAILED (exit $L2_RC); its console:"
        tail -n 30 "$b/console.log"
        failed=1
        continue
      fi
      init[$name]+=" $L2_INIT_MS" total[$name]+=" $L2_TOTAL_MS" rss[$name]+=" $L2_HWM_KB"
      own[$name]+=" $L2_OWN_KB" guest[$name]+=" $L2_GUEST_KB"
      rows+=("$(printf '%-5s %3d %9s %9s %10s %8d %8d %9d %9d' "$name" "$i" "$(l1_ms_to_s "$L2_INIT_MS")" \
        "$(l1_ms_to_s "$L2_TOTAL_MS")" "${L2_GUEST_UPTIME:--}" $((L2_HWM_KB / 1024)) \
        $((L2_OWN_KB / 1024)) $((L2_GUEST_KB / 1024)) "$mem_mb")")
    done
  done
  echo
  echo "boot benchmark: Debian $(basename "$LAB_GUEST_KERNEL_L1"), busybox initramfs, $BENCH_CPUS vCPUs, $BENCH_MEMORY, in L1 on nested KVM"
  printf '%-5s %3s %9s %9s %10s %8s %8s %9s %9s\n' VMM run "init(s)" "total(s)" "uptime(s)" \
    "RSS(MB)" "own(MB)" "guest(MB)" "RAM(MB)"
  printf '%s\n' "${rows[@]}"
  echo
  echo "medians:"
  local -A m_init=() m_total=() m_rss=() m_own=() m_guest=()
  for v in "${vmms[@]}"; do
    local name=${v%%:*}
    # shellcheck disable=SC2086 # word lists
    m_init[$name]=$(l1_median ${init[$name]:-}) m_total[$name]=$(l1_median ${total[$name]:-}) m_rss[$name]=$(l1_median ${rss[$name]:-})
    # shellcheck disable=SC2086 # word lists
    m_own[$name]=$(l1_median ${own[$name]:-}) m_guest[$name]=$(l1_median ${guest[$name]:-})
    printf '  %-5s init %ss  total %ss  peak RSS %s MB = own %s MB + guest RAM touched %s MB (of %s MB)\n' \
      "$name" "$(l1_ms_to_s "${m_init[$name]}")" "$(l1_ms_to_s "${m_total[$name]}")" \
      "$(( ${m_rss[$name]:-0} / 1024 ))" "$(( ${m_own[$name]:-0} / 1024 ))" \
      "$(( ${m_guest[$name]:-0} / 1024 ))" "$mem_mb"
  done
  if ((has_vmm)); then
    echo "ratios vmm/qemu: init $(l1_ratio "${m_init[vmm]:-}" "${m_init[qemu]:-}")" \
      " total $(l1_ratio "${m_total[vmm]:-}" "${m_total[qemu]:-}")" \
      " peak RSS $(l1_ratio "${m_rss[vmm]:-}" "${m_rss[qemu]:-}")" \
      " own memory $(l1_ratio "${m_own[vmm]:-}" "${m_own[qemu]:-}")"
  else
    echo "ratios vmm/qemu: - (vmm not built)"
  fi
  return "$failed"
}

host_main() {
  local n=${1:-3} root build
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  build=$(realpath -m "${2:-$root/build}")
  [[ $n =~ ^[1-9][0-9]*$ ]] || {
    echo "usage: bench/boot.sh [N] [BUILD_DIR]" >&2
    return 2
  }
  . "$root/tests/lab/lib.sh"
  lab_prepare
  local work has_vmm=0
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-bench.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  if [[ -x $build/vmm/vmm ]]; then
    lab_copy_binary "$build/vmm/vmm" "$work/vmm" >/dev/null
    has_vmm=1
  else
    echo "bench: $build/vmm/vmm is not built: measuring QEMU microvm only" >&2
  fi
  lab_guest_initramfs "$work/guest.cpio.gz" "$root/tests/lab/guest/report-init.sh"
  # Each boot is bounded by BENCH_L2_TIMEOUT; L1 by all of them plus its own boot.
  lab_run_l1 --share "$work" --timeout $((n * 2 * BENCH_L2_TIMEOUT + 300)) -- \
    "${BASH_SOURCE[0]}" "$n" "$has_vmm"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  l1_main "$@"
else
  host_main "$@"
fi
