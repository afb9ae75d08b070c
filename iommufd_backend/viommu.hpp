// A vIOMMU (IOMMU_VIOMMU_ALLOC, Linux 6.13): the slice of a physical IOMMU
// given to one VM, wrapping a nesting parent HWPT. SMMUv3 nested HWPTs are
// allocated on it and its caches are invalidated through it.
//
// Like the other objects: move-only, destroyed once (destructor best effort,
// destroy() reporting), and a destroyed or moved-from Viommu refuses every
// use with a base::Error before any ioctl.
#pragma once

#include <cstdint>
#include <span>

#include "iommufd_backend/hwpt.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

class Viommu {
  public:
    // `type`: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, ...; `parent` must be a live
    // nesting parent (a base::Error otherwise, before any ioctl).
    static Viommu allocate(const IommuFd& iommufd, std::uint32_t dev_id, const Hwpt& parent,
                           std::uint32_t type);

    Viommu(Viommu&& other) noexcept;
    Viommu& operator=(Viommu&& other) noexcept;
    Viommu(const Viommu&) = delete;
    Viommu& operator=(const Viommu&) = delete;
    ~Viommu();

    std::uint32_t id() const noexcept { return id_; }

    // IOMMU_HWPT_INVALIDATE on the vIOMMU with SMMUv3 CMDQ commands; returns
    // the number handled. A kernel without SMMUv3 vIOMMU invalidation throws
    // UnsupportedError; a refused entry InvalidateError (handled() < requested()).
    std::uint32_t invalidate(std::span<const iommu_viommu_arm_smmuv3_invalidate> commands);

    // IOMMU_VDEVICE_ALLOC: tell the vIOMMU that device `dev_id` has virtual
    // ID `virt_id` (e.g. the guest's StreamID). Returns the vDEVICE id, which
    // lives until the vIOMMU or the iommufd goes away.
    std::uint32_t add_vdevice(std::uint32_t dev_id, std::uint64_t virt_id);

    // IOMMU_DESTROY now (EBUSY while nested HWPTs or vDEVICEs use it).
    void destroy();

  private:
    friend class Hwpt;  // allocate_nested() checks the vIOMMU is alive

    Viommu(IommuFd iommufd, std::uint32_t id) : iommufd_(std::move(iommufd)), id_(id) {}
    void check_alive(const char* operation) const;

    IommuFd iommufd_;
    std::uint32_t id_ = 0;  // 0: destroyed or moved from (iommufd ids start at 1)
};

}  // namespace iommufd_backend
