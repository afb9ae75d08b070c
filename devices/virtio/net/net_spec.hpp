// virtio-net wire constants and layouts (virtio 1.2, 5.1), little-endian as
// x86 is, and the tap flags they map to (linux/if_tun.h). Only what this
// project implements.
#pragma once

#include <array>
#include <cstdint>

namespace devices::virtio {

// Feature bits (5.1.3).
inline constexpr unsigned kNetFeatureCsum = 0;       // device takes partial checksums
inline constexpr unsigned kNetFeatureGuestCsum = 1;  // driver takes partial checksums
inline constexpr unsigned kNetFeatureMac = 5;
inline constexpr unsigned kNetFeatureGuestTso4 = 7;
inline constexpr unsigned kNetFeatureGuestTso6 = 8;
inline constexpr unsigned kNetFeatureGuestEcn = 9;
inline constexpr unsigned kNetFeatureHostTso4 = 11;
inline constexpr unsigned kNetFeatureHostTso6 = 12;
inline constexpr unsigned kNetFeatureHostEcn = 13;
inline constexpr unsigned kNetFeatureMrgRxbuf = 15;
inline constexpr unsigned kNetFeatureStatus = 16;

inline constexpr std::uint16_t kNetStatusLinkUp = 1;

// virtio_net_hdr flags and gso_type (5.1.6).
inline constexpr std::uint8_t kNetHdrNeedsCsum = 1;
inline constexpr std::uint8_t kNetHdrDataValid = 2;
inline constexpr std::uint8_t kNetGsoNone = 0;
inline constexpr std::uint8_t kNetGsoTcpV4 = 1;
inline constexpr std::uint8_t kNetGsoUdp = 3;
inline constexpr std::uint8_t kNetGsoTcpV6 = 4;
inline constexpr std::uint8_t kNetGsoEcn = 0x80;

// struct virtio_net_hdr_v1: with VIRTIO_F_VERSION_1 every packet, in both
// directions, starts with these 12 bytes (num_buffers included).
struct NetHeader {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
    std::uint16_t num_buffers;
};
static_assert(sizeof(NetHeader) == 12);
inline constexpr std::size_t kNetHeaderBytes = sizeof(NetHeader);

inline constexpr std::size_t kEthernetHeaderBytes = 14;
// The longest frame either direction carries: a 64 KiB GSO packet behind an
// Ethernet header with one 802.1Q tag (Linux caps GSO at 64 KiB by default,
// for virtio-net and tap alike).
inline constexpr std::size_t kMaxFrameBytes = 65536 + kEthernetHeaderBytes + 4;

using MacAddress = std::array<std::uint8_t, 6>;

// Tap offload flags (TUNSETOFFLOAD): which offloaded frames the tap may hand
// us, i.e. what the guest accepts on receive.
inline constexpr unsigned kTunOffloadCsum = 0x01;
inline constexpr unsigned kTunOffloadTso4 = 0x02;
inline constexpr unsigned kTunOffloadTso6 = 0x04;
inline constexpr unsigned kTunOffloadTsoEcn = 0x08;

}  // namespace devices::virtio
