// The config space a passthrough function shows the guest: the device's
// own, read and written through VFIO's config region, except for what the
// VMM must own (PCI Local Bus 3.0, chapter 6; PCIe 6.0, 7.5-7.7):
//
//  - the header's identity (IDs, class, revision, subsystem) is a snapshot
//    taken at start, read-only; header type says type 0, single function
//    (the guest sees one function per slot);
//  - BARs are emulated with the sizes VFIO reports and the type bits of the
//    device's own BARs, sizing like hardware; the expansion ROM is hidden
//    (reads 0, writes ignored), so no guest code runs the device's option
//    ROM;
//  - Command: Memory Space and I/O Space Enable are ours (the bus decodes
//    BARs at guest addresses by them) and the device keeps them on, since
//    VFIO cuts BAR mmaps while they are off and a vCPU touching a cut
//    mapping would fail the VM; Bus Master Enable, INTx Disable and the
//    rest go to the device (VFIO emulates INTx Disable);
//  - the capability list is rebuilt from the device's: MSI-X is emulated at
//    its offset (the table size and table/PBA locations are the device's,
//    Enable and Function Mask are ours: VFIO owns the real ones), MSI is
//    unlinked and reads as zero (see below), Power Management is emulated
//    so that a guest putting the function in D3hot does not make VFIO cut
//    the BAR mmaps either; the bodies of every other capability (PCI
//    Express, vendor-specific, ...) go to the device, as do gaps between
//    capabilities and the extended space (VFIO filters all of it);
//  - Interrupt Pin is 1 (INTA) when the device has INTx, so that the _PRT
//    of our bus routes it (the device's own pin means nothing on our bus);
//    Interrupt Line is a scratch register.
//
// Why MSI is hidden rather than emulated: Linux (and every OS we boot)
// prefers MSI-X when a function has both, and a function with MSI only
// still works through INTx. Emulating MSI would add a second vector-table
// path (multiple messages, optional per-vector masking) for no guest we run.
//
// Every access is guest-controlled: any offset, 1-4 bytes within a dword.
// Nothing here throws on a guest access; a failing device read returns
// all-ones bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "devices/pci/pci_config_space.hpp"
#include "devices/pci/pci_device.hpp"
#include "devices/vfio/device_io.hpp"

namespace devices::vfio {

// Where the device's MSI-X table and PBA are (from its capability).
struct MsixLayout {
    std::uint16_t capability = 0;  // offset of the capability in config space
    std::uint16_t vectors = 0;
    std::uint8_t table_bar = 0;
    std::uint32_t table_offset = 0;
    std::uint8_t pba_bar = 0;
    std::uint32_t pba_offset = 0;

    std::uint64_t table_size() const { return std::uint64_t{vectors} * 16; }
    std::uint64_t pba_size() const { return (std::uint64_t{vectors} + 63) / 64 * 8; }
};

// The BARs the device implements: sizes from VFIO's region info, type bits
// from the device's BAR registers in `config` (its config space snapshot).
// Throws base::Error for a BAR our bus cannot place (an I/O BAR over 256
// bytes, a 32-bit BAR over 2 GiB, a 64-bit BAR in the last slot).
std::vector<pci::BarInfo> discover_bars(std::span<const std::uint8_t> config,
                                        std::span<const RegionInfo, kBarRegionCount> regions);

// The device's config space as VFIO shows it at start (up to 4 KiB; the
// length is what the device has: 256 bytes for conventional PCI). Throws
// base::Error when it is not even a PCI header.
std::vector<std::uint8_t> read_config_snapshot(const DeviceIo& io);

class VfioConfigSpace {
  public:
    // Builds the virtual config space from `snapshot` (read_config_snapshot)
    // and the BARs (discover_bars); `intx` says whether the device can
    // interrupt through INTx. Later accesses go to `io` where they pass through.
    VfioConfigSpace(const DeviceIo& io, std::span<const std::uint8_t> snapshot,
                    const std::vector<pci::BarInfo>& bars, bool intx);

    void read(std::uint16_t offset, std::span<std::uint8_t> data) const;
    // What a write changed that the device must act on.
    struct Effects {
        bool msix_control = false;  // MSI-X Enable or Function Mask may have changed
    };
    Effects write(std::uint16_t offset, std::span<const std::uint8_t> data);

    // The emulated MSI-X capability; nullopt when the device has none (or one
    // whose table does not fit its BAR, which is then hidden too).
    const std::optional<MsixLayout>& msix() const { return msix_; }
    // Message Control as the guest left it.
    std::uint16_t msix_control() const;
    // What the guest programmed into BAR `index` (for tests and logs).
    std::uint64_t bar_address(std::uint8_t index) const { return shadow_.bar_address(index); }
    // The guest's Memory/I/O Space Enable (the device's stay on).
    std::uint16_t decode_bits() const;
    // The emulated Power State (bits 1:0 of PMCSR); 0 without PM.
    std::uint8_t power_state() const;

  private:
    enum class Kind : std::uint8_t {
        Passthrough,  // the device's (through VFIO)
        Emulated,     // shadow_ with its write masks
        Zero,         // hidden: reads 0, writes dropped
        Command,      // 0x04-0x05: split between us and the device
        Status,       // 0x06-0x07: the device's, but Capabilities List is ours
    };
    void build_capabilities(std::span<const std::uint8_t> real, std::size_t real_size);
    void emulate(std::uint16_t offset, std::size_t length);
    std::uint16_t read_device16(std::uint16_t offset) const;
    void write_command(std::uint16_t offset, std::span<const std::uint8_t> data);
    void write_device(std::uint16_t offset, std::span<const std::uint8_t> data) const;

    const DeviceIo& io_;
    pci::PciConfigSpace shadow_;
    std::array<Kind, pci::kConfigSpaceSize> kinds_{};
    std::uint16_t decode_mask_ = 0;    // Memory/I/O Space Enable bits the BARs allow
    std::uint16_t device_decode_ = 0;  // what the device always gets of them
    std::optional<MsixLayout> msix_;
    std::uint16_t pm_ = 0;  // offset of the emulated PM capability, 0 if none
    bool has_capabilities_ = false;
};

}  // namespace devices::vfio
