// Device (\_SB.PCI0): the PCI host bridge in the DSDT. With ACPI enabled,
// Linux scans only the PCI roots ACPI names (pci_acpi_init() skips the
// legacy 0xCF8 probe), so without this object no PCI device appears. _CRS
// lists the bus numbers the ECAM window decodes (0-255, the MCFG's range),
// the 0xCF8 config ports, the I/O space around them and the 32-bit and
// 64-bit MMIO windows the BARs come from; _CBA is the ECAM base and _PRT
// routes INTx (pci_routing.hpp).
#pragma once

#include "vmm/acpi/aml.hpp"

namespace vmm::acpi {

aml::Bytes pci_host_bridge_device();

}  // namespace vmm::acpi
