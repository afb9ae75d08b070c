#include "iommufd_backend/kernel_version.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <charconv>

namespace iommufd_backend {

namespace {

// Reads decimal digits at the front of `text`, advancing it.
std::optional<unsigned> take_number(std::string_view& text) {
    unsigned value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end == text.data()) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    return value;
}

}  // namespace

std::optional<KernelVersion> KernelVersion::parse(std::string_view release) {
    KernelVersion version;
    const auto major = take_number(release);
    if (!major || release.empty() || release.front() != '.') return std::nullopt;
    release.remove_prefix(1);
    const auto minor = take_number(release);
    if (!minor) return std::nullopt;
    version.major = *major;
    version.minor = *minor;
    if (!release.empty() && release.front() == '.') {
        release.remove_prefix(1);
        if (const auto patch = take_number(release)) version.patch = *patch;
    }
    return version;
}

std::optional<KernelVersion> KernelVersion::running() {
    static const std::optional<KernelVersion> cached = [] {
        utsname names{};
        // uname(2) only fills the caller's struct; it cannot fail with a valid pointer.
        if (::uname(&names) != 0) return std::optional<KernelVersion>();
        return parse(names.release);
    }();
    return cached;
}

std::string KernelVersion::to_string() const {
    if (patch == 0) return fmt::format("{}.{}", major, minor);
    return fmt::format("{}.{}.{}", major, minor, patch);
}

}  // namespace iommufd_backend
