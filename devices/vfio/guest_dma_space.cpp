#include "devices/vfio/guest_dma_space.hpp"

#include "vmm/log.hpp"

namespace devices::vfio {

GuestDmaSpace::GuestDmaSpace(const vmm::GuestMemory& memory, const std::string& iommu_path)
    : iommufd_(iommufd_backend::IommuFd::open(iommu_path)),
      ioas_(iommufd_backend::Ioas::allocate(iommufd_)),
      mapper_(ioas_) {
    for (const auto& region : memory.regions()) {
        mapper_.map(iommufd_backend::GuestRamRegion{.gpa = region.guest_address,
                                                    .size = region.size,
                                                    .host = region.host_address,
                                                    .memfd = memory.memfd(),
                                                    .memfd_offset = region.file_offset,
                                                    .writable = true});
    }
    vmm::log::debug("passthrough DMA: IOAS {} maps {} MiB of guest RAM at IOVA = GPA ({})",
                    ioas_.id(), mapper_.mapped_bytes() >> 20,
                    mapper_.using_map_file() ? "by memfd" : "by host address");
}

void GuestDmaSpace::attach(iommufd_backend::VfioDevice& device) {
    device.bind(iommufd_);
    const std::uint32_t hwpt = device.attach(ioas_.id());
    vmm::log::debug("passthrough DMA: {} attached to IOAS {} (HWPT {})", device.name(), ioas_.id(),
                    hwpt);
}

}  // namespace devices::vfio
