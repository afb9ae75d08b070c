// A host PCI function passed through to the guest over VFIO: the same
// PciDevice as our emulated ones, so the bus places its BARs, decodes them
// and routes its INTx exactly as for virtio-pci.
//
//  - Config space: VfioConfigSpace (what is emulated and why is there).
//  - BARs: each BAR's mmap is given to the guest as KVM memory slots at the
//    BAR's guest address while the bus decodes it (bar_moved adds, moves
//    and removes them), so guest loads and stores reach the device with no
//    exit. The pages holding the MSI-X table and PBA are left out (they
//    trap: the table is emulated, the PBA is the device's, read through
//    VFIO), as is everything VFIO cannot mmap (I/O BARs, BARs smaller than
//    a page), which goes through pread/pwrite on the VFIO fd.
//  - Interrupts: VfioInterrupts (MSI-X eventfds straight into KVM irqfds,
//    INTx through a resample irqfd).
//  - DMA: the device is attached to the VM's GuestDmaSpace (guest RAM at
//    IOVA = GPA) before this object exists.
//  - Reset: the device is reset (VFIO_DEVICE_RESET) when this object is
//    built, before the guest can see it, and again when it is destroyed, so
//    the next VM (a reboot is a new `vmm`) finds it quiet.
//
// Guest input is hostile: config writes, MSI-X table writes and BAR
// accesses at any offset and size never throw into the vCPU loop; what the
// device or the kernel refuses is logged, rate-limited. Threads: config and
// interrupt state under one mutex, memory slots under another (bar_moved
// runs with the bus lock held; BAR accesses need neither lock, only
// immutable layout, the Msix object's own lock and the VFIO fd).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/mapped_region.hpp"
#include "devices/log_limit.hpp"
#include "devices/pci/memory_slot.hpp"
#include "devices/pci/msi_router.hpp"
#include "devices/pci/pci_device.hpp"
#include "devices/vfio/bar_layout.hpp"
#include "devices/vfio/device_io.hpp"
#include "devices/vfio/vfio_config_space.hpp"
#include "devices/vfio/vfio_interrupts.hpp"

namespace devices::vfio {

class VfioPciDevice : public pci::PciDevice {
  public:
    // `io` is bound and attached already. Resets the device, reads its
    // config space, maps its BARs and sets up MSI-X vectors. Throws
    // base::Error naming the device when it cannot be passed through.
    // `page_size` 0: the host's.
    VfioPciDevice(std::unique_ptr<DeviceIo> io, std::shared_ptr<pci::MsiRouter> router,
                  std::uint64_t page_size = 0);
    ~VfioPciDevice() override;

    std::string name() const override { return name_; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override;
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override;
    std::vector<pci::BarInfo> bars() const override { return bar_list_; }
    void bar_read(std::uint8_t index, std::uint64_t offset, std::span<std::uint8_t> data) override;
    void bar_write(std::uint8_t index, std::uint64_t offset,
                   std::span<const std::uint8_t> data) override;
    void attached(std::uint8_t slot, std::uint32_t intx_gsi) override;
    void bar_moved(std::uint8_t index, std::optional<std::uint64_t> old_address,
                   std::optional<std::uint64_t> new_address) override;

    // For tests and logs.
    const std::vector<BarSegment>& bar_segments(std::uint8_t index) const;
    // The guest ranges of BAR `index` that are memory slots now.
    std::vector<ByteRange> mapped_ranges(std::uint8_t index) const;
    const VfioInterrupts& interrupts() const { return interrupts_; }
    bool was_reset() const { return reset_at_start_; }

  private:
    struct Bar {
        pci::BarInfo info;
        RegionInfo region;
        std::vector<BarSegment> segments;
        base::MappedRegion mapping;          // the whole BAR, if any segment is mapped
        std::vector<pci::MemorySlot> slots;  // after `mapping`: removed before it is unmapped
    };
    // Where an access inside a BAR goes.
    enum class Target { Device, MsixTable, MsixPba };
    struct Piece {
        Target target;
        std::uint64_t offset;  // within the BAR
        std::uint64_t length;
    };
    std::vector<Piece> split(const Bar& bar, std::uint64_t offset, std::uint64_t length) const;
    // Calls visit(bar, piece, bytes) for each piece of an access to BAR
    // `index`, `bytes` being the piece's part of `data`. An access to a BAR
    // the device lacks visits nothing, and one running past the BAR's end
    // only what lies inside it: such bytes never reach the device.
    template <typename Byte, typename Visit>
    void for_each_piece(std::uint8_t index, std::uint64_t offset, std::span<Byte> data,
                        Visit&& visit) const;
    void device_read(const Bar& bar, std::uint64_t offset, std::span<std::uint8_t> data);
    void device_write(const Bar& bar, std::uint64_t offset, std::span<const std::uint8_t> data);
    void map_bar(Bar& bar, std::uint64_t page_size);

    // Declared first, destroyed last: everything below uses the device, and
    // the memory slots in bars_ the hypervisor the router owns.
    std::unique_ptr<DeviceIo> io_;
    std::shared_ptr<pci::MsiRouter> router_;
    std::string name_;
    pci::Hypervisor& hypervisor_;
    bool reset_at_start_ = false;
    std::vector<std::uint8_t> snapshot_;
    std::vector<pci::BarInfo> bar_list_;
    std::array<std::optional<Bar>, kBarRegionCount> bars_;
    std::optional<MsixLayout> msix_layout_;

    mutable std::mutex mutex_;  // config space and interrupts
    VfioConfigSpace config_;
    VfioInterrupts interrupts_;
    mutable std::mutex slots_mutex_;  // Bar::slots

    LogLimit access_errors_;
    LogLimit slot_refusals_;
};

}  // namespace devices::vfio
