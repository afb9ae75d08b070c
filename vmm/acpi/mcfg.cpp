#include "vmm/acpi/mcfg.hpp"

#include "base/error.hpp"
#include "vmm/acpi/table_writer.hpp"

namespace vmm::acpi {

namespace {

struct [[gnu::packed]] McfgAllocation {
    std::uint64_t base_address;
    std::uint16_t segment;
    std::uint8_t start_bus;
    std::uint8_t end_bus;
    std::uint32_t reserved;
};

static_assert(sizeof(TableHeader) + sizeof(std::uint64_t) == kMcfgFixedLength);
static_assert(sizeof(McfgAllocation) == kMcfgAllocationLength);

constexpr std::uint32_t kMaxBuses = 256;

}  // namespace

std::vector<std::uint8_t> build_mcfg(std::uint64_t ecam_base, std::uint32_t bus_count) {
    if (bus_count == 0 || bus_count > kMaxBuses) {
        throw base::Error("an ECAM window covers 1 to {} buses, not {}", kMaxBuses, bus_count);
    }
    TableWriter table("MCFG", kMcfgRevision, "KVMVMCFG");
    table.append(std::uint64_t{0});  // reserved
    table.append(McfgAllocation{ecam_base, 0, 0, static_cast<std::uint8_t>(bus_count - 1), 0});
    return std::move(table).finish();
}

}  // namespace vmm::acpi
