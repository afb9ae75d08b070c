#include "devices/vfio/vfio_pci_device.hpp"

#include <unistd.h>

#include <algorithm>

#include "base/checked_math.hpp"
#include "base/error.hpp"
#include "vmm/log.hpp"

namespace devices::vfio {

namespace {

pci::MsiRouter& require_router(const std::shared_ptr<pci::MsiRouter>& router, const DeviceIo& io) {
    if (!router) throw base::Error("VFIO device {}: no interrupt router", io.name());
    return *router;
}

bool reset_device(DeviceIo& io) {
    // Before anything reads the device: whatever the last user (a previous
    // VM, a host driver) left running stops, and its config is the
    // power-on one again (VFIO restores the BARs it owns).
    try {
        if (io.reset()) return true;
        vmm::log::warn(
            "VFIO device {} has no reset method (no FLR, PM or bus reset): the guest gets it as "
            "the last user left it",
            io.name());
    } catch (const std::exception& error) {
        // The kernel could not reset it now (another reset in progress, a
        // bus reset the slot refuses): as QEMU does, go on with a warning;
        // the guest's driver resets the device itself anyway.
        vmm::log::warn("VFIO device {}: reset failed ({}); the guest gets it as it is", io.name(),
                       error.what());
    }
    return false;
}

std::vector<pci::BarInfo> bars_of(const DeviceIo& io, std::span<const std::uint8_t> snapshot) {
    std::array<RegionInfo, kBarRegionCount> regions{};
    for (std::uint32_t index = 0; index < kBarRegionCount; ++index) {
        regions[index] = io.region_info(index);
    }
    try {
        return discover_bars(snapshot, regions);
    } catch (const base::Error& error) {
        throw base::Error("VFIO device {}: {}", io.name(), error.what());
    }
}

// VFIO reports an Interrupt Pin of 0 (and no INTx IRQ) when the host cannot
// route the device's INTx; both must agree that it can.
bool has_intx(const DeviceIo& io, std::span<const std::uint8_t> snapshot) {
    return io.irq_count(kIntxIrq) > 0 && snapshot.size() > pci::kInterruptPin &&
           snapshot[pci::kInterruptPin] != 0;
}

// The MSI-X capability, if VFIO can deliver its vectors too.
std::optional<MsixLayout> usable_msix(const DeviceIo& io, const VfioConfigSpace& config) {
    const auto& msix = config.msix();
    if (!msix) return std::nullopt;
    if (io.irq_count(kMsixIrq) == 0) {
        vmm::log::warn("VFIO device {}: VFIO offers no MSI-X interrupts; the guest gets INTx only",
                       io.name());
        return std::nullopt;
    }
    return msix;
}

std::uint64_t host_page_size(std::uint64_t requested) {
    if (requested != 0) return requested;
    const long size = ::sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::uint64_t>(size) : 4096;
}

}  // namespace

VfioPciDevice::VfioPciDevice(std::unique_ptr<DeviceIo> io, std::shared_ptr<pci::MsiRouter> router,
                             std::uint64_t page_size)
    : io_(io ? std::move(io) : throw base::Error("VfioPciDevice: no device")),
      router_(std::move(router)),
      name_(fmt::format("vfio {}", io_->name())),
      hypervisor_(require_router(router_, *io_).hypervisor()),
      reset_at_start_(reset_device(*io_)),
      snapshot_(read_config_snapshot(*io_)),
      bar_list_(bars_of(*io_, snapshot_)),
      config_(*io_, snapshot_, bar_list_, has_intx(*io_, snapshot_)),
      interrupts_(*io_, router_, usable_msix(*io_, config_), has_intx(*io_, snapshot_)) {
    if (interrupts_.msix() != nullptr) msix_layout_ = config_.msix();
    const std::uint64_t page = host_page_size(page_size);
    for (const auto& info : bar_list_) {
        Bar bar;
        bar.info = info;
        bar.region = io_->region_info(info.index);
        std::vector<ByteRange> trapped;
        if (msix_layout_ && msix_layout_->table_bar == info.index) {
            trapped.push_back({msix_layout_->table_offset, msix_layout_->table_size()});
        }
        if (msix_layout_ && msix_layout_->pba_bar == info.index) {
            trapped.push_back({msix_layout_->pba_offset, msix_layout_->pba_size()});
        }
        const bool mappable = bar.region.mappable && info.kind != pci::BarKind::Io;
        bar.segments = plan_bar_segments(info.size, mappable, trapped, page);
        map_bar(bar, page);
        bars_[info.index] = std::move(bar);
    }
    vmm::log::debug("{}: {} BARs, MSI-X {}, INTx {}, reset {}", name_, bar_list_.size(),
                    msix_layout_ ? fmt::format("{} vectors", msix_layout_->vectors) : "none",
                    has_intx(*io_, snapshot_) ? "yes" : "no", reset_at_start_ ? "done" : "none");
}

void VfioPciDevice::map_bar(Bar& bar, std::uint64_t page_size) {
    const bool any_mapped = std::any_of(bar.segments.begin(), bar.segments.end(),
                                        [](const BarSegment& s) { return s.mapped; });
    if (!any_mapped) return;
    try {
        // The region is at least the BAR (both come from the resource's
        // length); sub-page BARs never get here.
        const std::uint64_t length = (bar.info.size + page_size - 1) & ~(page_size - 1);
        bar.mapping = io_->map(bar.info.index, 0, length);
    } catch (const std::exception& error) {
        // Sparse mmap areas (device-specific VFIO drivers), a refused mmap:
        // the BAR still works, through pread/pwrite.
        vmm::log::warn("{}: BAR {} cannot be mmapped ({}); its accesses go through VFIO", name_,
                       bar.info.index, error.what());
        bar.segments = {{0, bar.info.size, false}};
    }
}

VfioPciDevice::~VfioPciDevice() {
    // Interrupts off before the device is reset, so that nothing fires into
    // routes that are being torn down; the members then go in reverse order.
    {
        std::lock_guard lock(mutex_);
        interrupts_.shutdown();
    }
    try {
        io_->reset();
    } catch (const std::exception& error) {
        vmm::log::warn("{}: reset at teardown: {}", name_, error.what());
    }
}

void VfioPciDevice::config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    config_.read(offset, data);
}

void VfioPciDevice::config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    const auto effects = config_.write(offset, data);
    if (effects.msix_control) interrupts_.msix_control_written(config_.msix_control());
}

void VfioPciDevice::attached(std::uint8_t /*slot*/, std::uint32_t intx_gsi) {
    std::lock_guard lock(mutex_);
    try {
        interrupts_.attached(intx_gsi);
    } catch (const base::Error& error) {
        throw base::Error("{}: routing INTx to GSI {}: {}", name_, intx_gsi, error.what());
    }
}

std::vector<VfioPciDevice::Piece> VfioPciDevice::split(const Bar& bar, std::uint64_t offset,
                                                       std::uint64_t length) const {
    // Boundaries inside [offset, offset + length) where the target changes.
    std::vector<std::pair<std::uint64_t, Target>> marks;  // start, target
    auto add_range = [&](std::uint64_t start, std::uint64_t size, Target target) {
        marks.push_back({start, target});
        marks.push_back({start + size, Target::Device});
    };
    const auto& msix = msix_layout_;
    if (msix && msix->pba_bar == bar.info.index) {
        add_range(msix->pba_offset, msix->pba_size(), Target::MsixPba);
    }
    // The table last: where a malformed device overlaps the two, it wins.
    if (msix && msix->table_bar == bar.info.index) {
        add_range(msix->table_offset, msix->table_size(), Target::MsixTable);
    }
    auto target_at = [&](std::uint64_t at) {
        Target target = Target::Device;
        if (msix && msix->pba_bar == bar.info.index && at >= msix->pba_offset &&
            at - msix->pba_offset < msix->pba_size()) {
            target = Target::MsixPba;
        }
        if (msix && msix->table_bar == bar.info.index && at >= msix->table_offset &&
            at - msix->table_offset < msix->table_size()) {
            target = Target::MsixTable;
        }
        return target;
    };
    std::vector<std::uint64_t> cuts{offset, offset + length};
    for (const auto& [at, target] : marks) {
        if (at > offset && at < offset + length) cuts.push_back(at);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<Piece> pieces;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
        pieces.push_back({target_at(cuts[i]), cuts[i], cuts[i + 1] - cuts[i]});
    }
    return pieces;
}

template <typename Byte, typename Visit>
void VfioPciDevice::for_each_piece(std::uint8_t index, std::uint64_t offset, std::span<Byte> data,
                                   Visit&& visit) const {
    if (index >= kBarRegionCount || !bars_[index] || data.empty()) return;
    const Bar& bar = *bars_[index];
    if (offset >= bar.info.size) return;
    const std::uint64_t length = std::min<std::uint64_t>(data.size(), bar.info.size - offset);
    for (const auto& piece : split(bar, offset, length)) {
        visit(bar, piece, data.subspan(piece.offset - offset, piece.length));
    }
}

void VfioPciDevice::bar_read(std::uint8_t index, std::uint64_t offset,
                             std::span<std::uint8_t> data) {
    // Bytes no piece covers (past the BAR's end, a BAR that does not
    // exist) read all-ones.
    std::fill(data.begin(), data.end(), 0xff);
    for_each_piece(index, offset, data, [&](const Bar& bar, const Piece& piece, auto bytes) {
        switch (piece.target) {
            case Target::MsixTable:
                interrupts_.msix()->table_read(piece.offset - msix_layout_->table_offset, bytes);
                break;
            case Target::MsixPba:
                // The device's own PBA: masking is mirrored into the device
                // (VfioInterrupts), so its pending bits are the guest's.
            case Target::Device:
                device_read(bar, piece.offset, bytes);
                break;
        }
    });
}

void VfioPciDevice::bar_write(std::uint8_t index, std::uint64_t offset,
                              std::span<const std::uint8_t> data) {
    for_each_piece(index, offset, data, [&](const Bar& bar, const Piece& piece, auto bytes) {
        switch (piece.target) {
            case Target::MsixTable: {
                std::lock_guard lock(mutex_);
                try {
                    interrupts_.msix()->table_write(piece.offset - msix_layout_->table_offset,
                                                    bytes);
                } catch (const std::exception& error) {
                    access_errors_.warn("{}: MSI-X table write: {}", name_, error.what());
                }
                interrupts_.update();
                break;
            }
            case Target::MsixPba:
                break;  // read-only (PCI 3.0, 6.8.2.10)
            case Target::Device:
                device_write(bar, piece.offset, bytes);
                break;
        }
    });
}

void VfioPciDevice::device_read(const Bar& bar, std::uint64_t offset,
                                std::span<std::uint8_t> data) {
    if (!bar.region.readable) return;
    try {
        io_->read(bar.info.index, offset, data);
    } catch (const std::exception& error) {
        std::fill(data.begin(), data.end(), 0xff);
        access_errors_.warn("{}: BAR {} read of {} bytes at {:#x}: {}", name_, bar.info.index,
                            data.size(), offset, error.what());
    }
}

void VfioPciDevice::device_write(const Bar& bar, std::uint64_t offset,
                                 std::span<const std::uint8_t> data) {
    if (!bar.region.writable) return;
    try {
        io_->write(bar.info.index, offset, data);
    } catch (const std::exception& error) {
        access_errors_.warn("{}: BAR {} write of {} bytes at {:#x}: {}", name_, bar.info.index,
                            data.size(), offset, error.what());
    }
}

void VfioPciDevice::bar_moved(std::uint8_t index, std::optional<std::uint64_t> /*old_address*/,
                              std::optional<std::uint64_t> new_address) {
    if (index >= kBarRegionCount || !bars_[index]) return;
    std::lock_guard lock(slots_mutex_);
    Bar& bar = *bars_[index];
    // Old slots first: a BAR that moves onto part of its old range must not
    // collide with itself.
    bar.slots.clear();
    if (!new_address || bar.mapping.data() == nullptr) return;
    for (const auto& segment : bar.segments) {
        if (!segment.mapped) continue;
        const auto gpa = base::checked_add(*new_address, segment.offset);
        if (!gpa) continue;
        try {
            bar.slots.emplace_back(hypervisor_, *gpa,
                                   bar.mapping.bytes().subspan(segment.offset, segment.size),
                                   !bar.region.writable);
        } catch (const std::exception& error) {
            // The guest put the BAR over RAM or another slot: KVM serves
            // those addresses from what is there already, the rest of the
            // BAR still traps to us and goes through VFIO.
            slot_refusals_.warn("{}: BAR {} at {:#x} (+{:#x}) not mapped into the guest: {}", name_,
                                index, *gpa, segment.size, error.what());
        }
    }
}

const std::vector<BarSegment>& VfioPciDevice::bar_segments(std::uint8_t index) const {
    static const std::vector<BarSegment> none;
    return index < kBarRegionCount && bars_[index] ? bars_[index]->segments : none;
}

std::vector<ByteRange> VfioPciDevice::mapped_ranges(std::uint8_t index) const {
    std::lock_guard lock(slots_mutex_);
    std::vector<ByteRange> ranges;
    if (index >= kBarRegionCount || !bars_[index]) return ranges;
    for (const auto& slot : bars_[index]->slots) ranges.push_back({slot.gpa(), slot.size()});
    return ranges;
}

}  // namespace devices::vfio
