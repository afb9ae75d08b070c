// cmdline: prints what the VMM handed over in struct hvm_start_info and
// checks the PVH boot ABI's register state. Proves: EBX points at a valid
// start info, the command line arrives intact, the memmap describes the RAM
// that --memory asked for, an --initrd arrives as module 0 with the right
// size and content (FNV-1a hash), and the vCPU starts in flat 32-bit
// protected mode with paging and interrupts off (CR0.PE set, CR0.PG clear,
// CR4 clear but for MCE, EFLAGS.IF/TF/VM clear, CS and DS flat with base 0
// and limit 4 GiB, CS a 32-bit code segment).
//
// Output (one item a line, hex without 0x unless shown):
//   start_info: magic ok version <dec>
//   abi ok                       (or one "abi FAIL: ..." line per problem)
//   cmdline: [<text>]
//   memmap entries: <dec>
//   memmap: <addr hex16> <size hex16> <type dec>      (one per entry)
//   ram total: <dec> bytes
//   modules: <dec>
//   module <i>: paddr <hex16> size <dec> fnv1a <hex8>
//   rsdp: <hex16>
//   cmdline guest done
#include "common.inc"

main:
    call start_info
    mov %eax, %ebx
    PRINT("start_info: magic ok version ")
    mov SI_VERSION(%ebx), %eax
    call put_dec32
    call newline

    call check_abi

    PRINT("cmdline: [")
    cmpl $0, SI_CMDLINE_PADDR+4(%ebx)
    jne 1f
    mov SI_CMDLINE_PADDR(%ebx), %esi
    test %esi, %esi
    jz 2f
    mov $65536, %ecx
    call puts_bounded
    jmp 2f
1:  PRINT("<cmdline above 4 GiB>")
2:  PRINT("]\n")

    cmpl $1, SI_VERSION(%ebx)
    jae 3f
    PRINT("memmap: none in start_info version 0\n")
    jmp 6f
3:  call print_memmap
6:  call print_modules
    PRINT("rsdp: ")
    mov SI_RSDP_PADDR(%ebx), %eax
    mov SI_RSDP_PADDR+4(%ebx), %edx
    call put_hex64
    call newline
    PRINT("cmdline guest done\n")
    ret

// print_memmap: %ebx = start info.
print_memmap:
    pusha
    PRINT("memmap entries: ")
    mov SI_MEMMAP_ENTRIES(%ebx), %eax
    call put_dec32
    call newline
    cmpl $0, SI_MEMMAP_PADDR+4(%ebx)
    jne 9f
    mov SI_MEMMAP_ENTRIES(%ebx), %ecx
    mov SI_MEMMAP_PADDR(%ebx), %esi
    xor %edi, %edi              // RAM total, low half
    xor %ebp, %ebp              // RAM total, high half
    cmp $128, %ecx              // bound the loop against garbage
    jbe 1f
    mov $128, %ecx
1:  test %ecx, %ecx
    jz 5f
    PRINT("memmap: ")
    mov 0(%esi), %eax
    mov 4(%esi), %edx
    call put_hex64
    mov $' ', %al
    call putc
    mov 8(%esi), %eax
    mov 12(%esi), %edx
    call put_hex64
    mov $' ', %al
    call putc
    mov 16(%esi), %eax
    call put_dec32
    call newline
    cmpl $MEMMAP_TYPE_RAM, 16(%esi)
    jne 2f
    add 8(%esi), %edi
    adc 12(%esi), %ebp
2:  add $MEMMAP_ENTRY_SIZE, %esi
    dec %ecx
    jmp 1b
5:  PRINT("ram total: ")
    mov %edi, %eax
    mov %ebp, %edx
    call put_dec64
    PRINT(" bytes\n")
    popa
    ret
9:  FAIL("memmap above 4 GiB\n")

// print_modules: %ebx = start info.
print_modules:
    pusha
    PRINT("modules: ")
    mov SI_NR_MODULES(%ebx), %eax
    call put_dec32
    call newline
    mov SI_NR_MODULES(%ebx), %ecx
    test %ecx, %ecx
    jz 8f
    cmpl $0, SI_MODLIST_PADDR+4(%ebx)
    jne 9f
    mov SI_MODLIST_PADDR(%ebx), %esi
    cmp $8, %ecx
    jbe 1f
    mov $8, %ecx
1:  xor %edi, %edi              // module index
2:  PRINT("module ")
    mov %edi, %eax
    call put_dec32
    PRINT(": paddr ")
    mov 0(%esi), %eax
    mov 4(%esi), %edx
    call put_hex64
    PRINT(" size ")
    mov 8(%esi), %eax
    mov 12(%esi), %edx
    call put_dec64
    PRINT(" fnv1a ")
    cmpl $0, 4(%esi)            // hash only what 32-bit code can reach
    jne 3f
    cmpl $0, 12(%esi)
    jne 3f
    mov 0(%esi), %eax
    mov 8(%esi), %edx
    add %eax, %edx
    jc 3f
    push %esi
    push %ecx
    mov 8(%esi), %ecx
    mov 0(%esi), %esi
    call fnv1a32
    pop %ecx
    pop %esi
    call put_hex32
    jmp 4f
3:  PRINT("unreachable")
4:  call newline
    add $MOD_ENTRY_SIZE, %esi
    inc %edi
    cmp %ecx, %edi
    jb 2b
8:  popa
    ret
9:  FAIL("module list above 4 GiB\n")

// fnv1a32: %esi = data, %ecx = length; returns %eax = FNV-1a 32-bit hash.
fnv1a32:
    push %ecx
    push %edx
    push %esi
    mov $0x811c9dc5, %eax
    test %ecx, %ecx
    jz 2f
1:  movzbl (%esi), %edx
    xor %edx, %eax
    imul $0x01000193, %eax, %eax
    inc %esi
    dec %ecx
    jnz 1b
2:  pop %esi
    pop %edx
    pop %ecx
    ret

// check_abi: compares the state recorded at entry with the PVH boot ABI.
check_abi:
    pusha
    xor %edi, %edi              // problems found
    mov boot_cr0, %eax
    test $1, %eax
    jnz 1f
    PRINT("abi FAIL: cr0.PE clear\n")
    inc %edi
1:  test $0x80000000, %eax
    jz 1f
    PRINT("abi FAIL: cr0.PG set\n")
    inc %edi
1:  testl $~0x40, boot_cr4        // the ABI says 0; MCE (QEMU's pvh.bin sets it) is harmless
    jz 1f
    PRINT("abi FAIL: cr4 = ")
    mov boot_cr4, %eax
    call put_hex32
    call newline
    inc %edi
1:  mov boot_eflags, %eax
    test $0x20300, %eax         // VM, IF, TF
    jz 1f
    PRINT("abi FAIL: eflags = ")
    call put_hex32
    call newline
    inc %edi
1:  cmpl $0xffffffff, boot_cs_limit
    je 1f
    PRINT("abi FAIL: cs limit = ")
    mov boot_cs_limit, %eax
    call put_hex32
    call newline
    inc %edi
1:  cmpl $0xffffffff, boot_ds_limit
    je 1f
    PRINT("abi FAIL: ds limit = ")
    mov boot_ds_limit, %eax
    call put_hex32
    call newline
    inc %edi
1:  mov boot_cs, %eax
    call descriptor_of
    jc 2f
    test $0x00400800, %edx      // D (32-bit) and code type bits
    jz 2f
    mov %edx, %ebp
    and $0x00400800, %ebp
    cmp $0x00400800, %ebp
    jne 2f
    call descriptor_base
    test %eax, %eax
    jz 1f
2:  PRINT("abi FAIL: cs is not a flat 32-bit code segment\n")
    inc %edi
1:  mov boot_ds, %eax
    call descriptor_of
    jc 2f
    call descriptor_base
    test %eax, %eax
    jz 1f
2:  PRINT("abi FAIL: ds base is not 0\n")
    inc %edi
1:  test %edi, %edi
    jnz 1f
    PRINT("abi ok\n")
1:  popa
    ret

// descriptor_of: %eax = selector; reads the descriptor from the GDT the VMM
// loaded (recorded by sgdt at entry). Returns %eax = low dword, %edx = high
// dword, CF set when the selector is null, in the LDT or past the limit.
descriptor_of:
    push %ecx
    mov %eax, %ecx
    test $4, %ecx
    jnz 9f
    and $0xfff8, %ecx
    jz 9f
    movzwl boot_gdtr, %edx      // limit
    lea 7(%ecx), %eax
    cmp %edx, %eax
    ja 9f
    add boot_gdtr+2, %ecx       // base
    mov (%ecx), %eax
    mov 4(%ecx), %edx
    pop %ecx
    clc
    ret
9:  pop %ecx
    stc
    ret

// descriptor_base: %eax:%edx = descriptor (low, high); returns %eax = base.
descriptor_base:
    push %ecx
    mov %eax, %ecx
    shr $16, %ecx               // base 15:0
    mov %edx, %eax
    and $0xff, %eax
    shl $16, %eax               // base 23:16
    or %eax, %ecx
    mov %edx, %eax
    and $0xff000000, %eax       // base 31:24
    or %ecx, %eax
    pop %ecx
    ret
