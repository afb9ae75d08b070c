// Keeps an IOAS mapping the VMM's guest RAM at IOVA = GPA, so a device
// attached to the IOAS (or to a paging HWPT over it) DMAs by guest physical
// address exactly as the guest programs it.
//
// The VMM describes its RAM as regions (GPA, size, host address, and the
// backing memfd + offset). map()/unmap() add or drop one region; sync() makes
// the IOAS match a new list (memory hot-plug, a remapped region) with the
// fewest map/unmap calls; the destructor unmaps everything it mapped.
// IOMMU_IOAS_MAP_FILE is used when the kernel has it (Linux 6.13: pins by
// memfd, no dependency on this process's page tables), IOMMU_IOAS_MAP of the
// host address otherwise; the first ENOTTY switches to the latter for good.
//
// Regions must be page aligned and must not overlap: checked here, before
// any ioctl, with the GPA in the error.
//
// The mapper borrows its Ioas (a reference member, so it can be neither
// rebound nor null, and the mapper is neither copyable nor movable): the Ioas
// must outlive it. Declare the mapper after the Ioas it maps into (members or
// locals), so it is destroyed, and unmaps, first.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "iommufd_backend/ioas.hpp"

namespace iommufd_backend {

struct GuestRamRegion {
    std::uint64_t gpa = 0;
    std::uint64_t size = 0;
    std::uint8_t* host = nullptr;    // where the VMM mapped it (MAP_SHARED of the memfd)
    int memfd = -1;                  // -1: not file backed, map by host address
    std::uint64_t memfd_offset = 0;  // of this region inside the memfd
    bool writable = true;            // DMA may write (false: read-only ROM)

    friend bool operator==(const GuestRamRegion&, const GuestRamRegion&) = default;
};

class GuestRamMapper {
  public:
    enum class Method { Auto, HostAddress };  // Auto: MAP_FILE when possible

    explicit GuestRamMapper(Ioas& ioas, Method method = Method::Auto);
    GuestRamMapper(const GuestRamMapper&) = delete;
    GuestRamMapper& operator=(const GuestRamMapper&) = delete;
    GuestRamMapper(GuestRamMapper&&) = delete;
    GuestRamMapper& operator=(GuestRamMapper&&) = delete;
    ~GuestRamMapper();  // unmaps everything, ignoring every error

    void map(const GuestRamRegion& region);
    // Unmaps the region that starts at `gpa` (it must have been mapped whole).
    void unmap(std::uint64_t gpa);
    // Makes the mapping equal `desired`: unmaps regions that left or changed,
    // maps the new ones. On failure the mapper still knows exactly what is mapped.
    void sync(std::span<const GuestRamRegion> desired);
    void unmap_all();

    const std::map<std::uint64_t, GuestRamRegion>& mapped() const noexcept { return mapped_; }
    std::uint64_t mapped_bytes() const noexcept;
    // Whether the last region mapped went in with IOMMU_IOAS_MAP_FILE (false
    // before any map, and after one by host address).
    bool using_map_file() const noexcept { return last_map_used_file_; }

    struct Plan {
        std::vector<GuestRamRegion> unmap;
        std::vector<GuestRamRegion> map;
    };
    // The calls sync() makes. Pure; public for tests. Throws base::Error if
    // `desired` is invalid (unaligned, empty, overlapping, wrapping).
    static Plan plan(const std::map<std::uint64_t, GuestRamRegion>& current,
                     std::span<const GuestRamRegion> desired, std::uint64_t page_size);
    // Throws base::Error naming the region if it is not page aligned, empty or
    // wraps around. Pure.
    static void validate(const GuestRamRegion& region, std::uint64_t page_size);

  private:
    void map_one(const GuestRamRegion& region);

    Ioas& ioas_;
    std::uint64_t page_size_;
    bool use_map_file_;  // try MAP_FILE for memfd regions (Auto, until a kernel lacks it)
    bool last_map_used_file_ = false;
    std::map<std::uint64_t, GuestRamRegion> mapped_;  // by GPA
};

}  // namespace iommufd_backend
