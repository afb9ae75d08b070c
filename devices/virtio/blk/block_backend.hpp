// Storage behind a virtio-blk device. An interface so that request handling
// is tested and fuzzed against memory, and so that image formats other
// than raw can be added later.
#pragma once

#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>

#include "base/unique_fd.hpp"

namespace devices::virtio {

class BlockBackend {
  public:
    virtual ~BlockBackend() = default;
    virtual std::uint64_t size() const = 0;  // bytes
    virtual bool read_only() const = 0;
    // Each returns the host error of a failed operation (empty on success):
    // the guest only sees IOERR, the device logs the error itself. Callers
    // check ranges against size() first.
    [[nodiscard]] virtual std::error_code read(std::uint64_t offset,
                                               std::span<const iovec> buffers) = 0;
    [[nodiscard]] virtual std::error_code write(std::uint64_t offset,
                                                std::span<const iovec> buffers) = 0;
    // Durable: when this succeeds, all completed writes survive a host crash.
    [[nodiscard]] virtual std::error_code flush() = 0;
    [[nodiscard]] virtual std::error_code discard(std::uint64_t offset, std::uint64_t length) = 0;
    // May have to write every byte (no fallocate): long, so it gives up with
    // std::errc::operation_canceled once `stop` is requested (a reset).
    [[nodiscard]] virtual std::error_code write_zeroes(std::uint64_t offset, std::uint64_t length,
                                                       std::stop_token stop) = 0;
};

// The error_code of the current errno.
inline std::error_code errno_code() {
    return {errno, std::system_category()};
}

// A raw image file or block device, opened once and locked (flock) so that
// two VMs cannot write the same image: exclusive for read-write, shared for
// read-only. Throws base::Error with the path and the reason.
class RawFileBackend : public BlockBackend {
  public:
    RawFileBackend(const std::string& path, bool read_only);

    std::uint64_t size() const override { return size_; }
    bool read_only() const override { return read_only_; }
    std::error_code read(std::uint64_t offset, std::span<const iovec> buffers) override;
    std::error_code write(std::uint64_t offset, std::span<const iovec> buffers) override;
    std::error_code flush() override;
    std::error_code discard(std::uint64_t offset, std::uint64_t length) override;
    std::error_code write_zeroes(std::uint64_t offset, std::uint64_t length,
                                 std::stop_token stop) override;

    // The write-zeroes fallback for files without fallocate(); public so
    // that its stop check is tested on any filesystem.
    static constexpr std::size_t kZeroChunkBytes = 1 << 20;
    std::error_code write_zeroes_by_writing(std::uint64_t offset, std::uint64_t length,
                                            const std::stop_token& stop);

  private:
    std::string path_;
    base::UniqueFd fd_;
    std::uint64_t size_ = 0;
    bool read_only_;
};

}  // namespace devices::virtio
