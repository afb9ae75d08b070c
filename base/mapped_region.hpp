// Owning mmap(2) mapping: unmapped exactly once, movable, never copied.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "base/error.hpp"

namespace base {

class MappedRegion {
public:
    MappedRegion() noexcept = default;

    // Maps `length` bytes of `fd` at `offset` (or anonymous memory when fd < 0).
    static MappedRegion map(std::size_t length, int prot, int flags, int fd = -1,
                            off_t offset = 0) {
        void* address = ::mmap(nullptr, length, prot, flags, fd, offset);
        if (address == MAP_FAILED) throw_errno("mmap of {} bytes", length);
        return MappedRegion(static_cast<std::uint8_t*>(address), length);
    }

    MappedRegion(MappedRegion&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    MappedRegion& operator=(MappedRegion&& other) noexcept {
        if (this != &other) {
            unmap();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    MappedRegion(const MappedRegion&) = delete;
    MappedRegion& operator=(const MappedRegion&) = delete;
    ~MappedRegion() { unmap(); }

    std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::span<std::uint8_t> bytes() const noexcept { return {data_, size_}; }

private:
    MappedRegion(std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
    void unmap() noexcept {
        if (data_ != nullptr) ::munmap(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }

    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace base
