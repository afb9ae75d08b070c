#include "devices/legacy/i8042.hpp"

#include <algorithm>

namespace devices {

namespace {
constexpr std::uint64_t kCommandOffset = 4;  // port 0x64
constexpr std::uint8_t kPulseResetLine = 0xfe;
}  // namespace

void I8042::read(std::uint64_t, std::span<std::uint8_t> data) {
    // Status 0: output buffer empty, input buffer empty (ready for commands).
    std::fill(data.begin(), data.end(), 0);
}

void I8042::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset == kCommandOffset && !data.empty() && data[0] == kPulseResetLine) {
        stop_(vmm::StopReason::Reboot, "the guest pulsed the i8042 reset line");
    }
}

}  // namespace devices
