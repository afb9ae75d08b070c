// Linux bzImage loading per the x86 boot protocol
// (Documentation/arch/x86/boot.rst), entered through the 64-bit entry point.
#pragma once

#include <cstdint>
#include <span>

#include "vmm/boot/boot_entry.hpp"
#include "vmm/boot/boot_request.hpp"
#include "vmm/guest_memory.hpp"

namespace vmm::boot {

// True when `image` carries the setup header signature "HdrS" at 0x202.
bool looks_like_bzimage(std::span<const std::uint8_t> image);

// Validates the whole image, command line and initrd first, then loads the
// protected-mode kernel at 1 MiB, the initrd, the command line and the zero
// page (boot_params at kZeroPageAddress). Throws base::Error without
// touching guest memory when anything is wrong.
BootEntry load_bzimage(GuestMemory& memory, const BootRequest& request);

}  // namespace vmm::boot
