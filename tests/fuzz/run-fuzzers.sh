#!/usr/bin/env bash
# Builds the libFuzzer targets with clang++ (ASan + UBSan + coverage over
# the parser sources themselves) and runs each for FUZZ_TIME seconds
# (default 10; e.g. FUZZ_TIME=600 for a long run). New interesting inputs
# are kept in OUT_DIR/corpus-<target>; a crash fails the script and leaves
# crash-* files in OUT_DIR.
#
# usage: tests/fuzz/run-fuzzers.sh [OUT_DIR]   (default: build-fuzz)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$root/build-fuzz}")
time=${FUZZ_TIME:-10}
cxx=$(command -v clang++ || command -v clang++-14 || true)
[[ -n $cxx ]] || { echo "run-fuzzers: clang++ is not installed (apt-get install clang)" >&2; exit 1; }
mkdir -p "$out"

# The code under test, compiled into each fuzzer so that it is instrumented.
common=(devices/virtio/virtqueue.cpp vmm/guest_memory.cpp)
declare -A sources=(
  [virtqueue_fuzz]="tests/fuzz/virtqueue_fuzz.cpp devices/virtio/rng/virtio_rng.cpp"
  [blk_request_fuzz]="tests/fuzz/blk_request_fuzz.cpp devices/virtio/blk/block_request.cpp"
  [net_fuzz]="tests/fuzz/net_fuzz.cpp devices/virtio/net/net_frame.cpp"
  [console_fuzz]="tests/fuzz/console_fuzz.cpp devices/virtio/console/virtio_console.cpp
    devices/virtio/console/buffer_iovecs.cpp vmm/log.cpp"
  [virtio_pci_fuzz]="tests/fuzz/virtio_pci_fuzz.cpp devices/virtio/virtio_pci_device.cpp
    devices/virtio/device_worker.cpp devices/virtio/rng/virtio_rng.cpp
    devices/virtio/blk/virtio_blk.cpp devices/virtio/blk/block_request.cpp
    devices/pci/msix.cpp devices/pci/msi_router.cpp devices/pci/pci_config_space.cpp vmm/log.cpp"
  [vfio_fuzz]="tests/fuzz/vfio_fuzz.cpp devices/vfio/vfio_pci_device.cpp
    devices/vfio/vfio_config_space.cpp devices/vfio/vfio_interrupts.cpp devices/vfio/intx_route.cpp
    devices/vfio/bar_layout.cpp devices/pci/msix.cpp devices/pci/msi_router.cpp
    devices/pci/pci_config_space.cpp vmm/log.cpp"
)
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -I"$root")
status=0
for target in virtqueue_fuzz blk_request_fuzz net_fuzz console_fuzz virtio_pci_fuzz vfio_fuzz; do
  bin=$out/$target
  # shellcheck disable=SC2206
  srcs=(${sources[$target]} "${common[@]}")
  (cd "$root" && "$cxx" "${flags[@]}" "${srcs[@]}" -lfmt -pthread -o "$bin")
  corpus=$out/corpus-$target
  mkdir -p "$corpus"
  [[ -d $root/tests/fuzz/corpus/$target ]] && cp -n "$root/tests/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  echo "run-fuzzers: $target for ${time}s"
  if ! (cd "$out" && "$bin" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" 2>"$out/$target.log"); then
    echo "run-fuzzers: $target FAILED; see $out/$target.log" >&2
    tail -40 "$out/$target.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/$target.log" | sed "s/^/run-fuzzers: $target /"
  fi
done
exit "$status"
