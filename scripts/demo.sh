#!/usr/bin/env bash
# The main job, end to end: install what is needed, build the project
# (Release, in build/), prepare the lab, boot L1 (a Linux 6.12 guest with
# real KVM, since this host has none) and inside it let our vmm boot Debian's
# stock cloud kernel with a busybox initramfs, 2 vCPUs and 512M. The guest's
# console is shown here: a banner, uname -a, nproc, MemTotal, then it powers
# off. Bounded: L1 is killed after DEMO_TIMEOUT seconds (default 900).
#
# usage: scripts/demo.sh
# LAB_L2_VMM=qemu boots the same guest with QEMU microvm instead (checks the
# lab independently of vmm). DEMO_CMDLINE overrides the guest command line
# (drop "quiet" to see the guest kernel's boot log; it is slower to print).
set -euo pipefail

DEMO_CPUS=2
DEMO_MEMORY=512M
DEMO_L2_TIMEOUT=300

# Inside L1: boot the guest with its console on ours.
l1_main() {
  local vmm=$1 initrd=$2 rc=0
  # shellcheck source=tests/lab/l1/helpers.sh
  . "$LAB_HELPERS"
  l1_require_kvm
  l2_command "$vmm" "$LAB_GUEST_KERNEL_L1" "$initrd" "${DEMO_CMDLINE:-$L2_CMDLINE_DEFAULT}" \
    "$DEMO_CPUS" "$DEMO_MEMORY"
  echo "demo: in L1, running: ${L2_CMD[*]}"
  timeout -k 10 "$DEMO_L2_TIMEOUT" "${L2_CMD[@]}" </dev/null || rc=$?
  if ((rc == 124)); then
    echo "demo: the guest did not power off within ${DEMO_L2_TIMEOUT}s"
  else
    echo "demo: ${vmm%%:*} exited with $rc"
  fi
  return "$rc"
}

host_main() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$root"
  bash scripts/setup.sh
  # Ninja, as scripts/test.sh uses for the same build dir; an existing build
  # dir keeps the generator it was made with (cmake refuses to switch).
  local -a generator=(-G Ninja)
  [[ -f build/CMakeCache.txt ]] && generator=()
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build build -j "$(nproc)" --target vmm

  . tests/lab/lib.sh
  lab_prepare
  local work vmm_spec
  work=$(mktemp -d "${TMPDIR:-/tmp}/lab-demo.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  if [[ ${LAB_L2_VMM:-vmm} == qemu ]]; then
    vmm_spec=qemu
  else
    lab_copy_binary build/vmm/vmm "$work/vmm" >/dev/null
    vmm_spec=vmm:/share/vmm/bin/vmm
  fi
  lab_guest_initramfs "$work/guest.cpio.gz" tests/lab/guest/report-init.sh
  # DEMO_CMDLINE reaches L1 as an argument: the L1 environment is fixed.
  lab_run_l1 --share "$work" --timeout "${DEMO_TIMEOUT:-900}" -- "${BASH_SOURCE[0]}" \
    "$vmm_spec" /share/guest.cpio.gz "${DEMO_CMDLINE:-}"
}

if [[ ${LAB_IN_L1:-} == 1 ]]; then
  [[ -n ${3:-} ]] && DEMO_CMDLINE=$3
  l1_main "$1" "$2"
else
  host_main "$@"
fi
