// Per-vCPU CPUID: KVM's supported set, patched with this vCPU's APIC ID and
// a topology of `cpu_count` cores in one socket, one thread per core.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace vmm::x86 {

std::vector<kvm_cpuid_entry2> make_vcpu_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                              std::uint32_t apic_id, std::uint32_t cpu_count);

}  // namespace vmm::x86
