// The interrupts of a passthrough function: MSI-X emulated for the guest
// and mirrored into VFIO, or INTx through a resample irqfd (IntxRoute).
//
// MSI-X: every vector has its own eventfd, bound with KVM_IRQFD to its own
// GSI whose MSI route is the guest's address/data (pci::Msix, with every
// eventfd shared, so routes are pushed as soon as the guest programs an
// unmasked entry). That eventfd is the VFIO trigger of the device's vector:
//
//   device MSI-X message -> host IRQ -> VFIO signals the eventfd
//   -> KVM irqfd -> MSI route -> the guest's vCPU        (no VMM thread)
//
// Masking is mirrored, not emulated: a vector the guest masks (or all of
// them, under Function Mask) gets no trigger in VFIO, which frees its host
// IRQ and so masks the vector in the device's own table; the device then
// holds its message pending in its own PBA and sends it once the guest
// unmasks and the trigger is back. That is the spec's pending semantics
// without a thread, and the guest reads the device's real PBA.
//
// VFIO takes one interrupt type at a time: INTx is routed while MSI-X is
// off in the emulated capability, and removed before MSI-X goes on.
// Not thread-safe: the owner serializes calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "devices/log_limit.hpp"
#include "devices/pci/msi_router.hpp"
#include "devices/pci/msix.hpp"
#include "devices/vfio/device_io.hpp"
#include "devices/vfio/intx_route.hpp"
#include "devices/vfio/vfio_config_space.hpp"

namespace devices::vfio {

class VfioInterrupts {
  public:
    // `msix`: the device's MSI-X capability, if it is passed through;
    // `intx`: whether it has INTx. Throws base::Error when GSIs or eventfds
    // run out.
    VfioInterrupts(DeviceIo& io, std::shared_ptr<pci::MsiRouter> router,
                   const std::optional<MsixLayout>& msix, bool intx);
    ~VfioInterrupts();
    VfioInterrupts(const VfioInterrupts&) = delete;
    VfioInterrupts& operator=(const VfioInterrupts&) = delete;

    // The bus wired INTx to `gsi`: route it now (MSI-X is off at start).
    // Throws base::Error when KVM or VFIO refuses, before the guest runs.
    void attached(std::uint32_t gsi);

    // The emulated MSI-X (table, routes); null without MSI-X.
    pci::Msix* msix() { return msix_.get(); }
    const pci::Msix* msix() const { return msix_.get(); }

    // After the guest changed Message Control (`control`) or the table:
    // brings VFIO in line. Never throws; a refusal is logged (rate-limited)
    // and retried at the next change.
    void msix_control_written(std::uint16_t control);
    void update() noexcept;
    // Every interrupt off in VFIO, for good (teardown): later updates route nothing.
    void shutdown() noexcept;

    // For tests and logs.
    bool intx_routed() const { return intx_.has_value(); }
    bool msix_on_in_vfio() const { return vfio_msix_on_; }
    // Per vector, the fd VFIO signals (-1: none, masked).
    const std::vector<int>& vfio_triggers() const { return triggers_; }

  private:
    std::vector<int> wanted_triggers() const;
    void route_intx();
    void disable_msix() noexcept;

    DeviceIo& io_;
    std::shared_ptr<pci::MsiRouter> router_;
    std::unique_ptr<pci::Msix> msix_;
    bool has_intx_;
    std::optional<std::uint32_t> intx_gsi_;
    std::optional<IntxRoute> intx_;
    bool vfio_msix_on_ = false;
    bool shut_down_ = false;
    std::vector<int> triggers_;  // what VFIO has, per vector
    std::vector<int> eventfds_;  // each vector's irqfd eventfd (owned by msix_)
    LogLimit refusals_;
};

}  // namespace devices::vfio
