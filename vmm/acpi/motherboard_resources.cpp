#include "vmm/acpi/motherboard_resources.hpp"

#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

// A Memory32Fixed descriptor holds a 32-bit base and length.
static_assert(x86::kPciEcamStart + x86::kPciEcamSize <= 4 * x86::GiB);

aml::Bytes motherboard_resources_device() {
    const aml::Bytes resources[] = {
        aml::memory32_fixed_descriptor(static_cast<std::uint32_t>(x86::kPciEcamStart),
                                       static_cast<std::uint32_t>(x86::kPciEcamSize)),
    };
    const aml::Bytes terms[] = {
        aml::name("_HID", aml::eisa_id("PNP0C02")),
        aml::name("_UID", aml::integer(0)),
        aml::name("_CRS", aml::resource_template(resources)),
    };
    return aml::device("MRES", terms);
}

}  // namespace vmm::acpi
