// flood: writes once to port 0x80, which nothing claims (at --log-level
// debug the VMM logs "unclaimed port write at 0x80": the tests' sign that the
// guest runs), then prints the same line on COM1 forever. With a stdout that
// nobody drains, the vCPU ends up blocked in the VMM's write to it, where a
// signal must still stop the VMM (exit 128+signal).
#include "common.inc"

#define UNCLAIMED_PORT 0x80

main:
    mov $UNCLAIMED_PORT, %dx
    xor %al, %al
    out %al, (%dx)
1:  PRINT("flood: the quick brown fox jumps over the lazy dog\n")
    jmp 1b
