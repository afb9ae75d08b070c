#include "iommufd_backend/ioctl_error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace iommufd_backend {

namespace {

std::string format_params(const std::vector<Param>& params) {
    std::string text;
    for (const auto& param : params) {
        if (!text.empty()) text += ", ";
        if (param.hex) {
            text += fmt::format("{} {:#x}", param.name, param.value);
        } else {
            text += fmt::format("{} {}", param.name, param.value);
        }
    }
    return text;
}

std::string compose(std::string_view ioctl, int error_number, const std::vector<Param>& params,
                    const std::string& hint) {
    std::string text(ioctl);
    if (!params.empty()) text += fmt::format(" ({})", format_params(params));
    text += fmt::format(" failed: {} [{}]", std::strerror(error_number), errno_name(error_number));
    if (!hint.empty()) text += ". " + hint;
    return text;
}

}  // namespace

std::string errno_name(int error_number) {
    // strerrorname_np (glibc 2.32+) returns a static string or nullptr.
    if (const char* name = ::strerrorname_np(error_number)) return name;
    return fmt::format("errno {}", error_number);
}

IoctlError::IoctlError(std::string_view ioctl, int error_number, std::vector<Param> params,
                       std::string hint)
    : base::SystemError(error_number, std::string(ioctl)),
      ioctl_(ioctl),
      params_(std::move(params)),
      hint_(std::move(hint)),
      message_(compose(ioctl_, error_number, params_, hint_)) {}

std::optional<std::uint64_t> IoctlError::param(std::string_view name) const {
    for (const auto& param : params_) {
        if (param.name == name) return param.value;
    }
    return std::nullopt;
}

InvalidateError::InvalidateError(int error_number, std::vector<Param> params, std::uint32_t handled,
                                 std::uint32_t requested, std::string hint)
    : IoctlError("IOMMU_HWPT_INVALIDATE", error_number, std::move(params),
                 hint.empty()
                     ? fmt::format("the kernel handled {} of {} entries; entry {} was refused",
                                   handled, requested, handled)
                     : std::move(hint)),
      handled_(handled),
      requested_(requested) {}

void throw_ioctl_error(std::string_view ioctl, int error_number, Feature feature,
                       std::vector<Param> params) {
    std::string hint = missing_feature_hint(feature, error_number, KernelVersion::running());
    if (!hint.empty()) {
        throw UnsupportedError(ioctl, error_number, std::move(params), feature, std::move(hint));
    }
    switch (error_number) {
        case EBADF:
            hint = "the file descriptor is not open";
            break;
        case ENOENT:
            hint = "no such object id in this iommufd, or nothing mapped there";
            break;
        case EBUSY:
            hint = "the object is still in use (a device or another object refers to it)";
            break;
        case E2BIG:
            hint = "the kernel found non-zero bytes past the struct size it knows";
            break;
        default:
            break;
    }
    throw IoctlError(ioctl, error_number, std::move(params), std::move(hint));
}

}  // namespace iommufd_backend
