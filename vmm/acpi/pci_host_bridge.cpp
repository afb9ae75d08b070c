#include "vmm/acpi/pci_host_bridge.hpp"

#include <cstring>

#include "vmm/acpi/pci_routing.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

// Address space descriptors (ACPI 6.5, 6.4.3.5): resource type, general
// flags, type-specific flags, then granularity/min/max/translation/length.
constexpr std::uint8_t kTypeMemory = 0;
constexpr std::uint8_t kTypeIo = 1;
constexpr std::uint8_t kTypeBus = 2;
// Producer (bit 0 clear: the bridge decodes this window for its children),
// fixed minimum and maximum (bits 2 and 3).
constexpr std::uint8_t kWindowFlags = 0x0c;
constexpr std::uint8_t kIoEntireRange = 0x03;
constexpr std::uint8_t kMemoryReadWrite = 0x01;

template <typename T>
aml::Bytes address_space(std::uint8_t tag, std::uint8_t type, std::uint8_t type_flags, T min,
                         T max) {
    const T fields[] = {0, min, max, 0, static_cast<T>(max - min + 1)};
    const std::uint16_t length = 3 + sizeof(fields);
    aml::Bytes bytes{tag,
                     static_cast<std::uint8_t>(length),
                     static_cast<std::uint8_t>(length >> 8),
                     type,
                     kWindowFlags,
                     type_flags};
    // AML stores each field little-endian, like x86 memory.
    for (const T field : fields) {
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            bytes.push_back(static_cast<std::uint8_t>(field >> (8 * i)));
        }
    }
    return bytes;
}

aml::Bytes word_space(std::uint8_t type, std::uint8_t flags, std::uint16_t min, std::uint16_t max) {
    return address_space<std::uint16_t>(0x88, type, flags, min, max);
}

}  // namespace

aml::Bytes pci_host_bridge_device() {
    const aml::Bytes resources[] = {
        word_space(kTypeBus, 0, 0x00, static_cast<std::uint16_t>(x86::kPciEcamBusCount - 1)),
        aml::io_port_descriptor(x86::kPciConfigPort, x86::kPciConfigPort, 1, 8),
        word_space(kTypeIo, kIoEntireRange, 0x0000, x86::kPciConfigPort - 1),
        word_space(kTypeIo, kIoEntireRange, x86::kPciConfigPort + 8, 0xffff),
        address_space<std::uint32_t>(0x87, kTypeMemory, kMemoryReadWrite,
                                     static_cast<std::uint32_t>(x86::kPciMmio32Start),
                                     static_cast<std::uint32_t>(x86::kPciMmio32End - 1)),
        address_space<std::uint64_t>(0x8a, kTypeMemory, kMemoryReadWrite, x86::kPciMmio64Start,
                                     x86::kPciMmio64End - 1),
    };
    const aml::Bytes terms[] = {
        aml::name("_HID", aml::eisa_id("PNP0A08")),  // PCI Express root bridge
        aml::name("_CID", aml::eisa_id("PNP0A03")),  // PCI root bridge
        aml::name("_SEG", aml::integer(0)),
        aml::name("_BBN", aml::integer(0)),
        aml::name("_UID", aml::integer(0)),
        aml::name("_CRS", aml::resource_template(resources)),
        // The ECAM base of the bus range in _CRS, as in the MCFG: Linux
        // finds the MCFG entry first and takes this as agreeing with it.
        aml::name("_CBA", aml::integer(x86::kPciEcamStart)),
        pci_routing_table(),
    };
    return aml::device("PCI0", terms);
}

}  // namespace vmm::acpi
