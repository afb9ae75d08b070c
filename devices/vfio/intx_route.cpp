#include "devices/vfio/intx_route.hpp"

#include <array>

#include "base/event_fd.hpp"
#include "vmm/log.hpp"

namespace devices::vfio {

IntxRoute::IntxRoute(DeviceIo& io, pci::Hypervisor& hypervisor, std::uint32_t gsi)
    : io_(io),
      hypervisor_(hypervisor),
      gsi_(gsi),
      trigger_(base::make_eventfd("INTx of {}", io.name())),
      resample_(base::make_eventfd("INTx resampling of {}", io.name())) {
    try {
        // KVM first: once VFIO signals the trigger, someone must listen.
        hypervisor_.assign_resample_irqfd(trigger_.get(), resample_.get(), gsi_);
        irqfd_ = true;
        const std::array<int, 1> trigger{trigger_.get()};
        io_.set_irq_triggers(kIntxIrq, 0, trigger);
        vfio_ = true;
        io_.set_intx_unmask_fd(resample_.get());
    } catch (...) {
        teardown();
        throw;
    }
}

IntxRoute::~IntxRoute() {
    teardown();
}

void IntxRoute::teardown() noexcept {
    if (vfio_) {
        try {
            io_.disable_irqs(kIntxIrq);
        } catch (const std::exception& error) {
            vmm::log::warn("VFIO device {}: disabling INTx: {}", io_.name(), error.what());
        }
        vfio_ = false;
    }
    if (irqfd_) {
        try {
            hypervisor_.deassign_irqfd(trigger_.get(), gsi_);
        } catch (const std::exception& error) {
            vmm::log::warn("VFIO device {}: removing the INTx irqfd of GSI {}: {}", io_.name(),
                           gsi_, error.what());
        }
        irqfd_ = false;
    }
}

}  // namespace devices::vfio
