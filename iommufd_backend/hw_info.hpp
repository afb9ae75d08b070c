// IOMMU_GET_HW_INFO for a bound device: which IOMMU is behind it, its raw
// registers decoded (Intel VT-d, ARM SMMUv3, the selftest mock), the generic
// capabilities, and questions a VMM asks ("can I nest?", "dirty tracking?").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/smmuv3_registers.hpp"
#include "iommufd_backend/vtd_registers.hpp"

namespace iommufd_backend {

// What the selftest mock driver reports (struct iommu_test_hw_info).
struct SelftestHwInfo {
    std::uint32_t flags = 0;
    std::uint32_t test_reg = 0;  // IOMMU_HW_INFO_SELFTEST_REGVAL
};

class HwInfo {
  public:
    static HwInfo query(const IommuFd& iommufd, std::uint32_t dev_id);
    // From already-known values (tests, or info passed across processes).
    static HwInfo from_raw(std::uint32_t type, std::vector<std::uint8_t> data,
                           std::uint64_t capabilities, std::uint8_t max_pasid_log2);

    std::uint32_t type() const noexcept { return type_; }  // IOMMU_HW_INFO_TYPE_*
    std::string_view type_name() const;                    // "Intel VT-d", ...
    std::span<const std::uint8_t> data() const noexcept { return data_; }
    std::uint64_t capabilities() const noexcept { return capabilities_; }  // IOMMU_HW_CAP_*
    std::uint8_t max_pasid_log2() const noexcept { return max_pasid_log2_; }

    std::optional<VtdRegisters> vtd() const;
    std::optional<SmmuV3Registers> smmuv3() const;
    std::optional<SelftestHwInfo> selftest() const;

    // The IOMMU reports dirty tracking (IOMMU_HW_CAP_DIRTY_TRACKING).
    bool dirty_tracking() const;
    // The hardware can do nested translation (a NEST_PARENT HWPT plus nested
    // HWPTs of its data type): VT-d scalable mode + NEST, SMMUv3 S1+S2, or
    // the selftest mock. A yes still needs a kernel with the driver support.
    bool can_nest() const;
    // The IOMMU_HWPT_DATA_* type a nested HWPT for this IOMMU takes, if any.
    std::optional<std::uint32_t> nested_data_type() const;

    std::string describe() const;

  private:
    HwInfo(std::uint32_t type, std::vector<std::uint8_t> data, std::uint64_t capabilities,
           std::uint8_t max_pasid_log2)
        : type_(type),
          data_(std::move(data)),
          capabilities_(capabilities),
          max_pasid_log2_(max_pasid_log2) {}

    std::uint32_t type_;
    std::vector<std::uint8_t> data_;
    std::uint64_t capabilities_;
    std::uint8_t max_pasid_log2_;
};

}  // namespace iommufd_backend
