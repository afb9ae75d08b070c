#include "vmm/boot/cmdline.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "vmm/x86/layout.hpp"

namespace vmm::boot {

std::vector<std::uint8_t> cmdline_bytes(const std::string& cmdline, std::uint64_t max_length) {
    // The reserved area must also hold the NUL.
    const std::uint64_t limit = std::min(max_length, x86::kCmdlineMaxSize - 1);
    if (cmdline.size() > limit) {
        throw base::Error("kernel command line of {} bytes is longer than the limit of {} bytes",
                          cmdline.size(), limit);
    }
    if (cmdline.find('\0') != std::string::npos) {
        throw base::Error("kernel command line contains a NUL byte");
    }
    std::vector<std::uint8_t> bytes(cmdline.begin(), cmdline.end());
    bytes.push_back(0);
    return bytes;
}

}  // namespace vmm::boot
