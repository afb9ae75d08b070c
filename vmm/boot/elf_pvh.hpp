// Uncompressed ELF64 kernels (vmlinux) entered through the Xen PVH entry
// point that Linux advertises with CONFIG_PVH (arch/x86/platform/pvh/).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "vmm/boot/boot_entry.hpp"
#include "vmm/boot/boot_request.hpp"
#include "vmm/guest_memory.hpp"

namespace vmm::boot {

// True when `image` starts with the ELF magic.
bool looks_like_elf(std::span<const std::uint8_t> image);

// Validates the ELF header, every program header and the PVH note, then
// loads the PT_LOAD segments at their physical addresses, the initrd as the
// first module, the command line and hvm_start_info (with the e820 map) at
// kPvhStartInfoAddress. Throws base::Error without touching guest memory
// when anything is wrong.
BootEntry load_elf_pvh(GuestMemory& memory, const BootRequest& request);

}  // namespace vmm::boot
