// serial_irq: checks that COM1's interrupt reaches the CPU, first through
// the IOAPIC and then through the PIC. It installs an IDT, initialises the
// PIC (vectors 0x30-0x3f, all masked), software-enables the LAPIC, programs
// IOAPIC redirection entry 4 (COM1's IRQ) to vector 0x24 for this CPU and
// enables the UART's THR-empty interrupt (IER bit 1), which a 16550 raises
// at once when THR is empty. The handler reads IIR (expects 0x2 in the low
// nibble: THR empty), turns IER off and EOIs. Then it masks the IOAPIC
// entry, routes the PIC through LINT0 (ExtINT), unmasks IRQ 4 on the PIC
// and expects vector 0x34. Each wait is bounded by the TSC.
// Proves: the UART drives IRQ 4 with level/edge semantics that both
// in-kernel interrupt controllers see, and interrupt delivery works.
//
// Output: `serial-irq: ioapic pins <n>`, `serial irq via ioapic ok`,
// `serial irq via pic ok`, or `serial-irq FAIL: ...` lines.
#include "common.inc"

#define IOAPIC_VECTOR 0x24
#define PIC_BASE_VECTOR 0x30
#define PIC_VECTOR (PIC_BASE_VECTOR + 4)
#define SPURIOUS_VECTOR 0xff
#define WAIT_TSC_SHIFT 33

main:
    call build_idt
    lidt idt_desc
    call init_pic
    movl $(0x100 | SPURIOUS_VECTOR), LAPIC_SVR
    movl $0, LAPIC_TPR
    movl $0x10000, LAPIC_LVT_LINT0  // masked for now

    movl $1, IOAPIC_BASE            // IOAPICVER
    mov IOAPIC_BASE + 0x10, %eax
    shr $16, %eax
    and $0xff, %eax
    inc %eax
    PRINT("serial-irq: ioapic pins ")
    call put_dec32
    call newline

    // Phase 1: IOAPIC pin 4 -> vector 0x24, fixed, physical, edge, high.
    mov LAPIC_ID, %eax
    and $0xff000000, %eax
    movl $(0x10 + 2 * 4 + 1), IOAPIC_BASE
    mov %eax, IOAPIC_BASE + 0x10
    movl $(0x10 + 2 * 4), IOAPIC_BASE
    movl $IOAPIC_VECTOR, IOAPIC_BASE + 0x10
    movl $IOAPIC_VECTOR, expected_vector
    call trigger_and_wait
    movl $(0x10 + 2 * 4), IOAPIC_BASE   // mask pin 4 again
    movl $(0x10000 | IOAPIC_VECTOR), IOAPIC_BASE + 0x10
    call check_result
    PRINT("serial irq via ioapic ok\n")

    // Phase 2: PIC IRQ 4 -> LINT0 as ExtINT -> vector 0x34. Phase 1's edge
    // is latched in the masked PIC's IRR; initialising the PIC clears it.
    call init_pic
    movl $0x700, LAPIC_LVT_LINT0
    mov $0x21, %dx
    mov $0xef, %al                  // unmask IRQ 4 only
    out %al, (%dx)
    movl $PIC_VECTOR, expected_vector
    call trigger_and_wait
    mov $0x21, %dx
    mov $0xff, %al
    out %al, (%dx)
    call check_result
    PRINT("serial irq via pic ok\n")
    ret

// trigger_and_wait: enables THR-empty interrupts with IF set and waits for
// the handler to run (or the deadline).
trigger_and_wait:
    pusha
    movl $0, irq_count
    movl $0, last_vector
    movl $0, unexpected_count
    mov $COM1_LSR, %dx              // clear anything pending in the UART
    in (%dx), %al
    mov $COM1_IIR, %dx
    in (%dx), %al
    rdtsc
    add $(1 << (WAIT_TSC_SHIFT - 32)), %edx
    mov %eax, %esi
    mov %edx, %edi
    sti
    mov $COM1_IER, %dx
    mov $0x02, %al
    out %al, (%dx)
1:  cmpl $0, irq_count
    jne 2f
    pause
    rdtsc
    cmp %edi, %edx
    jb 1b
    ja 2f
    cmp %esi, %eax
    jb 1b
2:  cli
    mov $COM1_IER, %dx              // in case the interrupt never came
    xor %al, %al
    out %al, (%dx)
    popa
    ret

check_result:
    cmpl $0, unexpected_count
    je 1f
    PRINT("serial-irq FAIL: unexpected vector ")
    mov unexpected_vector, %eax
    call put_hex32
    call newline
    jmp triple_fault
1:  mov irq_count, %eax
    cmp $1, %eax
    je 2f
    PRINT("serial-irq FAIL: ")
    call put_dec32
    PRINT(" interrupts on vector ")
    mov expected_vector, %eax
    call put_hex32
    PRINT(", expected 1\n")
    jmp triple_fault
2:  mov uart_iir, %eax
    and $0x0f, %eax
    cmp $0x02, %eax
    je 3f
    PRINT("serial-irq FAIL: IIR ")
    mov uart_iir, %eax
    call put_hex32
    PRINT(" in the handler, expected THR empty (x2)\n")
    jmp triple_fault
3:  ret

init_pic:
    push %eax
    push %edx
    mov $0x11, %al                  // ICW1: edge, cascade, ICW4
    out %al, $0x20
    out %al, $0xa0
    mov $PIC_BASE_VECTOR, %al       // ICW2: vector bases
    out %al, $0x21
    mov $(PIC_BASE_VECTOR + 8), %al
    out %al, $0xa1
    mov $0x04, %al                  // ICW3: slave on IRQ 2
    out %al, $0x21
    mov $0x02, %al
    out %al, $0xa1
    mov $0x01, %al                  // ICW4: 8086 mode
    out %al, $0x21
    out %al, $0xa1
    mov $0xff, %al                  // mask everything
    out %al, $0x21
    out %al, $0xa1
    pop %edx
    pop %eax
    ret

// build_idt: 256 32-bit interrupt gates to the 16-byte stubs below.
build_idt:
    pusha
    mov $isr_stubs, %edx
    xor %ecx, %ecx
1:  mov %edx, %eax
    and $0xffff, %eax
    or $(SEL_CODE32 << 16), %eax
    mov %eax, idt(, %ecx, 8)
    mov %edx, %eax
    and $0xffff0000, %eax
    or $0x8e00, %eax                // present, DPL 0, 32-bit interrupt gate
    mov %eax, idt + 4(, %ecx, 8)
    add $16, %edx
    inc %ecx
    cmp $256, %ecx
    jb 1b
    popa
    ret

isr_common:
    pusha
    mov 32(%esp), %eax              // vector
    cmp $32, %eax
    jb 9f
    cmp $SPURIOUS_VECTOR, %eax
    je 8f
    cmp expected_vector, %eax
    jne 5f
    incl irq_count
    mov %eax, last_vector
    mov $COM1_IIR, %dx
    xor %eax, %eax
    in (%dx), %al
    mov %eax, uart_iir
    mov $COM1_IER, %dx
    xor %al, %al
    out %al, (%dx)
    jmp 6f
5:  incl unexpected_count
    mov %eax, unexpected_vector
6:  mov 32(%esp), %eax
    cmp $PIC_BASE_VECTOR, %eax      // EOI to the PIC for its vectors
    jb 7f
    cmp $(PIC_BASE_VECTOR + 16), %eax
    jae 7f
    mov $0x20, %al
    out %al, $0x20
    jmp 8f
7:  movl $0, LAPIC_EOI
8:  popa
    add $4, %esp
    iret
9:  PRINT("serial-irq FAIL: exception ")
    call put_dec32
    call newline
    jmp triple_fault

    .balign 16
isr_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    pushl $vector
    jmp isr_common
    .set vector, vector + 1
    .endr

    .data
    .balign 8
    .word 0
idt_desc:
    .word 256 * 8 - 1
    .long idt
expected_vector: .long 0
irq_count: .long 0
last_vector: .long 0
uart_iir: .long 0
unexpected_count: .long 0
unexpected_vector: .long 0

    .bss
    .balign 8
idt: .skip 256 * 8
