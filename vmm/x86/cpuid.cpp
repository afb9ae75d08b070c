#include "vmm/x86/cpuid.hpp"

#include <bit>

namespace vmm::x86 {

namespace {

constexpr std::uint32_t kHypervisorBit = 1u << 31;  // leaf 1 ECX
constexpr std::uint32_t kHttBit = 1u << 28;         // leaf 1 EDX

// Bits needed to number `count` items (x2APIC ID shift width).
std::uint32_t id_width(std::uint32_t count) {
    return count <= 1 ? 0 : static_cast<std::uint32_t>(std::bit_width(count - 1));
}

void set_topology_level(kvm_cpuid_entry2& entry, std::uint32_t apic_id, std::uint32_t cpu_count) {
    // Leaf 0xB/0x1F subleaves: 0 = SMT (1 thread per core), 1 = core
    // (cpu_count cores per package), then "invalid" to end the list.
    entry.edx = apic_id;
    switch (entry.index) {
        case 0:
            entry.eax = 0;
            entry.ebx = 1;
            entry.ecx = (1u << 8) | entry.index;
            break;
        case 1:
            entry.eax = id_width(cpu_count);
            entry.ebx = cpu_count;
            entry.ecx = (2u << 8) | entry.index;
            break;
        default:
            entry.eax = 0;
            entry.ebx = 0;
            entry.ecx = entry.index;
            break;
    }
}

}  // namespace

std::vector<kvm_cpuid_entry2> make_vcpu_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                              std::uint32_t apic_id, std::uint32_t cpu_count) {
    std::vector<kvm_cpuid_entry2> entries(supported.begin(), supported.end());
    for (auto& entry : entries) {
        switch (entry.function) {
            case 0x1:
                entry.ebx = (entry.ebx & 0x0000ffff) | (apic_id << 24) |
                            ((cpu_count & 0xff) << 16);
                entry.ecx |= kHypervisorBit;
                if (cpu_count > 1) {
                    entry.edx |= kHttBit;
                } else {
                    entry.edx &= ~kHttBit;
                }
                break;
            case 0x4: {
                // Deterministic cache parameters: cores per package in EAX[31:26];
                // each cache is private to its core (no SMT).
                const std::uint32_t cores_field = (cpu_count - 1) & 0x3f;
                entry.eax = (entry.eax & 0x03ff'ffff & ~(0xfffu << 14)) | (cores_field << 26);
                break;
            }
            case 0xb:
            case 0x1f:
                set_topology_level(entry, apic_id, cpu_count);
                break;
            case 0x8000'0008:
                // AMD: number of cores - 1 and the APIC ID width.
                entry.ecx = (entry.ecx & ~0xf0ffu) | ((cpu_count - 1) & 0xff) |
                            (id_width(cpu_count) << 12);
                break;
            case 0x8000'001e:
                // AMD extended APIC ID, core ID, one thread per core, node 0.
                entry.eax = apic_id;
                entry.ebx = apic_id & 0xff;
                entry.ecx = 0;
                break;
            default:
                break;
        }
    }
    return entries;
}

}  // namespace vmm::x86
