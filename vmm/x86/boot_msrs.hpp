// The MSR values every vCPU starts with. Linux expects MTRRs enabled with
// write-back as the default type; otherwise it maps RAM uncached.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace vmm::x86 {

inline std::vector<std::pair<std::uint32_t, std::uint64_t>> boot_msrs() {
    constexpr std::uint64_t kMtrrEnable = 1u << 11;
    constexpr std::uint64_t kMemoryTypeWriteBack = 6;
    constexpr std::uint64_t kMiscEnableFastStrings = 1;
    return {
        {0x174, 0},                                   // IA32_SYSENTER_CS
        {0x175, 0},                                   // IA32_SYSENTER_ESP
        {0x176, 0},                                   // IA32_SYSENTER_EIP
        {0xc000'0081, 0},                             // STAR
        {0xc000'0082, 0},                             // LSTAR
        {0xc000'0083, 0},                             // CSTAR
        {0xc000'0084, 0},                             // SYSCALL_MASK
        {0xc000'0102, 0},                             // KERNEL_GS_BASE
        {0x10, 0},                                    // IA32_TSC
        {0x1a0, kMiscEnableFastStrings},              // IA32_MISC_ENABLE
        {0x2ff, kMtrrEnable | kMemoryTypeWriteBack},  // IA32_MTRR_DEF_TYPE
    };
}

}  // namespace vmm::x86
