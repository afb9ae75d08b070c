// vmm::x86::make_vcpu_cpuid on synthetic KVM_GET_SUPPORTED_CPUID lists: the
// per-vCPU APIC ID, the hypervisor bit, and a consistent topology of
// `cpu_count` single-threaded cores in one package (Intel and AMD leaves).
#include "vmm/x86/cpuid.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

namespace {

constexpr std::uint32_t kSignificant = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

kvm_cpuid_entry2 entry(std::uint32_t function, std::uint32_t index, std::uint32_t flags,
                       std::uint32_t eax, std::uint32_t ebx, std::uint32_t ecx, std::uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = flags;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

// Roughly what KVM reports on an 8-core/16-thread host, with the fields this
// code must rewrite set to host values that would be wrong for the guest.
std::vector<kvm_cpuid_entry2> supported_list() {
    return {
        entry(0x0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
        // EBX: APIC ID 0xbb, 0xaa logical CPUs, CLFLUSH 8, brand 7. ECX without
        // the hypervisor bit, EDX with HTT.
        entry(0x1, 0, 0, 0x000906ea, 0xbbaa0807, 0x7ffafbbf, 0xbfebfbff),
        // Leaf 4: L1d, L1i, L2 (shared by 2 threads), L3 (shared by 16).
        entry(0x4, 0, kSignificant, 0x1c004121, 0x01c0003f, 0x3f, 0),
        entry(0x4, 1, kSignificant, 0x1c004122, 0x01c0003f, 0x3f, 0),
        entry(0x4, 2, kSignificant, 0x1c004143, 0x00c0003f, 0x3ff, 0),
        entry(0x4, 3, kSignificant, 0x1c03c163, 0x03c0003f, 0x3fff, 6),
        entry(0x4, 4, kSignificant, 0, 0, 0, 0),
        entry(0x7, 0, kSignificant, 0, 0x029c6fbf, 0x40000000, 0xbc000400),
        // Leaf 0xB/0x1F as the host: 2 threads per core, 16 threads per package.
        entry(0xb, 0, kSignificant, 1, 2, 0x100, 0x13),
        entry(0xb, 1, kSignificant, 4, 16, 0x201, 0x13),
        entry(0xb, 2, kSignificant, 0, 0, 0x2, 0x13),
        entry(0x1f, 0, kSignificant, 1, 2, 0x100, 0x13),
        entry(0x1f, 1, kSignificant, 4, 16, 0x201, 0x13),
        entry(0x1f, 2, kSignificant, 0, 0, 0x2, 0x13),
        entry(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
        entry(0x80000000, 0, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
        // AMD: 48-bit addresses; ECX = PerfTscSize 3, ApicIdSize 0xa, bits 11:8
        // = 7 (reserved, must survive), NC = 15.
        entry(0x80000008, 0, 0, 0x3030, 0x1234, 0x0003a70f, 0),
        // AMD: host extended APIC ID 0x55, 2 threads per core, core 5; 4 nodes.
        entry(0x8000001e, 0, 0, 0x55, 0x0105, 0x0302, 0),
    };
}

const kvm_cpuid_entry2& find(const std::vector<kvm_cpuid_entry2>& entries, std::uint32_t function,
                             std::uint32_t index = 0) {
    for (const auto& e : entries) {
        if (e.function == function && e.index == index) return e;
    }
    ADD_FAILURE() << "no CPUID leaf " << std::hex << function << "." << index;
    static const kvm_cpuid_entry2 none{};
    return none;
}

std::uint32_t bits(std::uint32_t value, int high, int low) {
    return (value >> low) & ((high - low == 31) ? ~0u : ((1u << (high - low + 1)) - 1));
}

TEST(Cpuid, EmptyListStaysEmpty) {
    EXPECT_TRUE(vmm::x86::make_vcpu_cpuid({}, 0, 1).empty());
}

TEST(Cpuid, KeepsEveryLeafInOrderAndLeavesOthersUntouched) {
    const auto supported = supported_list();
    const auto before = supported;
    const auto result = vmm::x86::make_vcpu_cpuid(supported, 3, 4);
    ASSERT_EQ(result.size(), supported.size());
    for (std::size_t i = 0; i < result.size(); ++i) {
        EXPECT_EQ(result[i].function, supported[i].function);
        EXPECT_EQ(result[i].index, supported[i].index);
        EXPECT_EQ(result[i].flags, supported[i].flags);
    }
    // The input is not modified.
    EXPECT_EQ(std::memcmp(before.data(), supported.data(), before.size() * sizeof(before[0])), 0);
    for (std::uint32_t function : {0x0u, 0x7u, 0x40000000u, 0x80000000u}) {
        const auto& in = find(supported, function);
        const auto& out = find(result, function);
        EXPECT_EQ(std::memcmp(&in, &out, sizeof(in)), 0) << std::hex << function;
    }
}

TEST(Cpuid, Leaf1CarriesTheApicIdAndHypervisorBit) {
    const auto supported = supported_list();
    for (std::uint32_t apic_id : {0u, 1u, 5u, 63u}) {
        SCOPED_TRACE(apic_id);
        const auto result = vmm::x86::make_vcpu_cpuid(supported, apic_id, 64);
        const auto& leaf = find(result, 0x1);
        EXPECT_EQ(bits(leaf.ebx, 31, 24), apic_id);
        EXPECT_EQ(bits(leaf.ebx, 23, 16), 64u);          // logical processors per package
        EXPECT_EQ(bits(leaf.ebx, 15, 0), 0x0807u);       // CLFLUSH size and brand kept
        EXPECT_TRUE(leaf.ecx & (1u << 31));              // running under a hypervisor
        EXPECT_EQ(leaf.ecx & ~(1u << 31), 0x7ffafbbfu);  // other features kept
        EXPECT_EQ(leaf.eax, 0x000906eau);
    }
}

TEST(Cpuid, Leaf1HttOnlyWithMoreThanOneCpu) {
    const auto supported = supported_list();
    const auto one = find(vmm::x86::make_vcpu_cpuid(supported, 0, 1), 0x1);
    EXPECT_FALSE(one.edx & (1u << 28));
    EXPECT_EQ(bits(one.ebx, 23, 16), 1u);
    EXPECT_EQ(one.edx | (1u << 28), 0xbfebfbffu);

    auto without_htt = supported;
    for (auto& e : without_htt) {
        if (e.function == 1) e.edx &= ~(1u << 28);
    }
    const auto two = find(vmm::x86::make_vcpu_cpuid(without_htt, 1, 2), 0x1);
    EXPECT_TRUE(two.edx & (1u << 28));
}

TEST(Cpuid, HypervisorBitSetEvenWhenHostListHasOtherBitsClear) {
    std::vector<kvm_cpuid_entry2> supported{entry(0x1, 0, 0, 0, 0, 0, 0)};
    const auto leaf = vmm::x86::make_vcpu_cpuid(supported, 2, 4)[0];
    EXPECT_EQ(leaf.ecx, 1u << 31);
    EXPECT_EQ(leaf.ebx, (2u << 24) | (4u << 16));
}

// (cpu_count, bits needed for an APIC ID below cpu_count)
class CpuidTopology : public ::testing::TestWithParam<std::tuple<std::uint32_t, std::uint32_t>> {};

TEST_P(CpuidTopology, ExtendedTopologyLeaves) {
    const auto [cpu_count, width] = GetParam();
    const auto supported = supported_list();
    for (std::uint32_t apic_id : {0u, cpu_count / 2, cpu_count - 1}) {
        SCOPED_TRACE(::testing::Message() << "apic_id " << apic_id);
        const auto result = vmm::x86::make_vcpu_cpuid(supported, apic_id, cpu_count);
        for (std::uint32_t leaf : {0xbu, 0x1fu}) {
            SCOPED_TRACE(::testing::Message() << "leaf " << std::hex << leaf);
            const auto& smt = find(result, leaf, 0);
            EXPECT_EQ(smt.eax, 0u);       // no SMT: shift 0 to reach the core level
            EXPECT_EQ(smt.ebx, 1u);       // one thread per core
            EXPECT_EQ(smt.ecx, 0x100u);   // level type 1 (SMT), level number 0
            EXPECT_EQ(smt.edx, apic_id);  // x2APIC ID

            const auto& core = find(result, leaf, 1);
            EXPECT_EQ(core.eax, width);      // shift to reach the package ID
            EXPECT_EQ(core.ebx, cpu_count);  // logical processors in the package
            EXPECT_EQ(core.ecx, 0x201u);     // level type 2 (core), level number 1
            EXPECT_EQ(core.edx, apic_id);

            const auto& end = find(result, leaf, 2);
            EXPECT_EQ(end.eax, 0u);
            EXPECT_EQ(end.ebx, 0u);
            EXPECT_EQ(end.ecx, 2u);  // level type 0: end of the list
            EXPECT_EQ(end.edx, apic_id);

            // All vCPUs land in package 0 and the ID space covers them all.
            EXPECT_EQ(apic_id >> core.eax, 0u);
            EXPECT_GE(std::uint64_t{1} << core.eax, cpu_count);
        }
    }
}

TEST_P(CpuidTopology, Leaf4CoresPerPackage) {
    const auto [cpu_count, width] = GetParam();
    const auto supported = supported_list();
    const auto result = vmm::x86::make_vcpu_cpuid(supported, 0, cpu_count);
    for (std::uint32_t index = 0; index < 4; ++index) {
        SCOPED_TRACE(index);
        const auto& in = find(supported, 0x4, index);
        const auto& out = find(result, 0x4, index);
        EXPECT_EQ(bits(out.eax, 31, 26), cpu_count - 1);       // cores per package - 1
        EXPECT_EQ(bits(out.eax, 25, 14), 0u);                  // one thread per cache
        EXPECT_EQ(bits(out.eax, 13, 0), bits(in.eax, 13, 0));  // type, level kept
        EXPECT_EQ(out.ebx, in.ebx);
        EXPECT_EQ(out.ecx, in.ecx);
        EXPECT_EQ(out.edx, in.edx);
    }
}

TEST_P(CpuidTopology, AmdLeaves) {
    const auto [cpu_count, width] = GetParam();
    const auto supported = supported_list();
    const std::uint32_t apic_id = cpu_count - 1;
    const auto result = vmm::x86::make_vcpu_cpuid(supported, apic_id, cpu_count);

    const auto& sizes = find(result, 0x80000008);
    EXPECT_EQ(bits(sizes.ecx, 7, 0), cpu_count - 1);  // NC: cores - 1
    EXPECT_EQ(bits(sizes.ecx, 15, 12), width);        // ApicIdSize
    EXPECT_EQ(bits(sizes.ecx, 11, 8), 7u);            // untouched
    EXPECT_EQ(bits(sizes.ecx, 31, 16), 3u);           // PerfTscSize kept
    EXPECT_EQ(sizes.eax, 0x3030u);                    // address sizes kept
    EXPECT_EQ(sizes.ebx, 0x1234u);

    const auto& ext = find(result, 0x8000001e);
    EXPECT_EQ(ext.eax, apic_id);              // extended APIC ID
    EXPECT_EQ(bits(ext.ebx, 7, 0), apic_id);  // core ID
    EXPECT_EQ(bits(ext.ebx, 15, 8), 0u);      // threads per core - 1
    EXPECT_EQ(bits(ext.ecx, 7, 0), 0u);       // node 0
    EXPECT_EQ(bits(ext.ecx, 10, 8), 0u);      // one node per package
}

INSTANTIATE_TEST_SUITE_P(Counts, CpuidTopology,
                         ::testing::Values(std::make_tuple(1u, 0u), std::make_tuple(2u, 1u),
                                           std::make_tuple(3u, 2u), std::make_tuple(4u, 2u),
                                           std::make_tuple(5u, 3u), std::make_tuple(64u, 6u)),
                         [](const auto& info) {
                             return "Cpus" + std::to_string(std::get<0>(info.param));
                         });

TEST(Cpuid, EachVcpuGetsItsOwnApicIdEverywhere) {
    const auto supported = supported_list();
    const std::uint32_t cpu_count = 4;
    std::vector<std::uint32_t> seen;
    for (std::uint32_t apic_id = 0; apic_id < cpu_count; ++apic_id) {
        const auto result = vmm::x86::make_vcpu_cpuid(supported, apic_id, cpu_count);
        const std::uint32_t from_leaf1 = bits(find(result, 0x1).ebx, 31, 24);
        EXPECT_EQ(find(result, 0xb, 0).edx, from_leaf1);
        EXPECT_EQ(find(result, 0x1f, 1).edx, from_leaf1);
        EXPECT_EQ(find(result, 0x8000001e).eax, from_leaf1);
        seen.push_back(from_leaf1);
    }
    EXPECT_THAT(seen, ::testing::ElementsAre(0u, 1u, 2u, 3u));
}

}  // namespace
