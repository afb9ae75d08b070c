// echo: reads bytes from COM1 (polling LSR.DR) and echoes them upper-cased
// until a newline (or 256 bytes), then prints `echo: done` and powers off.
// Proves the --serial stdio input path: host stdin reaches the guest's RBR.
#include "common.inc"

main:
    PRINT("echo: ready\n")
    mov $256, %ecx
1:  mov $COM1_LSR, %dx
2:  in (%dx), %al
    test $0x01, %al
    jnz 3f
    pause
    jmp 2b
3:  mov $COM1_THR, %dx          // RBR on read
    in (%dx), %al
    cmp $'\n', %al
    je 5f
    cmp $'\r', %al
    je 5f
    cmp $'a', %al
    jb 4f
    cmp $'z', %al
    ja 4f
    sub $0x20, %al
4:  call putc
    dec %ecx
    jnz 1b
5:  call newline
    PRINT("echo: done\n")
    ret
