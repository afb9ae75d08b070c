#include "devices/pci/pci_platform.hpp"

#include <filesystem>

#include "base/error.hpp"
#include "devices/pci/host_bridge.hpp"
#include "devices/pci/kvm_hypervisor.hpp"
#include "devices/vfio/guest_dma_space.hpp"
#include "devices/vfio/host_device.hpp"
#include "devices/vfio/vfio_pci_device.hpp"
#include "devices/virtio/blk/virtio_blk.hpp"
#include "devices/virtio/console/open_backend.hpp"
#include "devices/virtio/console/virtio_console.hpp"
#include "devices/virtio/net/virtio_net.hpp"
#include "devices/virtio/rng/virtio_rng.hpp"
#include "devices/virtio/virtio_pci_device.hpp"
#include "devices/virtio/vsock/vhost_vsock.hpp"
#include "devices/virtio/vsock/virtio_vsock.hpp"
#include "vmm/log.hpp"
#include "vmm/x86/layout.hpp"

namespace devices::pci {

namespace {

// Runs `fn`; a base::Error it throws comes back prefixed with the flag that
// asked for the device, so the user's one line names it.
template <typename Fn>
auto for_flag(const std::string& flag, Fn&& fn) {
    try {
        return fn();
    } catch (const base::Error& error) {
        throw base::Error("{}: {}", flag, error.what());
    }
}

// GET_ID needs something stable: the image's file name, cut to 20 bytes.
std::string default_serial(const std::string& path) {
    return std::filesystem::path(path).filename().string().substr(0, virtio::kBlkIdBytes);
}

}  // namespace

PciPlatform::PciPlatform(const vmm::kvm::KvmVm& vm, const vmm::GuestMemory& memory,
                         vmm::Bus& mmio_bus, vmm::Bus& pio_bus, const vmm::MachineConfig& config) {
    if (memory.end() > vmm::x86::kPciMmio64Start) {
        throw base::Error(
            "guest RAM ends at {:#x}, inside the 64-bit PCI window at {:#x}; use "
            "less memory",
            memory.end(), vmm::x86::kPciMmio64Start);
    }
    router_ = std::make_shared<MsiRouter>(std::make_shared<KvmHypervisor>(vm));
    const PciWindows windows{.mmio32_start = vmm::x86::kPciMmio32Start,
                             .mmio32_end = vmm::x86::kPciMmio32End,
                             .mmio64_start = vmm::x86::kPciMmio64Start,
                             .mmio64_end = vmm::x86::kPciMmio64End,
                             .io_start = vmm::x86::kPciIoStart,
                             .io_end = vmm::x86::kPciIoEnd};
    bus_ = std::make_shared<PciBus>(mmio_bus, pio_bus, windows);
    pio_bus.insert(std::make_shared<PciConfigIo>(bus_), vmm::x86::kPciConfigPort,
                   PciConfigIo::kSize);
    mmio_bus.insert(std::make_shared<PciEcam>(bus_), vmm::x86::kPciEcamStart,
                    vmm::x86::kPciEcamSize);
    bus_->add_device(std::make_shared<HostBridge>());

    for (const auto& disk : config.disks) {
        virtio::BlockDeviceOptions options;
        options.serial = disk.serial.empty() ? default_serial(disk.path) : disk.serial;
        options.queues = disk.queues;
        auto backend = std::make_unique<virtio::RawFileBackend>(disk.path, disk.read_only);
        vmm::log::debug("virtio-blk: {} ({} bytes{})", disk.path, backend->size(),
                        disk.read_only ? ", read-only" : "");
        auto device = std::make_shared<virtio::VirtioPciDevice>(
            std::make_unique<virtio::VirtioBlk>(std::move(backend), options), memory, router_);
        bus_->add_device(device);
        ++device_count_;
    }
    for (std::size_t index = 0; index < config.nets.size(); ++index) {
        const auto& net = config.nets[index];
        const virtio::MacAddress mac = net.mac.value_or(virtio::default_mac(index));
        auto tap = virtio::Tap::open(net.tap);
        vmm::log::debug("virtio-net: tap {}, mac {:02x}", tap.name(), fmt::join(mac, ":"));
        bus_->add_device(std::make_shared<virtio::VirtioPciDevice>(
            std::make_unique<virtio::VirtioNet>(std::move(tap), mac), memory, router_));
        ++device_count_;
    }
    if (config.virtio_rng) {
        bus_->add_device(std::make_shared<virtio::VirtioPciDevice>(
            std::make_unique<virtio::VirtioRng>(), memory, router_));
        ++device_count_;
    }
    if (config.console) {
        // The host end is open (a socket listening) before the guest runs.
        auto backend = virtio::open_console_backend(*config.console);
        bus_->add_device(std::make_shared<virtio::VirtioPciDevice>(
            std::make_unique<virtio::VirtioConsole>(std::move(backend)), memory, router_));
        ++device_count_;
    }
    if (config.vsock) {
        // Opens /dev/vhost-vsock and claims the CID now: a missing module or
        // a CID in use fails before the guest runs.
        auto backend = std::make_unique<virtio::VhostVsock>(config.vsock->guest_cid);
        bus_->add_device(std::make_shared<virtio::VirtioPciDevice>(
            std::make_unique<virtio::VirtioVsock>(std::move(backend)), memory, router_));
        ++device_count_;
    }
    add_passthrough_devices(memory, config);
}

void PciPlatform::add_passthrough_devices(const vmm::GuestMemory& memory,
                                          const vmm::MachineConfig& config) {
    if (config.passthrough.empty()) return;
    // Every device is found and checked before /dev/iommu is opened and
    // guest RAM pinned, so a typo costs nothing.
    std::vector<vfio::HostDevice> hosts;
    for (const auto& device : config.passthrough) {
        const std::string flag = "--device vfio=" + device.host;
        hosts.push_back(for_flag(flag, [&] { return vfio::resolve_host_device(device.host); }));
        for (std::size_t i = 0; i + 1 < hosts.size(); ++i) {
            if (hosts[i].pci_address == hosts.back().pci_address) {
                throw base::Error("{}: PCI device {} is given twice (--device vfio={})", flag,
                                  hosts.back().pci_address, config.passthrough[i].host);
            }
        }
    }
    const auto dma = for_flag("--device vfio=" + config.passthrough.front().host,
                              [&] { return std::make_shared<vfio::GuestDmaSpace>(memory); });
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        for_flag("--device vfio=" + config.passthrough[i].host, [&] {
            auto device = std::make_shared<vfio::VfioPciDevice>(
                vfio::open_host_device(hosts[i], dma), router_);
            const std::uint8_t slot = bus_->add_device(device);
            vmm::log::info("PCI 00:{:02x}.0: {} passed through (guest RAM mapped for its DMA)",
                           slot, hosts[i].pci_address);
            return 0;
        });
        ++device_count_;
    }
}

}  // namespace devices::pci
