// Where and how the bootstrap vCPU enters a loaded kernel. The kernel loaders
// produce it; x86/cpu_state turns it into the initial registers.
#pragma once

#include <cstdint>

namespace vmm::boot {

struct BootEntry {
    enum class Mode {
        Linux64,  // Linux 64-bit boot protocol: long mode, paging on, %rsi = boot_params
        Pvh32,    // Xen PVH: 32-bit protected mode, paging off, %ebx = hvm_start_info
    };

    Mode mode = Mode::Linux64;
    std::uint64_t entry_point = 0;
    // Guest address of the boot information: struct boot_params (%rsi) for
    // Linux64, struct hvm_start_info (%rbx) for Pvh32.
    std::uint64_t boot_info_address = 0;
};

}  // namespace vmm::boot
