// badfetch: jumps to 0xd0000000, where nothing is mapped (the 32-bit MMIO
// hole), so the CPU fetches instructions from MMIO. KVM cannot emulate that
// and reports an internal error (or, if the VMM answers the fetch with all
// ones, the 0xff bytes decode to an invalid opcode and the guest triple
// faults). Either way the VMM must exit with 2 and a register dump, not
// crash or hang.
#include "common.inc"

main:
    PRINT("badfetch: jumping to d0000000\n")
    mov $0xd0000000, %eax
    jmp *%eax
