#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "base/error.hpp"
#include "devices/virtio/blk/block_backend.hpp"

namespace devices::virtio {

namespace {

// preadv/pwritev until every byte moved. A short transfer at end of file
// is EIO: the image shrank under us (size() is from open time).
template <typename Op>
std::error_code transfer_all(Op op, std::uint64_t offset, std::span<const iovec> buffers) {
    std::vector<iovec> pending(buffers.begin(), buffers.end());
    std::size_t first = 0;
    while (first < pending.size()) {
        const int count = static_cast<int>(std::min<std::size_t>(pending.size() - first, IOV_MAX));
        const ssize_t done = op(&pending[first], count, static_cast<off_t>(offset));
        if (done < 0) {
            if (errno == EINTR) continue;
            return errno_code();
        }
        if (done == 0) return std::make_error_code(std::errc::io_error);
        offset += static_cast<std::uint64_t>(done);
        auto left = static_cast<std::size_t>(done);
        while (first < pending.size() && left >= pending[first].iov_len) {
            left -= pending[first].iov_len;
            ++first;
        }
        if (left > 0) {
            pending[first].iov_base = static_cast<std::uint8_t*>(pending[first].iov_base) + left;
            pending[first].iov_len -= left;
        }
    }
    return {};
}

std::error_code read_only_error() {
    return std::make_error_code(std::errc::read_only_file_system);
}

}  // namespace

RawFileBackend::RawFileBackend(const std::string& path, bool read_only)
    : path_(path), read_only_(read_only) {
    fd_ = base::UniqueFd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!fd_) base::throw_errno("disk image {}", path);
    struct stat info {};
    if (::fstat(fd_.get(), &info) != 0) base::throw_errno("disk image {}: fstat", path);
    if (S_ISREG(info.st_mode)) {
        size_ = static_cast<std::uint64_t>(info.st_size);
    } else if (S_ISBLK(info.st_mode)) {
        // BLKGETSIZE64 writes one u64: the device size in bytes.
        if (::ioctl(fd_.get(), BLKGETSIZE64, &size_) != 0) {
            base::throw_errno("disk image {}: BLKGETSIZE64", path);
        }
    } else {
        throw base::Error("disk image {} is neither a regular file nor a block device", path);
    }
    if (::flock(fd_.get(), (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            throw base::Error("disk image {} is in use by another process", path);
        }
        // Some filesystems (9p, some FUSE) cannot lock: run unprotected there.
        if (errno != ENOLCK && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
            base::throw_errno("disk image {}: flock", path);
        }
    }
    if (size_ < 512) throw base::Error("disk image {} is smaller than one 512-byte sector", path);
}

std::error_code RawFileBackend::read(std::uint64_t offset, std::span<const iovec> buffers) {
    const int fd = fd_.get();
    return transfer_all(
        [fd](const iovec* iov, int count, off_t at) { return ::preadv(fd, iov, count, at); },
        offset, buffers);
}

std::error_code RawFileBackend::write(std::uint64_t offset, std::span<const iovec> buffers) {
    if (read_only_) return read_only_error();
    const int fd = fd_.get();
    return transfer_all(
        [fd](const iovec* iov, int count, off_t at) { return ::pwritev(fd, iov, count, at); },
        offset, buffers);
}

std::error_code RawFileBackend::flush() {
    if (read_only_) return {};
    // fdatasync: data and the metadata needed to read it back (size) reach
    // stable storage, which is what a guest's flush asks for.
    while (::fdatasync(fd_.get()) != 0) {
        if (errno != EINTR) return errno_code();
    }
    return {};
}

std::error_code RawFileBackend::discard(std::uint64_t offset, std::uint64_t length) {
    if (read_only_) return read_only_error();
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset), static_cast<off_t>(length)) == 0) {
        return {};
    }
    // Discard is a hint: a filesystem that cannot punch holes just keeps the data.
    if (errno == EOPNOTSUPP || errno == ENOSYS) return {};
    return errno_code();
}

std::error_code RawFileBackend::write_zeroes(std::uint64_t offset, std::uint64_t length,
                                             std::stop_token stop) {
    if (read_only_) return read_only_error();
    for (int mode :
         {FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE}) {
        if (::fallocate(fd_.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) ==
            0) {
            return {};
        }
        if (errno != EOPNOTSUPP && errno != ENOSYS) return errno_code();
    }
    // No fallocate support: write the zeroes. A request may cover 32 GiB
    // (16 segments of max_write_zeroes_sectors), so this checks for a stop
    // between pieces: a reset joins the worker and must not wait for it.
    return write_zeroes_by_writing(offset, length, stop);
}

std::error_code RawFileBackend::write_zeroes_by_writing(std::uint64_t offset, std::uint64_t length,
                                                        const std::stop_token& stop) {
    static const std::vector<std::uint8_t> zeroes(kZeroChunkBytes, 0);
    while (length > 0) {
        if (stop.stop_requested()) return std::make_error_code(std::errc::operation_canceled);
        const std::size_t chunk =
            static_cast<std::size_t>(std::min<std::uint64_t>(length, zeroes.size()));
        // pwritev only reads the buffer.
        const iovec piece{const_cast<std::uint8_t*>(zeroes.data()), chunk};
        if (auto error = write(offset, std::span(&piece, 1))) return error;
        offset += chunk;
        length -= chunk;
    }
    return {};
}

}  // namespace devices::virtio
