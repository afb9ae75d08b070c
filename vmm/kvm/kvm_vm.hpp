// A KVM virtual machine fd: memory slots, the in-kernel irqchip and PIT,
// interrupt lines, irqfds and ioeventfds.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/unique_fd.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/kvm/kvm_system.hpp"

namespace vmm::kvm {

class KvmVm {
  public:
    // KVM_CREATE_VM, then the x86 fixed addresses KVM needs (TSS, identity map).
    static KvmVm create(const KvmSystem& system);

    int fd() const { return fd_.get(); }

    // Registers every region of `memory` as a KVM memory slot.
    void map_guest_memory(const GuestMemory& memory);
    // One more slot: guest accesses to [gpa, gpa + host.size()) reach `host`
    // without an exit (a passthrough BAR's mmap). `host` must stay mapped
    // until remove_memory_slot(). Returns the slot number. Throws
    // base::SystemError when KVM refuses (EEXIST: the range overlaps RAM or
    // another slot). Thread-safe, as is remove_memory_slot.
    std::uint32_t add_memory_slot(std::uint64_t gpa, std::span<std::uint8_t> host,
                                  bool read_only) const;
    void remove_memory_slot(std::uint32_t slot) const;
    // In-kernel PIC + IOAPIC + LAPICs, and the PIT (i8254) with a dummy speaker.
    void create_irqchip_and_pit();

    // KVM_IRQ_LINE: drive an IOAPIC/PIC input (GSI) to `level`. Thread-safe.
    void set_irq_line(std::uint32_t gsi, bool level) const;

    // KVM_IRQFD: raising `eventfd` injects `gsi` (edge).
    void assign_irqfd(int eventfd, std::uint32_t gsi) const;
    void deassign_irqfd(int eventfd, std::uint32_t gsi) const;
    // KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE: raising `eventfd` asserts the
    // level of `gsi` (an IOAPIC pin); when the guest EOIs it KVM lowers the
    // line and raises `resample_fd`, so that the source can re-assert it if
    // it is still pending. Removed with deassign_irqfd(eventfd, gsi), which
    // also lowers the line.
    void assign_resample_irqfd(int eventfd, int resample_fd, std::uint32_t gsi) const;

    // KVM_IOEVENTFD: a guest write to `address` signals `eventfd` without an exit.
    void assign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length, bool pio,
                          std::optional<std::uint64_t> datamatch = std::nullopt) const;
    void deassign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length, bool pio,
                            std::optional<std::uint64_t> datamatch = std::nullopt) const;

    // KVM_SET_GSI_ROUTING replaces the whole table: callers keep the full list.
    void set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) const;

  private:
    // Which slot numbers are in use; behind a pointer so that KvmVm stays movable.
    struct SlotTable {
        std::mutex mutex;
        std::vector<bool> used;
    };
    std::uint32_t allocate_slot() const;
    void release_slot(std::uint32_t slot) const;
    void initialize_legacy_pic();

    explicit KvmVm(base::UniqueFd fd) : fd_(std::move(fd)), slots_(std::make_unique<SlotTable>()) {}

    base::UniqueFd fd_;
    std::unique_ptr<SlotTable> slots_;
};

}  // namespace vmm::kvm
