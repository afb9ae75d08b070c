// Guest RAM: one memfd, split into regions around the 32-bit MMIO hole, each
// mapped MAP_SHARED with an inaccessible guard after it. Every access by guest physical
// address is bounds- and overflow-checked and yields a span; nothing hands out a bare pointer.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.hpp"
#include "base/mapped_region.hpp"
#include "base/unique_fd.hpp"

namespace vmm {

using GuestAddress = std::uint64_t;

struct GuestRegion {
    GuestAddress guest_address;
    std::uint64_t size;
    std::uint64_t file_offset;  // offset of this region inside the memfd
    std::uint8_t* host_address;

    GuestAddress end() const { return guest_address + size; }
};

class GuestMemory {
  public:
    // Lays out `ram_size` bytes of RAM for an x86 guest: [0, min(size, 3 GiB))
    // and the rest from 4 GiB up. Throws base::Error when the size is unusable.
    static GuestMemory create_x86(std::uint64_t ram_size);
    // Arbitrary layout, for tests and other boards. Regions must be sorted,
    // page aligned and must not overlap.
    static GuestMemory create(std::span<const std::pair<GuestAddress, std::uint64_t>> ranges);

    GuestMemory(GuestMemory&&) noexcept = default;
    GuestMemory& operator=(GuestMemory&&) noexcept = default;

    const std::vector<GuestRegion>& regions() const { return regions_; }
    std::uint64_t ram_size() const { return ram_size_; }
    // Highest guest address + 1 that is RAM.
    GuestAddress end() const { return regions_.back().end(); }
    int memfd() const { return memfd_.get(); }

    // The bytes [address, address + length) if they are all RAM within one
    // region; nullopt otherwise (also on overflow). Use for guest-controlled input.
    std::optional<std::span<std::uint8_t>> try_span(GuestAddress address,
                                                    std::uint64_t length) const;
    // Same, but throws base::Error naming the range. Use for VMM-controlled input.
    std::span<std::uint8_t> span(GuestAddress address, std::uint64_t length) const;

    bool contains(GuestAddress address, std::uint64_t length) const {
        return try_span(address, length).has_value();
    }

    void write_bytes(GuestAddress address, std::span<const std::uint8_t> bytes) const {
        auto destination = span(address, bytes.size());
        if (!bytes.empty()) std::memcpy(destination.data(), bytes.data(), bytes.size());
    }

    template <typename T>
    requires std::is_trivially_copyable_v<T>
    void write(GuestAddress address, const T& value) const {
        std::memcpy(span(address, sizeof(T)).data(), &value, sizeof(T));
    }

    template <typename T>
    requires std::is_trivially_copyable_v<T> T read(GuestAddress address)
    const {
        T value;
        std::memcpy(&value, span(address, sizeof(T)).data(), sizeof(T));
        return value;
    }

    // Non-throwing read for guest-controlled addresses.
    template <typename T>
    requires std::is_trivially_copyable_v<T> std::optional<T> try_read(GuestAddress address)
    const {
        auto bytes = try_span(address, sizeof(T));
        if (!bytes) return std::nullopt;
        T value;
        std::memcpy(&value, bytes->data(), sizeof(T));
        return value;
    }

  private:
    GuestMemory(base::UniqueFd memfd, base::MappedRegion mapping, std::vector<GuestRegion> regions,
                std::uint64_t ram_size)
        : memfd_(std::move(memfd)),
          mapping_(std::move(mapping)),
          regions_(std::move(regions)),
          ram_size_(ram_size) {}

    base::UniqueFd memfd_;
    // The whole host reservation: the regions and the guard pages after them.
    base::MappedRegion mapping_;
    std::vector<GuestRegion> regions_;
    std::uint64_t ram_size_ = 0;
};

}  // namespace vmm
