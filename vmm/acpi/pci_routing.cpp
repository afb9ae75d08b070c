#include "vmm/acpi/pci_routing.hpp"

#include <vector>

#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

// _PRT Address: device number in the high word, 0xFFFF = any function.
constexpr std::uint32_t kAnyFunction = 0xffff;
constexpr std::uint32_t kStaticSource = 0;  // no link device: SourceIndex is the GSI

static_assert(kPciRoutedSlots * kPciIntxPins <= 255, "AML packages hold 255 elements");

}  // namespace

aml::Bytes pci_routing_table() {
    std::vector<aml::Bytes> entries;
    for (std::uint32_t slot = 0; slot < kPciRoutedSlots; ++slot) {
        for (std::uint32_t pin = 0; pin < kPciIntxPins; ++pin) {
            const aml::Bytes fields[] = {
                aml::integer(slot << 16 | kAnyFunction),
                aml::integer(pin),
                aml::integer(kStaticSource),
                aml::integer(x86::pci_intx_gsi(slot, pin)),
            };
            entries.push_back(aml::package(fields));
        }
    }
    return aml::name("_PRT", aml::package(entries));
}

}  // namespace vmm::acpi
