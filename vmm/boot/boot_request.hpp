// What the VMM hands the kernel loader: the images, the command line and
// where the ACPI tables already are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/guest_memory.hpp"

namespace vmm::boot {

struct BootRequest {
    std::vector<std::uint8_t> kernel;                 // bzImage or ELF vmlinux with a PVH note
    std::optional<std::vector<std::uint8_t>> initrd;  // loaded as the first module / ramdisk
    std::string cmdline;                              // without the terminating NUL
    GuestAddress rsdp_address = 0;                    // 0 when there are no ACPI tables
    // Names used in error messages; callers normally pass the file paths.
    std::string kernel_name = "kernel image";
    std::string initrd_name = "initrd";
};

}  // namespace vmm::boot
