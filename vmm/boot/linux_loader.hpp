// The one entry point for loading a guest kernel: detects the image format
// and hands it to the bzImage (64-bit boot protocol) or ELF (PVH) loader.
#pragma once

#include "vmm/boot/boot_entry.hpp"
#include "vmm/boot/boot_request.hpp"
#include "vmm/guest_memory.hpp"

namespace vmm::boot {

// Loads request.kernel (plus initrd and command line) into guest memory and
// says how to enter it. Throws a one-line base::Error, before writing any
// guest memory, for anything that is not a loadable kernel, a command line
// the kernel cannot take, or an initrd that does not fit.
BootEntry load_kernel(GuestMemory& memory, const BootRequest& request);

}  // namespace vmm::boot
