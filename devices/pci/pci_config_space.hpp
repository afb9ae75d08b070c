// A type-0 PCI config space image with per-bit write masks: read-only bits,
// read-write bits and write-1-to-clear bits, BAR registers that size like
// hardware, and a capability list builder. Devices own one and forward
// config_read/config_write to it, then react to the registers they care
// about (MSI-X control, virtio's PCI_CFG window).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "devices/pci/pci_device.hpp"

namespace devices::pci {

// Standard register offsets and bits (PCI Local Bus 3.0, chapter 6).
inline constexpr std::uint16_t kVendorId = 0x00;
inline constexpr std::uint16_t kDeviceId = 0x02;
inline constexpr std::uint16_t kCommand = 0x04;
inline constexpr std::uint16_t kStatus = 0x06;
inline constexpr std::uint16_t kRevisionId = 0x08;
inline constexpr std::uint16_t kClassCode = 0x09;  // 3 bytes: prog-if, subclass, class
inline constexpr std::uint16_t kHeaderType = 0x0e;
inline constexpr std::uint16_t kBar0 = 0x10;
inline constexpr std::uint16_t kSubsystemVendorId = 0x2c;
inline constexpr std::uint16_t kSubsystemId = 0x2e;
inline constexpr std::uint16_t kCapabilitiesPointer = 0x34;
inline constexpr std::uint16_t kInterruptLine = 0x3c;
inline constexpr std::uint16_t kInterruptPin = 0x3d;
inline constexpr std::uint16_t kFirstCapability = 0x40;

inline constexpr std::uint16_t kCommandIo = 1u << 0;
inline constexpr std::uint16_t kCommandMemory = 1u << 1;
inline constexpr std::uint16_t kCommandBusMaster = 1u << 2;
inline constexpr std::uint16_t kCommandIntxDisable = 1u << 10;
inline constexpr std::uint16_t kStatusInterrupt = 1u << 3;
inline constexpr std::uint16_t kStatusCapabilities = 1u << 4;

inline constexpr std::uint8_t kCapabilityMsix = 0x11;
inline constexpr std::uint8_t kCapabilityVendor = 0x09;

struct PciIdentity {
    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::uint32_t class_code = 0;  // class << 16 | subclass << 8 | prog-if
    std::uint8_t revision = 0;
    std::uint16_t subsystem_vendor_id = 0;
    std::uint16_t subsystem_id = 0;
    std::uint8_t interrupt_pin = 0;  // 0 none, 1 INTA .. 4 INTD
};

class PciConfigSpace {
  public:
    explicit PciConfigSpace(const PciIdentity& identity);

    // Out-of-range parts of an access read as all-ones and are ignored on write.
    void read(std::uint16_t offset, std::span<std::uint8_t> data) const;
    void write(std::uint16_t offset, std::span<const std::uint8_t> data);

    // Declares a BAR: sets its type bits and which address bits are writable.
    // Throws base::Error on a bad index, size or a second declaration.
    void add_bar(const BarInfo& bar);
    const std::vector<BarInfo>& bars() const { return bars_; }
    // The address programmed into BAR `index` (both halves of a 64-bit BAR).
    std::uint64_t bar_address(std::uint8_t index) const;
    void set_bar_address(std::uint8_t index, std::uint64_t address);

    // Appends a capability whose body (after the ID and next pointer) is
    // `body`; `writable` masks body bits the guest may change (empty: none).
    // Returns the capability's offset. Throws when config space is full.
    std::uint16_t add_capability(std::uint8_t id, std::span<const std::uint8_t> body,
                                 std::span<const std::uint8_t> writable = {});

    std::uint16_t command() const { return read16(kCommand); }

    // Direct access for the device itself (no masks).
    std::uint8_t read8(std::uint16_t offset) const { return bytes_.at(offset); }
    std::uint16_t read16(std::uint16_t offset) const;
    std::uint32_t read32(std::uint16_t offset) const;
    void set8(std::uint16_t offset, std::uint8_t value) { bytes_.at(offset) = value; }
    void set16(std::uint16_t offset, std::uint16_t value);
    void set32(std::uint16_t offset, std::uint32_t value);
    void set_writable(std::uint16_t offset, std::span<const std::uint8_t> mask);

  private:
    std::array<std::uint8_t, kConfigSpaceSize> bytes_{};
    std::array<std::uint8_t, kConfigSpaceSize> writable_{};
    std::array<std::uint8_t, kConfigSpaceSize> write_one_to_clear_{};
    std::vector<BarInfo> bars_;
    std::uint16_t next_capability_ = kFirstCapability;
    std::uint16_t last_capability_ = 0;
};

// True when [offset, offset + length) overlaps [start, start + size).
constexpr bool overlaps(std::uint64_t offset, std::uint64_t length, std::uint64_t start,
                        std::uint64_t size) {
    return offset < start + size && start < offset + length;
}

}  // namespace devices::pci
