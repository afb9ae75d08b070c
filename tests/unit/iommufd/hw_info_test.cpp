// Decoding IOMMU_GET_HW_INFO data of known IOMMUs.
#include "iommufd_backend/hw_info.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {
namespace {

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& value) {
    std::vector<std::uint8_t> bytes(sizeof(T));
    std::memcpy(bytes.data(), &value, sizeof(T));
    return bytes;
}

// What QEMU 10's intel-iommu (caching-mode=on, intremap=on, legacy mode)
// reports; the lab's L1 kernel logged "DMAR: ... cap d2008c222f0686 ecap f00f4a".
constexpr std::uint64_t kQemuCap = 0xd2008c222f0686;
constexpr std::uint64_t kQemuEcap = 0xf00f4a;

TEST(VtdRegisters, DecodesQemuIntelIommu) {
    const VtdRegisters vtd{kQemuCap, kQemuEcap, 0};
    EXPECT_EQ(vtd.domains(), 65536u);  // ND = 6
    EXPECT_TRUE(vtd.caching_mode());
    EXPECT_FALSE(vtd.required_write_buffer_flush());
    EXPECT_TRUE(vtd.supports_39bit());
    EXPECT_TRUE(vtd.supports_48bit());
    EXPECT_FALSE(vtd.supports_57bit());
    EXPECT_EQ(vtd.max_guest_address_width(), 48u);
    EXPECT_EQ(vtd.fault_register_offset(), 0x220u);  // QEMU VTD_FRCD_REG_OFFSET
    EXPECT_EQ(vtd.fault_recording_registers(), 1u);
    EXPECT_TRUE(vtd.second_level_2m());
    EXPECT_TRUE(vtd.second_level_1g());
    EXPECT_TRUE(vtd.page_selective_invalidation());
    EXPECT_EQ(vtd.max_address_mask(), 18u);
    EXPECT_TRUE(vtd.write_draining());
    EXPECT_TRUE(vtd.read_draining());

    EXPECT_FALSE(vtd.coherent());
    EXPECT_TRUE(vtd.queued_invalidation());
    EXPECT_FALSE(vtd.device_tlb());
    EXPECT_TRUE(vtd.interrupt_remapping());
    EXPECT_FALSE(vtd.extended_interrupt_mode());
    EXPECT_TRUE(vtd.pass_through());
    EXPECT_EQ(vtd.iotlb_register_offset(), 0xf0u);
    EXPECT_EQ(vtd.max_handle_mask(), 0xfu);
    EXPECT_FALSE(vtd.scalable_mode());
    EXPECT_FALSE(vtd.nested_translation());
    EXPECT_FALSE(vtd.can_nest());  // QEMU's model has no nesting: hence the selftest profile
    EXPECT_FALSE(vtd.can_track_dirty());
}

TEST(VtdRegisters, ScalableModeWithNestingAndDirtyBits) {
    const std::uint64_t ecap = kQemuEcap | (1ull << 43) /* SMTS */ | (1ull << 26) /* NEST */ |
                               (1ull << 45) /* SLADS */ | (1ull << 48) /* SMPWCS */ |
                               (1ull << 40) /* PASID */ | (19ull << 35) /* PSS: 20-bit PASIDs */;
    const VtdRegisters vtd{kQemuCap, ecap, 0};
    EXPECT_TRUE(vtd.scalable_mode());
    EXPECT_TRUE(vtd.nested_translation());
    EXPECT_TRUE(vtd.can_nest());
    EXPECT_TRUE(vtd.can_track_dirty());
    EXPECT_TRUE(vtd.pasid());
    EXPECT_EQ(vtd.pasid_size(), 20u);
    // NEST without scalable mode is not enough for the kernel.
    EXPECT_FALSE((VtdRegisters{kQemuCap, kQemuEcap | (1ull << 26), 0}).can_nest());
}

TEST(HwInfo, VtdInfoFromTheKernelStruct) {
    iommu_hw_info_vtd data{};
    data.flags = IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17;
    data.cap_reg = kQemuCap;
    data.ecap_reg = kQemuEcap;
    const HwInfo info = HwInfo::from_raw(IOMMU_HW_INFO_TYPE_INTEL_VTD, bytes_of(data), 0, 0);
    EXPECT_EQ(info.type_name(), "Intel VT-d");
    ASSERT_TRUE(info.vtd());
    EXPECT_EQ(info.vtd()->cap, kQemuCap);
    EXPECT_EQ(info.vtd()->ecap, kQemuEcap);
    EXPECT_EQ(info.vtd()->flags, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17);
    EXPECT_FALSE(info.smmuv3());
    EXPECT_FALSE(info.selftest());
    EXPECT_FALSE(info.can_nest());
    EXPECT_FALSE(info.nested_data_type());
    EXPECT_FALSE(info.dirty_tracking());
    const std::string text = info.describe();
    EXPECT_NE(text.find("cap 0xd2008c222f0686 ecap 0xf00f4a"), std::string::npos) << text;
    EXPECT_NE(text.find("caching-mode"), std::string::npos) << text;
    EXPECT_NE(text.find("48-bit MGAW"), std::string::npos) << text;
}

TEST(HwInfo, ShortOlderLayoutIsZeroExtended) {
    // A kernel may report fewer bytes than we know: decode what is there.
    iommu_hw_info_vtd data{};
    data.cap_reg = kQemuCap;
    auto bytes = bytes_of(data);
    bytes.resize(16);  // flags, reserved, cap_reg
    const HwInfo info = HwInfo::from_raw(IOMMU_HW_INFO_TYPE_INTEL_VTD, bytes, 0, 0);
    EXPECT_EQ(info.vtd()->cap, kQemuCap);
    EXPECT_EQ(info.vtd()->ecap, 0u);
}

TEST(HwInfo, Smmuv3IdRegisters) {
    iommu_hw_info_arm_smmuv3 data{};
    data.idr[0] =
        (1u << 0) | (1u << 1) | (2u << 2) | (1u << 4) | (1u << 12) | (1u << 19) | (1u << 27);
    data.idr[1] = 16u | (20u << 6);
    data.idr[3] = (1u << 10);
    data.idr[5] = 5u | (1u << 4) | (1u << 6);
    data.aidr = 0x2;
    const HwInfo info = HwInfo::from_raw(IOMMU_HW_INFO_TYPE_ARM_SMMUV3, bytes_of(data),
                                         IOMMU_HW_CAP_DIRTY_TRACKING, 20);
    ASSERT_TRUE(info.smmuv3());
    const auto smmu = *info.smmuv3();
    EXPECT_TRUE(smmu.stage1());
    EXPECT_TRUE(smmu.stage2());
    EXPECT_EQ(smmu.table_formats(), 2u);
    EXPECT_TRUE(smmu.coherent());
    EXPECT_TRUE(smmu.asid16());
    EXPECT_TRUE(smmu.cd2l());
    EXPECT_EQ(smmu.stream_table_levels(), 1u);
    EXPECT_EQ(smmu.sid_bits(), 16u);
    EXPECT_EQ(smmu.ssid_bits(), 20u);
    EXPECT_TRUE(smmu.range_invalidation());
    EXPECT_EQ(smmu.output_address_size(), 48u);
    EXPECT_TRUE(smmu.granule_4k());
    EXPECT_FALSE(smmu.granule_16k());
    EXPECT_TRUE(smmu.granule_64k());
    EXPECT_TRUE(info.can_nest());
    EXPECT_EQ(info.nested_data_type(), std::optional<std::uint32_t>(IOMMU_HWPT_DATA_ARM_SMMUV3));
    EXPECT_TRUE(info.dirty_tracking());
    EXPECT_EQ(info.max_pasid_log2(), 20u);
    // Stage 2 only: no nesting.
    data.idr[0] &= ~2u;
    EXPECT_FALSE(HwInfo::from_raw(IOMMU_HW_INFO_TYPE_ARM_SMMUV3, bytes_of(data), 0, 0).can_nest());
}

TEST(HwInfo, SelftestMockDriver) {
    iommu_test_hw_info data{};
    data.test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL;
    const HwInfo info = HwInfo::from_raw(IOMMU_HW_INFO_TYPE_SELFTEST, bytes_of(data),
                                         IOMMU_HW_CAP_DIRTY_TRACKING, 0);
    EXPECT_EQ(info.type_name(), "iommufd selftest");
    ASSERT_TRUE(info.selftest());
    EXPECT_EQ(info.selftest()->test_reg, IOMMU_HW_INFO_SELFTEST_REGVAL);
    EXPECT_TRUE(info.can_nest());
    EXPECT_EQ(info.nested_data_type(), std::optional<std::uint32_t>(IOMMU_HWPT_DATA_SELFTEST));
    EXPECT_TRUE(info.dirty_tracking());
}

TEST(HwInfo, UnknownTypeIsNotGuessed) {
    const HwInfo info = HwInfo::from_raw(77, {1, 2, 3}, 0, 0);
    EXPECT_EQ(info.type_name(), "unknown");
    EXPECT_FALSE(info.vtd());
    EXPECT_FALSE(info.can_nest());
    EXPECT_EQ(info.data().size(), 3u);
}

}  // namespace
}  // namespace iommufd_backend
