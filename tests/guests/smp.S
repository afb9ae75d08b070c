// smp: brings up the application processors the way an OS does. The BSP
// reads the expected CPU count from the command line (`cpus=N`), enables its
// LAPIC, copies a real-mode trampoline to 0x10000 and sends INIT, SIPI, SIPI
// to all other CPUs through the LAPIC ICR (0xfee00300/310). Each CPU (BSP
// included) reads its APIC ID (0xfee00020 >> 24), prints `cpu <id> up` under
// a spinlock and checks in. The BSP waits, bounded by the TSC (~2^35 cycles),
// until N CPUs checked in with distinct IDs below 64 and prints
// `all <n> cpus up`; on timeout it prints `smp timeout: ...` and triple
// faults. Proves: one vCPU per --cpus, APIC ID = vCPU index, APs wait for
// INIT/SIPI in the in-kernel LAPIC and start in real mode at the SIPI page.
#include "common.inc"

#define TRAMPOLINE_ADDR 0x10000
#define MAX_CPUS 64
#define ICR_INIT_ALL_BUT_SELF 0x000c4500
#define ICR_SIPI_ALL_BUT_SELF 0x000c4600
#define WAIT_TSC_SHIFT 35

main:
    mov $key_cpus, %esi
    call cmdline_find_uint
    jnc 1f
    FAIL("smp: no cpus=N on the command line\n")
1:  test %eax, %eax
    jz 2f
    cmp $MAX_CPUS, %eax
    jbe 3f
2:  FAIL("smp: cpus=N out of range\n")
3:  mov %eax, expected_cpus
    PRINT("smp: expecting ")
    call put_dec32
    PRINT(" cpus\n")

    movl $0x1ff, LAPIC_SVR      // software-enable the LAPIC, spurious vector 0xff
    call check_in               // the BSP itself

    cmpl $1, expected_cpus
    je 5f
    mov $ap_trampoline, %esi
    mov $TRAMPOLINE_ADDR, %edi
    mov $(ap_trampoline_end - ap_trampoline), %ecx
    rep movsb

    call icr_wait
    movl $0, LAPIC_ICR_HIGH
    movl $ICR_INIT_ALL_BUT_SELF, LAPIC_ICR_LOW
    call icr_wait
    call short_delay
    movl $(ICR_SIPI_ALL_BUT_SELF | (TRAMPOLINE_ADDR >> 12)), LAPIC_ICR_LOW
    call icr_wait
    call short_delay
    movl $(ICR_SIPI_ALL_BUT_SELF | (TRAMPOLINE_ADDR >> 12)), LAPIC_ICR_LOW
    call icr_wait

5:  // Wait until every CPU checked in, bounded by the TSC.
    rdtsc
    add $(1 << (WAIT_TSC_SHIFT - 32)), %edx
    mov %eax, %esi              // deadline, low
    mov %edx, %edi              // deadline, high
6:  mov checked_in, %eax
    cmp expected_cpus, %eax
    jae 7f
    pause
    rdtsc
    cmp %edi, %edx
    jb 6b
    ja 8f
    cmp %esi, %eax
    jb 6b
8:  call spin_lock
    PRINT("smp timeout: ")
    mov checked_in, %eax
    call put_dec32
    PRINT(" of ")
    mov expected_cpus, %eax
    call put_dec32
    PRINT(" cpus checked in\n")
    jmp triple_fault

7:  call spin_lock
    mov checked_in, %eax
    cmp expected_cpus, %eax
    ja 9f                       // more CPUs than expected
    cmpl $0, bad_id_seen
    jne 10f
    // Bits 0..N-1 of the bitmap set and no others: IDs are exactly 0..N-1.
    mov expected_cpus, %ecx
    xor %eax, %eax
    xor %edx, %edx
    cmp $32, %ecx
    jb 11f
    dec %eax                    // low word all ones
    sub $32, %ecx
    mov $1, %edx
    shl %cl, %edx
    dec %edx
    cmp $32, %ecx
    jne 12f
    mov $0xffffffff, %edx
    jmp 12f
11: mov $1, %eax
    shl %cl, %eax
    dec %eax
12: cmp cpu_bitmap, %eax
    jne 13f
    cmp cpu_bitmap+4, %edx
    jne 13f
    PRINT("all ")
    mov expected_cpus, %eax
    call put_dec32
    PRINT(" cpus up\n")
    call spin_unlock
    ret
9:  FAIL("smp FAIL: more cpus checked in than expected\n")
10: FAIL("smp FAIL: duplicate or out-of-range APIC ID\n")
13: FAIL("smp FAIL: APIC IDs are not 0..N-1\n")

// check_in: records and prints this CPU's APIC ID; needs a stack.
check_in:
    pusha
    mov LAPIC_ID, %eax
    shr $24, %eax
    cmp $MAX_CPUS, %eax
    jae 1f
    lock bts %eax, cpu_bitmap
    jnc 2f
1:  movl $1, bad_id_seen
2:  call spin_lock
    PRINT("cpu ")
    call put_dec32
    PRINT(" up\n")
    call spin_unlock
    lock incl checked_in
    popa
    ret

spin_lock:
    push %eax
1:  mov $1, %eax
    xchg %eax, print_lock
    test %eax, %eax
    jz 3f
2:  pause
    cmpl $0, print_lock
    jne 2b
    jmp 1b
3:  pop %eax
    ret

spin_unlock:
    movl $0, print_lock
    ret

// icr_wait: waits (bounded) until the ICR's delivery status is idle.
icr_wait:
    push %ecx
    mov $1000000, %ecx
1:  testl $0x1000, LAPIC_ICR_LOW
    jz 2f
    pause
    dec %ecx
    jnz 1b
2:  pop %ecx
    ret

short_delay:
    push %ecx
    mov $200000, %ecx
1:  pause
    dec %ecx
    jnz 1b
    pop %ecx
    ret

// Protected-mode entry of each AP, reached from the trampoline.
ap_entry32:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov $1, %eax
    lock xadd %eax, ap_stack_next
    cmp $MAX_CPUS, %eax
    jae 1f
    inc %eax
    shl $12, %eax
    add $ap_stacks, %eax
    mov %eax, %esp
    call check_in
1:  cli
    hlt
    jmp 1b

// The AP trampoline, copied to TRAMPOLINE_ADDR: real mode at CS = 0x1000.
    .code16
    .balign 16
ap_trampoline:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl ap_gdt_desc - ap_trampoline
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $ap_entry32
    .balign 8
ap_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:
    .code32

    .section .rodata
key_cpus: .asciz "cpus="

    .data
    .balign 8
cpu_bitmap: .quad 0
expected_cpus: .long 0
checked_in: .long 0
bad_id_seen: .long 0
print_lock: .long 0
ap_stack_next: .long 0

    .bss
    .balign 4096
ap_stacks: .skip 4096 * (MAX_CPUS + 1)
