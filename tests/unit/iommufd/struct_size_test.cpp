// The size/argsz each call sends, per the revision rule in struct_size.hpp.
#include <gtest/gtest.h>

#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {
namespace {

TEST(StructLayout, MatchesTheKernelAbi) {
    // Sizes the kernel's ioctl table and copy_struct_from_user rely on.
    EXPECT_EQ(sizeof(iommu_ioas_map), 40u);
    EXPECT_EQ(sizeof(iommu_hwpt_alloc), 48u);
    EXPECT_EQ(sizeof(iommu_hw_info), 40u);
    EXPECT_EQ(sizeof(iommu_hwpt_invalidate), 32u);
    EXPECT_EQ(sizeof(iommu_hwpt_pgfault), 40u);
    EXPECT_EQ(sizeof(iommu_hwpt_page_response), 8u);
    EXPECT_EQ(sizeof(iommu_fault_alloc), 16u);
    EXPECT_EQ(sizeof(iommu_ioas_map_file), 40u);
    EXPECT_EQ(sizeof(iommu_hw_info_vtd), 24u);
    EXPECT_EQ(sizeof(iommu_hw_info_arm_smmuv3), 40u);
    EXPECT_EQ(sizeof(vfio_device_bind_iommufd), 16u);
    EXPECT_EQ(sizeof(vfio_device_attach_iommufd_pt), 12u);
    EXPECT_EQ(sizeof(vfio_device_attach_iommufd_pt_v615), 16u);
    // The 6.15 layouts only append to the 6.12 ones.
    EXPECT_EQ(offsetof(vfio_device_attach_iommufd_pt_v615, pt_id),
              offsetof(vfio_device_attach_iommufd_pt, pt_id));
}

TEST(StructSize, PagingHwptUsesThe66Layout) {
    iommu_hwpt_alloc cmd{};
    cmd.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
    cmd.dev_id = 1;
    cmd.pt_id = 2;
    const auto chosen = size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, __reserved));
    EXPECT_EQ(chosen.size, 24u);  // a 6.6 kernel's whole struct
    EXPECT_EQ(chosen.feature, Feature::HwptAlloc);
}

TEST(StructSize, NestedHwptNeedsThe67Layout) {
    iommu_hwpt_alloc cmd{};
    cmd.dev_id = 1;
    cmd.pt_id = 2;
    cmd.data_type = 0xdead;
    cmd.data_len = 4;
    cmd.data_uptr = 0x1000;
    const auto chosen = size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, data_uptr));
    EXPECT_EQ(chosen.size, 40u);
    EXPECT_EQ(chosen.feature, Feature::NestedHwpt);
}

TEST(StructSize, FaultIdNeedsThe611Layout) {
    iommu_hwpt_alloc cmd{};
    cmd.flags = IOMMU_HWPT_FAULT_ID_VALID;
    cmd.fault_id = 0;  // a zero id still is a field the call uses
    const auto chosen = size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, fault_id));
    EXPECT_EQ(chosen.size, 48u);
    EXPECT_EQ(chosen.feature, Feature::FaultQueue);
}

TEST(StructSize, UndeclaredNonZeroFieldStillReachesTheKernel) {
    iommu_hwpt_alloc cmd{};
    cmd.fault_id = 9;  // set but not declared: the size must still cover it
    EXPECT_EQ(size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, __reserved)).size, 48u);
}

TEST(StructSize, OutputsCountAsUsedFields) {
    iommu_hw_info cmd{};
    cmd.dev_id = 1;
    EXPECT_EQ(size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hw_info, data_uptr)).size, 32u);  // 6.6
    EXPECT_EQ(size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hw_info, out_capabilities)).size, 40u);
}

TEST(StructSize, VfioPasidAttachNeedsThe615Layout) {
    vfio_device_attach_iommufd_pt_v615 cmd{};
    cmd.pt_id = 3;
    EXPECT_EQ(size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pt_id)).size,
              12u);
    cmd.flags = VFIO_DEVICE_ATTACH_PASID;
    cmd.pasid = 0;  // PASID 0 is valid: declared, not detected from bytes
    const auto chosen =
        size_for(cmd, IOMMUFD_OFFSETOFEND(vfio_device_attach_iommufd_pt_v615, pasid));
    EXPECT_EQ(chosen.size, 16u);
    EXPECT_EQ(chosen.feature, Feature::PasidAttach);
}

TEST(StructSize, SizeFieldItselfIsIgnored) {
    iommu_ioas_alloc cmd{};
    cmd.size = 0xffffffff;
    EXPECT_EQ(nonzero_end(cmd), 0u);
    EXPECT_EQ(size_for(cmd, 0).size, sizeof(iommu_ioas_alloc));
}

TEST(StructSize, BytesPastTheNewestRevisionAreABug) {
    struct Grown {
        std::uint32_t size;
        std::uint32_t a;
        std::uint32_t b;
    } grown{};
    grown.b = 1;
    const Revision revisions[] = {{8, Feature::Iommufd}};
    EXPECT_THROW(choose_size(grown, std::span<const Revision>(revisions), 8), std::logic_error);
}

}  // namespace
}  // namespace iommufd_backend
