// PCI bus 0 behind one host bridge: config space through the legacy
// 0xCF8/0xCFC port pair and through PCIe ECAM, BAR assignment from the MMIO
// windows, and BAR decoding: whenever the guest rewrites a BAR or the
// command register, the bus re-reads the BARs and moves the device's ranges
// on the MMIO/PIO buses, then tells the device (PciDevice::bar_moved).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/pci/bar_allocator.hpp"
#include "devices/pci/pci_device.hpp"
#include "vmm/bus.hpp"
#include "vmm/x86/layout.hpp"

namespace devices::pci {

struct PciWindows {
    std::uint64_t mmio32_start = 0;
    std::uint64_t mmio32_end = 0;
    std::uint64_t mmio64_start = 0;
    std::uint64_t mmio64_end = 0;
    std::uint64_t io_start = 0xc000;
    std::uint64_t io_end = 0x10000;
};

inline constexpr std::uint8_t kMaxSlots = 32;
// INTx of a slot's pin INTA: the map the DSDT's _PRT publishes
// (vmm/x86/layout.hpp), so the two cannot disagree.
inline constexpr std::uint32_t intx_gsi_for_slot(std::uint8_t slot) {
    return vmm::x86::pci_intx_gsi(slot, 0);
}

class PciBus : public std::enable_shared_from_this<PciBus> {
  public:
    // The PciConfigIo/PciEcam devices on `mmio_bus`/`pio_bus` own this
    // object, so it must never touch the buses from its destructor: it has
    // none, and BAR ranges leave the buses together with them.
    PciBus(vmm::Bus& mmio_bus, vmm::Bus& pio_bus, const PciWindows& windows);
    PciBus(const PciBus&) = delete;
    PciBus& operator=(const PciBus&) = delete;

    // Plugs `device` into the next free slot, assigns its BARs from the
    // windows and enables decoding, as firmware would. Returns the slot.
    // Throws base::Error when the bus or a window is full.
    std::uint8_t add_device(std::shared_ptr<PciDevice> device);

    // Config access for bus/device/function; `offset` < 4096. Absent
    // functions read all-ones. Thread-safe (one lock for all config cycles).
    void config_read(std::uint8_t bus, std::uint8_t slot, std::uint8_t function,
                     std::uint16_t offset, std::span<std::uint8_t> data);
    void config_write(std::uint8_t bus, std::uint8_t slot, std::uint8_t function,
                      std::uint16_t offset, std::span<const std::uint8_t> data);

    // Where BAR `index` of `slot` is currently decoded, if it is.
    std::optional<std::uint64_t> bar_mapping(std::uint8_t slot, std::uint8_t index) const;
    const PciWindows& windows() const { return windows_; }

  private:
    struct Slot {
        std::shared_ptr<PciDevice> device;
        std::vector<BarInfo> bars;
        std::array<std::optional<std::uint64_t>, 6> mapped{};
    };
    void update_mappings_locked(Slot& slot);

    vmm::Bus& mmio_bus_;
    vmm::Bus& pio_bus_;
    PciWindows windows_;
    BarAllocator mmio32_;
    BarAllocator mmio64_;
    BarAllocator io_;
    mutable std::mutex mutex_;
    std::array<Slot, kMaxSlots> slots_{};
};

// 0xCF8 (address) + 0xCFC-0xCFF (data) on the port I/O bus: insert at 0xCF8, size 8.
class PciConfigIo : public vmm::BusDevice {
  public:
    static constexpr std::uint64_t kPort = 0xcf8;
    static constexpr std::uint64_t kSize = 8;

    explicit PciConfigIo(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

  private:
    std::shared_ptr<PciBus> bus_;
    std::mutex mutex_;
    std::uint32_t address_ = 0;
};

// PCIe ECAM (memory-mapped config) on the MMIO bus: 1 MiB per bus number,
// 4 KiB per function; only bus 0 has devices.
class PciEcam : public vmm::BusDevice {
  public:
    explicit PciEcam(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

  private:
    std::shared_ptr<PciBus> bus_;
};

}  // namespace devices::pci
