// Finding and opening the host device a `--device vfio=...` names, with the
// checks that turn the kernel's terse errors into one line saying what is
// wrong and what to do: no such device, bound to another driver, no VFIO
// cdev, an IOMMU group shared with a device a host driver holds, in use.
#pragma once

#include <memory>
#include <string>

#include "devices/vfio/device_io.hpp"
#include "devices/vfio/guest_dma_space.hpp"

namespace devices::vfio {

struct HostDevice {
    std::string pci_address;  // "0000:00:10.0"
    std::string cdev;         // "/dev/vfio/devices/vfio0"
};

// `spec` is a PCI address (DDDD:BB:DD.F, or BB:DD.F in domain 0) or the path
// of a VFIO cdev. Looks it up under `sysfs` (the host's /sys; tests pass a
// fake tree) and `dev` (/dev). Throws base::Error, one line, on anything
// that would keep the device from being passed through.
HostDevice resolve_host_device(const std::string& spec, const std::string& sysfs = "/sys",
                               const std::string& dev = "/dev");

// Opens the cdev, binds it to `dma`'s iommufd and attaches it to its IOAS.
// Throws base::Error (in use by another process: says so).
std::unique_ptr<DeviceIo> open_host_device(const HostDevice& device,
                                           std::shared_ptr<GuestDmaSpace> dma);

}  // namespace devices::vfio
