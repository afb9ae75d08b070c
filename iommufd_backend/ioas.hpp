// An IO address space (IOMMU_IOAS_ALLOC): the IOVA -> process memory map that
// paging HWPTs and attached devices translate through. Destroyed with
// IOMMU_DESTROY when the Ioas goes away (or explicitly with destroy()).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "iommufd_backend/iommu_fd.hpp"

namespace iommufd_backend {

// An inclusive IOVA interval, as the uAPI spells it.
struct IovaRange {
    std::uint64_t start = 0;
    std::uint64_t last = 0;

    friend bool operator==(const IovaRange&, const IovaRange&) = default;
};

struct IovaRanges {
    std::vector<IovaRange> ranges;  // where mapping is allowed now
    std::uint64_t alignment = 0;    // IOVA and length must be multiples of this
};

// What DMA may do to a mapping.
enum class DmaAccess { Read, Write, ReadWrite };

class Ioas {
  public:
    static Ioas allocate(const IommuFd& iommufd);

    Ioas(Ioas&& other) noexcept;
    Ioas& operator=(Ioas&& other) noexcept;
    Ioas(const Ioas&) = delete;
    Ioas& operator=(const Ioas&) = delete;
    ~Ioas();

    std::uint32_t id() const noexcept { return id_; }
    const IommuFd& iommufd() const noexcept { return iommufd_; }

    // IOMMU_IOAS_MAP of `memory` at `iova` (nullopt: the kernel picks one).
    // Returns the IOVA. The pages are pinned while mapped (once a device or
    // domain needs them), so the memory must stay mapped in this process
    // until unmap().
    std::uint64_t map(std::span<std::uint8_t> memory, std::optional<std::uint64_t> iova,
                      DmaAccess access = DmaAccess::ReadWrite);
    // IOMMU_IOAS_MAP_FILE (Linux 6.13): map `length` bytes of memfd `fd` from
    // `offset`, without needing the memory mapped in this process.
    std::uint64_t map_file(int fd, std::uint64_t offset, std::uint64_t length,
                           std::optional<std::uint64_t> iova,
                           DmaAccess access = DmaAccess::ReadWrite);
    // IOMMU_IOAS_COPY: map at `iova` the same pages `source` maps at
    // [source_iova, +length) (which must be exactly one earlier map). No new pinning.
    std::uint64_t copy_from(const Ioas& source, std::uint64_t source_iova, std::uint64_t length,
                            std::optional<std::uint64_t> iova,
                            DmaAccess access = DmaAccess::ReadWrite);
    // IOMMU_IOAS_UNMAP of whole earlier maps covering [iova, +length); returns
    // the bytes unmapped.
    std::uint64_t unmap(std::uint64_t iova, std::uint64_t length);
    // Unmaps everything; returns the bytes unmapped.
    std::uint64_t unmap_all();

    // IOMMU_IOAS_IOVA_RANGES: the allowed ranges shrink as devices attach.
    IovaRanges iova_ranges() const;
    // IOMMU_IOAS_ALLOW_IOVAS: from now on refuse attaching anything that would
    // make these ranges unusable. An empty list clears the restriction.
    void allow_iovas(std::span<const IovaRange> ranges);

    // IOMMU_OPTION_HUGE_PAGES for this IOAS (default on).
    void set_huge_pages(bool enabled);
    bool huge_pages() const;

    // IOMMU_DESTROY now, reporting failure (EBUSY while a device or HWPT
    // uses it). Calling it twice throws base::Error.
    void destroy();

  private:
    Ioas(IommuFd iommufd, std::uint32_t id) : iommufd_(std::move(iommufd)), id_(id) {}
    void check_alive(const char* operation) const;

    IommuFd iommufd_;
    std::uint32_t id_ = 0;  // 0: destroyed or moved from (iommufd ids start at 1)
};

// IOMMU_IOAS_MAP_* flags for `access`.
std::uint32_t map_flags(DmaAccess access);

}  // namespace iommufd_backend
