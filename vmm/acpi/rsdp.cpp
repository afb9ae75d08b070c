#include "vmm/acpi/rsdp.hpp"

#include <cstddef>
#include <cstring>
#include <span>

#include "vmm/acpi/table_writer.hpp"

namespace vmm::acpi {

namespace {

struct [[gnu::packed]] Rsdp {
    char signature[8];
    std::uint8_t checksum;  // over the first 20 bytes (the ACPI 1.0 structure)
    char oem_id[6];
    std::uint8_t revision;
    std::uint32_t rsdt_address;
    std::uint32_t length;
    std::uint64_t xsdt_address;
    std::uint8_t extended_checksum;  // over all 36 bytes
    std::uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == kRsdpLength && offsetof(Rsdp, length) == kRsdpV1Length);

constexpr std::uint8_t kRsdpRevision = 2;  // ACPI 2.0+: XSDT and extended checksum

}  // namespace

std::vector<std::uint8_t> build_rsdp(std::uint64_t xsdt_address) {
    Rsdp rsdp{};
    std::memcpy(rsdp.signature, "RSD PTR ", sizeof(rsdp.signature));
    std::memcpy(rsdp.oem_id, kOemId.data(), sizeof(rsdp.oem_id));
    rsdp.revision = kRsdpRevision;
    // No RSDT: every table may sit above 4 GiB one day, and Linux (like any
    // OS since ACPI 2.0) uses the XSDT when the revision is 2.
    rsdp.rsdt_address = 0;
    rsdp.length = kRsdpLength;
    rsdp.xsdt_address = xsdt_address;

    std::vector<std::uint8_t> bytes(sizeof(rsdp));
    std::memcpy(bytes.data(), &rsdp, sizeof(rsdp));
    bytes[offsetof(Rsdp, checksum)] =
        checksum_byte(std::span<const std::uint8_t>(bytes).first(kRsdpV1Length));
    bytes[offsetof(Rsdp, extended_checksum)] = checksum_byte(bytes);
    return bytes;
}

}  // namespace vmm::acpi
