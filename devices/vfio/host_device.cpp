#include "devices/vfio/host_device.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "base/unique_fd.hpp"
#include "devices/vfio/cdev_device_io.hpp"
#include "iommufd_backend/ioctl_error.hpp"
#include "vmm/pci_address.hpp"

namespace devices::vfio {

namespace fs = std::filesystem;

namespace {

// Drivers that may share an IOMMU group with a passthrough device: VFIO's
// own, and those that declare they never DMA for the device (pci-stub,
// pcieport for bridges: driver_managed_dma in the kernel).
bool group_friendly(const std::string& driver) {
    return driver.empty() || driver == "vfio-pci" || driver == "pci-stub" || driver == "pcieport";
}

// The driver bound to a sysfs device directory, "" when none.
std::string driver_of(const fs::path& device) {
    std::error_code error;
    const fs::path link = fs::read_symlink(device / "driver", error);
    return error ? std::string() : link.filename().string();
}

const char* kBindHowTo =
    "echo vfio-pci > /sys/bus/pci/devices/{0}/driver_override; "
    "echo {0} > /sys/bus/pci/drivers_probe";

}  // namespace

HostDevice resolve_host_device(const std::string& spec, const std::string& sysfs,
                               const std::string& dev) {
    HostDevice host;
    const fs::path pci_devices = fs::path(sysfs) / "bus/pci/devices";
    std::error_code error;
    if (!spec.empty() && spec.front() == '/') {
        struct stat info {};
        if (::stat(spec.c_str(), &info) != 0) {
            throw base::Error(
                "{} does not exist: no such VFIO device (bound devices are in {}/vfio/devices/)",
                spec, dev);
        }
        if (!S_ISCHR(info.st_mode)) throw base::Error("{} is not a VFIO device node", spec);
        // /sys/class/vfio-dev/vfioN/device is the PCI device it belongs to.
        const fs::path name = fs::path(spec).filename();
        const fs::path owner =
            fs::canonical(fs::path(sysfs) / "class/vfio-dev" / name / "device", error);
        if (error) {
            throw base::Error("{} is not a VFIO device cdev ({}/class/vfio-dev/{} is missing)",
                              spec, sysfs, name.string());
        }
        host.pci_address = owner.filename().string();
        if (!vmm::canonical_pci_address(host.pci_address)) {
            throw base::Error("{} belongs to {}, which is not a PCI device", spec,
                              host.pci_address);
        }
        host.cdev = spec;
    } else {
        host.pci_address = vmm::canonical_pci_address(spec).value_or("");
        if (host.pci_address.empty()) {
            throw base::Error(
                "'{}' is neither a PCI address (like 0000:00:10.0) nor a VFIO cdev path (like "
                "/dev/vfio/devices/vfio0)",
                spec);
        }
    }

    const fs::path device = pci_devices / host.pci_address;
    if (!fs::exists(device, error)) {
        throw base::Error("no PCI device {} on this host (lspci -D lists them)", host.pci_address);
    }
    const std::string driver = driver_of(device);
    if (driver.empty()) {
        throw base::Error("PCI device {} is bound to no driver; bind it to vfio-pci: {}",
                          host.pci_address,
                          fmt::format(fmt::runtime(kBindHowTo), host.pci_address));
    }
    if (driver != "vfio-pci") {
        throw base::Error(
            "PCI device {} is bound to {}, not vfio-pci; hand it over: echo {} > "
            "/sys/bus/pci/devices/{}/driver/unbind; {}",
            host.pci_address, driver, host.pci_address, host.pci_address,
            fmt::format(fmt::runtime(kBindHowTo), host.pci_address));
    }
    if (host.cdev.empty()) {
        for (const auto& entry : fs::directory_iterator(device / "vfio-dev", error)) {
            const std::string name = entry.path().filename().string();
            if (name.rfind("vfio", 0) == 0)
                host.cdev = (fs::path(dev) / "vfio/devices" / name).string();
        }
        if (host.cdev.empty()) {
            throw base::Error(
                "PCI device {} is bound to vfio-pci but has no VFIO cdev: the kernel needs "
                "CONFIG_VFIO_DEVICE_CDEV (Linux 6.6 or newer)",
                host.pci_address);
        }
    }
    // Every other function in the IOMMU group must leave DMA to VFIO, or
    // the kernel refuses the bind.
    const fs::path group = fs::canonical(device / "iommu_group", error);
    if (error) {
        throw base::Error(
            "PCI device {} is in no IOMMU group: the host has no IOMMU enabled (boot it with "
            "intel_iommu=on or amd_iommu=on)",
            host.pci_address);
    }
    for (const auto& member : fs::directory_iterator(group / "devices", error)) {
        const std::string other = member.path().filename().string();
        if (other == host.pci_address) continue;
        const std::string other_driver = driver_of(member.path());
        if (!group_friendly(other_driver)) {
            throw base::Error(
                "PCI device {} shares IOMMU group {} with {}, which is bound to {}: bind {} to "
                "vfio-pci too",
                host.pci_address, group.filename().string(), other, other_driver, other);
        }
    }
    return host;
}

std::unique_ptr<DeviceIo> open_host_device(const HostDevice& device,
                                           std::shared_ptr<GuestDmaSpace> dma) {
    base::UniqueFd fd(::open(device.cdev.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        const int saved = errno;
        if (saved == EACCES || saved == EPERM) {
            throw base::Error("no permission to open {} (run as root or give this user the device)",
                              device.cdev);
        }
        throw base::SystemError(saved, fmt::format("opening {}", device.cdev));
    }
    auto vfio = iommufd_backend::VfioDevice::adopt(
        std::move(fd), fmt::format("{} ({})", device.cdev, device.pci_address));
    try {
        dma->attach(vfio);
    } catch (const iommufd_backend::IoctlError& error) {
        // A cdev is bound through one fd at a time (EINVAL), and a device a
        // process uses through the legacy group interface refuses (EBUSY).
        if (error.ioctl() == "VFIO_DEVICE_BIND_IOMMUFD" &&
            (error.error_number() == EINVAL || error.error_number() == EBUSY)) {
            throw base::Error(
                "PCI device {} is in use: another process (a VMM?) has it open through VFIO; "
                "stop it or pass another device ({})",
                device.pci_address, error.what());
        }
        throw;
    }
    return std::make_unique<CdevDeviceIo>(std::move(dma), std::move(vfio));
}

}  // namespace devices::vfio
