#include "devices/vfio/cdev_device_io.hpp"

#include "base/error.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace devices::vfio {

static_assert(kRomRegion == VFIO_PCI_ROM_REGION_INDEX);
static_assert(kConfigRegion == VFIO_PCI_CONFIG_REGION_INDEX);
static_assert(kBarRegionCount == VFIO_PCI_BAR5_REGION_INDEX + 1);
static_assert(kIntxIrq == VFIO_PCI_INTX_IRQ_INDEX);
static_assert(kMsiIrq == VFIO_PCI_MSI_IRQ_INDEX);
static_assert(kMsixIrq == VFIO_PCI_MSIX_IRQ_INDEX);

CdevDeviceIo::CdevDeviceIo(std::shared_ptr<GuestDmaSpace> dma, iommufd_backend::VfioDevice device)
    : dma_(std::move(dma)), device_(std::move(device)) {
    const auto info = device_.info();
    if (!info.is_pci()) {
        throw base::Error("VFIO device {} is not a PCI device (flags {:#x})", device_.name(),
                          info.flags);
    }
    can_reset_ = info.can_reset();
}

RegionInfo CdevDeviceIo::region_info(std::uint32_t index) const {
    try {
        const auto region = device_.region_info(index);
        return {region.size, region.readable(), region.writable(), region.mappable()};
    } catch (const base::Error&) {
        // VFIO refuses regions a device lacks (VGA on a non-VGA function).
        return {};
    }
}

void CdevDeviceIo::read(std::uint32_t region, std::uint64_t offset,
                        std::span<std::uint8_t> data) const {
    device_.read_region(region, offset, data);
}

void CdevDeviceIo::write(std::uint32_t region, std::uint64_t offset,
                         std::span<const std::uint8_t> data) const {
    device_.write_region(region, offset, data);
}

base::MappedRegion CdevDeviceIo::map(std::uint32_t region, std::uint64_t offset,
                                     std::uint64_t length) const {
    return device_.map_region(region, offset, length);
}

std::uint32_t CdevDeviceIo::irq_count(std::uint32_t index) const {
    try {
        return device_.irq_info(index).count;
    } catch (const base::Error&) {
        return 0;
    }
}

void CdevDeviceIo::set_irq_triggers(std::uint32_t index, std::uint32_t start,
                                    std::span<const int> fds) {
    device_.set_irq_eventfds(index, start, fds);
}

void CdevDeviceIo::set_intx_unmask_fd(int fd) {
    device_.set_irq_unmask_eventfd(VFIO_PCI_INTX_IRQ_INDEX, 0, fd);
}

void CdevDeviceIo::disable_irqs(std::uint32_t index) {
    device_.disable_irqs(index);
}

bool CdevDeviceIo::reset() {
    if (!can_reset_) return false;
    device_.reset();
    return true;
}

}  // namespace devices::vfio
