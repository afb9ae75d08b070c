#include "iommufd_backend/viommu.hpp"

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

Viommu Viommu::allocate(const IommuFd& iommufd, std::uint32_t dev_id, const Hwpt& parent,
                        std::uint32_t type) {
    if (parent.id() == 0) {
        throw base::Error("IOMMU_VIOMMU_ALLOC on a HWPT that was destroyed or moved from");
    }
    // The kernel's answer would be a bare EINVAL, the same as for a bad id.
    if (!parent.nest_parent()) {
        throw base::Error(
            "IOMMU_VIOMMU_ALLOC on hwpt {}: the parent is not a nesting parent (allocate it "
            "with PagingOptions::nest_parent)",
            parent.id());
    }
    iommu_viommu_alloc cmd{};
    cmd.type = type;
    cmd.dev_id = dev_id;
    cmd.hwpt_id = parent.id();
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads `cmd`, writes out_viommu_id.
    checked_ioctl(iommufd.fd(), IOMMU_VIOMMU_ALLOC, cmd, "IOMMU_VIOMMU_ALLOC", Feature::Viommu,
                  [&] {
                      return std::vector<Param>{
                          {"dev", dev_id}, {"parent hwpt", parent.id()}, {"type", type}};
                  });
    return Viommu(iommufd, cmd.out_viommu_id);
}

Viommu::Viommu(Viommu&& other) noexcept
    : iommufd_(std::move(other.iommufd_)), id_(std::exchange(other.id_, 0)) {}

Viommu& Viommu::operator=(Viommu&& other) noexcept {
    if (this != &other) {
        if (id_ != 0) iommufd_.destroy_noexcept(id_);
        iommufd_ = std::move(other.iommufd_);
        id_ = std::exchange(other.id_, 0);
    }
    return *this;
}

Viommu::~Viommu() {
    // Best effort: EBUSY while nested HWPTs use it; the kernel frees it with the iommufd.
    if (id_ != 0) iommufd_.destroy_noexcept(id_);
}

void Viommu::check_alive(const char* operation) const {
    if (id_ == 0) throw base::Error("{} on a vIOMMU that was destroyed or moved from", operation);
}

void Viommu::destroy() {
    check_alive("Viommu::destroy");
    iommufd_.destroy(id_, "viommu");
    id_ = 0;
}

std::uint32_t Viommu::invalidate(std::span<const iommu_viommu_arm_smmuv3_invalidate> commands) {
    check_alive("IOMMU_HWPT_INVALIDATE (viommu)");
    const auto count = static_cast<std::uint32_t>(commands.size());
    iommu_hwpt_invalidate cmd{};
    cmd.hwpt_id = id_;
    // The kernel reads entry_num * entry_len bytes from here during the call.
    cmd.data_uptr = reinterpret_cast<std::uintptr_t>(commands.data());
    cmd.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;
    cmd.entry_len = sizeof(iommu_viommu_arm_smmuv3_invalidate);
    cmd.entry_num = count;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    if (const int error = ioctl_errno(iommufd_.fd(), IOMMU_HWPT_INVALIDATE, &cmd); error != 0) {
        std::vector<Param> params{{"viommu", id_},
                                  hex_param("data_type", IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3),
                                  {"entry_len", sizeof(iommu_viommu_arm_smmuv3_invalidate)},
                                  {"entries", count}};
        // Same order as Hwpt::invalidate_raw: a missing feature first, then
        // partial completion (entry_num is how many were handled).
        std::string hint =
            missing_feature_hint(Feature::ArmSmmuV3Nesting, error, KernelVersion::running());
        if (!hint.empty()) {
            throw UnsupportedError("IOMMU_HWPT_INVALIDATE", error, std::move(params),
                                   Feature::ArmSmmuV3Nesting, std::move(hint));
        }
        throw InvalidateError(error, std::move(params), cmd.entry_num, count);
    }
    return cmd.entry_num;
}

std::uint32_t Viommu::add_vdevice(std::uint32_t dev_id, std::uint64_t virt_id) {
    check_alive("IOMMU_VDEVICE_ALLOC");
    iommu_vdevice_alloc cmd{};
    cmd.viommu_id = id_;
    cmd.dev_id = dev_id;
    cmd.virt_id = virt_id;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads `cmd`, writes out_vdevice_id.
    checked_ioctl(iommufd_.fd(), IOMMU_VDEVICE_ALLOC, cmd, "IOMMU_VDEVICE_ALLOC", Feature::Viommu,
                  [&] {
                      return std::vector<Param>{
                          {"viommu", id_}, {"dev", dev_id}, hex_param("virt_id", virt_id)};
                  });
    return cmd.out_vdevice_id;
}

}  // namespace iommufd_backend
