#include "iommufd_backend/feature.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>

namespace iommufd_backend {

namespace {

// Versions per upstream history (Linux release that merged each uAPI).
constexpr std::array kFeatures{
    FeatureInfo{Feature::Iommufd, "iommufd", "IOMMU address spaces in /dev/iommu",
                KernelVersion{6, 2, 0}},
    FeatureInfo{Feature::VfioDeviceCdev, "VFIO_DEVICE_BIND_IOMMUFD",
                "VFIO device cdev bound to an iommufd", KernelVersion{6, 6, 0}},
    FeatureInfo{Feature::HwptAlloc, "IOMMU_HWPT_ALLOC", "explicit HW page tables",
                KernelVersion{6, 6, 0}},
    FeatureInfo{Feature::HwInfo, "IOMMU_GET_HW_INFO", "IOMMU hardware information",
                KernelVersion{6, 6, 0}},
    FeatureInfo{Feature::NestedHwpt, "IOMMU_HWPT_ALLOC_NEST_PARENT",
                "nesting parent and nested (user-managed) HWPTs", KernelVersion{6, 7, 0}},
    FeatureInfo{Feature::DirtyTracking, "IOMMU_HWPT_ALLOC_DIRTY_TRACKING", "IOMMU dirty tracking",
                KernelVersion{6, 7, 0}},
    FeatureInfo{Feature::HwptInvalidate, "IOMMU_HWPT_INVALIDATE",
                "cache invalidation for nested HWPTs", KernelVersion{6, 8, 0}},
    FeatureInfo{Feature::FaultQueue, "IOMMU_FAULT_QUEUE_ALLOC",
                "I/O page faults delivered to user space", KernelVersion{6, 11, 0}},
    // hw_pagetable.c's valid_flags for paging HWPTs gained FAULT_ID_VALID in
    // "iommufd: Enable PRI when doing the iommufd_hwpt_alloc" (IOMMU updates
    // for v6.13); 6.11 and 6.12 refuse it there with EOPNOTSUPP.
    FeatureInfo{Feature::PagingHwptFaults, "IOMMU_HWPT_FAULT_ID_VALID (paging HWPT)",
                "I/O page faults on a paging (not nested) HWPT", KernelVersion{6, 13, 0}},
    FeatureInfo{Feature::IoasMapFile, "IOMMU_IOAS_MAP_FILE", "mapping a memfd by file offset",
                KernelVersion{6, 13, 0}},
    FeatureInfo{Feature::Viommu, "IOMMU_VIOMMU_ALLOC", "vIOMMU and vDEVICE objects",
                KernelVersion{6, 13, 0}},
    FeatureInfo{Feature::ArmSmmuV3Nesting, "IOMMU_HWPT_DATA_ARM_SMMUV3",
                "ARM SMMUv3 nested translation", KernelVersion{6, 13, 0}},
    FeatureInfo{Feature::PasidAttach, "IOMMU_HWPT_ALLOC_PASID/VFIO_DEVICE_ATTACH_PASID",
                "PASID-capable HWPTs attached to one PASID of a device", KernelVersion{6, 15, 0}},
    FeatureInfo{Feature::KvmManagedHwpt, "IOMMU_HWPT_DATA_KVM",
                "HWPTs sharing KVM's stage-2 page table", std::nullopt},
};

bool means_unknown_to_kernel(Feature feature, int error) {
    if (feature == Feature::KvmManagedHwpt) {
        return error == ENOTTY || error == E2BIG || error == EOPNOTSUPP;
    }
    return error == ENOTTY || error == E2BIG || error == EOPNOTSUPP || error == EINVAL;
}

}  // namespace

const FeatureInfo& feature_info(Feature feature) {
    for (const auto& info : kFeatures) {
        if (info.feature == feature) return info;
    }
    return kFeatures.front();  // unreachable: every enumerator is in the table
}

std::string missing_feature_hint(Feature feature, int error, std::optional<KernelVersion> running) {
    if (!means_unknown_to_kernel(feature, error)) return {};
    const auto& info = feature_info(feature);
    const std::string kernel = running ? fmt::format("this kernel is {}", running->to_string())
                                       : "this kernel's version is unknown";
    if (!info.since) {
        return fmt::format("{} ({}) needs this project's kernel-patches/ series; {} without it",
                           info.name, info.description, kernel);
    }
    if (running && *running < *info.since) {
        return fmt::format("{} ({}) needs Linux {} or newer; {}", info.name, info.description,
                           info.since->to_string(), kernel);
    }
    return {};
}

}  // namespace iommufd_backend
