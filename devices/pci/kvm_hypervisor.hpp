// Hypervisor backed by a KVM VM fd.
#pragma once

#include "devices/pci/hypervisor.hpp"
#include "vmm/kvm/kvm_vm.hpp"

namespace devices::pci {

class KvmHypervisor : public Hypervisor {
  public:
    // `vm` must outlive this object (Machine declares it first).
    explicit KvmHypervisor(const vmm::kvm::KvmVm& vm) : vm_(vm) {}

    void set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) override {
        vm_.set_gsi_routing(entries);
    }
    void assign_irqfd(int eventfd, std::uint32_t gsi) override { vm_.assign_irqfd(eventfd, gsi); }
    void deassign_irqfd(int eventfd, std::uint32_t gsi) override {
        vm_.deassign_irqfd(eventfd, gsi);
    }
    void assign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) override {
        vm_.assign_ioeventfd(eventfd, address, length, /*pio=*/false);
    }
    void deassign_ioeventfd(int eventfd, std::uint64_t address, std::uint32_t length) override {
        vm_.deassign_ioeventfd(eventfd, address, length, /*pio=*/false);
    }
    void assign_resample_irqfd(int eventfd, int resample_fd, std::uint32_t gsi) override {
        vm_.assign_resample_irqfd(eventfd, resample_fd, gsi);
    }
    void set_irq_line(std::uint32_t gsi, bool level) override { vm_.set_irq_line(gsi, level); }
    std::uint32_t add_memory_slot(std::uint64_t gpa, std::span<std::uint8_t> host,
                                  bool read_only) override {
        return vm_.add_memory_slot(gpa, host, read_only);
    }
    void remove_memory_slot(std::uint32_t slot) override { vm_.remove_memory_slot(slot); }

  private:
    const vmm::kvm::KvmVm& vm_;
};

}  // namespace devices::pci
