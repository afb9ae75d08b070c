#include "iommufd_backend/hwpt_data.hpp"

#include <endian.h>

#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

HwptData HwptData::selftest(std::uint32_t iotlb) {
    iommu_hwpt_selftest data{};
    data.iotlb = iotlb;
    return of(IOMMU_HWPT_DATA_SELFTEST, data, Feature::NestedHwpt, "IOMMU_HWPT_DATA_SELFTEST");
}

HwptData HwptData::vtd_s1(std::uint64_t pgtbl_addr, std::uint32_t addr_width, std::uint64_t flags) {
    iommu_hwpt_vtd_s1 data{};
    data.flags = flags;
    data.pgtbl_addr = pgtbl_addr;
    data.addr_width = addr_width;
    return of(IOMMU_HWPT_DATA_VTD_S1, data, Feature::NestedHwpt, "IOMMU_HWPT_DATA_VTD_S1");
}

HwptData HwptData::arm_smmuv3(std::uint64_t ste0, std::uint64_t ste1) {
    iommu_hwpt_arm_smmuv3 data{};
    data.ste[0] = htole64(ste0);
    data.ste[1] = htole64(ste1);
    return of(IOMMU_HWPT_DATA_ARM_SMMUV3, data, Feature::ArmSmmuV3Nesting,
              "IOMMU_HWPT_DATA_ARM_SMMUV3");
}

HwptData HwptData::kvm(int vm_fd) {
    iommu_hwpt_kvm_info data{};
    data.vm_fd = vm_fd;
    return of(IOMMU_HWPT_DATA_KVM, data, Feature::KvmManagedHwpt, "IOMMU_HWPT_DATA_KVM");
}

HwptData HwptData::raw(std::uint32_t type, std::vector<std::uint8_t> bytes, Feature feature,
                       std::string_view name) {
    return HwptData(type, std::move(bytes), feature, name);
}

}  // namespace iommufd_backend
