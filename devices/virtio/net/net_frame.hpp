// virtio-net frame handling between guest buffers and the tap's wire format
// (virtio_net_hdr_v1 + Ethernet frame), with no host fd involved: transmit
// chain parsing and header checks, receive header cleanup and the scatter
// into (merged) receive buffers. Pure code over validated DescriptorChains:
// what the unit tests and the fuzzer drive.
//
// What a guest gets wrong, and what it costs:
//  - a transmit chain whose readable part cannot hold the 12-byte header,
//    or a receive chain that cannot (no writable space, or less than the
//    header): DeviceError, the device needs a reset;
//  - a transmit frame the tap must not see (shorter than an Ethernet header,
//    longer than kMaxFrameBytes, flags or GSO types that are unknown or were
//    not negotiated, a checksum or header length outside the frame): that
//    frame is dropped and counted, the chain returned, the device goes on.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "devices/virtio/net/net_spec.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

struct TxFrame {
    NetHeader header{};  // copied out of guest memory once; what gets checked is what gets sent
    std::vector<std::span<std::uint8_t>> data;  // the frame: everything readable after the header
    std::uint64_t data_bytes = 0;
};

// Throws DeviceError when the chain's readable part is shorter than the header.
TxFrame parse_tx_chain(const DescriptorChain& chain);

// Why `frame` must not reach the tap given the negotiated `features`, or
// nullptr when it may.
const char* tx_frame_problem(const TxFrame& frame, std::uint64_t features);

// Throws DeviceError when a receive chain cannot hold even the header.
void check_rx_chain(const DescriptorChain& chain);

// Turns the header the tap wrote into what the guest may see: no flags
// unless it negotiated GUEST_CSUM. Returns false when the frame uses an
// offload the guest did not accept (the caller drops it).
bool prepare_rx_header(NetHeader& header, std::uint64_t features);

// Copies `packet` (header then frame) across `chains` in order and returns
// one used element per chain with the bytes it got. The caller picked the
// chains so that their writable bytes cover the packet, and set
// num_buffers to their number.
std::vector<UsedElement> scatter_rx(std::span<const std::uint8_t> packet,
                                    std::span<const DescriptorChain> chains);

}  // namespace devices::virtio
