// The kernel features the library can use, with the Linux version that added
// each one, so that a missing ioctl, flag or struct field is reported as
// "<feature> needs Linux X.Y; this kernel is A.B.C" instead of a bare errno.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "iommufd_backend/kernel_version.hpp"

namespace iommufd_backend {

enum class Feature {
    Iommufd,           // /dev/iommu, IOAS_ALLOC/MAP/UNMAP/COPY/IOVA_RANGES/ALLOW_IOVAS, OPTION
    VfioDeviceCdev,    // /dev/vfio/devices/vfioN, BIND_IOMMUFD, ATTACH/DETACH_IOMMUFD_PT
    HwptAlloc,         // IOMMU_HWPT_ALLOC of a paging HWPT
    HwInfo,            // IOMMU_GET_HW_INFO
    NestedHwpt,        // NEST_PARENT flag, data_type/data_len/data_uptr (nested HWPT)
    DirtyTracking,     // DIRTY_TRACKING flag, SET_DIRTY_TRACKING, GET_DIRTY_BITMAP, capabilities
    HwptInvalidate,    // IOMMU_HWPT_INVALIDATE
    FaultQueue,        // IOMMU_FAULT_QUEUE_ALLOC, IOMMU_HWPT_FAULT_ID_VALID, fault_id
    PagingHwptFaults,  // IOMMU_HWPT_FAULT_ID_VALID on a paging HWPT (6.11/6.12: nested only)
    IoasMapFile,       // IOMMU_IOAS_MAP_FILE
    Viommu,            // IOMMU_VIOMMU_ALLOC, IOMMU_VDEVICE_ALLOC
    ArmSmmuV3Nesting,  // IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HW_INFO_TYPE_ARM_SMMUV3
    PasidAttach,       // IOMMU_HWPT_ALLOC_PASID, VFIO_DEVICE_ATTACH/DETACH_PASID
    KvmManagedHwpt,    // IOMMU_HWPT_DATA_KVM: this project's kernel-patches/, not upstream
};

struct FeatureInfo {
    Feature feature;
    std::string_view name;         // the uAPI name users search for
    std::string_view description;  // what it gives, in a few words
    // First upstream Linux version with it; nullopt for our own kernel patches.
    std::optional<KernelVersion> since;
};

const FeatureInfo& feature_info(Feature feature);

// The hint for a failed call that relies on `feature` and failed with `error`:
// non-empty when the running kernel is known to lack the feature (too old, or
// without our patches) and the errno is one the kernel uses for "I do not know
// this": ENOTTY (ioctl), E2BIG (struct tail), EOPNOTSUPP (flag or type), and
// EINVAL, which VFIO uses for unknown flags/argsz. KvmManagedHwpt is the
// exception: our data type reaches a kernel that has IOMMU_HWPT_ALLOC, so
// only EOPNOTSUPP ("unknown data type") or an ioctl/struct the kernel lacks
// altogether means "no kernel-patches/"; an EINVAL is a real error of the call.
std::string missing_feature_hint(Feature feature, int error, std::optional<KernelVersion> running);

}  // namespace iommufd_backend
