#include "iommufd_backend/ioas.hpp"

#include <limits>

#include "iommufd_backend/ioctl.hpp"
#include "iommufd_backend/struct_revisions.hpp"

namespace iommufd_backend {

std::uint32_t map_flags(DmaAccess access) {
    switch (access) {
        case DmaAccess::Read:
            return IOMMU_IOAS_MAP_READABLE;
        case DmaAccess::Write:
            return IOMMU_IOAS_MAP_WRITEABLE;
        case DmaAccess::ReadWrite:
            break;
    }
    return IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
}

Ioas Ioas::allocate(const IommuFd& iommufd) {
    iommu_ioas_alloc cmd{};
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: only writes the new IOAS id into `cmd`.
    checked_ioctl(iommufd.fd(), IOMMU_IOAS_ALLOC, cmd, "IOMMU_IOAS_ALLOC", Feature::Iommufd, [&] {
        return std::vector<Param>{{"iommufd", static_cast<std::uint64_t>(iommufd.fd())}};
    });
    return Ioas(iommufd, cmd.out_ioas_id);
}

Ioas::Ioas(Ioas&& other) noexcept
    : iommufd_(std::move(other.iommufd_)), id_(std::exchange(other.id_, 0)) {}

Ioas& Ioas::operator=(Ioas&& other) noexcept {
    if (this != &other) {
        if (id_ != 0) iommufd_.destroy_noexcept(id_);
        iommufd_ = std::move(other.iommufd_);
        id_ = std::exchange(other.id_, 0);
    }
    return *this;
}

Ioas::~Ioas() {
    // Best effort: fails only if something still uses the IOAS, and then the
    // kernel frees it when the iommufd closes.
    if (id_ != 0) iommufd_.destroy_noexcept(id_);
}

void Ioas::check_alive(const char* operation) const {
    if (id_ == 0) throw base::Error("{} on an IOAS that was destroyed or moved from", operation);
}

void Ioas::destroy() {
    check_alive("Ioas::destroy");
    iommufd_.destroy(id_, "ioas");
    id_ = 0;
}

std::uint64_t Ioas::map(std::span<std::uint8_t> memory, std::optional<std::uint64_t> iova,
                        DmaAccess access) {
    check_alive("IOMMU_IOAS_MAP");
    iommu_ioas_map cmd{};
    cmd.flags = map_flags(access) | (iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.ioas_id = id_;
    cmd.user_va = reinterpret_cast<std::uintptr_t>(memory.data());
    cmd.length = memory.size();
    cmd.iova = iova.value_or(0);
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: the kernel pins [user_va, +length) of this process, which the caller keeps mapped until
    // unmap().
    checked_ioctl(iommufd_.fd(), IOMMU_IOAS_MAP, cmd, "IOMMU_IOAS_MAP", Feature::Iommufd, [&] {
        return std::vector<Param>{{"ioas", id_},
                                  hex_param("iova", iova.value_or(0)),
                                  hex_param("length", memory.size()),
                                  hex_param("user_va", cmd.user_va),
                                  hex_param("flags", cmd.flags)};
    });
    return cmd.iova;
}

std::uint64_t Ioas::map_file(int fd, std::uint64_t offset, std::uint64_t length,
                             std::optional<std::uint64_t> iova, DmaAccess access) {
    check_alive("IOMMU_IOAS_MAP_FILE");
    iommu_ioas_map_file cmd{};
    cmd.flags = map_flags(access) | (iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.ioas_id = id_;
    cmd.fd = fd;
    cmd.start = offset;
    cmd.length = length;
    cmd.iova = iova.value_or(0);
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: the kernel pins pages of the memfd by offset; our address space is not touched.
    checked_ioctl(iommufd_.fd(), IOMMU_IOAS_MAP_FILE, cmd, "IOMMU_IOAS_MAP_FILE",
                  Feature::IoasMapFile, [&] {
                      return std::vector<Param>{{"ioas", id_},
                                                {"fd", static_cast<std::uint64_t>(fd)},
                                                hex_param("start", offset),
                                                hex_param("length", length),
                                                hex_param("iova", iova.value_or(0))};
                  });
    return cmd.iova;
}

std::uint64_t Ioas::copy_from(const Ioas& source, std::uint64_t source_iova, std::uint64_t length,
                              std::optional<std::uint64_t> iova, DmaAccess access) {
    check_alive("IOMMU_IOAS_COPY");
    source.check_alive("IOMMU_IOAS_COPY (source)");
    iommu_ioas_copy cmd{};
    cmd.flags = map_flags(access) | (iova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
    cmd.dst_ioas_id = id_;
    cmd.src_ioas_id = source.id_;
    cmd.length = length;
    cmd.dst_iova = iova.value_or(0);
    cmd.src_iova = source_iova;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: maps pages already pinned by `source`; no user memory beyond `cmd`.
    checked_ioctl(iommufd_.fd(), IOMMU_IOAS_COPY, cmd, "IOMMU_IOAS_COPY", Feature::Iommufd, [&] {
        return std::vector<Param>{{"dst ioas", id_},
                                  {"src ioas", source.id_},
                                  hex_param("src_iova", source_iova),
                                  hex_param("length", length),
                                  hex_param("dst_iova", iova.value_or(0))};
    });
    return cmd.dst_iova;
}

std::uint64_t Ioas::unmap(std::uint64_t iova, std::uint64_t length) {
    check_alive("IOMMU_IOAS_UNMAP");
    iommu_ioas_unmap cmd{};
    cmd.ioas_id = id_;
    cmd.iova = iova;
    cmd.length = length;
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: drops IOVA mappings of our IOAS; a device still using them faults, memory is not freed
    // under it.
    checked_ioctl(iommufd_.fd(), IOMMU_IOAS_UNMAP, cmd, "IOMMU_IOAS_UNMAP", Feature::Iommufd, [&] {
        return std::vector<Param>{
            {"ioas", id_}, hex_param("iova", iova), hex_param("length", length)};
    });
    return cmd.length;
}

std::uint64_t Ioas::unmap_all() {
    // The uAPI's "everything": iova 0, length U64_MAX.
    return unmap(0, std::numeric_limits<std::uint64_t>::max());
}

IovaRanges Ioas::iova_ranges() const {
    check_alive("IOMMU_IOAS_IOVA_RANGES");
    std::vector<iommu_iova_range> buffer(4);
    for (;;) {
        iommu_ioas_iova_ranges cmd{};
        cmd.ioas_id = id_;
        cmd.num_iovas = static_cast<std::uint32_t>(buffer.size());
        cmd.allowed_iovas = reinterpret_cast<std::uintptr_t>(buffer.data());
        cmd.size = size_for(cmd, sizeof(cmd)).size;
        // Safe: allowed_iovas points at num_iovas writable entries.
        const int error = ioctl_errno(iommufd_.fd(), IOMMU_IOAS_IOVA_RANGES, &cmd);
        if (error == EMSGSIZE && cmd.num_iovas > buffer.size()) {
            buffer.resize(cmd.num_iovas);  // the kernel said how many there are: retry
            continue;
        }
        if (error != 0) {
            throw_ioctl_error("IOMMU_IOAS_IOVA_RANGES", error, Feature::Iommufd, {{"ioas", id_}});
        }
        IovaRanges result;
        result.alignment = cmd.out_iova_alignment;
        for (std::uint32_t i = 0; i < cmd.num_iovas && i < buffer.size(); ++i) {
            result.ranges.push_back({buffer[i].start, buffer[i].last});
        }
        return result;
    }
}

void Ioas::allow_iovas(std::span<const IovaRange> ranges) {
    check_alive("IOMMU_IOAS_ALLOW_IOVAS");
    std::vector<iommu_iova_range> buffer;
    for (const auto& range : ranges) buffer.push_back({range.start, range.last});
    iommu_ioas_allow_iovas cmd{};
    cmd.ioas_id = id_;
    cmd.num_iovas = static_cast<std::uint32_t>(buffer.size());
    cmd.allowed_iovas = reinterpret_cast<std::uintptr_t>(buffer.data());
    cmd.size = size_for(cmd, sizeof(cmd)).size;
    // Safe: reads num_iovas entries of `buffer`, alive for the call.
    checked_ioctl(iommufd_.fd(), IOMMU_IOAS_ALLOW_IOVAS, cmd, "IOMMU_IOAS_ALLOW_IOVAS",
                  Feature::Iommufd, [&] {
                      return std::vector<Param>{{"ioas", id_}, {"ranges", buffer.size()}};
                  });
}

void Ioas::set_huge_pages(bool enabled) {
    check_alive("IOMMU_OPTION_HUGE_PAGES");
    iommufd_.set_option(IOMMU_OPTION_HUGE_PAGES, id_, enabled ? 1 : 0);
}

bool Ioas::huge_pages() const {
    check_alive("IOMMU_OPTION_HUGE_PAGES");
    return iommufd_.get_option(IOMMU_OPTION_HUGE_PAGES, id_) != 0;
}

}  // namespace iommufd_backend
