// The revisions (size per kernel release) of every size-extensible uAPI struct
// the library sends, and size_for() which picks one per call (rules in
// struct_size.hpp). Keep in step with uapi/iommufd_uapi.h.
#pragma once

#include <array>

#include "iommufd_backend/struct_size.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

template <typename T>
struct Revisions;  // no primary definition: every struct sent must be listed

#define IOMMUFD_REVISIONS(type, ...)                   \
    template <>                                        \
    struct Revisions<type> {                           \
        static constexpr std::array list{__VA_ARGS__}; \
    }

// iommufd: the first revision is the kernel's min_size for the ioctl.
IOMMUFD_REVISIONS(iommu_destroy, Revision{sizeof(iommu_destroy), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_alloc, Revision{sizeof(iommu_ioas_alloc), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_map, Revision{sizeof(iommu_ioas_map), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_map_file, Revision{sizeof(iommu_ioas_map_file), Feature::IoasMapFile});
IOMMUFD_REVISIONS(iommu_ioas_unmap, Revision{sizeof(iommu_ioas_unmap), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_copy, Revision{sizeof(iommu_ioas_copy), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_iova_ranges,
                  Revision{sizeof(iommu_ioas_iova_ranges), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_ioas_allow_iovas,
                  Revision{sizeof(iommu_ioas_allow_iovas), Feature::Iommufd});
IOMMUFD_REVISIONS(iommu_option, Revision{sizeof(iommu_option), Feature::Iommufd});
// 6.6: paging HWPT; 6.7: + data_type/data_len/data_uptr; 6.11: + fault_id.
IOMMUFD_REVISIONS(iommu_hwpt_alloc,
                  Revision{IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, __reserved), Feature::HwptAlloc},
                  Revision{IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, data_uptr), Feature::NestedHwpt},
                  Revision{IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, __reserved2),
                           Feature::FaultQueue});
// 6.6: type + data; 6.7: + out_capabilities (out_max_pasid_log2 took reserved bytes).
IOMMUFD_REVISIONS(iommu_hw_info,
                  Revision{IOMMUFD_OFFSETOFEND(iommu_hw_info, __reserved), Feature::HwInfo},
                  Revision{IOMMUFD_OFFSETOFEND(iommu_hw_info, out_capabilities),
                           Feature::DirtyTracking});
IOMMUFD_REVISIONS(iommu_hwpt_set_dirty_tracking,
                  Revision{sizeof(iommu_hwpt_set_dirty_tracking), Feature::DirtyTracking});
IOMMUFD_REVISIONS(iommu_hwpt_get_dirty_bitmap,
                  Revision{sizeof(iommu_hwpt_get_dirty_bitmap), Feature::DirtyTracking});
IOMMUFD_REVISIONS(iommu_hwpt_invalidate,
                  Revision{sizeof(iommu_hwpt_invalidate), Feature::HwptInvalidate});
IOMMUFD_REVISIONS(iommu_fault_alloc, Revision{sizeof(iommu_fault_alloc), Feature::FaultQueue});
IOMMUFD_REVISIONS(iommu_viommu_alloc, Revision{sizeof(iommu_viommu_alloc), Feature::Viommu});
IOMMUFD_REVISIONS(iommu_vdevice_alloc, Revision{sizeof(iommu_vdevice_alloc), Feature::Viommu});
IOMMUFD_REVISIONS(iommu_test_cmd, Revision{sizeof(iommu_test_cmd), Feature::Iommufd});

// VFIO cdev: argsz. 6.6: base layout; 6.15: + pasid.
IOMMUFD_REVISIONS(vfio_device_bind_iommufd,
                  Revision{sizeof(vfio_device_bind_iommufd), Feature::VfioDeviceCdev});
IOMMUFD_REVISIONS(vfio_device_attach_iommufd_pt_v615,
                  Revision{IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pt_id),
                           Feature::VfioDeviceCdev},
                  Revision{IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pasid),
                           Feature::PasidAttach});
IOMMUFD_REVISIONS(vfio_device_detach_iommufd_pt_v615,
                  Revision{IOMMUFD_OFFSETOFEND(vfio_device_detach_iommufd_pt_v615, flags),
                           Feature::VfioDeviceCdev},
                  Revision{IOMMUFD_OFFSETOFEND(vfio_device_detach_iommufd_pt_v615, pasid),
                           Feature::PasidAttach});

#undef IOMMUFD_REVISIONS

// The size to send for `object` when the call uses fields up to `fields_end`.
template <typename T>
ChosenSize size_for(const T& object, std::size_t fields_end) {
    return choose_size(object, std::span<const Revision>(Revisions<T>::list), fields_end);
}

}  // namespace iommufd_backend
