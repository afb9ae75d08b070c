#include "vmm/boot/linux_loader.hpp"

#include "base/error.hpp"
#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/elf_pvh.hpp"

namespace vmm::boot {

BootEntry load_kernel(GuestMemory& memory, const BootRequest& request) {
    if (looks_like_bzimage(request.kernel)) return load_bzimage(memory, request);
    if (looks_like_elf(request.kernel)) return load_elf_pvh(memory, request);
    if (request.kernel.empty()) {
        throw base::Error("{} is empty, not a Linux bzImage or an ELF kernel with a PVH note",
                          request.kernel_name);
    }
    throw base::Error("{} is not a Linux bzImage or an ELF kernel with a PVH note",
                      request.kernel_name);
}

}  // namespace vmm::boot
