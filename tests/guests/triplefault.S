// triplefault: loads an empty IDT and executes ud2: #UD cannot be delivered,
// nor the #GP and #DF that follow, so the CPU shuts down. The VMM must name
// the triple fault, dump the registers on stderr and exit with 2.
#include "common.inc"

main:
    PRINT("triplefault: ud2 with an empty IDT at ")
    mov $triple_fault_insn, %eax
    call put_hex32
    call newline
    jmp triple_fault
