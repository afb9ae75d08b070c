// Writes split-virtqueue rings into guest memory the way a driver does, for
// unit tests and the fuzzers' corpus replay.
#pragma once

#include <cstring>

#include "devices/virtio/virtqueue.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio::testing {

class QueueBuilder {
  public:
    QueueBuilder(const vmm::GuestMemory& memory, QueueConfig config)
        : memory_(memory), config_(config) {}

    const QueueConfig& config() const { return config_; }

    void set_descriptor(std::uint16_t index, std::uint64_t address, std::uint32_t length,
                        std::uint16_t flags = 0, std::uint16_t next = 0) {
        memory_.write(config_.desc_table + 16ull * index, Descriptor{address, length, flags, next});
    }
    // An indirect table entry at `table` + 16 * index.
    void set_indirect(std::uint64_t table, std::uint16_t index, std::uint64_t address,
                      std::uint32_t length, std::uint16_t flags = 0, std::uint16_t next = 0) {
        memory_.write(table + 16ull * index, Descriptor{address, length, flags, next});
    }
    // Makes `head` available and advances the available index.
    void publish(std::uint16_t head) {
        const std::uint16_t idx = avail_idx();
        memory_.write<std::uint16_t>(config_.avail_ring + 4 + 2ull * (idx % config_.size), head);
        set_avail_idx(static_cast<std::uint16_t>(idx + 1));
    }
    std::uint16_t avail_idx() const { return memory_.read<std::uint16_t>(config_.avail_ring + 2); }
    void set_avail_idx(std::uint16_t idx) {
        memory_.write<std::uint16_t>(config_.avail_ring + 2, idx);
    }
    void set_avail_flags(std::uint16_t flags) {
        memory_.write<std::uint16_t>(config_.avail_ring, flags);
    }
    void set_used_event(std::uint16_t event) {
        memory_.write<std::uint16_t>(config_.avail_ring + 4 + 2ull * config_.size, event);
    }
    std::uint16_t used_idx() const { return memory_.read<std::uint16_t>(config_.used_ring + 2); }
    UsedElement used(std::uint16_t index) const {
        return memory_.read<UsedElement>(config_.used_ring + 4 + 8ull * (index % config_.size));
    }
    std::uint16_t avail_event() const {
        return memory_.read<std::uint16_t>(config_.used_ring + 4 + 8ull * config_.size);
    }

  private:
    const vmm::GuestMemory& memory_;
    QueueConfig config_;
};

// A conventional layout: rings in the first pages, buffers from 0x10000.
inline QueueConfig default_queue(std::uint16_t size = 16) {
    return QueueConfig{size, 0x1000, 0x3000, 0x4000};
}

}  // namespace devices::virtio::testing
