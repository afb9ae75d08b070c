// Device (\_SB.MRES), _HID PNP0C02: address ranges the platform itself
// decodes, which the OS must never hand to a device. It holds the ECAM
// window: PCI Firmware 3.3, 4.1.2 requires the MCFG range to be reserved by
// such a motherboard resource, and Linux 6.12 checks exactly that once ACPI
// is up (arch/x86/pci/mmconfig-shared.c, is_acpi_reserved(): a PNP0C01/
// PNP0C02 _CRS entry covering the whole range) before it keeps using ECAM
// or accepts a host bridge's _CBA. Linux's pnp "system" driver then reserves
// the range in /proc/iomem.
#pragma once

#include "vmm/acpi/aml.hpp"

namespace vmm::acpi {

aml::Bytes motherboard_resources_device();

}  // namespace vmm::acpi
