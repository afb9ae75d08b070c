#include "iommufd_backend/guest_ram_mapper.hpp"

#include <unistd.h>

#include <algorithm>

#include "base/checked_math.hpp"
#include "iommufd_backend/ioctl_error.hpp"

namespace iommufd_backend {

namespace {

std::uint64_t system_page_size() {
    const long size = ::sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::uint64_t>(size) : 4096;
}

bool overlaps(const GuestRamRegion& a, const GuestRamRegion& b) {
    return a.gpa < b.gpa + b.size && b.gpa < a.gpa + a.size;
}

}  // namespace

GuestRamMapper::GuestRamMapper(Ioas& ioas, Method method)
    : ioas_(ioas), page_size_(system_page_size()), use_map_file_(method == Method::Auto) {}

GuestRamMapper::~GuestRamMapper() {
    for (const auto& [gpa, region] : mapped_) {
        try {
            ioas_.unmap(gpa, region.size);
        } catch (...) {
            // Not only base::Error: building the error can throw bad_alloc, and
            // a destructor must let nothing escape. What stays mapped goes with
            // the IOAS; there is no one to report to here.
        }
    }
}

void GuestRamMapper::validate(const GuestRamRegion& region, std::uint64_t page_size) {
    if (region.size == 0 || region.gpa % page_size != 0 || region.size % page_size != 0 ||
        !base::checked_add(region.gpa, region.size)) {
        throw base::Error(
            "guest RAM region at GPA {:#x}, {:#x} bytes: must be non-empty, {:#x}-aligned and not "
            "wrap around",
            region.gpa, region.size, page_size);
    }
    if (region.memfd < 0 && region.host == nullptr) {
        throw base::Error("guest RAM region at GPA {:#x}: has neither a host address nor a memfd",
                          region.gpa);
    }
    if (region.memfd >= 0 && region.memfd_offset % page_size != 0) {
        throw base::Error("guest RAM region at GPA {:#x}: memfd offset {:#x} is not {:#x}-aligned",
                          region.gpa, region.memfd_offset, page_size);
    }
}

GuestRamMapper::Plan GuestRamMapper::plan(const std::map<std::uint64_t, GuestRamRegion>& current,
                                          std::span<const GuestRamRegion> desired,
                                          std::uint64_t page_size) {
    std::vector<GuestRamRegion> sorted(desired.begin(), desired.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.gpa < b.gpa; });
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        validate(sorted[i], page_size);
        if (i > 0 && overlaps(sorted[i - 1], sorted[i])) {
            throw base::Error("guest RAM regions at GPA {:#x} (+{:#x}) and {:#x} (+{:#x}) overlap",
                              sorted[i - 1].gpa, sorted[i - 1].size, sorted[i].gpa, sorted[i].size);
        }
    }
    Plan result;
    for (const auto& [gpa, region] : current) {
        const bool kept =
            std::any_of(sorted.begin(), sorted.end(), [&](const auto& r) { return r == region; });
        if (!kept) result.unmap.push_back(region);
    }
    for (const auto& region : sorted) {
        const auto it = current.find(region.gpa);
        if (it == current.end() || !(it->second == region)) result.map.push_back(region);
    }
    return result;
}

std::uint64_t GuestRamMapper::mapped_bytes() const noexcept {
    std::uint64_t total = 0;
    for (const auto& [gpa, region] : mapped_) total += region.size;
    return total;
}

void GuestRamMapper::map_one(const GuestRamRegion& region) {
    const DmaAccess access = region.writable ? DmaAccess::ReadWrite : DmaAccess::Read;
    if (use_map_file_ && region.memfd >= 0) {
        try {
            ioas_.map_file(region.memfd, region.memfd_offset, region.size, region.gpa, access);
            mapped_[region.gpa] = region;
            last_map_used_file_ = true;
            return;
        } catch (const UnsupportedError&) {
            use_map_file_ = false;  // older kernel: map by address from now on
        }
    }
    if (region.host == nullptr) {
        throw base::Error(
            "guest RAM region at GPA {:#x}: this kernel cannot map by memfd and the region has no "
            "host address",
            region.gpa);
    }
    ioas_.map(std::span<std::uint8_t>(region.host, region.size), region.gpa, access);
    mapped_[region.gpa] = region;
    last_map_used_file_ = false;
}

void GuestRamMapper::map(const GuestRamRegion& region) {
    validate(region, page_size_);
    for (const auto& [gpa, existing] : mapped_) {
        if (overlaps(existing, region)) {
            throw base::Error(
                "guest RAM region at GPA {:#x} (+{:#x}) overlaps the mapped region at {:#x} "
                "(+{:#x})",
                region.gpa, region.size, existing.gpa, existing.size);
        }
    }
    map_one(region);
}

void GuestRamMapper::unmap(std::uint64_t gpa) {
    const auto it = mapped_.find(gpa);
    if (it == mapped_.end()) throw base::Error("no guest RAM region is mapped at GPA {:#x}", gpa);
    ioas_.unmap(gpa, it->second.size);
    mapped_.erase(it);
}

void GuestRamMapper::sync(std::span<const GuestRamRegion> desired) {
    const Plan steps = plan(mapped_, desired, page_size_);
    for (const auto& region : steps.unmap) unmap(region.gpa);
    for (const auto& region : steps.map) map_one(region);
}

void GuestRamMapper::unmap_all() {
    while (!mapped_.empty()) unmap(mapped_.begin()->first);
}

}  // namespace iommufd_backend
