#include "vmm/x86/register_dump.hpp"

#include <fmt/format.h>

namespace vmm::x86 {

namespace {
std::string format_segment(const char* name, const kvm_segment& s) {
    return fmt::format("{}={:04x} base={:016x} limit={:08x} type={:x} l={} db={}", name,
                       s.selector, s.base, s.limit, s.type, s.l, s.db);
}
}  // namespace

std::string format_registers(const kvm_regs& r, const kvm_sregs& s) {
    return fmt::format(
        "RIP={:016x} RSP={:016x} RFLAGS={:08x}\n"
        "RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n"
        "RSI={:016x} RDI={:016x} RBP={:016x}\n"
        "R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}\n"
        "R12={:016x} R13={:016x} R14={:016x} R15={:016x}\n"
        "CR0={:016x} CR2={:016x} CR3={:016x} CR4={:016x} EFER={:x}\n"
        "{}\n{}\n"
        "GDT base={:016x} limit={:04x}  IDT base={:016x} limit={:04x}",
        r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9,
        r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
        format_segment("CS", s.cs), format_segment("SS", s.ss), s.gdt.base, s.gdt.limit,
        s.idt.base, s.idt.limit);
}

}  // namespace vmm::x86
