// The BootRequest the bzImage and ELF/PVH loader tests start from: a kernel,
// a command line, and ACPI tables at their usual place.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vmm/boot/boot_request.hpp"
#include "vmm/guest_memory.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::test {

inline constexpr GuestAddress kRsdp = x86::kAcpiTablesStart;

inline boot::BootRequest request_for(std::vector<std::uint8_t> kernel,
                                     std::string cmdline = "console=ttyS0") {
    boot::BootRequest request;
    request.kernel = std::move(kernel);
    request.cmdline = std::move(cmdline);
    request.rsdp_address = kRsdp;
    return request;
}

}  // namespace vmm::test
