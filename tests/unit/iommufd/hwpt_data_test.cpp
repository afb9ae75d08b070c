// The bytes HwptData hands IOMMU_HWPT_ALLOC (data_uptr/data_len), checked
// byte by byte against the uAPI layouts as the kernel headers document them:
// the kernel copies exactly these bytes (iommu_copy_struct_from_user), so a
// field at the wrong offset or in the wrong byte order is a wrong page table.
#include "iommufd_backend/hwpt_data.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {
namespace {

std::vector<std::uint8_t> bytes_of(const HwptData& data) {
    return {data.bytes().begin(), data.bytes().end()};
}

// struct iommu_hwpt_vtd_s1 (include/uapi/linux/iommufd.h): u64 flags, u64
// pgtbl_addr, u32 addr_width, u32 __reserved; native endian (the VT-d
// driver reads it as plain u64/u32).
static_assert(sizeof(iommu_hwpt_vtd_s1) == 24);
static_assert(offsetof(iommu_hwpt_vtd_s1, flags) == 0);
static_assert(offsetof(iommu_hwpt_vtd_s1, pgtbl_addr) == 8);
static_assert(offsetof(iommu_hwpt_vtd_s1, addr_width) == 16);
static_assert(offsetof(iommu_hwpt_vtd_s1, __reserved) == 20);
// Native endian is little endian on every host VT-d exists on (x86-64), and
// the expected bytes below are spelled little endian.
static_assert(std::endian::native == std::endian::little);

TEST(HwptData, VtdStage1EncodesTheUapiStruct) {
    const HwptData data =
        HwptData::vtd_s1(0x0000001234567000ull, 48, IOMMU_VTD_S1_SRE | IOMMU_VTD_S1_WPE);
    EXPECT_EQ(data.type(), 1u);  // IOMMU_HWPT_DATA_VTD_S1
    EXPECT_EQ(data.type(), static_cast<std::uint32_t>(IOMMU_HWPT_DATA_VTD_S1));
    EXPECT_EQ(data.name(), "IOMMU_HWPT_DATA_VTD_S1");
    EXPECT_EQ(data.feature(), Feature::NestedHwpt);
    const std::vector<std::uint8_t> expected{
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // flags: SRE (bit 0) | WPE (bit 2)
        0x00, 0x70, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00,  // pgtbl_addr 0x1234567000
        0x30, 0x00, 0x00, 0x00,                          // addr_width 48
        0x00, 0x00, 0x00, 0x00,                          // __reserved, must be 0
    };
    EXPECT_EQ(bytes_of(data), expected);
}

TEST(HwptData, VtdStage1FlagBitsAreTheUapiOnes) {
    // The VT-d driver refuses unknown flag bits: these three are all 6.12 knows.
    EXPECT_EQ(IOMMU_VTD_S1_SRE, 1u << 0);
    EXPECT_EQ(IOMMU_VTD_S1_EAFE, 1u << 1);
    EXPECT_EQ(IOMMU_VTD_S1_WPE, 1u << 2);
    const HwptData data = HwptData::vtd_s1(0, 57, IOMMU_VTD_S1_EAFE);
    EXPECT_EQ(bytes_of(data)[0], 0x02);
    EXPECT_EQ(bytes_of(data)[16], 57);
}

// struct iommu_viommu_arm_smmuv3_invalidate / iommu_hwpt_arm_smmuv3 (Linux
// 6.13): __aligned_le64 ste[2], little endian whatever the host.
static_assert(sizeof(iommu_hwpt_arm_smmuv3) == 16);
static_assert(offsetof(iommu_hwpt_arm_smmuv3, ste) == 0);

TEST(HwptData, ArmSmmuV3StoresTheSteWordsLittleEndian) {
    const HwptData data = HwptData::arm_smmuv3(0x0123456789abcdefull, 0xfedcba9876543210ull);
    EXPECT_EQ(data.type(), 2u);  // IOMMU_HWPT_DATA_ARM_SMMUV3
    EXPECT_EQ(data.type(), static_cast<std::uint32_t>(IOMMU_HWPT_DATA_ARM_SMMUV3));
    EXPECT_EQ(data.name(), "IOMMU_HWPT_DATA_ARM_SMMUV3");
    EXPECT_EQ(data.feature(), Feature::ArmSmmuV3Nesting);
    const std::vector<std::uint8_t> expected{
        0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,  // ste[0]
        0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,  // ste[1]
    };
    EXPECT_EQ(bytes_of(data), expected);
}

TEST(HwptData, SelftestCarriesTheIotlbValue) {
    static_assert(sizeof(iommu_hwpt_selftest) == 4);
    const HwptData data = HwptData::selftest(IOMMU_TEST_IOTLB_DEFAULT);
    EXPECT_EQ(data.type(), static_cast<std::uint32_t>(IOMMU_HWPT_DATA_SELFTEST));
    EXPECT_EQ(data.feature(), Feature::NestedHwpt);
    const std::vector<std::uint8_t> expected{0xef, 0xbe, 0xad, 0x0b};  // 0x0badbeef
    EXPECT_EQ(IOMMU_TEST_IOTLB_DEFAULT, 0x0badbeefu);
    EXPECT_EQ(bytes_of(data), expected);
}

TEST(HwptData, KvmCarriesTheVmFdAndZeroFlags) {
    static_assert(sizeof(iommu_hwpt_kvm_info) == 8);
    const HwptData data = HwptData::kvm(0x1234);
    EXPECT_EQ(data.type(), 0x4b564d00u);  // "KVM\0", outside upstream's range
    EXPECT_EQ(data.feature(), Feature::KvmManagedHwpt);
    const std::vector<std::uint8_t> expected{0x34, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    EXPECT_EQ(bytes_of(data), expected);
}

// The VT-d stage-1 invalidation entry Hwpt::invalidate() sends as an array
// of entry_len = 24: u64 addr, u64 npages, u32 flags, u32 __reserved.
static_assert(sizeof(iommu_hwpt_vtd_s1_invalidate) == 24);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, addr) == 0);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, npages) == 8);
static_assert(offsetof(iommu_hwpt_vtd_s1_invalidate, flags) == 16);
static_assert(IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 == 0);
static_assert(IOMMU_VTD_INV_FLAGS_LEAF == 1);

}  // namespace
}  // namespace iommufd_backend
