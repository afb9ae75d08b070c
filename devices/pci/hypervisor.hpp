// What PCI and virtio devices need from the hypervisor: interrupt routing,
// irqfds (edge and level), ioeventfds, legacy interrupt lines and memory
// slots. An interface so that the same device code runs on KVM
// (KvmHypervisor) and in unit tests (a fake that records calls), and so
// that a VFIO passthrough device routes its own eventfds and maps its BARs
// through the same object.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace devices::pci {

class Hypervisor {
  public:
    virtual ~Hypervisor() = default;

    // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING semantics).
    virtual void set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) = 0;
    // Raising `eventfd` injects `gsi` (KVM_IRQFD).
    virtual void assign_irqfd(int eventfd, std::uint32_t gsi) = 0;
    virtual void deassign_irqfd(int eventfd, std::uint32_t gsi) = 0;
    // Level-triggered irqfd: raising `eventfd` asserts `gsi` until the guest
    // EOIs it; then the line drops and `resample_fd` is raised, so that the
    // source re-asserts it if it still needs service (INTx). Removed with
    // deassign_irqfd(), which also drops the line.
    virtual void assign_resample_irqfd(int eventfd, int resample_fd, std::uint32_t gsi) = 0;
    // A guest write of `length` bytes to MMIO `address` signals `eventfd`.
    virtual void assign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) = 0;
    virtual void deassign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) = 0;
    // Level of an IOAPIC input, for INTx.
    virtual void set_irq_line(std::uint32_t gsi, bool level) = 0;
    // Guest accesses to [gpa, gpa + host.size()) go straight to `host` (a
    // passthrough BAR's mmap) without an exit. `host` must stay mapped until
    // the slot is removed. Returns the slot; throws base::Error when the
    // range cannot be a slot (it overlaps RAM or another slot, say).
    virtual std::uint32_t add_memory_slot(std::uint64_t gpa, std::span<std::uint8_t> host,
                                          bool read_only) = 0;
    virtual void remove_memory_slot(std::uint32_t slot) = 0;
};

}  // namespace devices::pci
