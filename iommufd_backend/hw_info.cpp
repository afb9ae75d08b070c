#include "iommufd_backend/hw_info.hpp"

#include <fmt/format.h>

#include <cstring>

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

namespace {

// Copies the leading bytes of `data` into a zeroed T (the kernel may report
// a shorter, older layout).
template <typename T>
T read_prefix(std::span<const std::uint8_t> data) {
    T value{};
    std::memcpy(&value, data.data(), std::min(sizeof(T), data.size()));
    return value;
}

constexpr std::size_t kDataBuffer = 256;  // larger than any known info struct

}  // namespace

HwInfo HwInfo::query(const IommuFd& iommufd, std::uint32_t dev_id) {
    std::vector<std::uint8_t> buffer(kDataBuffer);
    iommu_hw_info cmd{};
    cmd.dev_id = dev_id;
    cmd.data_len = static_cast<std::uint32_t>(buffer.size());
    // The kernel writes at most data_len bytes here (zeroing the rest of it).
    cmd.data_uptr = reinterpret_cast<std::uintptr_t>(buffer.data());
    // Up to out_capabilities: the outputs we read.
    cmd.size = size_for(cmd, IOMMUFD_OFFSETOFEND(iommu_hw_info, out_capabilities)).size;
    // Safe: the kernel fills `cmd` and at most data_len bytes of `buffer`.
    checked_ioctl(iommufd.fd(), IOMMU_GET_HW_INFO, cmd, "IOMMU_GET_HW_INFO", Feature::HwInfo, [&] {
        return std::vector<Param>{{"dev", dev_id}};
    });
    buffer.resize(std::min<std::size_t>(cmd.data_len, buffer.size()));
    return HwInfo(cmd.out_data_type, std::move(buffer), cmd.out_capabilities,
                  cmd.out_max_pasid_log2);
}

HwInfo HwInfo::from_raw(std::uint32_t type, std::vector<std::uint8_t> data,
                        std::uint64_t capabilities, std::uint8_t max_pasid_log2) {
    return HwInfo(type, std::move(data), capabilities, max_pasid_log2);
}

std::string_view HwInfo::type_name() const {
    switch (type_) {
        case IOMMU_HW_INFO_TYPE_NONE:
            return "none";
        case IOMMU_HW_INFO_TYPE_INTEL_VTD:
            return "Intel VT-d";
        case IOMMU_HW_INFO_TYPE_ARM_SMMUV3:
            return "ARM SMMUv3";
        case IOMMU_HW_INFO_TYPE_SELFTEST:
            return "iommufd selftest";
        default:
            return "unknown";
    }
}

std::optional<VtdRegisters> HwInfo::vtd() const {
    if (type_ != IOMMU_HW_INFO_TYPE_INTEL_VTD) return std::nullopt;
    const auto info = read_prefix<iommu_hw_info_vtd>(data_);
    return VtdRegisters{info.cap_reg, info.ecap_reg, info.flags};
}

std::optional<SmmuV3Registers> HwInfo::smmuv3() const {
    if (type_ != IOMMU_HW_INFO_TYPE_ARM_SMMUV3) return std::nullopt;
    const auto info = read_prefix<iommu_hw_info_arm_smmuv3>(data_);
    SmmuV3Registers registers;
    for (std::size_t i = 0; i < registers.idr.size(); ++i) registers.idr[i] = info.idr[i];
    registers.iidr = info.iidr;
    registers.aidr = info.aidr;
    return registers;
}

std::optional<SelftestHwInfo> HwInfo::selftest() const {
    if (type_ != IOMMU_HW_INFO_TYPE_SELFTEST) return std::nullopt;
    const auto info = read_prefix<iommu_test_hw_info>(data_);
    return SelftestHwInfo{info.flags, info.test_reg};
}

bool HwInfo::dirty_tracking() const {
    return (capabilities_ & IOMMU_HW_CAP_DIRTY_TRACKING) != 0;
}

bool HwInfo::can_nest() const {
    if (const auto registers = vtd()) return registers->can_nest();
    if (const auto registers = smmuv3()) return registers->can_nest();
    return type_ == IOMMU_HW_INFO_TYPE_SELFTEST;
}

std::optional<std::uint32_t> HwInfo::nested_data_type() const {
    if (!can_nest()) return std::nullopt;
    switch (type_) {
        case IOMMU_HW_INFO_TYPE_INTEL_VTD:
            return IOMMU_HWPT_DATA_VTD_S1;
        case IOMMU_HW_INFO_TYPE_ARM_SMMUV3:
            return IOMMU_HWPT_DATA_ARM_SMMUV3;
        case IOMMU_HW_INFO_TYPE_SELFTEST:
            return IOMMU_HWPT_DATA_SELFTEST;
        default:
            return std::nullopt;
    }
}

std::string HwInfo::describe() const {
    std::string text =
        fmt::format("{} (type {:#x}), capabilities {:#x}{}, max PASID bits {}, nesting {}",
                    type_name(), type_, capabilities_, dirty_tracking() ? " (dirty tracking)" : "",
                    max_pasid_log2_, can_nest() ? "yes" : "no");
    if (const auto registers = vtd()) text += "; " + registers->describe();
    if (const auto registers = smmuv3()) text += "; " + registers->describe();
    if (const auto info = selftest()) text += fmt::format("; test_reg {:#x}", info->test_reg);
    return text;
}

}  // namespace iommufd_backend
