// What a passthrough PCI function needs from its VFIO device: region info
// and I/O (config space, BARs), mmaps of BARs, interrupt eventfds and reset.
// An interface so that VfioPciDevice runs over the real VFIO cdev
// (CdevDeviceIo) and, in unit tests, over a fake whose "hardware" is memory.
//
// Region and IRQ indexes are VFIO's for PCI (VFIO_PCI_*_INDEX in
// <linux/vfio.h>); cdev_device_io.cpp checks these copies against the uAPI.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/mapped_region.hpp"

namespace devices::vfio {

inline constexpr std::uint32_t kBarRegionCount = 6;  // BAR 0-5: regions 0-5
inline constexpr std::uint32_t kRomRegion = 6;
inline constexpr std::uint32_t kConfigRegion = 7;
inline constexpr std::uint32_t kIntxIrq = 0;
inline constexpr std::uint32_t kMsiIrq = 1;
inline constexpr std::uint32_t kMsixIrq = 2;

struct RegionInfo {
    std::uint64_t size = 0;  // 0: the region does not exist (an unimplemented BAR)
    bool readable = false;
    bool writable = false;
    bool mappable = false;
};

class DeviceIo {
  public:
    virtual ~DeviceIo() = default;

    // For messages: the cdev and the PCI address, e.g. "/dev/vfio/devices/vfio0 (0000:00:10.0)".
    virtual std::string name() const = 0;
    // Regions that do not exist or that the kernel refuses to describe have size 0.
    virtual RegionInfo region_info(std::uint32_t index) const = 0;
    // Exact reads and writes inside a region; base::Error when the kernel
    // refuses or the range leaves the region.
    virtual void read(std::uint32_t region, std::uint64_t offset,
                      std::span<std::uint8_t> data) const = 0;
    virtual void write(std::uint32_t region, std::uint64_t offset,
                       std::span<const std::uint8_t> data) const = 0;
    // A shared mapping of [offset, +length) of a mappable region (page aligned).
    virtual base::MappedRegion map(std::uint32_t region, std::uint64_t offset,
                                   std::uint64_t length) const = 0;

    // How many interrupts IRQ index `index` has (0: none, e.g. no INTx pin).
    virtual std::uint32_t irq_count(std::uint32_t index) const = 0;
    // VFIO_DEVICE_SET_IRQS, ACTION_TRIGGER: interrupts [start, +fds.size())
    // of `index` signal `fds` (-1: that one signals nothing). The first call
    // for MSI-X enables it on the device with start + fds.size() vectors.
    virtual void set_irq_triggers(std::uint32_t index, std::uint32_t start,
                                  std::span<const int> fds) = 0;
    // ACTION_UNMASK with an eventfd: each signal of `fd` unmasks INTx (which
    // VFIO masks when it fires, as INTx is level-triggered).
    virtual void set_intx_unmask_fd(int fd) = 0;
    // Every interrupt of `index` off (DATA_NONE, count 0).
    virtual void disable_irqs(std::uint32_t index) = 0;

    // VFIO_DEVICE_RESET; false when the device has no reset method.
    virtual bool reset() = 0;
};

}  // namespace devices::vfio
