#include "vmm/guest_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include "base/checked_math.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm {

namespace {

constexpr std::uint64_t kPageSize = 4096;
// Where regions start in the host (the x86 huge page size) and how much
// inaccessible space follows each.
constexpr std::uint64_t kHostAlignment = 2 * x86::MiB;
constexpr std::uint64_t kGuard = kHostAlignment;

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
    return (value + alignment - 1) / alignment * alignment;
}
// Smallest RAM a Linux guest can use meaningfully; the largest is what fits
// below the 64-bit PCI window (x86::kMaxRamSize).
constexpr std::uint64_t kMinRamSize = 16 * x86::MiB;
constexpr std::uint64_t kMaxRamSize = x86::kMaxRamSize;

}  // namespace

GuestMemory GuestMemory::create_x86(std::uint64_t ram_size) {
    if (ram_size < kMinRamSize) {
        throw base::Error("guest memory of {} bytes is too small; at least {} MiB is needed",
                          ram_size, kMinRamSize / x86::MiB);
    }
    if (ram_size > kMaxRamSize) {
        throw base::Error("guest memory of {} bytes is larger than the supported {} GiB", ram_size,
                          kMaxRamSize / x86::GiB);
    }
    if (ram_size % kPageSize != 0) {
        throw base::Error("guest memory size {} is not a multiple of 4 KiB", ram_size);
    }
    std::vector<std::pair<GuestAddress, std::uint64_t>> ranges;
    const std::uint64_t low = std::min(ram_size, x86::kLowMemoryLimit);
    ranges.emplace_back(0, low);
    if (ram_size > low) ranges.emplace_back(x86::kHighRamStart, ram_size - low);
    return create(ranges);
}

GuestMemory GuestMemory::create(std::span<const std::pair<GuestAddress, std::uint64_t>> ranges) {
    if (ranges.empty()) throw base::Error("guest memory needs at least one region");
    std::uint64_t total = 0;
    GuestAddress previous_end = 0;
    for (const auto& [address, size] : ranges) {
        const auto end = base::checked_add(address, size);
        if (size == 0 || address % kPageSize != 0 || size % kPageSize != 0 || !end ||
            address < previous_end) {
            throw base::Error(
                "guest memory region [{:#x}, +{:#x}) is empty, unaligned, "
                "overlapping or out of order",
                address, size);
        }
        previous_end = *end;
        total += size;
    }

    // memfd so that the same pages can later be mapped into an iommufd IOAS
    // (IOMMU_IOAS_MAP_FILE) and shared with other processes (vhost-user).
    base::UniqueFd memfd(::memfd_create("guest-ram", MFD_CLOEXEC));
    if (!memfd) base::throw_errno("memfd_create for {} bytes of guest RAM", total);
    if (::ftruncate(memfd.get(), static_cast<off_t>(total)) != 0) {
        base::throw_errno("sizing guest RAM memfd to {} bytes", total);
    }
    // One reservation for all regions, each followed by a PROT_NONE guard:
    // regions adjacent in the host's address space would let an access that
    // ran past one region's end (a bug try_span() did not catch) land
    // silently in the next; the guard makes it fault instead. Each region
    // starts 2 MiB-aligned in the host, as x86 RAM regions are in the guest: KVM
    // (and the IOMMU) back guest memory with huge pages only where host
    // and guest addresses agree modulo the huge page size.
    auto reserved_size = [](std::uint64_t size) { return align_up(size, kHostAlignment) + kGuard; };
    std::uint64_t reserved = kHostAlignment;  // slack to align the start
    for (const auto& [address, size] : ranges) reserved += reserved_size(size);
    auto mapping =
        base::MappedRegion::map(reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    const auto first_byte = reinterpret_cast<std::uintptr_t>(mapping.data());
    std::uint8_t* const start =
        mapping.data() + (align_up(first_byte, kHostAlignment) - first_byte);
    std::vector<GuestRegion> regions;
    std::uint64_t file_offset = 0;
    std::uint64_t host_offset = 0;
    for (const auto& [address, size] : ranges) {
        std::uint8_t* host = start + host_offset;
        // MAP_SHARED: KVM, iommufd and the VMM must all see the same pages.
        // MAP_NORESERVE: RAM is committed lazily as the guest touches it.
        if (::mmap(host, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED,
                   memfd.get(), static_cast<off_t>(file_offset)) == MAP_FAILED) {
            base::throw_errno("mapping guest RAM region [{:#x}, +{:#x})", address, size);
        }
        regions.push_back(GuestRegion{address, size, file_offset, host});
        file_offset += size;
        host_offset += reserved_size(size);
    }
    return GuestMemory(std::move(memfd), std::move(mapping), std::move(regions), total);
}

std::optional<std::span<std::uint8_t>> GuestMemory::try_span(GuestAddress address,
                                                             std::uint64_t length) const {
    const auto end = base::checked_add(address, length);
    if (!end) return std::nullopt;
    for (const auto& region : regions_) {
        if (address >= region.guest_address && *end <= region.end()) {
            return std::span<std::uint8_t>(region.host_address + (address - region.guest_address),
                                           length);
        }
    }
    return std::nullopt;
}

std::span<std::uint8_t> GuestMemory::span(GuestAddress address, std::uint64_t length) const {
    auto bytes = try_span(address, length);
    if (!bytes) {
        throw base::Error("guest range [{:#x}, +{:#x}) is not guest RAM", address, length);
    }
    return *bytes;
}

}  // namespace vmm
