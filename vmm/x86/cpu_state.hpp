// The bootstrap vCPU's initial state for a loaded kernel: the boot GDT and
// IDT (and, for the 64-bit entry, identity page tables) in guest memory, and
// the registers that KVM_SET_REGS / KVM_SET_SREGS load.
#pragma once

#include <linux/kvm.h>

#include "vmm/boot/boot_entry.hpp"
#include "vmm/guest_memory.hpp"

namespace vmm::x86 {

struct BootCpuState {
    kvm_regs regs;
    kvm_sregs sregs;
};

// Writes the boot GDT, IDT and page tables the entry mode needs, and returns
// the BSP's registers. `current` is the vCPU's KVM_GET_SREGS result: fields
// this code does not own (APIC base, pending interrupts, LDT, CR2, CR8) are
// kept from it.
BootCpuState boot_cpu_state(GuestMemory& memory, const boot::BootEntry& entry,
                            const kvm_sregs& current);

// The pure parts of boot_cpu_state, for tests.
kvm_regs boot_regs(const boot::BootEntry& entry);
kvm_sregs boot_sregs(const boot::BootEntry& entry, const kvm_sregs& current);

}  // namespace vmm::x86
