// Differentiated System Description Table: the AML namespace. It holds the
// \_S5_ sleep type the guest writes to power off, and describes the
// platform devices that cannot be discovered (COM1, the PCI host bridge,
// the motherboard resources).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vmm/acpi/aml.hpp"

namespace vmm::acpi {

inline constexpr std::uint8_t kDsdtRevision = 2;  // 64-bit AML integers

// `extra_system_bus_devices` are appended inside \_SB_ after COM1: the
// PCI host bridge (pci_host_bridge.hpp) and the motherboard resources
// (motherboard_resources.hpp).
std::vector<std::uint8_t> build_dsdt(std::span<const aml::Bytes> extra_system_bus_devices = {});

}  // namespace vmm::acpi
