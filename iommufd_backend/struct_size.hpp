// Filling the `size` (iommufd) or `argsz` (VFIO) of a size-extensible uAPI
// struct.
//
// Each struct grew over kernel releases by appending fields; a Revision is
// the struct's size in one release and the Feature that brought the fields
// of that revision. The rule: send the size of the OLDEST revision that holds
// every field the call uses (inputs it sets and outputs it reads).
//  - An older kernel then sees exactly the layout it knows whenever the call
//    does not need anything newer, and when it does, the size tells the
//    kernel so (iommufd: E2BIG for non-zero unknown bytes; VFIO: argsz/flags
//    checks) and the Feature names what was missing.
//  - A newer kernel zero-extends a short struct (copy_struct_from_user), so
//    an old layout means "new fields unused".
// Any non-zero byte also counts as used, so a field set but not declared still
// reaches the kernel; bytes past the newest revision throw std::logic_error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "iommufd_backend/feature.hpp"

// offsetof(type, member) + sizeof(member): where a field ends.
#define IOMMUFD_OFFSETOFEND(type, member) \
    (offsetof(type, member) + sizeof(((type*)nullptr)->member))

namespace iommufd_backend {

struct Revision {
    std::size_t size;
    Feature feature;
};

struct ChosenSize {
    std::uint32_t size;  // what to write into size/argsz
    Feature feature;     // the feature of that revision: what an old kernel lacks
};

// End of the last non-zero byte of `object` after its leading u32 size field
// (0 if all zero). Works on the object representation; the uAPI structs have
// explicit padding fields, so there are no indeterminate padding bytes when
// they are value-initialized.
template <typename T>
requires std::is_trivially_copyable_v<T> std::size_t nonzero_end(const T& object) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &object, sizeof(T));
    for (std::size_t end = sizeof(T); end > sizeof(std::uint32_t); --end) {
        if (bytes[end - 1] != 0) return end;
    }
    return 0;
}

// The revision to send for a call that uses fields up to `fields_end` (use
// IOMMUFD_OFFSETOFEND of the last field used). `revisions` are ascending.
template <typename T>
ChosenSize choose_size(const T& object, std::span<const Revision> revisions,
                       std::size_t fields_end) {
    const std::size_t needed = std::max(fields_end, nonzero_end(object));
    for (const auto& revision : revisions) {
        if (revision.size >= needed) {
            return {static_cast<std::uint32_t>(revision.size), revision.feature};
        }
    }
    throw std::logic_error("uAPI struct uses bytes beyond its newest known revision (" +
                           std::to_string(needed) + " > " +
                           std::to_string(revisions.empty() ? 0 : revisions.back().size) + ")");
}

}  // namespace iommufd_backend
