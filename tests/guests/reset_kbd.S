// reset_kbd: asks for a reboot the legacy way, 0xfe (pulse reset line) to
// the i8042 command port 0x64. The VMM treats a reboot as a clean stop
// (exit 0). Proves the i8042 reset path; if the request is ignored the
// guest says so and triple-faults (exit 2).
#include "common.inc"

main:
    PRINT("reset_kbd: writing fe to port 64\n")
    mov $I8042_COMMAND_PORT, %dx
    mov $I8042_RESET_VALUE, %al
    out %al, (%dx)
    call stop_grace
    FAIL("reset request ignored\n")
