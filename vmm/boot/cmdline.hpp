// The kernel command line as it is placed at kCmdlineAddress.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmm::boot {

// `cmdline` plus its terminating NUL. Throws base::Error when it is longer
// than `max_length` characters (the kernel's limit, without the NUL) or than
// the area reserved for it in the address map, or when it contains a NUL.
std::vector<std::uint8_t> cmdline_bytes(const std::string& cmdline, std::uint64_t max_length);

}  // namespace vmm::boot
