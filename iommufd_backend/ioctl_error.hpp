// Errors of the iommufd/VFIO layer: which ioctl failed, its errno, and the
// object ids and ranges it was about; plus a hint when the kernel is known to
// lack the feature. All derive from base::SystemError (so callers can switch
// on error_number()) and read as one line:
//
//   IOMMU_IOAS_MAP_FILE (ioas 3, fd 7, start 0x0, length 0x200000) failed:
//   Inappropriate ioctl for device [ENOTTY]. IOMMU_IOAS_MAP_FILE (mapping a
//   memfd by file offset) needs Linux 6.13 or newer; this kernel is 6.12.117
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.hpp"
#include "iommufd_backend/feature.hpp"

namespace iommufd_backend {

// One named value of a failed call: an object id ("ioas 3") or a number
// ("iova 0x1000"; hex when `hex`).
struct Param {
    std::string_view name;
    std::uint64_t value = 0;
    bool hex = false;
};

// Builds a Param printed in hex (addresses, lengths, flags).
constexpr Param hex_param(std::string_view name, std::uint64_t value) {
    return {name, value, true};
}

class IoctlError : public base::SystemError {
  public:
    IoctlError(std::string_view ioctl, int error_number, std::vector<Param> params,
               std::string hint = {});

    const char* what() const noexcept override { return message_.c_str(); }
    const std::string& ioctl() const noexcept { return ioctl_; }
    const std::vector<Param>& params() const noexcept { return params_; }
    const std::string& hint() const noexcept { return hint_; }
    // The value of the param called `name`, if the call had one.
    std::optional<std::uint64_t> param(std::string_view name) const;

  private:
    std::string ioctl_;
    std::vector<Param> params_;
    std::string hint_;
    std::string message_;
};

// The running kernel lacks what the call needs (too old, or without our
// kernel-patches/): hint() names the feature and the version that has it.
class UnsupportedError : public IoctlError {
  public:
    UnsupportedError(std::string_view ioctl, int error_number, std::vector<Param> params,
                     Feature feature, std::string hint)
        : IoctlError(ioctl, error_number, std::move(params), std::move(hint)), feature_(feature) {}

    Feature feature() const noexcept { return feature_; }

  private:
    Feature feature_;
};

// IOMMU_HWPT_INVALIDATE handled only the first `handled` of `requested`
// entries; entry `handled` is the one the kernel refused.
class InvalidateError : public IoctlError {
  public:
    InvalidateError(int error_number, std::vector<Param> params, std::uint32_t handled,
                    std::uint32_t requested, std::string hint = {});

    std::uint32_t handled() const noexcept { return handled_; }
    std::uint32_t requested() const noexcept { return requested_; }

  private:
    std::uint32_t handled_;
    std::uint32_t requested_;
};

// "EINVAL", "ENOTTY", ... or "errno 123".
std::string errno_name(int error_number);

// Throws the right error for a failed ioctl `ioctl` that relies on `feature`:
// UnsupportedError when missing_feature_hint() finds the running kernel
// lacks it, IoctlError otherwise.
[[noreturn]] void throw_ioctl_error(std::string_view ioctl, int error_number, Feature feature,
                                    std::vector<Param> params);

}  // namespace iommufd_backend
