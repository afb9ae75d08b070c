// virtio-blk request parsing and execution (virtio 1.2, 5.2.6), pure code
// over a validated DescriptorChain and a BlockBackend: what the unit tests
// and the fuzzer drive. A request is a 16-byte header (type, sector) in the
// device-readable part, data, and one status byte: the last device-writable
// byte. Bad sectors, sizes and types end as an IOERR/UNSUPP status for that
// request; only a chain with no room for the header or the status byte is
// a DeviceError (the device then needs a reset).
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>

#include "devices/virtio/blk/block_backend.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

inline constexpr std::uint32_t kBlkTypeIn = 0;
inline constexpr std::uint32_t kBlkTypeOut = 1;
inline constexpr std::uint32_t kBlkTypeFlush = 4;
inline constexpr std::uint32_t kBlkTypeGetId = 8;
inline constexpr std::uint32_t kBlkTypeDiscard = 11;
inline constexpr std::uint32_t kBlkTypeWriteZeroes = 13;

inline constexpr std::uint8_t kBlkStatusOk = 0;
inline constexpr std::uint8_t kBlkStatusIoErr = 1;
inline constexpr std::uint8_t kBlkStatusUnsupported = 2;

inline constexpr std::uint64_t kSectorSize = 512;
inline constexpr std::size_t kBlkIdBytes = 20;
inline constexpr std::uint32_t kBlkWriteZeroesUnmap = 1;

struct BlockRequest {
    std::uint32_t type = 0;
    std::uint64_t sector = 0;
    // The data part: device-readable bytes after the header (OUT, DISCARD,
    // WRITE_ZEROES) or device-writable bytes before the status (IN, GET_ID).
    std::vector<std::span<std::uint8_t>> data;
    std::uint64_t data_bytes = 0;
    std::uint8_t* status = nullptr;
};

struct BlockLimits {
    std::uint32_t max_discard_sectors = 1u << 22;  // 2 GiB per segment
    std::uint32_t max_discard_segments = 16;
    std::uint32_t max_write_zeroes_sectors = 1u << 22;
    std::uint32_t max_write_zeroes_segments = 16;
};

// Throws DeviceError when the chain cannot hold a request.
BlockRequest parse_block_request(const DescriptorChain& chain);

struct BlockCompletion {
    std::uint32_t used_length = 0;  // bytes written into the chain, status included
    // Set when the backend failed (the status says IOERR): what it was doing
    // ("read", "write", ...) and the host's error, for the device's log.
    // std::errc::operation_canceled: `stop` was requested mid-request; the
    // request must not be completed (the device is being reset).
    const char* operation = nullptr;
    std::error_code host_error;
};

// Executes `request` and writes its status byte.
BlockCompletion execute_block_request(const BlockRequest& request, BlockBackend& backend,
                                      const std::string& serial, const BlockLimits& limits,
                                      bool discard_negotiated, bool write_zeroes_negotiated,
                                      std::stop_token stop = {});

}  // namespace devices::virtio
