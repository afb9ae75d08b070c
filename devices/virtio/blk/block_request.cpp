#include "devices/virtio/blk/block_request.hpp"

#include <algorithm>
#include <cstring>

#include "base/checked_math.hpp"

namespace devices::virtio {

namespace {

constexpr std::size_t kHeaderBytes = 16;
constexpr std::size_t kSegmentBytes = 16;  // struct virtio_blk_discard_write_zeroes

struct Segment {
    std::uint64_t sector;
    std::uint32_t sectors;
    std::uint32_t flags;
};
static_assert(sizeof(Segment) == kSegmentBytes);

// Copies `out.size()` bytes starting `skip` bytes into the buffers.
bool gather(const std::vector<std::span<std::uint8_t>>& buffers, std::uint64_t skip,
            std::span<std::uint8_t> out) {
    std::size_t copied = 0;
    for (const auto& buffer : buffers) {
        if (copied == out.size()) break;
        if (skip >= buffer.size()) {
            skip -= buffer.size();
            continue;
        }
        const std::size_t n = std::min<std::size_t>(buffer.size() - skip, out.size() - copied);
        std::memcpy(out.data() + copied, buffer.data() + skip, n);
        copied += n;
        skip = 0;
    }
    return copied == out.size();
}

std::vector<iovec> to_iovecs(const std::vector<std::span<std::uint8_t>>& buffers) {
    std::vector<iovec> iovecs;
    iovecs.reserve(buffers.size());
    for (const auto& buffer : buffers) {
        if (!buffer.empty()) iovecs.push_back(iovec{buffer.data(), buffer.size()});
    }
    return iovecs;
}

// [sector, + bytes) inside the disk, overflow-checked; returns the byte offset.
std::optional<std::uint64_t> disk_range(std::uint64_t sector, std::uint64_t bytes,
                                        std::uint64_t disk_size) {
    const auto offset = base::checked_mul(sector, kSectorSize);
    if (!offset || !base::range_within(*offset, bytes, disk_size)) return std::nullopt;
    return offset;
}

// The status of a failed backend call, noting the host error for the log.
std::uint8_t backend_status(std::error_code error, const char* operation,
                            BlockCompletion& completion) {
    if (!error) return kBlkStatusOk;
    completion.operation = operation;
    completion.host_error = error;
    return kBlkStatusIoErr;
}

std::uint8_t discard_or_zero(const BlockRequest& request, BlockBackend& backend,
                             const BlockLimits& limits, const std::stop_token& stop,
                             BlockCompletion& completion) {
    const bool zeroes = request.type == kBlkTypeWriteZeroes;
    const std::uint32_t max_segments =
        zeroes ? limits.max_write_zeroes_segments : limits.max_discard_segments;
    const std::uint32_t max_sectors =
        zeroes ? limits.max_write_zeroes_sectors : limits.max_discard_sectors;
    if (request.data_bytes == 0 || request.data_bytes % kSegmentBytes != 0 ||
        request.data_bytes / kSegmentBytes > max_segments) {
        return kBlkStatusUnsupported;
    }
    if (backend.read_only()) return kBlkStatusIoErr;
    // Copy and check every segment before touching the disk.
    std::vector<Segment> segments(request.data_bytes / kSegmentBytes);
    for (std::size_t i = 0; i < segments.size(); ++i) {
        // Segment is trivially copyable; its bytes are filled from the guest.
        std::span<std::uint8_t> bytes(reinterpret_cast<std::uint8_t*>(&segments[i]), kSegmentBytes);
        if (!gather(request.data, i * kSegmentBytes, bytes)) return kBlkStatusIoErr;
        const auto& segment = segments[i];
        // Only WRITE_ZEROES knows a flag (unmap); unknown flags are refused (5.2.6.2).
        const std::uint32_t allowed = zeroes ? kBlkWriteZeroesUnmap : 0;
        if ((segment.flags & ~allowed) != 0) return kBlkStatusUnsupported;
        if (segment.sectors > max_sectors) return kBlkStatusUnsupported;
        if (!disk_range(segment.sector, std::uint64_t{segment.sectors} * kSectorSize,
                        backend.size())) {
            return kBlkStatusIoErr;
        }
    }
    for (const auto& segment : segments) {
        const std::uint64_t offset = segment.sector * kSectorSize;
        const std::uint64_t length = std::uint64_t{segment.sectors} * kSectorSize;
        const std::error_code error =
            zeroes ? backend.write_zeroes(offset, length, stop) : backend.discard(offset, length);
        if (error) return backend_status(error, zeroes ? "write-zeroes" : "discard", completion);
    }
    return kBlkStatusOk;
}

}  // namespace

BlockRequest parse_block_request(const DescriptorChain& chain) {
    if (chain.writable.empty() || chain.writable_bytes == 0) {
        throw DeviceError("virtio-blk request {} has no status byte", chain.head);
    }
    std::vector<std::span<std::uint8_t>> readable;
    for (const auto& buffer : chain.readable) readable.push_back(buffer.bytes);
    std::array<std::uint8_t, kHeaderBytes> header{};
    if (!gather(readable, 0, header)) {
        throw DeviceError("virtio-blk request {} has a header shorter than {} bytes", chain.head,
                          kHeaderBytes);
    }
    BlockRequest request;
    std::memcpy(&request.type, &header[0], 4);
    std::memcpy(&request.sector, &header[8], 8);

    // The status byte is the very last device-writable byte.
    std::vector<std::span<std::uint8_t>> writable;
    for (const auto& buffer : chain.writable) {
        if (!buffer.bytes.empty()) writable.push_back(buffer.bytes);
    }
    auto& last = writable.back();
    request.status = &last.back();
    last = last.first(last.size() - 1);

    const bool device_writes = request.type == kBlkTypeIn || request.type == kBlkTypeGetId;
    if (device_writes) {
        request.data = std::move(writable);
        request.data_bytes = chain.writable_bytes - 1;
    } else {
        // Everything readable after the header.
        std::uint64_t skip = kHeaderBytes;
        for (const auto& buffer : readable) {
            if (skip >= buffer.size()) {
                skip -= buffer.size();
                continue;
            }
            request.data.push_back(buffer.subspan(skip));
            skip = 0;
        }
        request.data_bytes = chain.readable_bytes - kHeaderBytes;
    }
    return request;
}

BlockCompletion execute_block_request(const BlockRequest& request, BlockBackend& backend,
                                      const std::string& serial, const BlockLimits& limits,
                                      bool discard_negotiated, bool write_zeroes_negotiated,
                                      std::stop_token stop) {
    BlockCompletion completion;
    std::uint8_t status = kBlkStatusOk;
    std::uint64_t written = 0;
    switch (request.type) {
        case kBlkTypeIn: {
            const auto offset = disk_range(request.sector, request.data_bytes, backend.size());
            if (!offset || request.data_bytes % kSectorSize != 0) {
                status = kBlkStatusIoErr;
            } else {
                status = backend_status(backend.read(*offset, to_iovecs(request.data)), "read",
                                        completion);
                if (status == kBlkStatusOk) written = request.data_bytes;
            }
            break;
        }
        case kBlkTypeOut: {
            const auto offset = disk_range(request.sector, request.data_bytes, backend.size());
            if (backend.read_only() || !offset || request.data_bytes % kSectorSize != 0) {
                status = kBlkStatusIoErr;
            } else {
                status = backend_status(backend.write(*offset, to_iovecs(request.data)), "write",
                                        completion);
            }
            break;
        }
        case kBlkTypeFlush:
            status = backend_status(backend.flush(), "flush", completion);
            break;
        case kBlkTypeGetId: {
            std::array<std::uint8_t, kBlkIdBytes> id{};
            std::memcpy(id.data(), serial.data(), std::min(serial.size(), id.size()));
            std::uint64_t left = std::min<std::uint64_t>(request.data_bytes, id.size());
            std::size_t at = 0;
            for (const auto& buffer : request.data) {
                const std::size_t n = std::min<std::size_t>(buffer.size(), left);
                std::memcpy(buffer.data(), id.data() + at, n);
                at += n;
                left -= n;
                if (left == 0) break;
            }
            written = at;
            break;
        }
        case kBlkTypeDiscard:
            status = discard_negotiated
                         ? discard_or_zero(request, backend, limits, stop, completion)
                         : kBlkStatusUnsupported;
            break;
        case kBlkTypeWriteZeroes:
            status = write_zeroes_negotiated
                         ? discard_or_zero(request, backend, limits, stop, completion)
                         : kBlkStatusUnsupported;
            break;
        default:
            status = kBlkStatusUnsupported;
            break;
    }
    *request.status = status;
    completion.used_length = static_cast<std::uint32_t>(written + 1);
    return completion;
}

}  // namespace devices::virtio
