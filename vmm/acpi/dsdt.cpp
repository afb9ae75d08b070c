#include "vmm/acpi/dsdt.hpp"

#include "vmm/acpi/table_writer.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

constexpr std::uint8_t kCom1PortCount = 8;

// Device (COM1) { _HID PNP0501 (16550A-compatible), _UID 1, _CRS: the
// eight ports at 0x3f8 and ISA IRQ 4 } so that Linux's 8250_pnp binds it
// and the IRQ is routed through ACPI even without a legacy PIC.
aml::Bytes com1_device() {
    const aml::Bytes resources[] = {
        aml::io_port_descriptor(x86::kCom1Port, x86::kCom1Port, 0, kCom1PortCount),
        aml::irq_no_flags_descriptor(x86::kCom1Irq),
    };
    const aml::Bytes terms[] = {
        aml::name("_HID", aml::eisa_id("PNP0501")),
        aml::name("_UID", aml::integer(1)),
        aml::name("_CRS", aml::resource_template(resources)),
    };
    return aml::device("COM1", terms);
}

// Name (_S5_, Package () { SLP_TYPa, SLP_TYPb, 0, 0 }): on a hardware-reduced
// platform only SLP_TYPa is used; it is what the guest writes into
// SLP_TYP of the sleep control register.
aml::Bytes s5_package() {
    const aml::Bytes values[] = {
        aml::integer(x86::kAcpiS5SleepType),
        aml::integer(x86::kAcpiS5SleepType),
        aml::integer(0),
        aml::integer(0),
    };
    return aml::name("_S5", aml::package(values));
}

}  // namespace

std::vector<std::uint8_t> build_dsdt(std::span<const aml::Bytes> extra_system_bus_devices) {
    std::vector<aml::Bytes> system_bus{com1_device()};
    system_bus.insert(system_bus.end(), extra_system_bus_devices.begin(),
                      extra_system_bus_devices.end());

    TableWriter table("DSDT", kDsdtRevision, "KVMVDSDT");
    table.append_bytes(s5_package());
    table.append_bytes(aml::scope("\\_SB", system_bus));
    return std::move(table).finish();
}

}  // namespace vmm::acpi
