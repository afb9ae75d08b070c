// A DeviceIo whose "hardware" is memory, shaped like QEMU's NVMe controller
// as VFIO shows it (1b36:0010, class 010802): BAR 0 64-bit 16 KiB with the
// MSI-X table (65 vectors) at 0x2000 and the PBA at 0x3000, an I/O BAR 4 of
// 32 bytes, an expansion ROM, and the capabilities PM (0x40) -> MSI (0x50)
// -> PCI Express (0x60) -> MSI-X (0x80). BARs live in memfds, so a "mmap"
// shares them with reads and writes through the fake, as VFIO's does with
// the device. Records every write and interrupt call; knobs make reads,
// writes, mmaps or SET_IRQS fail. Not a fake of /dev/iommu: the real
// backend is proven in the lab.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/vfio/device_io.hpp"

namespace devices::vfio::testing {

inline constexpr std::uint16_t kFakeVectors = 65;
inline constexpr std::uint64_t kFakeBar0Size = 0x4000;
inline constexpr std::uint32_t kFakeTableOffset = 0x2000;
inline constexpr std::uint32_t kFakePbaOffset = 0x3000;
inline constexpr std::uint64_t kFakeIoBarSize = 0x20;
inline constexpr std::uint16_t kFakeHwCommand = 0x0003;  // VFIO's pci_enable_device()

class FakeDeviceIo : public DeviceIo {
  public:
    struct ConfigWrite {
        std::uint64_t offset;
        std::vector<std::uint8_t> bytes;
    };
    struct IrqCall {
        std::uint32_t index;
        std::uint32_t start;
        std::vector<int> fds;  // empty: disable_irqs
        bool disable;
    };

    explicit FakeDeviceIo(std::size_t config_size = 4096) : config(config_size, 0) {
        set16(0x00, 0x1b36);
        set16(0x02, 0x0010);
        set16(0x04, kFakeHwCommand);
        set16(0x06, 0x0010);       // capability list
        set32(0x08, 0x01080202);   // class 010802, revision 2
        config[0x0e] = 0x80;       // multi-function on the host: not for the guest
        set32(0x10, 0xfebf'0004);  // BAR 0: 64-bit memory at a host address
        set32(0x14, 0x0000'0000);
        set32(0x20, 0x0000'c001);  // BAR 4: I/O
        set16(0x2c, 0x1af4);
        set16(0x2e, 0x1100);
        set32(0x30, 0xfeb8'0000);  // expansion ROM
        config[0x34] = 0x40;
        config[0x3c] = 0x0b;
        config[0x3d] = 0x01;  // INTA
        // PM: PMC with PME support bits, PMCSR NoSoftRst, D0.
        config[0x40] = 0x01;
        config[0x41] = 0x50;
        set16(0x42, 0xc803);
        set16(0x44, 0x0008);
        // MSI, 64-bit, one vector.
        config[0x50] = 0x05;
        config[0x51] = 0x60;
        set16(0x52, 0x0080);
        // PCI Express endpoint.
        config[0x60] = 0x10;
        config[0x61] = 0x80;
        set16(0x62, 0x0002);
        set32(0x68, 0x0000'2810);  // Device Control
        // MSI-X: 65 vectors, table and PBA in BAR 0.
        config[0x80] = 0x11;
        config[0x81] = 0x00;
        set16(0x82, kFakeVectors - 1);
        set32(0x84, kFakeTableOffset | 0);
        set32(0x88, kFakePbaOffset | 0);
        if (config.size() > 0x100) set32(0x100, 0x0001'0001);  // an extended capability (AER)

        regions[0] = {kFakeBar0Size, true, true, true};
        regions[4] = {kFakeIoBarSize, true, true, false};
        regions[kRomRegion] = {0x40000, true, false, false};
        regions[kConfigRegion] = {config.size(), true, true, false};
        for (std::uint32_t index : {0u, 4u}) {
            const std::uint64_t size = std::max<std::uint64_t>(regions[index].size, 4096);
            base::UniqueFd fd(::memfd_create("fake-bar", MFD_CLOEXEC));
            if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
                throw base::Error("fake BAR memfd");
            }
            bars[index] = std::move(fd);
        }
    }

    // --- DeviceIo --------------------------------------------------------
    std::string name() const override { return "fake-nvme (0000:00:10.0)"; }
    RegionInfo region_info(std::uint32_t index) const override {
        auto it = regions.find(index);
        return it == regions.end() ? RegionInfo{} : it->second;
    }
    void read(std::uint32_t region, std::uint64_t offset,
              std::span<std::uint8_t> data) const override {
        std::lock_guard lock(mutex);
        check(region, offset, data.size(), fail_reads);
        if (region == kConfigRegion) {
            std::memcpy(data.data(), config.data() + offset, data.size());
        } else if (::pread(bars.at(region).get(), data.data(), data.size(),
                           static_cast<off_t>(offset)) != static_cast<ssize_t>(data.size())) {
            throw base::Error("fake pread");
        }
        ++reads;
    }
    void write(std::uint32_t region, std::uint64_t offset,
               std::span<const std::uint8_t> data) const override {
        std::lock_guard lock(mutex);
        check(region, offset, data.size(), fail_writes);
        if (region == kConfigRegion) {
            config_writes.push_back({offset, {data.begin(), data.end()}});
            std::memcpy(config.data() + offset, data.data(), data.size());
        } else {
            bar_writes.push_back({region, offset, data.size()});
            if (::pwrite(bars.at(region).get(), data.data(), data.size(),
                         static_cast<off_t>(offset)) != static_cast<ssize_t>(data.size())) {
                throw base::Error("fake pwrite");
            }
        }
    }
    base::MappedRegion map(std::uint32_t region, std::uint64_t offset,
                           std::uint64_t length) const override {
        std::lock_guard lock(mutex);
        if (fail_map || !region_info(region).mappable) throw base::Error("fake: not mappable");
        ++maps;
        return base::MappedRegion::map(length, PROT_READ | PROT_WRITE, MAP_SHARED,
                                       bars.at(region).get(), static_cast<off_t>(offset));
    }
    std::uint32_t irq_count(std::uint32_t index) const override {
        if (index == kIntxIrq) return intx_count;
        if (index == kMsixIrq) return msix_count;
        return index == kMsiIrq ? 1 : 0;
    }
    void set_irq_triggers(std::uint32_t index, std::uint32_t start,
                          std::span<const int> fds) override {
        std::lock_guard lock(mutex);
        if (fail_irqs) throw base::Error("fake VFIO_DEVICE_SET_IRQS refused");
        irq_calls.push_back({index, start, {fds.begin(), fds.end()}, false});
        journal->push_back(fmt::format("trigger {} {}+{}", index, start, fds.size()));
    }
    void set_intx_unmask_fd(int fd) override {
        std::lock_guard lock(mutex);
        if (fail_irqs) throw base::Error("fake VFIO_DEVICE_SET_IRQS(unmask) refused");
        unmask_fd = fd;
    }
    void disable_irqs(std::uint32_t index) override {
        std::lock_guard lock(mutex);
        irq_calls.push_back({index, 0, {}, true});
        journal->push_back(fmt::format("disable {}", index));
        if (index == kIntxIrq) unmask_fd = -1;
    }
    bool reset() override {
        std::lock_guard lock(mutex);
        ++resets;
        journal->push_back("reset");
        if (fail_reset)
            throw base::Error("fake VFIO_DEVICE_RESET failed: Resource temporarily unavailable");
        return can_reset;
    }
    ~FakeDeviceIo() override { journal->push_back("closed"); }

    // --- the "hardware" --------------------------------------------------
    std::uint16_t get16(std::size_t offset) const {
        std::lock_guard lock(mutex);
        std::uint16_t value;
        std::memcpy(&value, config.data() + offset, 2);
        return value;
    }
    void set16(std::size_t offset, std::uint16_t value) {
        std::memcpy(config.data() + offset, &value, 2);
    }
    void set32(std::size_t offset, std::uint32_t value) {
        std::memcpy(config.data() + offset, &value, 4);
    }
    std::vector<std::uint8_t> bar_bytes(std::uint32_t index, std::uint64_t offset,
                                        std::size_t length) const {
        std::vector<std::uint8_t> bytes(length);
        if (::pread(bars.at(index).get(), bytes.data(), length, static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(length)) {
            throw base::Error("fake pread");
        }
        return bytes;
    }
    void set_bar_bytes(std::uint32_t index, std::uint64_t offset,
                       std::span<const std::uint8_t> bytes) {
        if (::pwrite(bars.at(index).get(), bytes.data(), bytes.size(),
                     static_cast<off_t>(offset)) != static_cast<ssize_t>(bytes.size())) {
            throw base::Error("fake pwrite");
        }
    }
    // Whether a config write touched any byte of [start, start + size).
    bool config_written(std::uint64_t start, std::uint64_t size) const {
        std::lock_guard lock(mutex);
        for (const auto& write : config_writes) {
            if (write.offset < start + size && start < write.offset + write.bytes.size()) {
                return true;
            }
        }
        return false;
    }
    std::vector<IrqCall> calls_for(std::uint32_t index) const {
        std::lock_guard lock(mutex);
        std::vector<IrqCall> calls;
        for (const auto& call : irq_calls) {
            if (call.index == index) calls.push_back(call);
        }
        return calls;
    }

    mutable std::mutex mutex;
    mutable std::vector<std::uint8_t> config;
    std::map<std::uint32_t, RegionInfo> regions;
    std::map<std::uint32_t, base::UniqueFd> bars;
    mutable std::vector<ConfigWrite> config_writes;
    struct BarWrite {
        std::uint32_t region;
        std::uint64_t offset;
        std::size_t size;
    };
    mutable std::vector<BarWrite> bar_writes;
    std::vector<IrqCall> irq_calls;
    // Interrupt calls, resets and the close, in order; outlives the fake
    // (the device under test owns it).
    std::shared_ptr<std::vector<std::string>> journal =
        std::make_shared<std::vector<std::string>>();
    mutable int reads = 0;
    mutable int maps = 0;
    int resets = 0;
    int unmask_fd = -1;
    std::uint32_t intx_count = 1;
    std::uint32_t msix_count = kFakeVectors;
    bool can_reset = true;
    bool fail_reset = false;
    bool fail_reads = false;
    bool fail_writes = false;
    bool fail_map = false;
    bool fail_irqs = false;

  private:
    void check(std::uint32_t region, std::uint64_t offset, std::size_t length, bool fail) const {
        const auto info = region_info(region);
        if (fail) throw base::Error("fake: I/O error");
        if (info.size == 0 || offset > info.size || length > info.size - offset) {
            throw base::Error("fake: {} bytes at {:#x} are outside region {}", length, offset,
                              region);
        }
    }
};

}  // namespace devices::vfio::testing
