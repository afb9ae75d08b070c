// spin: never stops by itself, for the VMM's signal handling. With
// `halt=1` on the command line it halts with interrupts off (the vCPU
// sleeps in the kernel); otherwise it spins in a tight loop with no exits.
// SIGTERM/SIGINT must still stop the VMM (exit 128+signal).
#include "common.inc"

main:
    mov $key_halt, %esi
    call cmdline_find_uint
    jc 2f
    test %eax, %eax
    jz 2f
    PRINT("spin: halting with interrupts off\n")
1:  cli
    hlt
    jmp 1b
2:  PRINT("spin: spinning\n")
3:  jmp 3b

    .section .rodata
key_halt: .asciz "halt="
