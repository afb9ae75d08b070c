// io: accesses I/O ports and MMIO addresses that no device claims and
// checks that writes are dropped and reads return all ones, for 1, 2, 4 and
// 8-byte accesses, unaligned ones and string instructions (rep ins/outs,
// rep movs from MMIO). MMIO is probed in the 32-bit hole (0xd0000000) and
// just above the end of RAM (from the memmap, when that is below the hole).
// Proves: unclaimed accesses never crash the VMM and the guest continues.
//
// Output: `io: ports ...`, `io: mmio <addr> ...` progress lines, one
// `io FAIL: <what> read <hex>` line per wrong value, then `io ok` or
// `io failed: <n> checks`.
#include "common.inc"

#define PORT_A 0x3100
#define PORT_B 0x7776
#define HOLE_MMIO 0xd0000000
#define MMIO_HOLE_START 0xc0000000

// EXPECT(value, "what"): compares %eax with value; prints and counts a miss.
#define EXPECT(value, what)      \
    .pushsection .rodata;        \
    8887: .asciz what;           \
    .popsection;                 \
    push %ebx;                   \
    push %esi;                   \
    mov $(value), %ebx;          \
    mov $8887b, %esi;            \
    call expect_eax;             \
    pop %esi;                    \
    pop %ebx

main:
    mov %cr0, %eax              // MMX for 8-byte accesses: EM and TS clear
    and $~0xc, %eax
    mov %eax, %cr0

    PRINT("io: ports 3100 7776\n")
    mov $PORT_A, %dx
    call probe_port
    mov $PORT_B, %dx
    call probe_port
    mov $0x80, %dx              // the POST port Linux writes for I/O delays
    mov $0x00, %al
    out %al, (%dx)

    PRINT("io: mmio d0000000\n")
    mov $HOLE_MMIO, %edx
    call probe_mmio

    call ram_end_below_4g
    add $0x3fffff, %eax         // 2 MiB past the end of RAM, rounded up
    jc 1f
    and $~0x1fffff, %eax
    cmp $MMIO_HOLE_START, %eax
    jae 1f
    mov %eax, %edx
    PRINT("io: mmio ")
    call put_hex32
    PRINT(" (above RAM)\n")
    call probe_mmio
    jmp 2f
1:  PRINT("io: no gap between RAM and the MMIO hole\n")

2:  mov io_failures, %eax
    test %eax, %eax
    jnz 3f
    PRINT("io ok\n")
    ret
3:  PRINT("io failed: ")
    call put_dec32
    PRINT(" checks\n")
    ret

// probe_port: %dx = port.
probe_port:
    pusha
    mov $0x5a, %al
    out %al, (%dx)
    mov $0x1234, %ax
    out %ax, (%dx)
    mov $0x89abcdef, %eax
    out %eax, (%dx)
    xor %eax, %eax
    in (%dx), %al
    EXPECT(0xff, "port inb")
    xor %eax, %eax
    in (%dx), %ax
    EXPECT(0xffff, "port inw")
    in (%dx), %eax
    EXPECT(0xffffffff, "port inl")

    mov $scratch, %edi          // rep insb/insw/insl into zeroed memory
    xor %eax, %eax
    mov $16, %ecx
    rep stosl
    mov $scratch, %edi
    mov $16, %ecx
    rep insb
    mov $scratch, %edi
    mov $8, %ecx
    rep insw
    mov $scratch + 16, %edi
    mov $8, %ecx
    rep insl
    mov scratch, %eax
    EXPECT(0xffffffff, "rep insb/insw first dword")
    mov scratch + 12, %eax
    EXPECT(0xffffffff, "rep insb last dword")
    mov scratch + 44, %eax
    EXPECT(0xffffffff, "rep insl last dword")
    mov scratch + 48, %eax
    EXPECT(0, "rep insl wrote past its count, dword")
    mov $scratch, %esi
    mov $4, %ecx
    rep outsb
    popa
    ret

// probe_mmio: %edx = address.
probe_mmio:
    pusha
    movb $0x12, (%edx)
    movw $0x3456, (%edx)
    movl $0x789abcde, (%edx)
    movl $0x789abcde, 5(%edx)
    movzbl (%edx), %eax
    EXPECT(0xff, "mmio byte read")
    movzbl 3(%edx), %eax
    EXPECT(0xff, "mmio byte read at +3")
    movzwl (%edx), %eax
    EXPECT(0xffff, "mmio word read")
    mov (%edx), %eax
    EXPECT(0xffffffff, "mmio dword read")
    mov 6(%edx), %eax
    EXPECT(0xffffffff, "mmio unaligned dword read at +6")
    movl $0, scratch
    movl $0, scratch + 4
    movq (%edx), %mm0
    movq %mm0, scratch
    emms
    mov scratch, %eax
    EXPECT(0xffffffff, "mmio qword read, low half")
    mov scratch + 4, %eax
    EXPECT(0xffffffff, "mmio qword read, high half")

    mov $scratch, %edi
    xor %eax, %eax
    mov $16, %ecx
    rep stosl
    mov %edx, %esi
    mov $scratch, %edi
    mov $4, %ecx
    rep movsl
    mov scratch, %eax
    EXPECT(0xffffffff, "rep movsl from mmio, first dword")
    mov scratch + 12, %eax
    EXPECT(0xffffffff, "rep movsl from mmio, last dword")
    mov scratch + 16, %eax
    EXPECT(0, "rep movsl from mmio wrote past its count, dword")
    popa
    ret

// expect_eax: %eax = value read, %ebx = expected, %esi = what.
expect_eax:
    cmp %ebx, %eax
    je 1f
    PRINT("io FAIL: ")
    call puts
    PRINT(" read ")
    call put_hex32
    call newline
    incl io_failures
1:  ret

    .data
io_failures: .long 0

    .bss
    .balign 16
scratch: .skip 64
