// A hypervisor memory slot owned like a file descriptor: added on
// construction, removed exactly once on destruction, movable, never copied.
// The host memory it maps and the hypervisor must outlive it (declare both
// before it).
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "devices/pci/hypervisor.hpp"
#include "vmm/log.hpp"

namespace devices::pci {

class MemorySlot {
  public:
    MemorySlot() noexcept = default;
    // Throws what Hypervisor::add_memory_slot throws.
    MemorySlot(Hypervisor& hypervisor, std::uint64_t gpa, std::span<std::uint8_t> host,
               bool read_only)
        : hypervisor_(&hypervisor),
          slot_(hypervisor.add_memory_slot(gpa, host, read_only)),
          gpa_(gpa),
          size_(host.size()) {}
    MemorySlot(MemorySlot&& other) noexcept
        : hypervisor_(std::exchange(other.hypervisor_, nullptr)),
          slot_(other.slot_),
          gpa_(other.gpa_),
          size_(other.size_) {}
    MemorySlot& operator=(MemorySlot&& other) noexcept {
        if (this != &other) {
            reset();
            hypervisor_ = std::exchange(other.hypervisor_, nullptr);
            slot_ = other.slot_;
            gpa_ = other.gpa_;
            size_ = other.size_;
        }
        return *this;
    }
    MemorySlot(const MemorySlot&) = delete;
    MemorySlot& operator=(const MemorySlot&) = delete;
    ~MemorySlot() { reset(); }

    bool active() const noexcept { return hypervisor_ != nullptr; }
    std::uint64_t gpa() const noexcept { return gpa_; }
    std::uint64_t size() const noexcept { return size_; }

    // Removes the slot now. A refusal is logged, not thrown: it runs from
    // destructors and BAR moves, and the next VM teardown removes it anyway.
    void reset() noexcept {
        if (hypervisor_ == nullptr) return;
        try {
            hypervisor_->remove_memory_slot(slot_);
        } catch (const std::exception& error) {
            vmm::log::warn("removing the memory slot at {:#x} (+{:#x}): {}", gpa_, size_,
                           error.what());
        }
        hypervisor_ = nullptr;
    }

  private:
    Hypervisor* hypervisor_ = nullptr;
    std::uint32_t slot_ = 0;
    std::uint64_t gpa_ = 0;
    std::uint64_t size_ = 0;
};

}  // namespace devices::pci
