#include "vmm/acpi/madt.hpp"

#include "base/error.hpp"
#include "vmm/acpi/table_writer.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::acpi {

namespace {

struct [[gnu::packed]] MadtFixed {
    std::uint32_t local_apic_address;
    std::uint32_t flags;
};

struct [[gnu::packed]] LocalApic {
    std::uint8_t type;
    std::uint8_t length;
    std::uint8_t processor_uid;
    std::uint8_t apic_id;
    std::uint32_t flags;
};

struct [[gnu::packed]] IoApic {
    std::uint8_t type;
    std::uint8_t length;
    std::uint8_t ioapic_id;
    std::uint8_t reserved;
    std::uint32_t address;
    std::uint32_t gsi_base;
};

struct [[gnu::packed]] InterruptSourceOverride {
    std::uint8_t type;
    std::uint8_t length;
    std::uint8_t bus;
    std::uint8_t source;
    std::uint32_t gsi;
    std::uint16_t flags;
};

struct [[gnu::packed]] LocalApicNmi {
    std::uint8_t type;
    std::uint8_t length;
    std::uint8_t processor_uid;
    std::uint16_t flags;
    std::uint8_t lint;
};

static_assert(sizeof(TableHeader) + sizeof(MadtFixed) == kMadtFixedLength);
static_assert(sizeof(LocalApic) == 8 && sizeof(IoApic) == 12 &&
              sizeof(InterruptSourceOverride) == 10 && sizeof(LocalApicNmi) == 6);

constexpr std::uint32_t kPcatCompat = 1u << 0;  // MADT flags: dual 8259 present
constexpr std::uint32_t kLocalApicEnabled = 1u << 0;
constexpr std::uint8_t kIsaBus = 0;
// MPS INTI flags (ACPI 6.5, 5.2.12.5): polarity in bits 0-1, trigger in bits 2-3.
constexpr std::uint16_t kActiveHighEdge = 0x1 | (0x1 << 2);
constexpr std::uint8_t kAllProcessors = 0xff;
constexpr std::uint8_t kLint1 = 1;
// The PIT's ISA IRQ 0 is wired to IOAPIC pin 2, as on every PC since the
// IOAPIC took pin 0 for the 8259 cascade (KVM's IOAPIC routes it so too).
constexpr std::uint8_t kTimerIsaIrq = 0;
constexpr std::uint32_t kTimerGsi = 2;

}  // namespace

std::uint8_t ioapic_id(std::uint32_t cpu_count) {
    return static_cast<std::uint8_t>(cpu_count);
}

std::vector<std::uint8_t> build_madt(std::uint32_t cpu_count) {
    if (cpu_count == 0 || cpu_count > kMaxMadtCpus) {
        throw base::Error("the ACPI tables describe 1 to {} vCPUs, not {}", kMaxMadtCpus,
                          cpu_count);
    }
    TableWriter table("APIC", kMadtRevision, "KVMVAPIC");
    table.append(MadtFixed{static_cast<std::uint32_t>(x86::kLapicAddress), kPcatCompat});
    for (std::uint32_t cpu = 0; cpu < cpu_count; ++cpu) {
        const auto id = static_cast<std::uint8_t>(cpu);
        table.append(LocalApic{kMadtLocalApic, sizeof(LocalApic), id, id, kLocalApicEnabled});
    }
    table.append(IoApic{kMadtIoApic, sizeof(IoApic), ioapic_id(cpu_count), 0,
                        static_cast<std::uint32_t>(x86::kIoapicAddress), 0});
    table.append(InterruptSourceOverride{kMadtInterruptSourceOverride,
                                         sizeof(InterruptSourceOverride), kIsaBus, kTimerIsaIrq,
                                         kTimerGsi, kActiveHighEdge});
    table.append(LocalApicNmi{kMadtLocalApicNmi, sizeof(LocalApicNmi), kAllProcessors,
                              kActiveHighEdge, kLint1});
    return std::move(table).finish();
}

}  // namespace vmm::acpi
