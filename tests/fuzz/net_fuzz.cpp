// libFuzzer target: virtio-net's frame code over chains from arbitrary
// guest memory. Transmit mode parses each chain and checks its header
// against fuzzed features; receive mode holds chains until they cover a
// packet, then fixes its (fuzzed) header and scatters it as merged buffers
// published in one batch. Valid ends: used chains, a DeviceError or a
// VirtqueueError; ASan/UBSan catch anything else.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "devices/virtio/net/net_frame.hpp"
#include "tests/fuzz/fuzz_guest.hpp"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace {

using namespace devices::virtio;

// Selector bits: 1 transmit (else receive), 2 CSUM, 4 HOST_TSO4, 8 HOST_TSO6,
// 16 HOST_ECN, 32 the guest-side twins of those, 64 merged receive buffers.
std::uint64_t features_from(std::uint8_t selector) {
    std::uint64_t features = feature_bit(kFeatureVersion1);
    if (selector & 2) features |= feature_bit(kNetFeatureCsum);
    if (selector & 4) features |= feature_bit(kNetFeatureHostTso4);
    if (selector & 8) features |= feature_bit(kNetFeatureHostTso6);
    if (selector & 16) features |= feature_bit(kNetFeatureHostEcn);
    if (selector & 32) {
        features |= feature_bit(kNetFeatureGuestCsum) | feature_bit(kNetFeatureGuestTso4) |
                    feature_bit(kNetFeatureGuestTso6) | feature_bit(kNetFeatureGuestEcn);
    }
    if (selector & 64) features |= feature_bit(kNetFeatureMrgRxbuf);
    return features;
}

// Reads every byte of a transmit frame, as writev would.
std::uint32_t touch(const TxFrame& frame) {
    std::uint32_t sum = 0;
    for (const auto& piece : frame.data) {
        for (std::uint8_t byte : piece) sum += byte;
    }
    return sum;
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
    const auto setup = fuzz::load(data, size);
    const std::uint64_t features = features_from(setup.selector);
    const bool transmit = setup.selector & 1;
    const bool merged = setup.selector & 64;
    // The received packet: a header from the input (so prepare_rx_header
    // sees anything), then a frame whose length the input also picks.
    static std::vector<std::uint8_t> packet(kNetHeaderBytes + kMaxFrameBytes);
    NetHeader header{};
    if (size > 16) std::memcpy(&header, data + 16, std::min(size - 16, sizeof(header)));
    const std::size_t frame_length = kEthernetHeaderBytes + (header.hdr_len % 4096);
    try {
        Virtqueue queue(fuzz::guest_memory(), setup.queue, setup.event_idx, setup.indirect);
        std::vector<DescriptorChain> held;
        std::uint64_t held_bytes = 0;
        volatile std::uint32_t sink = 0;
        // Bounded: a guest can post at most `size` chains per avail index lap.
        for (unsigned round = 0; round < 2u * queue.size() + 2; ++round) {
            auto chain = queue.pop();
            if (!chain) {
                if (!queue.enable_notification()) break;
                continue;
            }
            if (transmit) {
                const TxFrame frame = parse_tx_chain(*chain);
                if (tx_frame_problem(frame, features) == nullptr) sink = sink + touch(frame);
                queue.push_used(chain->head, 0);
            } else {
                check_rx_chain(*chain);
                held_bytes += chain->writable_bytes;
                held.push_back(std::move(*chain));
                const std::size_t need = kNetHeaderBytes + frame_length;
                if (held_bytes < need && merged) continue;
                NetHeader fixed = header;
                if (held_bytes >= need && prepare_rx_header(fixed, features)) {
                    fixed.num_buffers = static_cast<std::uint16_t>(held.size());
                    std::memcpy(packet.data(), &fixed, sizeof(fixed));
                    queue.push_used(scatter_rx(std::span(packet).first(need), held));
                } else {
                    for (const auto& dropped : held) queue.push_used(dropped.head, 0);
                }
                held.clear();
                held_bytes = 0;
            }
            (void)queue.needs_interrupt();
        }
    } catch (const VirtqueueError&) {
        // NEEDS_RESET: the expected end for a bad ring.
    } catch (const DeviceError&) {
        // NEEDS_RESET: the expected end for a chain that cannot hold a header.
    }
    return 0;
}
