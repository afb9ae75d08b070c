#include "iommufd_backend/fault_queue.hpp"

#include <unistd.h>

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

FaultQueue FaultQueue::allocate(const IommuFd& iommufd) {
    iommu_fault_alloc cmd{};
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: only writes the ids of a new fault object and fd into `cmd`.
    checked_ioctl(iommufd.fd(), IOMMU_FAULT_QUEUE_ALLOC, cmd, "IOMMU_FAULT_QUEUE_ALLOC",
                  Feature::FaultQueue, [] { return std::vector<Param>{}; });
    // The kernel installed a new O_CLOEXEC fd for us; we own it from here on.
    base::UniqueFd fd(static_cast<int>(cmd.out_fault_fd));
    return FaultQueue(iommufd, cmd.out_fault_id, std::move(fd));
}

FaultQueue::FaultQueue(FaultQueue&& other) noexcept
    : iommufd_(std::move(other.iommufd_)),
      id_(std::exchange(other.id_, 0)),
      fd_(std::move(other.fd_)) {}

FaultQueue& FaultQueue::operator=(FaultQueue&& other) noexcept {
    if (this != &other) {
        fd_.reset();
        if (id_ != 0) iommufd_.destroy_noexcept(id_);
        iommufd_ = std::move(other.iommufd_);
        id_ = std::exchange(other.id_, 0);
        fd_ = std::move(other.fd_);
    }
    return *this;
}

FaultQueue::~FaultQueue() {
    fd_.reset();
    if (id_ != 0) iommufd_.destroy_noexcept(id_);
}

std::uint32_t FaultGroup::cookie() const {
    if (faults.empty()) throw base::Error("FaultGroup::cookie of an empty fault group");
    return faults.back().cookie;
}

void FaultQueue::destroy() {
    if (id_ == 0)
        throw base::Error("FaultQueue::destroy on a fault queue that was destroyed or moved from");
    fd_.reset();
    const int error = iommufd_.destroy_noexcept(id_);
    if (error == 0) {
        id_ = 0;
        return;
    }
    if (error != EBUSY)
        throw_ioctl_error("IOMMU_DESTROY", error, Feature::Iommufd, {{"fault", id_}});
    throw IoctlError("IOMMU_DESTROY", error, {{"fault", id_}},
                     "a HWPT still uses the fault queue; its fd is closed now (the kernel requires "
                     "that), so it takes no more reads or responses: destroy the HWPTs, then call "
                     "destroy() again");
}

void FaultQueue::check_open(const char* operation) const {
    if (fd_.valid()) return;
    if (id_ != 0) {
        throw base::Error(
            "{} on fault queue {}: its fd was closed by a destroy() the kernel refused; "
            "destroy() it again once no HWPT uses it",
            operation, id_);
    }
    throw base::Error("{} on a fault queue that was destroyed or moved from", operation);
}

std::vector<FaultGroup> FaultQueue::split_groups(const std::vector<iommu_hwpt_pgfault>& records) {
    std::vector<FaultGroup> groups;
    FaultGroup current;
    for (const auto& record : records) {
        current.faults.push_back(record);
        if (record.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) {
            groups.push_back(std::move(current));
            current = {};
        }
    }
    if (!current.faults.empty()) groups.push_back(std::move(current));
    return groups;
}

std::vector<FaultGroup> FaultQueue::read_pending(std::size_t max_faults) {
    check_open("FaultQueue::read_pending");
    std::vector<iommu_hwpt_pgfault> records(max_faults == 0 ? 1 : max_faults);
    // Safe: the buffer holds records.size() whole records; the kernel writes
    // whole groups only and returns the byte count (0 when nothing is queued).
    const ssize_t bytes =
        ::read(fd_.get(), records.data(), records.size() * sizeof(iommu_hwpt_pgfault));
    if (bytes < 0) {
        // Saved before anything can allocate (the Param vector below) and clobber it.
        const int error = errno;
        if (error == EAGAIN) return {};
        // EINVAL: the first queued group has more faults than max_faults.
        throw IoctlError("read(fault fd)", error, {{"fault", id_}, {"max_faults", records.size()}},
                         error == EINVAL ? "the next fault group is larger than max_faults" : "");
    }
    records.resize(static_cast<std::size_t>(bytes) / sizeof(iommu_hwpt_pgfault));
    return split_groups(records);
}

void FaultQueue::respond(std::uint32_t cookie, PageResponse code) {
    check_open("FaultQueue::respond");
    iommu_hwpt_page_response response{};
    response.cookie = cookie;
    response.code = static_cast<std::uint32_t>(code);
    // Safe: writes one whole response record from a local struct.
    const ssize_t bytes = ::write(fd_.get(), &response, sizeof(response));
    if (bytes != static_cast<ssize_t>(sizeof(response))) {
        const int error = bytes < 0 ? errno : EIO;
        throw IoctlError("write(fault fd)", error, {{"fault", id_}, {"cookie", cookie}},
                         error == EINVAL ? "no outstanding fault group has this cookie" : "");
    }
}

}  // namespace iommufd_backend
