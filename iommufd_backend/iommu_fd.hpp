// An open /dev/iommu: the iommufd context every other object lives in.
//
// Copies share one fd (reference-counted): each object (Ioas, Hwpt, ...) keeps
// a copy, so the fd stays open until the last object that needs it is gone
// and an object can never issue IOMMU_DESTROY on a closed or reused fd number.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "iommufd_backend/ioctl_error.hpp"

namespace iommufd_backend {

class IommuFd {
  public:
    static constexpr const char* kDefaultPath = "/dev/iommu";

    // Opens the iommufd device; a missing device is reported as such (needs
    // CONFIG_IOMMUFD, Linux 6.2+).
    static IommuFd open(const std::string& path = kDefaultPath);
    // Takes an fd opened by someone else (e.g. passed in by a management stack).
    static IommuFd adopt(base::UniqueFd fd);

    int fd() const noexcept { return fd_ ? fd_->get() : -1; }
    bool valid() const noexcept { return fd() >= 0; }

    // IOMMU_DESTROY of any object; `kind` names it in the error ("ioas", "hwpt").
    void destroy(std::uint32_t id, const char* kind) const;
    // Same, returning the errno instead of throwing (for destructors).
    int destroy_noexcept(std::uint32_t id) const noexcept;

    // IOMMU_OPTION get/set. `object_id` 0 for global options.
    std::uint64_t get_option(std::uint32_t option, std::uint32_t object_id) const;
    void set_option(std::uint32_t option, std::uint32_t object_id, std::uint64_t value) const;
    // IOMMU_OPTION_RLIMIT_MODE: account pinned pages per process (true) or per
    // user (false, the default). Setting it needs CAP_SYS_RESOURCE and an
    // iommufd without objects yet (EBUSY otherwise): do it right after open().
    void set_rlimit_per_process(bool per_process) const;
    bool rlimit_per_process() const;

  private:
    explicit IommuFd(std::shared_ptr<base::UniqueFd> fd) : fd_(std::move(fd)) {}

    std::shared_ptr<base::UniqueFd> fd_;
};

}  // namespace iommufd_backend
