// Human-readable vCPU state for crash reports (triple fault, internal error).
#pragma once

#include <linux/kvm.h>

#include <string>

namespace vmm::x86 {

std::string format_registers(const kvm_regs& regs, const kvm_sregs& sregs);

}  // namespace vmm::x86
