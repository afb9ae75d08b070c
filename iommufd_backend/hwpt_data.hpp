// Driver-specific data for IOMMU_HWPT_ALLOC: the type and the bytes of a
// nested (user-managed) page table description, or of our KVM-managed HWPT.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "iommufd_backend/feature.hpp"

namespace iommufd_backend {

class HwptData {
  public:
    // The iommufd selftest driver's nested domain (IOMMU_HWPT_DATA_SELFTEST):
    // its mock IOTLB entries start at `iotlb` (IOMMU_TEST_IOTLB_DEFAULT).
    static HwptData selftest(std::uint32_t iotlb);
    // Intel VT-d stage-1 table (IOMMU_HWPT_DATA_VTD_S1) at guest physical
    // `pgtbl_addr`, `addr_width` bits, IOMMU_VTD_S1_* flags.
    static HwptData vtd_s1(std::uint64_t pgtbl_addr, std::uint32_t addr_width, std::uint64_t flags);
    // ARM SMMUv3 nested STE words 0 and 1 (IOMMU_HWPT_DATA_ARM_SMMUV3, Linux
    // 6.13), host-endian here, stored little-endian as the uAPI requires.
    static HwptData arm_smmuv3(std::uint64_t ste0, std::uint64_t ste1);
    // This project's KVM-managed HWPT (IOMMU_HWPT_DATA_KVM, kernel-patches/).
    static HwptData kvm(int vm_fd);
    // Any other type, for drivers the library does not know yet.
    static HwptData raw(std::uint32_t type, std::vector<std::uint8_t> bytes, Feature feature,
                        std::string_view name);

    std::uint32_t type() const noexcept { return type_; }
    std::span<const std::uint8_t> bytes() const noexcept { return bytes_; }
    Feature feature() const noexcept { return feature_; }
    std::string_view name() const noexcept { return name_; }

  private:
    template <typename T>
    requires std::is_trivially_copyable_v<T>
    static HwptData of(std::uint32_t type, const T& value, Feature feature, std::string_view name) {
        std::vector<std::uint8_t> bytes(sizeof(T));
        std::memcpy(bytes.data(), &value, sizeof(T));
        return HwptData(type, std::move(bytes), feature, name);
    }
    HwptData(std::uint32_t type, std::vector<std::uint8_t> bytes, Feature feature,
             std::string_view name)
        : type_(type), bytes_(std::move(bytes)), feature_(feature), name_(name) {}

    std::uint32_t type_;
    std::vector<std::uint8_t> bytes_;
    Feature feature_;        // what the kernel needs to know this type
    std::string_view name_;  // "IOMMU_HWPT_DATA_SELFTEST", ... (static strings)
};

}  // namespace iommufd_backend
