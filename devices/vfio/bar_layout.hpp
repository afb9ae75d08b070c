// How one BAR of a passthrough function reaches the device: which pages the
// guest gets as a KVM memory slot over the BAR's mmap (no exit at all) and
// which are trapped (an exit to the VMM, then MSI-X emulation or pread/
// pwrite through VFIO). The MSI-X table and PBA must trap: the guest
// programs our vectors there, not the device's. A slot covers whole pages,
// so the pages holding them trap entirely, other registers on those pages
// included.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace devices::vfio {

struct ByteRange {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;

    friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct BarSegment {
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    bool mapped = false;  // a memory slot over the mmap; else trapped

    friend bool operator==(const BarSegment&, const BarSegment&) = default;
};

// The BAR's segments, in order, covering [0, bar_size) exactly. Nothing is
// mapped unless the region is mappable and at least a page long (a slot
// must be page aligned in guest and host, and a smaller BAR's guest address
// need not be); `trapped` ranges (relative to the BAR, clipped to it) are
// rounded out to pages. `page_size` is a power of two.
std::vector<BarSegment> plan_bar_segments(std::uint64_t bar_size, bool mappable,
                                          std::span<const ByteRange> trapped,
                                          std::uint64_t page_size);

}  // namespace devices::vfio
