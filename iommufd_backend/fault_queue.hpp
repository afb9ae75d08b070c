// An iommufd fault object (IOMMU_FAULT_QUEUE_ALLOC, Linux 6.11): I/O page
// faults of devices attached to HWPTs allocated with it arrive on its fd in
// groups; each group is answered with one page response.
//
// The fd never blocks (read returns what is queued, possibly nothing) and is
// pollable: EPOLLIN while faults are pending. Register fd() with epoll and
// call read_pending() when it fires.
#pragma once

#include <cstdint>
#include <vector>

#include "base/unique_fd.hpp"
#include "iommufd_backend/iommu_fd.hpp"
#include "iommufd_backend/uapi/iommufd_uapi.h"

namespace iommufd_backend {

// The faults of one page request group; the last one has
// IOMMU_PGFAULT_FLAGS_LAST_PAGE and the cookie to answer with.
struct FaultGroup {
    std::vector<iommu_hwpt_pgfault> faults;

    // The cookie of the last fault; base::Error for an empty group (which
    // read_pending() never returns, but a caller can build one).
    std::uint32_t cookie() const;
};

enum class PageResponse : std::uint32_t {
    Success = IOMMUFD_PAGE_RESP_SUCCESS,  // page tables fixed: the device retries
    Invalid = IOMMUFD_PAGE_RESP_INVALID,  // cannot fix: the device gives up
};

class FaultQueue {
  public:
    static FaultQueue allocate(const IommuFd& iommufd);

    FaultQueue(FaultQueue&& other) noexcept;
    FaultQueue& operator=(FaultQueue&& other) noexcept;
    FaultQueue(const FaultQueue&) = delete;
    FaultQueue& operator=(const FaultQueue&) = delete;
    ~FaultQueue();

    std::uint32_t id() const noexcept { return id_; }
    int fd() const noexcept { return fd_.get(); }  // -1 once destroy() ran

    // Reads every queued fault group that fits in `max_faults` records; empty
    // when nothing is pending. Never blocks.
    std::vector<FaultGroup> read_pending(std::size_t max_faults = 64);
    // Answers one group (by the cookie of its last fault).
    void respond(std::uint32_t cookie, PageResponse code);
    void respond(const FaultGroup& group, PageResponse code) { respond(group.cookie(), code); }

    // Closes the fd, then IOMMU_DESTROYs the object. The order is forced: the
    // fd holds a reference on the object, so with it open the kernel always
    // answers EBUSY, and a closed fd cannot be reopened. So when the destroy
    // is refused (EBUSY: a HWPT still uses the queue) the queue is closed for
    // good (read_pending()/respond() are base::Errors saying so) but still
    // owns the object: call destroy() again once the HWPTs are gone, or let
    // the destructor retry. A destroy() after a successful one is a base::Error.
    void destroy();

    // Splits raw fault records into groups at IOMMU_PGFAULT_FLAGS_LAST_PAGE
    // (a trailing incomplete group is kept as its own group). Pure; public for tests.
    static std::vector<FaultGroup> split_groups(const std::vector<iommu_hwpt_pgfault>& records);

  private:
    FaultQueue(IommuFd iommufd, std::uint32_t id, base::UniqueFd fd)
        : iommufd_(std::move(iommufd)), id_(id), fd_(std::move(fd)) {}
    void check_open(const char* operation) const;

    IommuFd iommufd_;
    std::uint32_t id_ = 0;
    base::UniqueFd fd_;
};

}  // namespace iommufd_backend
