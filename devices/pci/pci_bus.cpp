#include "devices/pci/pci_bus.hpp"

#include <algorithm>
#include <cstring>

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "devices/pci/pci_config_space.hpp"
#include "vmm/log.hpp"

namespace devices::pci {

namespace {

// One BAR of one device on the MMIO or PIO bus. Holding the device by
// shared_ptr keeps it alive while a vCPU is inside an access even if
// another vCPU moves the BAR meanwhile.
class BarRegion : public vmm::BusDevice {
  public:
    BarRegion(std::shared_ptr<PciDevice> device, std::uint8_t index)
        : device_(std::move(device)), index_(index) {}
    void read(std::uint64_t offset, std::span<std::uint8_t> data) override {
        device_->bar_read(index_, offset, data);
    }
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override {
        device_->bar_write(index_, offset, data);
    }

  private:
    std::shared_ptr<PciDevice> device_;
    std::uint8_t index_;
};

std::uint32_t read_config32(PciDevice& device, std::uint16_t offset) {
    std::array<std::uint8_t, 4> bytes{};
    device.config_read(offset, bytes);
    std::uint32_t value;
    std::memcpy(&value, bytes.data(), sizeof(value));
    return value;
}

void write_config32(PciDevice& device, std::uint16_t offset, std::uint32_t value) {
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), &value, sizeof(value));
    device.config_write(offset, bytes);
}

bool touches_decoding(std::uint16_t offset, std::size_t length) {
    return overlaps(offset, length, kCommand, 2) || overlaps(offset, length, kBar0, 24);
}

// Splits an access into pieces that do not cross a dword, as the
// PciDevice interface promises its implementations.
template <typename Span, typename Fn>
void for_each_dword_piece(std::uint16_t offset, Span data, Fn&& fn) {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::uint32_t at = offset + done;
        const std::size_t room = 4 - at % 4;
        const std::size_t length = std::min(room, data.size() - done);
        fn(static_cast<std::uint16_t>(at), data.subspan(done, length));
        done += length;
    }
}

}  // namespace

PciBus::PciBus(vmm::Bus& mmio_bus, vmm::Bus& pio_bus, const PciWindows& windows)
    : mmio_bus_(mmio_bus),
      pio_bus_(pio_bus),
      windows_(windows),
      mmio32_("32-bit MMIO", windows.mmio32_start, windows.mmio32_end),
      mmio64_("64-bit MMIO", windows.mmio64_start, windows.mmio64_end),
      io_("I/O port", windows.io_start, windows.io_end) {}

std::uint8_t PciBus::add_device(std::shared_ptr<PciDevice> device) {
    if (!device) throw base::Error("PCI: no device given");
    std::lock_guard lock(mutex_);
    auto free = std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.device; });
    if (free == slots_.end()) {
        throw base::Error("PCI bus 0 is full: {} has no free slot", device->name());
    }
    const auto number = static_cast<std::uint8_t>(free - slots_.begin());
    Slot slot;
    slot.device = device;
    slot.bars = device->bars();
    // Largest first packs the windows without holes, as firmware does.
    auto order = slot.bars;
    std::sort(order.begin(), order.end(),
              [](const BarInfo& a, const BarInfo& b) { return a.size > b.size; });
    std::uint32_t command = 0;
    for (const auto& bar : order) {
        std::uint64_t address = 0;
        switch (bar.kind) {
            case BarKind::Mmio32:
                address = mmio32_.allocate(bar.size);
                command |= kCommandMemory;
                break;
            case BarKind::Mmio64:
                address = mmio64_.allocate(bar.size);
                command |= kCommandMemory;
                break;
            case BarKind::Io:
                address = io_.allocate(bar.size);
                command |= kCommandIo;
                break;
        }
        const std::uint16_t reg = kBar0 + 4 * bar.index;
        const std::uint32_t flags =
            read_config32(*device, reg) & (bar.kind == BarKind::Io ? 0x3 : 0xf);
        write_config32(*device, reg, static_cast<std::uint32_t>(address) | flags);
        if (bar.kind == BarKind::Mmio64) {
            write_config32(*device, reg + 4, static_cast<std::uint32_t>(address >> 32));
        }
    }
    device->attached(number, intx_gsi_for_slot(number));
    std::array<std::uint8_t, 1> line{static_cast<std::uint8_t>(intx_gsi_for_slot(number))};
    device->config_write(kInterruptLine, line);
    const std::uint32_t old_command = read_config32(*device, kCommand) & 0xffff;
    std::array<std::uint8_t, 2> command_bytes{
        static_cast<std::uint8_t>(old_command | command),
        static_cast<std::uint8_t>((old_command | command) >> 8)};
    *free = std::move(slot);
    free->device->config_write(kCommand, command_bytes);
    update_mappings_locked(*free);
    vmm::log::debug("PCI 00:{:02x}.0: {}", number, free->device->name());
    return number;
}

void PciBus::config_read(std::uint8_t bus, std::uint8_t slot, std::uint8_t function,
                         std::uint16_t offset, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xff);
    if (bus != 0 || slot >= kMaxSlots || function != 0 || offset >= kConfigSpaceSize ||
        data.size() > kConfigSpaceSize - offset) {
        return;
    }
    std::lock_guard lock(mutex_);
    auto& target = slots_[slot];
    if (!target.device) return;
    for_each_dword_piece(offset, data, [&](std::uint16_t at, std::span<std::uint8_t> piece) {
        target.device->config_read(at, piece);
    });
}

void PciBus::config_write(std::uint8_t bus, std::uint8_t slot, std::uint8_t function,
                          std::uint16_t offset, std::span<const std::uint8_t> data) {
    if (bus != 0 || slot >= kMaxSlots || function != 0 || offset >= kConfigSpaceSize ||
        data.size() > kConfigSpaceSize - offset) {
        return;
    }
    std::lock_guard lock(mutex_);
    auto& target = slots_[slot];
    if (!target.device) return;
    for_each_dword_piece(offset, data, [&](std::uint16_t at, std::span<const std::uint8_t> piece) {
        target.device->config_write(at, piece);
    });
    if (touches_decoding(offset, data.size())) update_mappings_locked(target);
}

std::optional<std::uint64_t> PciBus::bar_mapping(std::uint8_t slot, std::uint8_t index) const {
    std::lock_guard lock(mutex_);
    if (slot >= kMaxSlots || index > 5) return std::nullopt;
    return slots_[slot].mapped[index];
}

void PciBus::update_mappings_locked(Slot& slot) {
    auto& device = *slot.device;
    const std::uint32_t command = read_config32(device, kCommand) & 0xffff;
    for (const auto& bar : slot.bars) {
        const bool io = bar.kind == BarKind::Io;
        const std::uint16_t reg = kBar0 + 4 * bar.index;
        std::uint64_t address = read_config32(device, reg) & (io ? ~0x3u : ~0xfu);
        if (bar.kind == BarKind::Mmio64)
            address |= std::uint64_t{read_config32(device, reg + 4)} << 32;
        const bool decode = (command & (io ? kCommandIo : kCommandMemory)) != 0;
        // Address 0 means "not assigned"; a range that wraps or, for I/O,
        // leaves the 64 KiB port space can never be decoded either.
        std::optional<std::uint64_t> wanted;
        if (decode && address != 0 && base::range_within(address, bar.size, io ? 0x10000 : ~0ull)) {
            wanted = address;
        }
        auto& mapped = slot.mapped[bar.index];
        if (mapped == wanted) continue;
        vmm::Bus& target_bus = io ? pio_bus_ : mmio_bus_;
        const auto old = mapped;
        if (mapped) target_bus.remove(*mapped);
        mapped.reset();
        if (wanted) {
            try {
                target_bus.insert(std::make_shared<BarRegion>(slot.device, bar.index), *wanted,
                                  bar.size);
                mapped = wanted;
            } catch (const base::Error& error) {
                // The guest placed the BAR over another device: as on
                // hardware the result is undefined; here the BAR simply does
                // not decode until the guest moves it somewhere free.
                vmm::log::debug("PCI {}: BAR {} not decoded: {}", device.name(), bar.index,
                                error.what());
            }
        }
        if (old != mapped) device.bar_moved(bar.index, old, mapped);
    }
}

void PciConfigIo::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xff);
    std::uint32_t address;
    {
        std::lock_guard lock(mutex_);
        address = address_;
    }
    if (offset == 0 && data.size() == 4) {
        std::memcpy(data.data(), &address, sizeof(address));
        return;
    }
    if (offset < 4 || offset + data.size() > 8 || (address & 0x8000'0000u) == 0) return;
    const auto register_offset = static_cast<std::uint16_t>((address & 0xfc) + (offset - 4));
    bus_->config_read(static_cast<std::uint8_t>(address >> 16), (address >> 11) & 0x1f,
                      (address >> 8) & 0x7, register_offset, data);
}

void PciConfigIo::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset == 0 && data.size() == 4) {
        std::lock_guard lock(mutex_);
        std::memcpy(&address_, data.data(), sizeof(address_));
        return;
    }
    // Byte and word writes to 0xCF8-0xCFB (e.g. the 0xCF9 reset register of
    // some chipsets, or Linux's conf1 probe) are not config cycles.
    std::uint32_t address;
    {
        std::lock_guard lock(mutex_);
        address = address_;
    }
    if (offset < 4 || offset + data.size() > 8 || (address & 0x8000'0000u) == 0) return;
    const auto register_offset = static_cast<std::uint16_t>((address & 0xfc) + (offset - 4));
    bus_->config_write(static_cast<std::uint8_t>(address >> 16), (address >> 11) & 0x1f,
                       (address >> 8) & 0x7, register_offset, data);
}

void PciEcam::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    bus_->config_read(static_cast<std::uint8_t>(offset >> 20), (offset >> 15) & 0x1f,
                      (offset >> 12) & 0x7, offset & 0xfff, data);
}

void PciEcam::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    bus_->config_write(static_cast<std::uint8_t>(offset >> 20), (offset >> 15) & 0x1f,
                       (offset >> 12) & 0x7, offset & 0xfff, data);
}

}  // namespace devices::pci
