// acpi: finds the RSDP the way a legacy OS does (scan of 0xe0000-0xfffff on
// 16-byte boundaries) and compares it with hvm_start_info.rsdp_paddr, then
// walks the XSDT (or RSDT), checks every table's checksum and prints the
// MADT's entries and the FADT's power registers. Proves: the ACPI tables are
// well formed, the MADT lists exactly the CPUs and the IOAPIC, and the FADT
// points an OS at the VMM's reset and sleep registers.
//
// Output (hex without 0x):
//   acpi: rsdp scan <hex8> start_info <hex8>
//   acpi: rsdp revision <dec> checksum ok
//   acpi: xsdt <hex8> | acpi: rsdt <hex8>
//   acpi: table <SIG> at <hex8> len <dec> checksum ok   (one per table)
//   madt: lapic base <hex8>
//   madt: lapic uid <dec> id <dec> flags <hex8>
//   madt: ioapic id <dec> addr <hex8> gsi <dec>
//   madt: override irq <dec> gsi <dec> flags <hex8>
//   madt: entry type <dec> len <dec>                    (other types)
//   madt: enabled lapics <dec>
//   fadt: flags <hex8> hw-reduced <0|1>
//   fadt: dsdt <hex8> checksum ok
//   fadt: reset reg space <dec> addr <hex16> value <hex2>
//   fadt: sleep control space <dec> addr <hex16>
//   fadt: sleep status space <dec> addr <hex16>
//   acpi ok | acpi failed: <n> checks       (and `acpi FAIL: ...` lines)
#include "common.inc"

#define SIG_RSD_ 0x20445352      // "RSD "
#define SIG_PTR_ 0x20525450      // "PTR "
#define SIG_APIC 0x43495041
#define SIG_FACP 0x50434146
#define SIG_DSDT 0x54445344
#define SIG_XSDT 0x54445358
#define SIG_RSDT 0x54445352

#define ACPI_FAIL(s)       \
    PRINT("acpi FAIL: ");  \
    PRINT(s);              \
    incl acpi_failures

main:
    // Scan the BIOS area for a valid RSDP.
    mov $0xe0000, %esi
1:  cmpl $SIG_RSD_, (%esi)
    jne 2f
    cmpl $SIG_PTR_, 4(%esi)
    jne 2f
    mov $20, %ecx
    call checksum
    test %al, %al
    jz 3f
2:  add $16, %esi
    cmp $0x100000, %esi
    jb 1b
    xor %esi, %esi
3:  mov %esi, rsdp
    PRINT("acpi: rsdp scan ")
    mov %esi, %eax
    call put_hex32
    PRINT(" start_info ")
    call start_info
    mov %eax, %ebx
    mov SI_RSDP_PADDR(%ebx), %eax
    call put_hex32
    call newline
    cmpl $0, SI_RSDP_PADDR+4(%ebx)
    je 1f
    ACPI_FAIL("start_info rsdp above 4 GiB\n")
1:  test %esi, %esi
    jnz 1f
    ACPI_FAIL("no RSDP in e0000-fffff\n")
    mov SI_RSDP_PADDR(%ebx), %esi
    mov %esi, rsdp
    test %esi, %esi
    jnz 2f
    FAIL("acpi: no RSDP at all\n")
1:  cmp SI_RSDP_PADDR(%ebx), %esi
    je 2f
    ACPI_FAIL("start_info rsdp differs from the RSDP found by the scan\n")

2:  mov rsdp, %esi
    PRINT("acpi: rsdp revision ")
    movzbl 15(%esi), %eax
    call put_dec32
    cmpb $2, 15(%esi)
    jb 3f
    mov 20(%esi), %ecx          // revision 2: the extended checksum
    cmp $36, %ecx
    jb 4f
    call checksum
    test %al, %al
    jnz 4f
3:  PRINT(" checksum ok\n")
    jmp 5f
4:  call newline
    ACPI_FAIL("rsdp extended checksum or length\n")

5:  cmpb $2, 15(%esi)
    jb 6f
    cmpl $0, 24(%esi)
    je 6f
    cmpl $0, 28(%esi)
    je 7f
    FAIL("acpi: xsdt above 4 GiB\n")
7:  mov 24(%esi), %edi
    PRINT("acpi: xsdt ")
    mov %edi, %eax
    call put_hex32
    call newline
    mov $8, %ebp                // entry size
    mov $SIG_XSDT, %edx
    jmp 8f
6:  mov 16(%esi), %edi
    PRINT("acpi: rsdt ")
    mov %edi, %eax
    call put_hex32
    call newline
    mov $4, %ebp
    mov $SIG_RSDT, %edx
8:  cmp (%edi), %edx
    je 9f
    FAIL("acpi: root table has the wrong signature\n")
9:  mov %edi, %esi
    call check_table
    mov 4(%edi), %ecx           // entries
    sub $36, %ecx
    lea 36(%edi), %esi
10: cmp %ebp, %ecx
    jb 12f
    cmp $8, %ebp
    jne 11f
    cmpl $0, 4(%esi)
    je 11f
    ACPI_FAIL("table above 4 GiB\n")
    jmp 13f
11: push %esi
    mov (%esi), %esi
    call check_table
    cmpl $SIG_APIC, (%esi)
    jne 14f
    call parse_madt
14: cmpl $SIG_FACP, (%esi)
    jne 15f
    call parse_fadt
15: pop %esi
13: add %ebp, %esi
    sub %ebp, %ecx
    jmp 10b

12: cmpl $0, madt_seen
    jne 16f
    ACPI_FAIL("no MADT\n")
16: cmpl $0, fadt_seen
    jne 17f
    ACPI_FAIL("no FADT\n")
17: mov acpi_failures, %eax
    test %eax, %eax
    jnz 18f
    PRINT("acpi ok\n")
    ret
18: PRINT("acpi failed: ")
    call put_dec32
    PRINT(" checks\n")
    ret

// checksum: %esi = data, %ecx = length; returns %al = byte sum.
checksum:
    push %ecx
    push %esi
    push %edx
    xor %edx, %edx
    test %ecx, %ecx
    jz 2f
1:  add (%esi), %dl
    inc %esi
    dec %ecx
    jnz 1b
2:  mov %dl, %al
    pop %edx
    pop %esi
    pop %ecx
    ret

// check_table: %esi = table; prints its signature, length and checksum.
check_table:
    pusha
    mov 4(%esi), %ecx
    cmp $36, %ecx
    jb 9f
    cmp $0x100000, %ecx
    ja 9f
    PRINT("acpi: table ")
    mov $4, %ecx
    call puts_bounded
    PRINT(" at ")
    mov %esi, %eax
    call put_hex32
    PRINT(" len ")
    mov 4(%esi), %eax
    call put_dec32
    mov 4(%esi), %ecx
    call checksum
    test %al, %al
    jnz 8f
    PRINT(" checksum ok\n")
    popa
    ret
8:  PRINT(" checksum BAD\n")
    ACPI_FAIL("table checksum\n")
    popa
    ret
9:  FAIL("acpi: table with an impossible length\n")

// parse_madt: %esi = MADT.
parse_madt:
    pusha
    movl $1, madt_seen
    PRINT("madt: lapic base ")
    mov 36(%esi), %eax
    call put_hex32
    call newline
    mov %esi, %ebx
    add 4(%esi), %ebx           // end
    lea 44(%esi), %edi          // first entry
    xor %ebp, %ebp              // enabled LAPICs
1:  lea 2(%edi), %eax
    cmp %ebx, %eax
    ja 7f
    movzbl 1(%edi), %ecx        // entry length
    cmp $2, %ecx
    jb 8f
    lea (%edi, %ecx), %eax
    cmp %ebx, %eax
    ja 8f
    movzbl (%edi), %eax         // entry type
    cmp $0, %eax
    jne 2f
    PRINT("madt: lapic uid ")
    movzbl 2(%edi), %eax
    call put_dec32
    PRINT(" id ")
    movzbl 3(%edi), %eax
    call put_dec32
    PRINT(" flags ")
    mov 4(%edi), %eax
    call put_hex32
    call newline
    test $1, %eax
    jz 6f
    inc %ebp
    jmp 6f
2:  cmp $1, %eax
    jne 3f
    PRINT("madt: ioapic id ")
    movzbl 2(%edi), %eax
    call put_dec32
    PRINT(" addr ")
    mov 4(%edi), %eax
    call put_hex32
    PRINT(" gsi ")
    mov 8(%edi), %eax
    call put_dec32
    call newline
    jmp 6f
3:  cmp $2, %eax
    jne 4f
    PRINT("madt: override irq ")
    movzbl 3(%edi), %eax
    call put_dec32
    PRINT(" gsi ")
    mov 4(%edi), %eax
    call put_dec32
    PRINT(" flags ")
    movzwl 8(%edi), %eax
    call put_hex32
    call newline
    jmp 6f
4:  PRINT("madt: entry type ")
    call put_dec32
    PRINT(" len ")
    mov %ecx, %eax
    call put_dec32
    call newline
6:  add %ecx, %edi
    jmp 1b
8:  ACPI_FAIL("malformed MADT entry\n")
7:  PRINT("madt: enabled lapics ")
    mov %ebp, %eax
    call put_dec32
    call newline
    popa
    ret

// parse_fadt: %esi = FADT.
parse_fadt:
    pusha
    movl $1, fadt_seen
    mov 4(%esi), %ebx           // length
    cmp $116, %ebx
    jb 9f
    PRINT("fadt: flags ")
    mov 112(%esi), %eax
    call put_hex32
    PRINT(" hw-reduced ")
    shr $20, %eax
    and $1, %eax
    call put_dec32
    call newline

    mov 40(%esi), %edi          // DSDT, or X_DSDT when present
    cmp $148, %ebx
    jb 1f
    cmpl $0, 144(%esi)
    jne 2f
    cmpl $0, 140(%esi)
    je 1f
    mov 140(%esi), %edi
1:  test %edi, %edi
    jz 2f
    cmpl $SIG_DSDT, (%edi)
    jne 2f
    push %esi
    mov %edi, %esi
    mov 4(%esi), %ecx
    cmp $36, %ecx
    jb 3f
    call checksum
    test %al, %al
    jnz 3f
    PRINT("fadt: dsdt ")
    mov %edi, %eax
    call put_hex32
    PRINT(" checksum ok\n")
    pop %esi
    jmp 4f
3:  pop %esi
2:  ACPI_FAIL("FADT has no valid DSDT\n")

4:  cmp $129, %ebx
    jb 5f
    PRINT("fadt: reset reg space ")
    movzbl 116(%esi), %eax
    call put_dec32
    PRINT(" addr ")
    mov 120(%esi), %eax
    mov 124(%esi), %edx
    call put_hex64
    PRINT(" value ")
    mov 128(%esi), %al
    call put_hex8
    call newline
5:  cmp $256, %ebx
    jb 6f
    PRINT("fadt: sleep control space ")
    movzbl 244(%esi), %eax
    call put_dec32
    PRINT(" addr ")
    mov 248(%esi), %eax
    mov 252(%esi), %edx
    call put_hex64
    call newline
6:  cmp $268, %ebx
    jb 7f
    PRINT("fadt: sleep status space ")
    movzbl 256(%esi), %eax
    call put_dec32
    PRINT(" addr ")
    mov 260(%esi), %eax
    mov 264(%esi), %edx
    call put_hex64
    call newline
7:  popa
    ret
9:  ACPI_FAIL("FADT too short\n")
    popa
    ret

    .data
rsdp: .long 0
acpi_failures: .long 0
madt_seen: .long 0
fadt_seen: .long 0
