// DeviceIo over a real VFIO cdev device (iommufd_backend::VfioDevice),
// bound and attached to the VM's GuestDmaSpace, which it keeps alive: the
// device's DMA needs that IOAS for as long as the device is open.
#pragma once

#include <memory>

#include "devices/vfio/device_io.hpp"
#include "devices/vfio/guest_dma_space.hpp"
#include "iommufd_backend/vfio_device.hpp"

namespace devices::vfio {

class CdevDeviceIo : public DeviceIo {
  public:
    // Throws base::Error unless `device` is a PCI device bound to `dma`.
    CdevDeviceIo(std::shared_ptr<GuestDmaSpace> dma, iommufd_backend::VfioDevice device);

    std::string name() const override { return device_.name(); }
    RegionInfo region_info(std::uint32_t index) const override;
    void read(std::uint32_t region, std::uint64_t offset,
              std::span<std::uint8_t> data) const override;
    void write(std::uint32_t region, std::uint64_t offset,
               std::span<const std::uint8_t> data) const override;
    base::MappedRegion map(std::uint32_t region, std::uint64_t offset,
                           std::uint64_t length) const override;
    std::uint32_t irq_count(std::uint32_t index) const override;
    void set_irq_triggers(std::uint32_t index, std::uint32_t start,
                          std::span<const int> fds) override;
    void set_intx_unmask_fd(int fd) override;
    void disable_irqs(std::uint32_t index) override;
    bool reset() override;

  private:
    // Declared first, destroyed last: the device closes (and stops DMA)
    // before the IOAS loses its mappings.
    std::shared_ptr<GuestDmaSpace> dma_;
    iommufd_backend::VfioDevice device_;
    bool can_reset_ = false;
};

}  // namespace devices::vfio
