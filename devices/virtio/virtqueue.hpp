// A split virtqueue (virtio 1.2, 2.7) over guest memory. Everything the
// guest controls is validated here and nowhere else: ring addresses and
// alignment, the available index, descriptor indices, chain length (loops),
// indirect tables, buffer ranges (every buffer must be guest RAM) and the
// readable-before-writable order. A violation throws VirtqueueError; the
// transport turns that into NEEDS_RESET for this device only.
//
// The parser copies each descriptor out of guest memory exactly once and
// validates the copy, so a guest rewriting the ring concurrently cannot make
// it act on a value other than the one it checked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/error.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio {

class VirtqueueError : public base::Error {
  public:
    using base::Error::Error;
};

struct QueueConfig {
    std::uint16_t size = 0;
    std::uint64_t desc_table = 0;
    std::uint64_t avail_ring = 0;
    std::uint64_t used_ring = 0;
};

// One buffer of a chain: validated host view of guest RAM.
struct Buffer {
    std::uint64_t guest_address;
    std::span<std::uint8_t> bytes;
};

struct DescriptorChain {
    std::uint16_t head = 0;
    std::vector<Buffer> readable;  // device reads these (driver -> device)
    std::vector<Buffer> writable;  // device writes these (device -> driver)
    std::uint64_t readable_bytes = 0;
    std::uint64_t writable_bytes = 0;
};

class Virtqueue {
  public:
    // Longest indirect table accepted; Linux uses at most seg_max + 2.
    static constexpr std::uint32_t kMaxIndirectDescriptors = 1024;
    // Total bytes one chain may describe (the used length is 32 bits).
    static constexpr std::uint64_t kMaxChainBytes = 0xffff'ffff;

    // Throws VirtqueueError when the size is not a power of two in
    // [1, 32768] or a ring is misaligned or not entirely guest RAM.
    Virtqueue(const vmm::GuestMemory& memory, const QueueConfig& config, bool event_idx,
              bool indirect);

    std::uint16_t size() const { return size_; }

    // The next available chain, or nullopt when the driver has posted none.
    std::optional<DescriptorChain> pop();
    // Returns a chain to the driver with `written` bytes of device output.
    void push_used(std::uint16_t head, std::uint32_t written);
    // Returns several chains and publishes them with one used-index store, so
    // the driver never sees part of the group (virtio-net's merged receive
    // buffers are one packet: a driver that finds the first must find all).
    void push_used(std::span<const UsedElement> elements);
    // Whether the driver wants an interrupt for what was pushed since the
    // last call (EVENT_IDX or the NO_INTERRUPT flag).
    bool needs_interrupt();
    // With EVENT_IDX, asks the driver to kick on the next buffer; returns true
    // when buffers arrived meanwhile, so the caller must poll again.
    bool enable_notification();
    bool has_available() const;

    std::uint16_t next_avail() const { return next_avail_; }
    std::uint16_t next_used() const { return next_used_; }

  private:
    std::uint16_t read_avail_idx() const;
    Descriptor read_descriptor(std::span<const std::uint8_t> table, std::uint32_t index) const;
    void add_buffer(DescriptorChain& chain, const Descriptor& descriptor,
                    bool& seen_writable) const;
    void walk_indirect(DescriptorChain& chain, const Descriptor& descriptor,
                       bool& seen_writable) const;

    const vmm::GuestMemory& memory_;
    std::uint16_t size_;
    bool event_idx_;
    bool indirect_;
    std::span<std::uint8_t> desc_;
    std::span<std::uint8_t> avail_;
    std::span<std::uint8_t> used_;
    std::uint16_t next_avail_ = 0;
    std::uint16_t next_used_ = 0;
    std::uint16_t signalled_used_ = 0;  // next_used_ at the last needs_interrupt()
};

}  // namespace devices::virtio
