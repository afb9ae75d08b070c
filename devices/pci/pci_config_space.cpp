#include "devices/pci/pci_config_space.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/error.hpp"

namespace devices::pci {

namespace {

constexpr std::uint32_t kBarIoSpace = 0x1;
constexpr std::uint32_t kBarMem64 = 0x4;
constexpr std::uint32_t kBarPrefetchable = 0x8;

}  // namespace

PciConfigSpace::PciConfigSpace(const PciIdentity& identity) {
    set16(kVendorId, identity.vendor_id);
    set16(kDeviceId, identity.device_id);
    set8(kRevisionId, identity.revision);
    set8(kClassCode, static_cast<std::uint8_t>(identity.class_code));
    set8(kClassCode + 1, static_cast<std::uint8_t>(identity.class_code >> 8));
    set8(kClassCode + 2, static_cast<std::uint8_t>(identity.class_code >> 16));
    set8(kHeaderType, 0);  // type 0, single function
    set16(kSubsystemVendorId, identity.subsystem_vendor_id);
    set16(kSubsystemId, identity.subsystem_id);
    set8(kInterruptPin, identity.interrupt_pin);
    // The command bits a guest may toggle: I/O and memory decode, bus
    // mastering, INTx disable. Everything else in the header is read-only,
    // except the interrupt line, which is a scratch register for the OS.
    const std::uint16_t command_mask =
        kCommandIo | kCommandMemory | kCommandBusMaster | kCommandIntxDisable;
    const std::array<std::uint8_t, 2> command_bytes{static_cast<std::uint8_t>(command_mask),
                                                    static_cast<std::uint8_t>(command_mask >> 8)};
    set_writable(kCommand, command_bytes);
    writable_[kInterruptLine] = 0xff;
}

std::uint16_t PciConfigSpace::read16(std::uint16_t offset) const {
    std::uint16_t value;
    std::memcpy(&value, &bytes_.at(offset + 1) - 1, sizeof(value));
    return value;
}

std::uint32_t PciConfigSpace::read32(std::uint16_t offset) const {
    std::uint32_t value;
    std::memcpy(&value, &bytes_.at(offset + 3) - 3, sizeof(value));
    return value;
}

void PciConfigSpace::set16(std::uint16_t offset, std::uint16_t value) {
    std::memcpy(&bytes_.at(offset + 1) - 1, &value, sizeof(value));
}

void PciConfigSpace::set32(std::uint16_t offset, std::uint32_t value) {
    std::memcpy(&bytes_.at(offset + 3) - 3, &value, sizeof(value));
}

void PciConfigSpace::set_writable(std::uint16_t offset, std::span<const std::uint8_t> mask) {
    if (offset + mask.size() > kConfigSpaceSize) {
        throw base::Error("PCI config write mask at {:#x} (+{}) is outside config space", offset,
                          mask.size());
    }
    std::copy(mask.begin(), mask.end(), writable_.begin() + offset);
}

void PciConfigSpace::read(std::uint16_t offset, std::span<std::uint8_t> data) const {
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = std::size_t{offset} + i;
        data[i] = at < kConfigSpaceSize ? bytes_[at] : 0xff;
    }
}

void PciConfigSpace::write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = std::size_t{offset} + i;
        if (at >= kConfigSpaceSize) break;
        const std::uint8_t mask = writable_[at];
        std::uint8_t value = static_cast<std::uint8_t>((bytes_[at] & ~mask) | (data[i] & mask));
        value = static_cast<std::uint8_t>(value & ~(data[i] & write_one_to_clear_[at]));
        bytes_[at] = value;
    }
}

void PciConfigSpace::add_bar(const BarInfo& bar) {
    const bool is64 = bar.kind == BarKind::Mmio64;
    const std::uint64_t min_size = bar.kind == BarKind::Io ? 4 : 16;
    if (bar.index > 5 || (is64 && bar.index > 4) || bar.size < min_size ||
        !std::has_single_bit(bar.size) || (bar.kind == BarKind::Io && bar.size > 256) ||
        (bar.kind == BarKind::Mmio32 && bar.size > (1ull << 31))) {
        throw base::Error("PCI BAR {} of size {:#x} is not a valid BAR", bar.index, bar.size);
    }
    for (const auto& other : bars_) {
        const bool other64 = other.kind == BarKind::Mmio64;
        if (other.index == bar.index || (other64 && other.index + 1 == bar.index) ||
            (is64 && bar.index + 1 == other.index)) {
            throw base::Error("PCI BAR {} overlaps BAR {}", bar.index, other.index);
        }
    }
    bars_.push_back(bar);
    const std::uint16_t reg = kBar0 + 4 * bar.index;
    std::uint32_t flags = 0;
    if (bar.kind == BarKind::Io) flags |= kBarIoSpace;
    if (is64) flags |= kBarMem64;
    if (bar.prefetchable) flags |= kBarPrefetchable;
    set32(reg, flags);
    // Address bits below the size are hard-wired to zero: that is how the
    // guest sizes a BAR (write all-ones, read back ~(size - 1) | flags).
    const std::uint64_t address_mask = ~(bar.size - 1);
    const std::uint32_t low_mask =
        static_cast<std::uint32_t>(address_mask) & (bar.kind == BarKind::Io ? ~0x3u : ~0xfu);
    std::array<std::uint8_t, 4> low{};
    std::memcpy(low.data(), &low_mask, sizeof(low_mask));
    set_writable(reg, low);
    if (is64) {
        const std::uint32_t high_mask = static_cast<std::uint32_t>(address_mask >> 32);
        std::array<std::uint8_t, 4> high{};
        std::memcpy(high.data(), &high_mask, sizeof(high_mask));
        set_writable(reg + 4, high);
    }
}

std::uint64_t PciConfigSpace::bar_address(std::uint8_t index) const {
    for (const auto& bar : bars_) {
        if (bar.index != index) continue;
        const std::uint16_t reg = kBar0 + 4 * index;
        const std::uint32_t flag_bits = bar.kind == BarKind::Io ? 0x3u : 0xfu;
        std::uint64_t address = read32(reg) & ~flag_bits;
        if (bar.kind == BarKind::Mmio64) address |= std::uint64_t{read32(reg + 4)} << 32;
        return address;
    }
    throw base::Error("PCI BAR {} is not implemented", index);
}

void PciConfigSpace::set_bar_address(std::uint8_t index, std::uint64_t address) {
    for (const auto& bar : bars_) {
        if (bar.index != index) continue;
        if (address % bar.size != 0) {
            throw base::Error("PCI BAR {} address {:#x} is not aligned to its size {:#x}", index,
                              address, bar.size);
        }
        const std::uint16_t reg = kBar0 + 4 * index;
        const std::uint32_t flag_bits = bar.kind == BarKind::Io ? 0x3u : 0xfu;
        set32(reg, (read32(reg) & flag_bits) | (static_cast<std::uint32_t>(address) & ~flag_bits));
        if (bar.kind == BarKind::Mmio64) set32(reg + 4, static_cast<std::uint32_t>(address >> 32));
        return;
    }
    throw base::Error("PCI BAR {} is not implemented", index);
}

std::uint16_t PciConfigSpace::add_capability(std::uint8_t id, std::span<const std::uint8_t> body,
                                             std::span<const std::uint8_t> writable) {
    // Capabilities are dword aligned and must stay in the first 256 bytes.
    const std::uint16_t offset = next_capability_;
    const std::size_t length = 2 + body.size();
    if (offset + length > kLegacyConfigSpaceSize || writable.size() > body.size()) {
        throw base::Error("PCI capability {:#x} of {} bytes does not fit in config space", id,
                          length);
    }
    set8(offset, id);
    set8(offset + 1, 0);
    std::copy(body.begin(), body.end(), bytes_.begin() + offset + 2);
    if (!writable.empty()) set_writable(offset + 2, writable);
    if (last_capability_ == 0) {
        set8(kCapabilitiesPointer, static_cast<std::uint8_t>(offset));
        set16(kStatus, read16(kStatus) | kStatusCapabilities);
    } else {
        set8(last_capability_ + 1, static_cast<std::uint8_t>(offset));
    }
    last_capability_ = offset;
    next_capability_ = static_cast<std::uint16_t>((offset + length + 3) & ~3u);
    return offset;
}

}  // namespace devices::pci
