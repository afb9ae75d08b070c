// INTx of a passthrough function, with no VMM thread in the path:
//
//   device asserts INTx -> VFIO's host handler masks it and signals `trigger`
//   -> KVM irqfd (resample) asserts the guest's IOAPIC pin and holds it
//   -> the guest's driver services the device and EOIs the pin
//   -> KVM lowers the pin and signals `resample` -> VFIO unmasks INTx,
//      and if the device still asserts it, it fires again.
//
// That is level semantics across two kernels: the guest never loses an
// interrupt and never sees one the device dropped. Alive while INTx is the
// function's interrupt (VFIO takes one interrupt type at a time, so it goes
// away while MSI-X is enabled). Destruction disables INTx in VFIO first,
// then removes the irqfd, which also lowers the pin.
#pragma once

#include <cstdint>

#include "base/unique_fd.hpp"
#include "devices/pci/hypervisor.hpp"
#include "devices/vfio/device_io.hpp"

namespace devices::vfio {

class IntxRoute {
  public:
    // Throws base::Error when KVM or VFIO refuses; nothing stays set up then.
    IntxRoute(DeviceIo& io, pci::Hypervisor& hypervisor, std::uint32_t gsi);
    ~IntxRoute();
    IntxRoute(const IntxRoute&) = delete;
    IntxRoute& operator=(const IntxRoute&) = delete;

    int trigger_fd() const { return trigger_.get(); }
    int resample_fd() const { return resample_.get(); }

  private:
    void teardown() noexcept;

    DeviceIo& io_;
    pci::Hypervisor& hypervisor_;
    std::uint32_t gsi_;
    base::UniqueFd trigger_;
    base::UniqueFd resample_;
    bool irqfd_ = false;
    bool vfio_ = false;
};

}  // namespace devices::vfio
