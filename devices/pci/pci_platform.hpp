// Assembles PCI for one VM from its MachineConfig: KVM interrupt routing,
// the host bridge, the 0xCF8 port pair and ECAM on the buses, the
// configured virtio-pci devices and the VFIO passthrough devices (with the
// iommufd IOAS that maps guest RAM for their DMA). Machine owns one; everything it creates is
// owned by the buses (shared ownership), so member order does not matter.
#pragma once

#include <memory>
#include <vector>

#include "devices/pci/msi_router.hpp"
#include "devices/pci/pci_bus.hpp"
#include "vmm/bus.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/kvm/kvm_vm.hpp"
#include "vmm/machine_config.hpp"

namespace devices::pci {

class PciPlatform {
  public:
    // Opens every device's host resources (disk images, ...) before the
    // guest runs: a missing or busy file throws base::Error naming it.
    PciPlatform(const vmm::kvm::KvmVm& vm, const vmm::GuestMemory& memory, vmm::Bus& mmio_bus,
                vmm::Bus& pio_bus, const vmm::MachineConfig& config);

    const PciWindows& windows() const { return bus_->windows(); }
    std::size_t device_count() const { return device_count_; }

  private:
    void add_passthrough_devices(const vmm::GuestMemory& memory, const vmm::MachineConfig& config);

    std::shared_ptr<MsiRouter> router_;
    std::shared_ptr<PciBus> bus_;
    std::size_t device_count_ = 0;
};

}  // namespace devices::pci
