#include "devices/vfio/vfio_interrupts.hpp"

#include "base/error.hpp"
#include "vmm/log.hpp"

namespace devices::vfio {

VfioInterrupts::VfioInterrupts(DeviceIo& io, std::shared_ptr<pci::MsiRouter> router,
                               const std::optional<MsixLayout>& msix, bool intx)
    : io_(io), router_(std::move(router)), has_intx_(intx) {
    if (!router_) throw base::Error("VFIO device {}: no interrupt router", io_.name());
    if (msix) {
        msix_ = std::make_unique<pci::Msix>(router_, msix->vectors, msix->table_bar,
                                            msix->table_offset, msix->pba_bar, msix->pba_offset);
        eventfds_.resize(msix->vectors);
        for (std::uint16_t vector = 0; vector < msix->vectors; ++vector) {
            // VFIO writes these directly, so Msix routes them eagerly.
            eventfds_[vector] = msix_->share_eventfd(vector);
        }
        triggers_.assign(msix->vectors, -1);
    }
}

VfioInterrupts::~VfioInterrupts() {
    shutdown();
}

void VfioInterrupts::shutdown() noexcept {
    shut_down_ = true;
    disable_msix();
    intx_.reset();
}

void VfioInterrupts::attached(std::uint32_t gsi) {
    intx_gsi_ = gsi;
    if (has_intx_ && !vfio_msix_on_) route_intx();
}

void VfioInterrupts::route_intx() {
    if (intx_ || !has_intx_ || !intx_gsi_) return;
    intx_.emplace(io_, router_->hypervisor(), *intx_gsi_);
}

void VfioInterrupts::msix_control_written(std::uint16_t control) {
    if (!msix_) return;
    try {
        msix_->set_control(control);
    } catch (const pci::MsiRouteError& error) {
        // Emulated pending bits are never set here (the device keeps its
        // own), so this is a route KVM refused: that vector stays silent.
        refusals_.warn("VFIO device {}: {}", io_.name(), error.what());
    }
    update();
}

std::vector<int> VfioInterrupts::wanted_triggers() const {
    std::vector<int> wanted(eventfds_.size(), -1);
    for (std::size_t vector = 0; vector < wanted.size(); ++vector) {
        if (msix_->deliverable(static_cast<std::uint16_t>(vector)))
            wanted[vector] = eventfds_[vector];
    }
    return wanted;
}

void VfioInterrupts::disable_msix() noexcept {
    if (!vfio_msix_on_) return;
    vfio_msix_on_ = false;
    triggers_.assign(triggers_.size(), -1);
    try {
        io_.disable_irqs(kMsixIrq);
    } catch (const std::exception& error) {
        refusals_.warn("VFIO device {}: disabling MSI-X: {}", io_.name(), error.what());
    }
}

void VfioInterrupts::update() noexcept {
    if (shut_down_) return;
    try {
        if (!msix_ || !msix_->enabled()) {
            disable_msix();
            route_intx();
            return;
        }
        const std::vector<int> wanted = wanted_triggers();
        if (!vfio_msix_on_) {
            intx_.reset();
            // All vectors at once: VFIO allocates the host IRQs of exactly
            // the vectors named when it enables MSI-X (dynamic allocation
            // later is not something every host IRQ domain offers).
            io_.set_irq_triggers(kMsixIrq, 0, wanted);
            vfio_msix_on_ = true;
            triggers_ = wanted;
            return;
        }
        // Only the vectors that changed, in runs of neighbours.
        std::size_t vector = 0;
        while (vector < wanted.size()) {
            if (wanted[vector] == triggers_[vector]) {
                ++vector;
                continue;
            }
            std::size_t end = vector;
            while (end < wanted.size() && wanted[end] != triggers_[end]) ++end;
            io_.set_irq_triggers(kMsixIrq, static_cast<std::uint32_t>(vector),
                                 std::span(wanted).subspan(vector, end - vector));
            std::copy(wanted.begin() + static_cast<std::ptrdiff_t>(vector),
                      wanted.begin() + static_cast<std::ptrdiff_t>(end),
                      triggers_.begin() + static_cast<std::ptrdiff_t>(vector));
            vector = end;
        }
    } catch (const std::exception& error) {
        refusals_.warn("VFIO device {}: interrupt set-up refused: {}", io_.name(), error.what());
    }
}

}  // namespace devices::vfio
