// The DMA address space of a VM's passthrough devices: one iommufd, one
// IOAS, all of guest RAM mapped at IOVA = GPA (GuestRamMapper), so a device
// DMAs to exactly the addresses the guest's driver programs. One per VM;
// every passthrough device of the VM attaches to its IOAS before the guest
// runs, and keeps it alive (shared ownership) until the device is closed.
//
// Pinning happens when the first device attaches: from then on every page
// of guest RAM stays resident while the VM lives (the price of DMA without
// a vIOMMU or IO page faults).
#pragma once

#include <memory>
#include <string>

#include "iommufd_backend/guest_ram_mapper.hpp"
#include "iommufd_backend/ioas.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/vfio_device.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::vfio {

class GuestDmaSpace {
  public:
    // Opens `iommu_path` (/dev/iommu), allocates the IOAS and maps every
    // region of `memory`. Throws base::Error with what to do (no iommufd:
    // which kernel option is missing).
    GuestDmaSpace(const vmm::GuestMemory& memory,
                  const std::string& iommu_path = iommufd_backend::IommuFd::kDefaultPath);
    GuestDmaSpace(const GuestDmaSpace&) = delete;
    GuestDmaSpace& operator=(const GuestDmaSpace&) = delete;

    const iommufd_backend::IommuFd& iommufd() const { return iommufd_; }
    std::uint32_t ioas_id() const { return ioas_.id(); }
    std::uint64_t mapped_bytes() const { return mapper_.mapped_bytes(); }

    // Binds `device` to this iommufd and attaches it to the IOAS: from now
    // on its DMA goes through guest RAM's mapping. Throws IoctlError.
    void attach(iommufd_backend::VfioDevice& device);

  private:
    iommufd_backend::IommuFd iommufd_;
    iommufd_backend::Ioas ioas_;
    // After ioas_: it unmaps from it when destroyed, so it must go first.
    iommufd_backend::GuestRamMapper mapper_;
};

}  // namespace devices::vfio
