#include "iommufd_backend/hwpt.hpp"

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"
#include "iommufd_backend/viommu.hpp"

namespace iommufd_backend {

namespace {

Feature newest(Feature a, Feature b) {
    const auto& ia = feature_info(a);
    const auto& ib = feature_info(b);
    if (!ia.since) return a;  // our own patches: newer than any release
    if (!ib.since) return b;
    return *ia.since < *ib.since ? b : a;
}

}  // namespace

Hwpt Hwpt::allocate(const IommuFd& iommufd, std::uint32_t dev_id, std::uint32_t pt_id,
                    const char* pt_kind, std::uint32_t flags, const HwptData* data,
                    const FaultQueue* faults, Kind kind) {
    iommu_hwpt_alloc cmd{};
    cmd.flags = flags;
    cmd.dev_id = dev_id;
    cmd.pt_id = pt_id;
    std::size_t fields_end = IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, __reserved);
    if (data != nullptr) {
        cmd.data_type = data->type();
        cmd.data_len = static_cast<std::uint32_t>(data->bytes().size());
        // The kernel copies data_len bytes from here during the call only.
        cmd.data_uptr = reinterpret_cast<std::uintptr_t>(data->bytes().data());
        fields_end = IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, data_uptr);
    }
    if (faults != nullptr) {
        cmd.flags |= IOMMU_HWPT_FAULT_ID_VALID;
        cmd.fault_id = faults->id();
        fields_end = IOMMUFD_OFFSETOFEND(iommu_hwpt_alloc, fault_id);
    }
    const ChosenSize size = size_for(cmd, fields_end);
    cmd.size = size.size;

    // The feature this call depends on: the struct revision, the flags, the data type.
    Feature feature = newest(Feature::HwptAlloc, size.feature);
    if (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) feature = newest(feature, Feature::NestedHwpt);
    if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) feature = newest(feature, Feature::DirtyTracking);
    if (flags & IOMMU_HWPT_ALLOC_PASID) feature = newest(feature, Feature::PasidAttach);
    if (data != nullptr) feature = newest(feature, data->feature());
    if (faults != nullptr && kind == Kind::Paging)
        feature = newest(feature, Feature::PagingHwptFaults);

    // Safe: reads `cmd` and data_len bytes of live HwptData; writes out_hwpt_id.
    checked_ioctl(iommufd.fd(), IOMMU_HWPT_ALLOC, cmd, "IOMMU_HWPT_ALLOC", feature, [&] {
        std::vector<Param> params{{"dev", dev_id}, {pt_kind, pt_id}, hex_param("flags", cmd.flags)};
        if (data != nullptr) {
            params.push_back(hex_param("data_type", data->type()));
            params.push_back({"data_len", data->bytes().size()});
        }
        if (faults != nullptr) params.push_back({"fault", faults->id()});
        return params;
    });
    return Hwpt(iommufd, cmd.out_hwpt_id, kind, (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) != 0);
}

Hwpt Hwpt::allocate_paging(const IommuFd& iommufd, std::uint32_t dev_id, std::uint32_t ioas_id,
                           PagingOptions options, const FaultQueue* faults) {
    std::uint32_t flags = 0;
    if (options.nest_parent) flags |= IOMMU_HWPT_ALLOC_NEST_PARENT;
    if (options.dirty_tracking) flags |= IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    if (options.pasid) flags |= IOMMU_HWPT_ALLOC_PASID;
    return allocate(iommufd, dev_id, ioas_id, "ioas", flags, nullptr, faults, Kind::Paging);
}

Hwpt Hwpt::allocate_nested(const IommuFd& iommufd, std::uint32_t dev_id, const Hwpt& parent,
                           const HwptData& data, const FaultQueue* faults) {
    parent.check_alive("IOMMU_HWPT_ALLOC (nested)");
    // The kernel's answer would be a bare EINVAL, the same as for a bad id.
    if (!parent.nest_parent()) {
        throw base::Error(
            "IOMMU_HWPT_ALLOC (nested, {}) on hwpt {}: the parent is not a nesting parent "
            "(allocate it with PagingOptions::nest_parent)",
            data.name(), parent.id());
    }
    return allocate(iommufd, dev_id, parent.id(), "parent hwpt", 0, &data, faults, Kind::Nested);
}

Hwpt Hwpt::allocate_nested(const IommuFd& iommufd, std::uint32_t dev_id, const Viommu& viommu,
                           const HwptData& data, const FaultQueue* faults) {
    viommu.check_alive("IOMMU_HWPT_ALLOC (nested on a vIOMMU)");
    return allocate(iommufd, dev_id, viommu.id(), "viommu", 0, &data, faults, Kind::Nested);
}

Hwpt Hwpt::allocate_kvm_managed(const IommuFd& iommufd, std::uint32_t dev_id, std::uint32_t ioas_id,
                                int vm_fd) {
    const HwptData data = HwptData::kvm(vm_fd);
    return allocate(iommufd, dev_id, ioas_id, "ioas", 0, &data, nullptr, Kind::Paging);
}

Hwpt::Hwpt(Hwpt&& other) noexcept
    : iommufd_(std::move(other.iommufd_)),
      id_(std::exchange(other.id_, 0)),
      kind_(other.kind_),
      nest_parent_(other.nest_parent_) {}

Hwpt& Hwpt::operator=(Hwpt&& other) noexcept {
    if (this != &other) {
        if (id_ != 0) iommufd_.destroy_noexcept(id_);
        iommufd_ = std::move(other.iommufd_);
        id_ = std::exchange(other.id_, 0);
        kind_ = other.kind_;
        nest_parent_ = other.nest_parent_;
    }
    return *this;
}

Hwpt::~Hwpt() {
    // Best effort: EBUSY while a device is attached; the kernel frees it with the iommufd.
    if (id_ != 0) iommufd_.destroy_noexcept(id_);
}

void Hwpt::check_alive(const char* operation) const {
    if (id_ == 0) throw base::Error("{} on a HWPT that was destroyed or moved from", operation);
}

void Hwpt::destroy() {
    check_alive("Hwpt::destroy");
    iommufd_.destroy(id_, "hwpt");
    id_ = 0;
}

std::uint32_t Hwpt::invalidate_raw(std::uint32_t data_type, std::uint32_t entry_len,
                                   std::span<const std::uint8_t> entries) {
    check_alive("IOMMU_HWPT_INVALIDATE");
    const auto count = entry_len == 0 ? 0 : static_cast<std::uint32_t>(entries.size() / entry_len);
    if (entry_len != 0 && entries.size() % entry_len != 0) {
        throw base::Error(
            "IOMMU_HWPT_INVALIDATE (hwpt {}): {} bytes is not a whole number of {}-byte entries",
            id_, entries.size(), entry_len);
    }
    iommu_hwpt_invalidate cmd{};
    cmd.hwpt_id = id_;
    // The kernel reads entry_num * entry_len bytes from here during the call.
    cmd.data_uptr = reinterpret_cast<std::uintptr_t>(entries.data());
    cmd.data_type = data_type;
    cmd.entry_len = entry_len;
    cmd.entry_num = count;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    if (const int error = ioctl_errno(iommufd_.fd(), IOMMU_HWPT_INVALIDATE, &cmd); error != 0) {
        std::vector<Param> params{{"hwpt", id_},
                                  hex_param("data_type", data_type),
                                  {"entry_len", entry_len},
                                  {"entries", count}};
        std::string hint =
            missing_feature_hint(Feature::HwptInvalidate, error, KernelVersion::running());
        if (!hint.empty()) {
            throw UnsupportedError("IOMMU_HWPT_INVALIDATE", error, std::move(params),
                                   Feature::HwptInvalidate, std::move(hint));
        }
        // ENOENT: the id names no nested HWPT (a paging one, whose caches the
        // kernel flushes itself, comes back the same); no entry was looked at.
        if (error == ENOENT) {
            throw InvalidateError(error, std::move(params), 0, count,
                                  "no nested HWPT has this id (paging HWPTs take no "
                                  "invalidation from user space)");
        }
        // On failure entry_num says how many entries were handled before the bad one.
        throw InvalidateError(error, std::move(params), cmd.entry_num, count);
    }
    return cmd.entry_num;
}

namespace {

// The bytes of an array of trivially copyable invalidation entries.
template <typename Entry>
std::span<const std::uint8_t> entry_bytes(std::span<const Entry> entries) {
    // Safe: Entry is a trivially copyable uAPI struct; reading its object
    // representation as bytes is allowed.
    return {reinterpret_cast<const std::uint8_t*>(entries.data()), entries.size_bytes()};
}

}  // namespace

std::uint32_t Hwpt::invalidate(std::span<const iommu_hwpt_invalidate_selftest> entries) {
    return invalidate_raw(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
                          sizeof(iommu_hwpt_invalidate_selftest), entry_bytes(entries));
}

std::uint32_t Hwpt::invalidate(std::span<const iommu_hwpt_vtd_s1_invalidate> entries) {
    return invalidate_raw(IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, sizeof(iommu_hwpt_vtd_s1_invalidate),
                          entry_bytes(entries));
}

void Hwpt::set_dirty_tracking(bool enabled) {
    check_alive("IOMMU_HWPT_SET_DIRTY_TRACKING");
    iommu_hwpt_set_dirty_tracking cmd{};
    cmd.flags = enabled ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0;
    cmd.hwpt_id = id_;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: only flips a flag of our HWPT; no user memory beyond `cmd`.
    checked_ioctl(iommufd_.fd(), IOMMU_HWPT_SET_DIRTY_TRACKING, cmd,
                  "IOMMU_HWPT_SET_DIRTY_TRACKING", Feature::DirtyTracking, [&] {
                      return std::vector<Param>{{"hwpt", id_}, {"enable", enabled ? 1u : 0u}};
                  });
}

std::uint64_t Hwpt::dirty_bitmap_words(std::uint64_t length, std::uint64_t page_size) {
    if (page_size == 0) return 0;
    const std::uint64_t pages = length / page_size + (length % page_size != 0 ? 1 : 0);
    return pages / 64 + (pages % 64 != 0 ? 1 : 0);
}

void Hwpt::read_dirty(std::uint64_t iova, std::uint64_t length, std::uint64_t page_size,
                      std::span<std::uint64_t> bitmap, bool keep_dirty) {
    check_alive("IOMMU_HWPT_GET_DIRTY_BITMAP");
    if (bitmap.size() < dirty_bitmap_words(length, page_size)) {
        throw base::Error(
            "IOMMU_HWPT_GET_DIRTY_BITMAP (hwpt {}): bitmap of {} words is too small for "
            "{:#x} bytes at {:#x}-byte pages ({} words needed)",
            id_, bitmap.size(), length, page_size, dirty_bitmap_words(length, page_size));
    }
    iommu_hwpt_get_dirty_bitmap cmd{};
    cmd.hwpt_id = id_;
    cmd.flags = keep_dirty ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0;
    cmd.iova = iova;
    cmd.length = length;
    cmd.page_size = page_size;
    // The kernel sets bits in at most dirty_bitmap_words() words from here (checked above).
    cmd.data = reinterpret_cast<std::uintptr_t>(bitmap.data());
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: writes only the bitmap words checked above.
    const int error = ioctl_errno(iommufd_.fd(), IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
    if (error == 0) return;
    if (error == EBADF || error == ENOENT) {
        // No such iommufd or HWPT: nothing was read, the dirty state is untouched.
        throw_ioctl_error("IOMMU_HWPT_GET_DIRTY_BITMAP", error, Feature::DirtyTracking,
                          {{"hwpt", id_}});
    }
    std::vector<Param> params{{"hwpt", id_},
                              hex_param("iova", iova),
                              hex_param("length", length),
                              hex_param("page_size", page_size)};
    std::string hint =
        missing_feature_hint(Feature::DirtyTracking, error, KernelVersion::running());
    if (!hint.empty()) {
        throw UnsupportedError("IOMMU_HWPT_GET_DIRTY_BITMAP", error, std::move(params),
                               Feature::DirtyTracking, std::move(hint));
    }
    // The uAPI (6.12.118's doc) makes any failure, including a range that cuts
    // through a dirty IOPTE, leave the dirty state unknown: bits may already
    // have been cleared without being reported.
    throw IoctlError("IOMMU_HWPT_GET_DIRTY_BITMAP", error, std::move(params),
                     "the dirty state is unknown now: treat the range as dirty and restart "
                     "tracking (the range must also fully enclose every IOPTE)");
}

}  // namespace iommufd_backend
