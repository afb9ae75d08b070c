#include "devices/vfio/vfio_config_space.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <set>

#include "base/error.hpp"
#include "devices/log_limit.hpp"
#include "vmm/log.hpp"

namespace devices::vfio {

namespace {

constexpr std::uint16_t kDecodeBits = pci::kCommandIo | pci::kCommandMemory;
constexpr std::uint8_t kCapabilityPm = 0x01;
constexpr std::uint8_t kCapabilityMsi = 0x05;
constexpr std::uint16_t kCacheLineSize = 0x0c;
// A malformed chain that loops, or one longer than 192 bytes of 4-byte
// capabilities allow, ends the walk.
constexpr int kMaxCapabilities = 48;

// Failures a guest can cause at will (it drives config cycles): logged,
// rate-limited, never thrown into the vCPU loop.
LogLimit& device_errors() {
    static LogLimit limit;
    return limit;
}

std::uint16_t get16(std::span<const std::uint8_t> bytes, std::size_t offset) {
    std::uint16_t value = 0;
    if (offset + 2 <= bytes.size()) std::memcpy(&value, bytes.data() + offset, 2);
    return value;
}

std::uint32_t get32(std::span<const std::uint8_t> bytes, std::size_t offset) {
    std::uint32_t value = 0;
    if (offset + 4 <= bytes.size()) std::memcpy(&value, bytes.data() + offset, 4);
    return value;
}

const pci::BarInfo* find_bar(const std::vector<pci::BarInfo>& bars, std::uint8_t index) {
    for (const auto& bar : bars) {
        if (bar.index == index) return &bar;
    }
    return nullptr;
}

// Why an MSI-X capability cannot be emulated, or nullptr when it can.
const char* msix_refusal(const MsixLayout& layout, const std::vector<pci::BarInfo>& bars) {
    if (layout.capability + 12u > pci::kLegacyConfigSpaceSize) return "it runs past 256 bytes";
    if (layout.table_bar > 5 || layout.pba_bar > 5) return "its BAR indicator is reserved";
    const auto* table = find_bar(bars, layout.table_bar);
    const auto* pba = find_bar(bars, layout.pba_bar);
    if (table == nullptr || pba == nullptr) return "its table or PBA is in a BAR the device lacks";
    if (table->kind == pci::BarKind::Io || pba->kind == pci::BarKind::Io) {
        return "its table or PBA is in an I/O BAR";
    }
    if (layout.table_offset + layout.table_size() > table->size ||
        layout.pba_offset + layout.pba_size() > pba->size) {
        return "its table or PBA runs past the end of its BAR";
    }
    return nullptr;
}

}  // namespace

std::vector<pci::BarInfo> discover_bars(std::span<const std::uint8_t> config,
                                        std::span<const RegionInfo, kBarRegionCount> regions) {
    std::vector<pci::BarInfo> bars;
    for (std::uint8_t index = 0; index < kBarRegionCount; ++index) {
        const std::uint64_t size = regions[index].size;
        if (size == 0) continue;
        const std::uint32_t reg = get32(config, pci::kBar0 + 4u * index);
        pci::BarInfo bar{.index = index, .size = size};
        const char* refusal = nullptr;
        if (reg & 0x1) {
            bar.kind = pci::BarKind::Io;
            if (size > 256) refusal = "I/O BARs are at most 256 bytes";
        } else {
            bar.prefetchable = (reg & 0x8) != 0;
            if (((reg >> 1) & 0x3) == 0x2) {
                bar.kind = pci::BarKind::Mmio64;
                if (index == 5) refusal = "a 64-bit BAR cannot be the last one";
            } else {
                bar.kind = pci::BarKind::Mmio32;
                if (size > (1ull << 31))
                    refusal = "a 32-bit BAR over 2 GiB does not fit below 4 GiB";
            }
        }
        if (!std::has_single_bit(size)) refusal = "its size is not a power of two";
        // Hardware sizes BARs at 16 bytes (memory) and 4 (I/O) at least.
        const std::uint64_t minimum = bar.kind == pci::BarKind::Io ? 4 : 16;
        if (size < minimum) bar.size = minimum;
        if (refusal != nullptr) {
            throw base::Error("BAR {} ({:#x} bytes) cannot be passed through: {}", index, size,
                              refusal);
        }
        bars.push_back(bar);
        if (bar.kind == pci::BarKind::Mmio64) ++index;  // its upper half
    }
    return bars;
}

std::vector<std::uint8_t> read_config_snapshot(const DeviceIo& io) {
    const std::uint64_t region_size = io.region_info(kConfigRegion).size;
    if (region_size < 0x40) {
        throw base::Error("VFIO device {}: its config space region has {} bytes, not a PCI header",
                          io.name(), region_size);
    }
    std::vector<std::uint8_t> snapshot(std::min<std::uint64_t>(region_size, pci::kConfigSpaceSize));
    io.read(kConfigRegion, 0, snapshot);
    return snapshot;
}

VfioConfigSpace::VfioConfigSpace(const DeviceIo& io, std::span<const std::uint8_t> snapshot,
                                 const std::vector<pci::BarInfo>& bars, bool intx)
    : io_(io), shadow_(pci::PciIdentity{}) {
    if (snapshot.size() < 0x40) {
        throw base::Error("VFIO device {}: {} bytes of config space are not a PCI header",
                          io_.name(), snapshot.size());
    }
    const std::size_t real_size = std::min(snapshot.size(), pci::kConfigSpaceSize);
    std::vector<std::uint8_t> real(pci::kConfigSpaceSize, 0);
    std::copy_n(snapshot.begin(), real_size, real.begin());

    shadow_ = pci::PciConfigSpace(pci::PciIdentity{
        .vendor_id = get16(real, pci::kVendorId),
        .device_id = get16(real, pci::kDeviceId),
        .class_code = get32(real, pci::kRevisionId) >> 8,
        .revision = real[pci::kRevisionId],
        .subsystem_vendor_id = get16(real, pci::kSubsystemVendorId),
        .subsystem_id = get16(real, pci::kSubsystemId),
        .interrupt_pin = static_cast<std::uint8_t>(intx ? 1 : 0),
    });
    // Max_Lat/Min_Gnt are informational; cache line size is a scratch
    // register for the OS. Latency timer and BIST read 0: nothing to time,
    // and a guest-started self-test would run behind the VMM's back.
    shadow_.set8(0x3e, real[0x3e]);
    shadow_.set8(0x3f, real[0x3f]);
    const std::array<std::uint8_t, 1> scratch{0xff};
    shadow_.set_writable(kCacheLineSize, scratch);
    for (const auto& bar : bars) {
        shadow_.add_bar(bar);
        decode_mask_ |= bar.kind == pci::BarKind::Io ? pci::kCommandIo : pci::kCommandMemory;
    }
    device_decode_ = decode_mask_;

    std::fill(kinds_.begin(), kinds_.end(), Kind::Zero);
    std::fill(kinds_.begin(), kinds_.begin() + 0x40, Kind::Emulated);
    std::fill(kinds_.begin() + 0x40, kinds_.begin() + real_size, Kind::Passthrough);
    kinds_[pci::kCommand] = kinds_[pci::kCommand + 1] = Kind::Command;
    kinds_[pci::kStatus] = kinds_[pci::kStatus + 1] = Kind::Status;
    build_capabilities(real, real_size);
}

void VfioConfigSpace::emulate(std::uint16_t offset, std::size_t length) {
    const std::size_t end = std::min<std::size_t>(offset + length, pci::kLegacyConfigSpaceSize);
    for (std::size_t at = offset; at < end; ++at) kinds_[at] = Kind::Emulated;
}

void VfioConfigSpace::build_capabilities(std::span<const std::uint8_t> real,
                                         std::size_t real_size) {
    struct Found {
        std::uint16_t offset;
        std::uint8_t id;
    };
    std::vector<Found> chain;
    if (get16(real, pci::kStatus) & pci::kStatusCapabilities) {
        std::set<std::uint16_t> seen;
        // The two low bits of every pointer are reserved (PCI 3.0, 6.7).
        std::uint16_t at = real[pci::kCapabilitiesPointer] & 0xfc;
        while (at >= pci::kFirstCapability && at + 2u <= std::min<std::size_t>(real_size, 256) &&
               chain.size() < kMaxCapabilities && seen.insert(at).second) {
            chain.push_back({at, real[at]});
            at = real[at + 1u] & 0xfc;
        }
    }

    std::vector<std::uint16_t> kept;
    for (const auto& cap : chain) {
        if (cap.id == kCapabilityMsi) {
            const std::uint16_t control = get16(real, cap.offset + 2u);
            const std::size_t length = ((control & 0x80) ? 14 : 10) + ((control & 0x100) ? 10 : 0);
            const std::size_t end = std::min<std::size_t>(cap.offset + length, 256);
            for (std::size_t i = cap.offset; i < end; ++i) kinds_[i] = Kind::Zero;
            continue;
        }
        if (cap.id == pci::kCapabilityMsix) {
            const std::uint16_t control = get16(real, cap.offset + 2u);
            const std::uint32_t table = get32(real, cap.offset + 4u);
            const std::uint32_t pba = get32(real, cap.offset + 8u);
            const MsixLayout layout{.capability = cap.offset,
                                    .vectors = static_cast<std::uint16_t>((control & 0x7ff) + 1),
                                    .table_bar = static_cast<std::uint8_t>(table & 0x7),
                                    .table_offset = table & ~0x7u,
                                    .pba_bar = static_cast<std::uint8_t>(pba & 0x7),
                                    .pba_offset = pba & ~0x7u};
            std::vector<pci::BarInfo> bars = shadow_.bars();
            if (const char* refusal = msix_refusal(layout, bars)) {
                vmm::log::warn("VFIO device {}: MSI-X capability at {:#x} hidden: {}", io_.name(),
                               cap.offset, refusal);
                for (std::size_t i = cap.offset; i < std::min<std::size_t>(cap.offset + 12u, 256);
                     ++i) {
                    kinds_[i] = Kind::Zero;
                }
                continue;
            }
            msix_ = layout;
            emulate(cap.offset, 12);
            shadow_.set16(cap.offset + 2u, static_cast<std::uint16_t>(layout.vectors - 1));
            shadow_.set32(cap.offset + 4u, table);
            shadow_.set32(cap.offset + 8u, pba);
            // Enable (bit 15) and Function Mask (bit 14) only.
            const std::array<std::uint8_t, 2> writable{0x00, 0xc0};
            shadow_.set_writable(cap.offset + 2u, writable);
        } else if (cap.id == kCapabilityPm) {
            pm_ = cap.offset;
            emulate(cap.offset, 8);
            // No PME (the guest cannot take wake-up events; VFIO hides them
            // too), NoSoftRst kept, Power State D0 and writable.
            shadow_.set16(cap.offset + 2u, get16(real, cap.offset + 2u) & 0x07ff);
            shadow_.set16(cap.offset + 4u, get16(real, cap.offset + 4u) & 0x0008);
            shadow_.set8(cap.offset + 6u, real[cap.offset + 6u]);
            shadow_.set8(cap.offset + 7u, real[cap.offset + 7u]);
            const std::array<std::uint8_t, 1> state{0x03};
            shadow_.set_writable(cap.offset + 4u, state);
        } else {
            emulate(cap.offset, 2);
        }
        kept.push_back(cap.offset);
    }
    for (std::size_t i = 0; i < kept.size(); ++i) {
        shadow_.set8(kept[i], real[kept[i]]);
        shadow_.set8(kept[i] + 1u,
                     static_cast<std::uint8_t>(i + 1 < kept.size() ? kept[i + 1] : 0));
    }
    shadow_.set8(pci::kCapabilitiesPointer,
                 static_cast<std::uint8_t>(kept.empty() ? 0 : kept.front()));
    has_capabilities_ = !kept.empty();
}

std::uint16_t VfioConfigSpace::read_device16(std::uint16_t offset) const {
    std::array<std::uint8_t, 2> bytes{0xff, 0xff};
    try {
        io_.read(kConfigRegion, offset, bytes);
    } catch (const std::exception& error) {
        device_errors().warn("VFIO device {}: config read at {:#x}: {}", io_.name(), offset,
                             error.what());
    }
    std::uint16_t value;
    std::memcpy(&value, bytes.data(), 2);
    return value;
}

void VfioConfigSpace::read(std::uint16_t offset, std::span<std::uint8_t> data) const {
    shadow_.read(offset, data);  // all-ones past 4 KiB
    const std::size_t end =
        std::min<std::size_t>(std::size_t{offset} + data.size(), pci::kConfigSpaceSize);
    if (offset >= end) return;
    bool any_device = false;
    bool any_command = false;
    bool any_status = false;
    for (std::size_t at = offset; at < end; ++at) {
        any_device |= kinds_[at] == Kind::Passthrough;
        any_command |= kinds_[at] == Kind::Command;
        any_status |= kinds_[at] == Kind::Status;
    }
    std::array<std::uint8_t, 8> device{};
    std::fill(device.begin(), device.end(), 0xff);
    const std::size_t length = std::min<std::size_t>(end - offset, device.size());
    if (any_device) {
        try {
            io_.read(kConfigRegion, offset, std::span(device.data(), length));
        } catch (const std::exception& error) {
            device_errors().warn("VFIO device {}: config read of {} bytes at {:#x}: {}", io_.name(),
                                 length, offset, error.what());
            std::fill(device.begin(), device.end(), 0xff);
        }
    }
    std::uint16_t command = 0;
    if (any_command) {
        command = static_cast<std::uint16_t>((read_device16(pci::kCommand) & ~kDecodeBits) |
                                             (shadow_.read16(pci::kCommand) & kDecodeBits));
    }
    std::uint16_t status = 0;
    if (any_status) {
        status =
            static_cast<std::uint16_t>(read_device16(pci::kStatus) & ~pci::kStatusCapabilities);
        if (has_capabilities_) status |= pci::kStatusCapabilities;
    }
    for (std::size_t at = offset; at < end; ++at) {
        std::uint8_t& byte = data[at - offset];
        switch (kinds_[at]) {
            case Kind::Emulated:
                break;
            case Kind::Zero:
                byte = 0;
                break;
            case Kind::Passthrough:
                byte = at - offset < device.size() ? device[at - offset] : 0xff;
                break;
            case Kind::Command:
                byte = static_cast<std::uint8_t>(command >> (8 * (at - pci::kCommand)));
                break;
            case Kind::Status:
                byte = static_cast<std::uint8_t>(status >> (8 * (at - pci::kStatus)));
                break;
        }
    }
}

VfioConfigSpace::Effects VfioConfigSpace::write(std::uint16_t offset,
                                                std::span<const std::uint8_t> data) {
    Effects effects;
    const std::size_t end =
        std::min<std::size_t>(std::size_t{offset} + data.size(), pci::kConfigSpaceSize);
    std::size_t run_start = 0;
    std::size_t run_length = 0;
    auto flush_run = [&] {
        if (run_length > 0) {
            write_device(static_cast<std::uint16_t>(run_start),
                         data.subspan(run_start - offset, run_length));
        }
        run_length = 0;
    };
    bool command = false;
    for (std::size_t at = offset; at < end; ++at) {
        const Kind kind = kinds_[at];
        if (kind != Kind::Passthrough) flush_run();
        switch (kind) {
            case Kind::Passthrough:
                if (run_length == 0) run_start = at;
                ++run_length;
                break;
            case Kind::Emulated:
                shadow_.write(static_cast<std::uint16_t>(at), data.subspan(at - offset, 1));
                if (msix_ && at >= msix_->capability + 2u && at < msix_->capability + 4u) {
                    effects.msix_control = true;
                }
                break;
            case Kind::Command:
                command = true;
                break;
            case Kind::Zero:
            case Kind::Status:
                // Hidden bytes, and Status, which VFIO does not let anyone
                // write either (its error bits are the host's to clear).
                break;
        }
    }
    flush_run();
    if (command) write_command(offset, data.first(end - offset));
    return effects;
}

void VfioConfigSpace::write_command(std::uint16_t offset, std::span<const std::uint8_t> data) {
    std::array<std::uint8_t, 2> command{};
    read(pci::kCommand, command);
    for (std::size_t i = 0; i < data.size(); ++i) {
        const std::size_t at = std::size_t{offset} + i;
        if (at == pci::kCommand || at == pci::kCommand + 1u) {
            command[at - pci::kCommand] = data[i];
        }
    }
    std::uint16_t value;
    std::memcpy(&value, command.data(), 2);
    // The decode bits a BAR of the right kind backs; the device keeps its
    // own on whatever the guest does (see the header).
    const std::uint16_t guest_decode = value & decode_mask_;
    shadow_.set16(
        pci::kCommand,
        static_cast<std::uint16_t>((shadow_.read16(pci::kCommand) & ~kDecodeBits) | guest_decode));
    const std::uint16_t device_value =
        static_cast<std::uint16_t>((value & ~kDecodeBits) | device_decode_);
    std::array<std::uint8_t, 2> bytes{};
    std::memcpy(bytes.data(), &device_value, 2);
    write_device(pci::kCommand, bytes);
}

void VfioConfigSpace::write_device(std::uint16_t offset, std::span<const std::uint8_t> data) const {
    try {
        io_.write(kConfigRegion, offset, data);
    } catch (const std::exception& error) {
        device_errors().warn("VFIO device {}: config write of {} bytes at {:#x}: {}", io_.name(),
                             data.size(), offset, error.what());
    }
}

std::uint16_t VfioConfigSpace::msix_control() const {
    return msix_ ? shadow_.read16(msix_->capability + 2u) : 0;
}

std::uint16_t VfioConfigSpace::decode_bits() const {
    return shadow_.read16(pci::kCommand) & kDecodeBits;
}

std::uint8_t VfioConfigSpace::power_state() const {
    return pm_ == 0 ? 0 : shadow_.read8(pm_ + 4u) & 0x3;
}

}  // namespace devices::vfio
