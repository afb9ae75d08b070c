// reset_acpi: asks for a reboot through the ACPI hardware-reduced reset
// register, 0x01 to port 0x600 (the sleep control port also takes the reset
// value). The VMM treats a reboot as a clean stop (exit 0). If the request
// is ignored the guest says so and triple-faults (exit 2).
#include "common.inc"

main:
    PRINT("reset_acpi: writing 01 to port 600\n")
    mov $SLEEP_CONTROL_PORT, %dx
    mov $ACPI_RESET_VALUE, %al
    out %al, (%dx)
    call stop_grace
    FAIL("reset request ignored\n")
