// longmode: switches to 64-bit long mode with its own page tables (PAE,
// 2 MiB pages: an identity map of the first 16 GiB plus the -2 GiB kernel
// alias of the first 1 GiB), jumps to code linked at 0xffffffff80000000+
// and prints from there. When the memmap has RAM above 4 GiB it writes and
// reads back patterns there (start, middle, last qword, up to 16 GiB) and
// checks that 4 GiB does not alias address 0. Proves: the loader places
// segments by physical address, CPUID/EFER allow long mode, guest RAM above
// the 32-bit MMIO hole exists and is distinct memory.
//
// Output:
//   longmode: ram top <hex16>
//   long mode: rip <hex16>
//   long mode: efer.lma 1
//   high memory: none                     (no RAM above 4 GiB)
//   high memory ok: <n> addresses up to <hex16>
//   long mode guest done
#include "common.inc"

#define KERNEL_VMA 0xffffffff80000000
#define IDENTITY_GIB 16
#define PT_PAGES (4 + IDENTITY_GIB)  // PML4, 2 PDPTs, kernel PD, identity PDs
#define PTE_PRESENT_RW 0x3
#define PDE_2M 0x83
#define MSR_EFER 0xc0000080

#define PRINT64(s)                \
    .pushsection .high.rodata, "a"; \
    8888: .asciz s;               \
    .popsection;                  \
    push %rsi;                    \
    lea 8888b(%rip), %rsi;        \
    call puts64;                  \
    pop %rsi

#define FAIL64(s) \
    PRINT64(s);   \
    jmp triple_fault64

main:
    call find_ram_top
    PRINT("longmode: ram top ")
    mov ram_top, %eax
    mov ram_top+4, %edx
    call put_hex64
    call newline

    mov $page_tables, %edi
    mov $(PT_PAGES * 1024), %ecx
    xor %eax, %eax
    rep stosl

    // PML4[0] -> identity PDPT, PML4[511] -> kernel PDPT.
    movl $(pdpt_low + PTE_PRESENT_RW), pml4
    movl $(pdpt_high + PTE_PRESENT_RW), pml4 + 511 * 8
    // Identity PDPT: one PD per GiB, 2 MiB pages.
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $(pd_low + PTE_PRESENT_RW), %eax
    mov %eax, pdpt_low(, %ecx, 8)
    inc %ecx
    cmp $IDENTITY_GIB, %ecx
    jb 1b
    xor %ecx, %ecx              // PDE index over all identity PDs
2:  mov %ecx, %eax
    shl $21, %eax
    or $PDE_2M, %eax
    mov %ecx, %edx
    shr $11, %edx               // bits 32+ of (index << 21)
    mov %eax, pd_low(, %ecx, 8)
    mov %edx, pd_low + 4(, %ecx, 8)
    inc %ecx
    cmp $(IDENTITY_GIB * 512), %ecx
    jb 2b
    // Kernel alias: PDPT[510] (0xffffffff80000000) -> PD of the first GiB.
    movl $(pd_high + PTE_PRESENT_RW), pdpt_high + 510 * 8
    xor %ecx, %ecx
3:  mov %ecx, %eax
    shl $21, %eax
    or $PDE_2M, %eax
    mov %eax, pd_high(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jb 3b

    mov %cr4, %eax
    or $0x20, %eax              // PAE
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $0x100, %eax             // LME
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        // PG | PE
    mov %eax, %cr0
    ljmp $SEL_CODE64, $entry64

// find_ram_top: ram_top = the highest end of any RAM entry of the memmap.
find_ram_top:
    pusha
    call start_info
    mov SI_MEMMAP_ENTRIES(%eax), %ecx
    mov SI_MEMMAP_PADDR(%eax), %esi
    test %ecx, %ecx
    jz 9f
1:  cmpl $MEMMAP_TYPE_RAM, 16(%esi)
    jne 2f
    mov 0(%esi), %eax
    mov 4(%esi), %edx
    add 8(%esi), %eax
    adc 12(%esi), %edx
    cmp ram_top+4, %edx
    jb 2f
    ja 3f
    cmp ram_top, %eax
    jbe 2f
3:  mov %eax, ram_top
    mov %edx, ram_top+4
2:  add $MEMMAP_ENTRY_SIZE, %esi
    dec %ecx
    jnz 1b
    popa
    ret
9:  FAIL("longmode: empty memmap\n")

    .code64
entry64:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    movabs $high_main, %rax
    jmp *%rax

    .section .high.text, "ax"
high_main:
    movabs $(boot_stack_top + KERNEL_VMA), %rsp
    PRINT64("long mode: rip ")
    lea 0(%rip), %rax
    call put_hex64_64
    call newline64
    movabs $KERNEL_VMA, %rdx
    cmp %rdx, %rax
    jae 1f
    FAIL64("long mode: not running at the kernel alias\n")
1:  mov $MSR_EFER, %ecx
    rdmsr
    test $0x400, %eax
    jnz 1f
    FAIL64("long mode: EFER.LMA clear\n")
1:  PRINT64("long mode: efer.lma 1\n")

    call test_high_memory
    PRINT64("long mode guest done\n")

    mov $SLEEP_CONTROL_PORT, %dx
    mov $SLEEP_S5_VALUE, %al
    out %al, (%dx)
    mov $STOP_GRACE_LOOPS, %ecx
1:  dec %ecx
    jnz 1b
    FAIL64("power-off request ignored\n")

// test_high_memory: pattern test of RAM above 4 GiB through the identity map.
test_high_memory:
    movabs $ram_top, %rax       // low symbol, identity-mapped
    mov (%rax), %rbx            // RAM top
    mov $1, %rax
    shl $32, %rax
    cmp %rax, %rbx
    ja 1f
    PRINT64("high memory: none\n")
    ret
1:  mov $IDENTITY_GIB, %rcx
    shl $30, %rcx
    cmp %rcx, %rbx              // test only what the identity map covers
    jbe 2f
    mov %rcx, %rbx
2:  // Address 0 and 4 GiB must be distinct memory.
    movabs $0x1111111111111111, %rdx
    movq %rdx, 0
    movabs $0x2222222222222222, %rdx
    mov %rdx, (%rax)
    movabs $0x1111111111111111, %rdx
    cmp %rdx, 0
    je 3f
    FAIL64("high memory FAIL: 4 GiB aliases address 0\n")
3:  lea test_addresses(%rip), %rdi
    mov %rax, 0(%rdi)           // 4 GiB
    mov %rbx, %rdx
    add %rax, %rdx
    shr $1, %rdx
    and $~7, %rdx
    mov %rdx, 8(%rdi)           // middle
    lea -8(%rbx), %rdx
    mov %rdx, 16(%rdi)          // last qword
    xor %rcx, %rcx
4:  mov (%rdi, %rcx, 8), %rsi
    movabs $0x5a5aa5a5c3c33c3c, %rdx
    xor %rsi, %rdx
    mov %rdx, (%rsi)
    inc %rcx
    cmp $3, %rcx
    jb 4b
    xor %rcx, %rcx
5:  mov (%rdi, %rcx, 8), %rsi
    movabs $0x5a5aa5a5c3c33c3c, %rdx
    xor %rsi, %rdx
    cmp %rdx, (%rsi)
    jne 6f
    inc %rcx
    cmp $3, %rcx
    jb 5b
    PRINT64("high memory ok: 3 addresses up to ")
    mov 16(%rdi), %rax
    call put_hex64_64
    call newline64
    ret
6:  PRINT64("high memory FAIL at ")
    mov %rsi, %rax
    call put_hex64_64
    call newline64
    jmp triple_fault64

// 64-bit COM1 output; all preserve every register.
putc64:
    push %rcx
    push %rdx
    push %rax
    mov $1000000, %ecx
    mov $COM1_LSR, %dx
1:  in (%dx), %al
    test $0x20, %al
    jnz 2f
    pause
    dec %ecx
    jnz 1b
2:  pop %rax
    mov $COM1_THR, %dx
    out %al, (%dx)
    pop %rdx
    pop %rcx
    ret

puts64:
    push %rsi
    push %rax
1:  lodsb
    test %al, %al
    jz 2f
    call putc64
    jmp 1b
2:  pop %rax
    pop %rsi
    ret

newline64:
    push %rax
    mov $'\n', %al
    call putc64
    pop %rax
    ret

// put_hex64_64: %rax as 16 hex digits.
put_hex64_64:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    mov %rax, %rdx
    mov $16, %ecx
    lea hex_digits64(%rip), %rbx
1:  rol $4, %rdx
    mov %edx, %eax
    and $0xf, %eax
    mov (%rbx, %rax), %al
    call putc64
    dec %ecx
    jnz 1b
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    ret

triple_fault64:
    cli
    lidt null_idt_desc64(%rip)
    ud2
    jmp triple_fault64

    .section .high.rodata, "a"
hex_digits64:
    .ascii "0123456789abcdef"
    .balign 8
    .word 0, 0, 0
null_idt_desc64:
    .word 0
    .quad 0

    .section .high.data, "aw"
    .balign 8
test_addresses:
    .quad 0, 0, 0

    .data
    .balign 8
ram_top:
    .quad 0

    .bss
    .balign 4096
page_tables:
pml4: .skip 4096
pdpt_low: .skip 4096
pdpt_high: .skip 4096
pd_high: .skip 4096
pd_low: .skip 4096 * IDENTITY_GIB
