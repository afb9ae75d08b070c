// Constants and wire layouts from the virtio 1.2 specification (OASIS),
// little-endian as x86 is. Only what this project implements.
#pragma once

#include <cstdint>

namespace devices::virtio {

// Device types (5. Device Types).
inline constexpr std::uint16_t kDeviceNet = 1;
inline constexpr std::uint16_t kDeviceBlock = 2;
inline constexpr std::uint16_t kDeviceConsole = 3;
inline constexpr std::uint16_t kDeviceRng = 4;
inline constexpr std::uint16_t kDeviceVsock = 19;

// Reserved feature bits (6. Reserved Feature Bits).
inline constexpr unsigned kFeatureIndirectDesc = 28;
inline constexpr unsigned kFeatureEventIdx = 29;
inline constexpr unsigned kFeatureVersion1 = 32;
inline constexpr unsigned kFeatureAccessPlatform = 33;
inline constexpr unsigned kFeatureRingPacked = 34;

constexpr std::uint64_t feature_bit(unsigned bit) {
    return std::uint64_t{1} << bit;
}

// Device status (2.1).
inline constexpr std::uint8_t kStatusAcknowledge = 1;
inline constexpr std::uint8_t kStatusDriver = 2;
inline constexpr std::uint8_t kStatusDriverOk = 4;
inline constexpr std::uint8_t kStatusFeaturesOk = 8;
inline constexpr std::uint8_t kStatusNeedsReset = 0x40;
inline constexpr std::uint8_t kStatusFailed = 0x80;

// Split virtqueue descriptor flags (2.7.5).
inline constexpr std::uint16_t kDescNext = 1;
inline constexpr std::uint16_t kDescWrite = 2;
inline constexpr std::uint16_t kDescIndirect = 4;
inline constexpr std::uint16_t kAvailNoInterrupt = 1;
inline constexpr std::uint16_t kMaxQueueSize = 32768;

struct Descriptor {
    std::uint64_t address;
    std::uint32_t length;
    std::uint16_t flags;
    std::uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

struct UsedElement {
    std::uint32_t id;
    std::uint32_t length;
};
static_assert(sizeof(UsedElement) == 8);

// virtio-pci (4.1).
inline constexpr std::uint16_t kPciVendorId = 0x1af4;
inline constexpr std::uint16_t kPciModernDeviceIdBase = 0x1040;
inline constexpr std::uint8_t kPciCapCommonCfg = 1;
inline constexpr std::uint8_t kPciCapNotifyCfg = 2;
inline constexpr std::uint8_t kPciCapIsrCfg = 3;
inline constexpr std::uint8_t kPciCapDeviceCfg = 4;
inline constexpr std::uint8_t kPciCapPciCfg = 5;
inline constexpr std::uint16_t kMsiNoVector = 0xffff;

}  // namespace devices::virtio
