#include "devices/virtio/net/net_frame.hpp"

#include <algorithm>
#include <cstring>

namespace devices::virtio {

namespace {

bool negotiated(std::uint64_t features, unsigned bit) {
    return ((features >> bit) & 1) != 0;
}

}  // namespace

TxFrame parse_tx_chain(const DescriptorChain& chain) {
    if (chain.readable_bytes < kNetHeaderBytes) {
        throw DeviceError(
            "virtio-net transmit chain {} has {} readable bytes, less than the {}-byte header",
            chain.head, chain.readable_bytes, kNetHeaderBytes);
    }
    TxFrame frame;
    // NetHeader is trivially copyable; its bytes are filled from the guest.
    auto* header = reinterpret_cast<std::uint8_t*>(&frame.header);
    std::size_t header_done = 0;
    for (const auto& buffer : chain.readable) {
        std::span<std::uint8_t> bytes = buffer.bytes;
        if (header_done < kNetHeaderBytes) {
            const std::size_t n = std::min(bytes.size(), kNetHeaderBytes - header_done);
            std::memcpy(header + header_done, bytes.data(), n);
            header_done += n;
            bytes = bytes.subspan(n);
        }
        if (!bytes.empty()) frame.data.push_back(bytes);
    }
    frame.data_bytes = chain.readable_bytes - kNetHeaderBytes;
    return frame;
}

const char* tx_frame_problem(const TxFrame& frame, std::uint64_t features) {
    const NetHeader& header = frame.header;
    const std::uint64_t length = frame.data_bytes;
    if (length < kEthernetHeaderBytes) return "frame shorter than an Ethernet header";
    if (length > kMaxFrameBytes) return "frame longer than 64 KiB";
    // Only NEEDS_CSUM is the driver's to set (5.1.6.2.1).
    if ((header.flags & ~kNetHdrNeedsCsum) != 0) return "unknown header flags";
    if ((header.flags & kNetHdrNeedsCsum) != 0) {
        if (!negotiated(features, kNetFeatureCsum)) return "partial checksum without CSUM";
        if (std::uint64_t{header.csum_start} + header.csum_offset + 2 > length) {
            return "checksum field outside the frame";
        }
    }
    if (header.hdr_len > length) return "header length beyond the frame";
    const std::uint8_t gso = header.gso_type & ~kNetGsoEcn;
    if (header.gso_type == kNetGsoNone) return nullptr;
    switch (gso) {
        case kNetGsoTcpV4:
            if (!negotiated(features, kNetFeatureHostTso4)) return "TSOv4 without HOST_TSO4";
            break;
        case kNetGsoTcpV6:
            if (!negotiated(features, kNetFeatureHostTso6)) return "TSOv6 without HOST_TSO6";
            break;
        default:
            return "unknown or unoffered GSO type";
    }
    if ((header.gso_type & kNetGsoEcn) != 0 && !negotiated(features, kNetFeatureHostEcn)) {
        return "TSO with ECN without HOST_ECN";
    }
    // A GSO frame carries a partial checksum and a segment size (5.1.6.2).
    if ((header.flags & kNetHdrNeedsCsum) == 0) return "GSO without a partial checksum";
    if (header.gso_size == 0) return "GSO with a zero segment size";
    return nullptr;
}

void check_rx_chain(const DescriptorChain& chain) {
    if (chain.writable_bytes < kNetHeaderBytes) {
        throw DeviceError(
            "virtio-net receive chain {} has {} writable bytes, less than the {}-byte header",
            chain.head, chain.writable_bytes, kNetHeaderBytes);
    }
}

bool prepare_rx_header(NetHeader& header, std::uint64_t features) {
    const std::uint8_t gso = header.gso_type & ~kNetGsoEcn;
    if (header.gso_type != kNetGsoNone) {
        const bool accepted = (gso == kNetGsoTcpV4 && negotiated(features, kNetFeatureGuestTso4)) ||
                              (gso == kNetGsoTcpV6 && negotiated(features, kNetFeatureGuestTso6));
        if (!accepted) return false;
        if ((header.gso_type & kNetGsoEcn) != 0 && !negotiated(features, kNetFeatureGuestEcn)) {
            return false;
        }
    }
    if (!negotiated(features, kNetFeatureGuestCsum)) {
        // Without GUEST_CSUM the guest must get flags 0 (5.1.6.4.1); a frame
        // still needing its checksum cannot be given to it at all.
        if ((header.flags & kNetHdrNeedsCsum) != 0) return false;
        header.flags = 0;
    } else {
        header.flags &= kNetHdrNeedsCsum | kNetHdrDataValid;
    }
    return true;
}

std::vector<UsedElement> scatter_rx(std::span<const std::uint8_t> packet,
                                    std::span<const DescriptorChain> chains) {
    std::vector<UsedElement> used;
    used.reserve(chains.size());
    std::size_t at = 0;
    for (const auto& chain : chains) {
        std::uint32_t written = 0;
        for (const auto& buffer : chain.writable) {
            if (at == packet.size()) break;
            const std::size_t n = std::min(buffer.bytes.size(), packet.size() - at);
            std::memcpy(buffer.bytes.data(), packet.data() + at, n);
            at += n;
            written += static_cast<std::uint32_t>(n);
        }
        used.push_back(UsedElement{chain.head, written});
    }
    return used;
}

}  // namespace devices::virtio
