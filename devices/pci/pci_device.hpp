// The one interface every device on the PCI bus implements: emulated
// (virtio-pci, the host bridge) and, later, VFIO passthrough. The bus owns
// addresses and decoding (BAR allocation, mapping BARs into the MMIO/PIO
// bus when the guest enables or moves them); the device owns its config
// space contents and what its BARs do.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace devices::pci {

enum class BarKind { Mmio32, Mmio64, Io };

struct BarInfo {
    std::uint8_t index = 0;  // 0-5; a 64-bit BAR also uses index + 1
    BarKind kind = BarKind::Mmio32;
    std::uint64_t size = 0;  // power of two, >= 16 (MMIO) or >= 4 (I/O)
    bool prefetchable = false;
};

inline constexpr std::size_t kConfigSpaceSize = 4096;  // PCIe extended config space
inline constexpr std::size_t kLegacyConfigSpaceSize = 256;

class PciDevice {
  public:
    virtual ~PciDevice() = default;

    virtual std::string name() const = 0;

    // Config space access at `offset` (< 4096), 1, 2 or 4 bytes, never
    // crossing a dword. Guest-controlled: any offset must be accepted. BAR
    // registers must behave as on hardware (sizing reads back ~(size - 1)),
    // because the bus decodes the BAR addresses by reading them back.
    virtual void config_read(std::uint16_t offset, std::span<std::uint8_t> data) = 0;
    virtual void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) = 0;

    // The BARs the device implements; constant for the device's life.
    virtual std::vector<BarInfo> bars() const = 0;

    // An access inside BAR `index` at `offset` (guest-controlled, any size).
    virtual void bar_read(std::uint8_t index, std::uint64_t offset,
                          std::span<std::uint8_t> data) = 0;
    virtual void bar_write(std::uint8_t index, std::uint64_t offset,
                           std::span<const std::uint8_t> data) = 0;

    // The bus placed the device at `slot` of bus 0; its INTx pin (if any)
    // drives IOAPIC input `intx_gsi`. Called once, before any guest access.
    virtual void attached(std::uint8_t /*slot*/, std::uint32_t /*intx_gsi*/) {}

    // The bus (un)mapped BAR `index`: nullopt means not decoded. Devices that
    // attach host resources to guest addresses react here: ioeventfds for
    // virtio notifications, mmap'd BAR regions for VFIO.
    virtual void bar_moved(std::uint8_t /*index*/, std::optional<std::uint64_t> /*old_address*/,
                           std::optional<std::uint64_t> /*new_address*/) {}
};

}  // namespace devices::pci
