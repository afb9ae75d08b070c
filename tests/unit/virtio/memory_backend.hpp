// A BlockBackend in memory that counts flushes, for tests and fuzzers; set
// `failure` to make every operation fail with that host error.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "devices/virtio/blk/block_backend.hpp"

namespace devices::virtio::testing {

class MemoryBackend : public BlockBackend {
  public:
    explicit MemoryBackend(std::size_t size, bool read_only = false)
        : bytes(size, 0), read_only_(read_only) {}

    std::uint64_t size() const override { return bytes.size(); }
    bool read_only() const override { return read_only_; }
    std::error_code read(std::uint64_t offset, std::span<const iovec> buffers) override {
        if (failure) return failure;
        for (const auto& buffer : buffers) {
            if (offset + buffer.iov_len > bytes.size()) return out_of_range();
            std::memcpy(buffer.iov_base, bytes.data() + offset, buffer.iov_len);
            offset += buffer.iov_len;
        }
        return {};
    }
    std::error_code write(std::uint64_t offset, std::span<const iovec> buffers) override {
        if (failure) return failure;
        if (read_only_) return std::make_error_code(std::errc::read_only_file_system);
        for (const auto& buffer : buffers) {
            if (offset + buffer.iov_len > bytes.size()) return out_of_range();
            std::memcpy(bytes.data() + offset, buffer.iov_base, buffer.iov_len);
            offset += buffer.iov_len;
        }
        return {};
    }
    std::error_code flush() override {
        if (failure) return failure;
        ++flushes;
        return {};
    }
    std::error_code discard(std::uint64_t offset, std::uint64_t length) override {
        if (failure) return failure;
        if (read_only_ || offset + length > bytes.size()) return out_of_range();
        ++discards;
        return {};
    }
    std::error_code write_zeroes(std::uint64_t offset, std::uint64_t length,
                                 std::stop_token /*stop*/) override {
        if (failure) return failure;
        if (read_only_ || offset + length > bytes.size()) return out_of_range();
        std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(offset), length, 0);
        return {};
    }

    std::vector<std::uint8_t> bytes;
    int flushes = 0;
    int discards = 0;
    std::error_code failure;

  private:
    // The device checks ranges first: reaching this is a bug the test sees.
    static std::error_code out_of_range() {
        return std::make_error_code(std::errc::invalid_argument);
    }

    bool read_only_;
};

}  // namespace devices::virtio::testing
