#include "devices/legacy/acpi_sleep_control.hpp"

#include <algorithm>

#include "vmm/x86/layout.hpp"

namespace devices {

namespace {
constexpr std::uint8_t kSleepEnable = 0x20;
constexpr std::uint8_t kSleepTypeShift = 2;
constexpr std::uint8_t kSleepTypeMask = 0x7;
}  // namespace

void AcpiSleepControl::read(std::uint64_t, std::span<std::uint8_t> data) {
    // Sleep status: never sleeping, no wake event pending.
    std::fill(data.begin(), data.end(), 0);
}

void AcpiSleepControl::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (offset != 0 || data.empty()) return;
    const std::uint8_t value = data[0];
    if (value == vmm::x86::kAcpiResetValue) {
        stop_(vmm::StopReason::Reboot, "the guest wrote the ACPI reset register");
        return;
    }
    const std::uint8_t sleep_type = (value >> kSleepTypeShift) & kSleepTypeMask;
    if ((value & kSleepEnable) && sleep_type == vmm::x86::kAcpiS5SleepType) {
        stop_(vmm::StopReason::PowerOff, "the guest entered ACPI S5 (power off)");
    }
    // Other sleep states (S1-S4) are not offered in the DSDT; ignore them.
}

}  // namespace devices
