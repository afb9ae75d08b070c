// A hardware page table (IOMMU_HWPT_ALLOC): an iommu_domain of the driver
// behind a bound device.
//  - paging: translates through an IOAS; may be a nesting parent
//    (NEST_PARENT), track dirty pages (DIRTY_TRACKING), report I/O page
//    faults to a FaultQueue (Linux 6.13; 6.11/6.12 accept faults only on nested);
//  - nested: a user-managed stage-1 table (driver data: selftest, VT-d
//    stage-1, SMMUv3) on top of a nesting parent (or of a vIOMMU for SMMUv3);
//    its caches are flushed with invalidate();
//  - KVM-managed: shares KVM's stage-2 table (our kernel-patches/, planned).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "iommufd_backend/fault_queue.hpp"
#include "iommufd_backend/hwpt_data.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

class Viommu;

struct PagingOptions {
    bool nest_parent = false;     // IOMMU_HWPT_ALLOC_NEST_PARENT
    bool dirty_tracking = false;  // IOMMU_HWPT_ALLOC_DIRTY_TRACKING
    bool pasid = false;           // IOMMU_HWPT_ALLOC_PASID (Linux 6.15)
};

class Hwpt {
  public:
    enum class Kind { Paging, Nested };

    // A paging HWPT over IOAS `ioas_id` for bound device `dev_id`. With
    // `faults`: Linux 6.13 (6.11/6.12 take a fault queue on nested HWPTs only).
    static Hwpt allocate_paging(const IommuFd& iommufd, std::uint32_t dev_id, std::uint32_t ioas_id,
                                PagingOptions options = {}, const FaultQueue* faults = nullptr);
    // A nested HWPT described by `data` on nesting parent `parent`; a parent
    // without nest_parent() is a base::Error before any ioctl.
    static Hwpt allocate_nested(const IommuFd& iommufd, std::uint32_t dev_id, const Hwpt& parent,
                                const HwptData& data, const FaultQueue* faults = nullptr);
    // A nested HWPT on a vIOMMU (SMMUv3 style, Linux 6.13).
    static Hwpt allocate_nested(const IommuFd& iommufd, std::uint32_t dev_id, const Viommu& viommu,
                                const HwptData& data, const FaultQueue* faults = nullptr);
    // A KVM-managed HWPT (IOMMU_HWPT_DATA_KVM, our kernel-patches/): IOVA =
    // GPA through KVM's stage-2 table of VM `vm_fd`; `ioas_id` supplies the
    // reserved regions.
    static Hwpt allocate_kvm_managed(const IommuFd& iommufd, std::uint32_t dev_id,
                                     std::uint32_t ioas_id, int vm_fd);

    Hwpt(Hwpt&& other) noexcept;
    Hwpt& operator=(Hwpt&& other) noexcept;
    Hwpt(const Hwpt&) = delete;
    Hwpt& operator=(const Hwpt&) = delete;
    ~Hwpt();

    std::uint32_t id() const noexcept { return id_; }
    Kind kind() const noexcept { return kind_; }
    bool nest_parent() const noexcept { return nest_parent_; }

    // IOMMU_HWPT_INVALIDATE (nested HWPTs) with an array in the driver's
    // format; returns how many entries the kernel handled (all of them). A
    // partial failure throws InvalidateError with handled() < requested().
    std::uint32_t invalidate(std::span<const iommu_hwpt_invalidate_selftest> entries);
    std::uint32_t invalidate(std::span<const iommu_hwpt_vtd_s1_invalidate> entries);
    std::uint32_t invalidate_raw(std::uint32_t data_type, std::uint32_t entry_len,
                                 std::span<const std::uint8_t> entries);

    // IOMMU_HWPT_SET_DIRTY_TRACKING on a paging HWPT allocated with dirty_tracking.
    void set_dirty_tracking(bool enabled);
    // IOMMU_HWPT_GET_DIRTY_BITMAP of [iova, +length) at `page_size` granularity
    // into `bitmap` (bit n = page n; at least dirty_bitmap_words() words),
    // clearing the dirty bits unless `keep_dirty`. The range must fully
    // enclose every IOPTE it touches (a 2 MiB IOMMU page is one IOPTE): one
    // that starts or ends inside a dirty IOPTE fails instead of reporting part
    // of it. After any failure the dirty state is unknown (some bits may have
    // been cleared unreported): the error says so, and the caller must treat
    // the range as dirty and restart tracking. (Documented since 6.12.118.)
    void read_dirty(std::uint64_t iova, std::uint64_t length, std::uint64_t page_size,
                    std::span<std::uint64_t> bitmap, bool keep_dirty = false);
    static std::uint64_t dirty_bitmap_words(std::uint64_t length, std::uint64_t page_size);

    // IOMMU_DESTROY now (EBUSY while attached or a parent of a nested HWPT).
    void destroy();

  private:
    Hwpt(IommuFd iommufd, std::uint32_t id, Kind kind, bool nest_parent)
        : iommufd_(std::move(iommufd)), id_(id), kind_(kind), nest_parent_(nest_parent) {}
    static Hwpt allocate(const IommuFd& iommufd, std::uint32_t dev_id, std::uint32_t pt_id,
                         const char* pt_kind, std::uint32_t flags, const HwptData* data,
                         const FaultQueue* faults, Kind kind);
    void check_alive(const char* operation) const;

    IommuFd iommufd_;
    std::uint32_t id_ = 0;
    Kind kind_ = Kind::Paging;
    bool nest_parent_ = false;
};

}  // namespace iommufd_backend
