// Where the initrd goes: page-aligned, as high as allowed, above the kernel.
// Loading it high keeps the RAM right after the kernel free for the
// decompressor and for KASLR, as GRUB and other boot loaders do.
#pragma once

#include <cstdint>
#include <string>

#include "vmm/guest_memory.hpp"

namespace vmm::boot {

// Highest 4 KiB-aligned address A with [A, A + size) inside
// [lowest, limit). Throws base::Error (naming `name`) when size is 0 or the
// initrd does not fit.
GuestAddress place_initrd(const std::string& name, std::uint64_t size, GuestAddress lowest,
                          GuestAddress limit);

}  // namespace vmm::boot
