// hello: the smallest complete boot. Prints one line on COM1 (polling
// LSR.THRE before each byte) and powers off through the ACPI sleep control
// register (0x34 -> port 0x600). Proves: the PVH note is honoured, 32-bit
// entry works, COM1 output reaches the --serial target, S5 exits with 0.
#include "common.inc"

main:
    PRINT("Hello from the hello guest\n")
    ret
