// The running kernel's version, parsed from uname(2), so that an error can say
// "this kernel is 6.12.117; the feature needs 6.13".
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace iommufd_backend {

struct KernelVersion {
    unsigned major = 0;
    unsigned minor = 0;
    unsigned patch = 0;

    // "6.12.117+deb12-amd64" -> 6.12.117, "6.13-rc1" -> 6.13.0; nullopt when the
    // text does not start with "<major>.<minor>".
    static std::optional<KernelVersion> parse(std::string_view release);
    // uname -r of this process's kernel, read once; nullopt if unparseable.
    static std::optional<KernelVersion> running();

    std::string to_string() const;  // "6.12.117", or "6.13" when patch is 0

    friend constexpr auto operator<=>(const KernelVersion&, const KernelVersion&) = default;
};

}  // namespace iommufd_backend
