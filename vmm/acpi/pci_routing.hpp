// Name (_PRT, ...) for \_SB.PCI0: how each slot's INTx pins reach the
// IOAPIC. Without it Linux cannot route a legacy PCI interrupt ("can't
// derive routing for PCI INT A") and a driver that falls back from MSI-X
// (pci=nomsi, or a device without MSI-X) gets no IRQ.
//
// Every entry uses the static form, Package { slot << 16 | 0xFFFF, pin, 0,
// GSI }: no interrupt link devices, the GSI is hard-wired
// (x86::pci_intx_gsi). For that form Linux assumes level-triggered, active
// low (drivers/acpi/pci_irq.c) and programs the IOAPIC pin so. KVM's
// in-kernel IOAPIC ignores the polarity bit: KVM_IRQ_LINE level 1 is
// "asserted" either way, so devices/pci drives the line high while INTx is
// pending. GSIs 16-23 are no ISA IRQs, so the MADT needs no interrupt source
// override for them, and KVM's default routing sends them to the IOAPIC only.
#pragma once

#include "vmm/acpi/aml.hpp"

namespace vmm::acpi {

inline constexpr std::uint32_t kPciRoutedSlots = 32;  // every slot of bus 0
inline constexpr std::uint32_t kPciIntxPins = 4;      // INTA..INTD

// Name (_PRT, Package () { ... }): one entry per slot and pin.
aml::Bytes pci_routing_table();

}  // namespace vmm::acpi
