// A mock device of the kernel's iommufd selftest driver (CONFIG_IOMMUFD_TEST,
// ioctl IOMMU_TEST_CMD), and the driver's own checks. Lab tests and the
// benchmark use it where no hardware exists; the VMM never does.
//
// IOMMU_TEST_OP_MOCK_DOMAIN creates a mock device bound to the iommufd (its
// dev id works with IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO, ...) and attached to
// `pt_id`; the "stdev" object owns it, and destroying it unbinds it.
#pragma once

#include <cstdint>
#include <span>

#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

class SelftestDevice {
  public:
    // MOCK_FLAGS_DEVICE_* in `device_flags` (e.g. NO_DIRTY); 0 = plain.
    static SelftestDevice create(const IommuFd& iommufd, std::uint32_t pt_id,
                                 std::uint32_t device_flags = 0);

    SelftestDevice(SelftestDevice&& other) noexcept;
    SelftestDevice& operator=(SelftestDevice&& other) noexcept;
    SelftestDevice(const SelftestDevice&) = delete;
    SelftestDevice& operator=(const SelftestDevice&) = delete;
    ~SelftestDevice();

    std::uint32_t stdev_id() const noexcept { return stdev_id_; }
    std::uint32_t dev_id() const noexcept { return dev_id_; }    // the iommufd device id
    std::uint32_t hwpt_id() const noexcept { return hwpt_id_; }  // currently attached HWPT

    // IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: attach to another IOAS or HWPT;
    // returns the HWPT now attached.
    std::uint32_t replace(std::uint32_t pt_id);
    // IOMMU_TEST_OP_TRIGGER_IOPF: the device takes an I/O page fault.
    void trigger_iopf(std::uint32_t pasid, std::uint32_t grpid, std::uint32_t perm,
                      std::uint64_t addr) const;

    // --- the driver's checks (throw IoctlError when the kernel disagrees) ---
    // IOMMU_TEST_OP_MD_CHECK_MAP: mock HWPT `hwpt_id` maps [iova, +bytes.size())
    // to exactly the pages of `bytes`.
    static void check_map(const IommuFd& iommufd, std::uint32_t hwpt_id, std::uint64_t iova,
                          std::span<const std::uint8_t> bytes);
    // IOMMU_TEST_OP_MD_CHECK_IOTLB: mock nested HWPT's IOTLB entry `index` holds `expected`.
    static void check_iotlb(const IommuFd& iommufd, std::uint32_t hwpt_id, std::uint32_t index,
                            std::uint32_t expected);
    // IOMMU_TEST_OP_DIRTY: mark the mock PTEs of the set bits of `bitmap`
    // (bit n = iova + n * page_size) dirty; returns how many were mapped.
    static std::uint64_t mark_dirty(const IommuFd& iommufd, std::uint32_t hwpt_id,
                                    std::uint64_t iova, std::uint64_t length,
                                    std::uint64_t page_size, std::span<const std::uint64_t> bitmap);

  private:
    SelftestDevice(IommuFd iommufd, std::uint32_t stdev, std::uint32_t hwpt, std::uint32_t dev)
        : iommufd_(std::move(iommufd)), stdev_id_(stdev), hwpt_id_(hwpt), dev_id_(dev) {}

    IommuFd iommufd_;
    std::uint32_t stdev_id_ = 0;
    std::uint32_t hwpt_id_ = 0;
    std::uint32_t dev_id_ = 0;
};

}  // namespace iommufd_backend
