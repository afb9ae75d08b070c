// ACPI hardware-reduced sleep control and reset registers (FADT
// SLEEP_CONTROL_REG / SLEEP_STATUS_REG / RESET_REG), at ports 0x600-0x601.
// Linux powers off by writing SLP_TYP(S5)<<2 | SLP_EN and resets by writing
// the FADT reset value.
#pragma once

#include "vmm/bus.hpp"
#include "vmm/vm_stop.hpp"

namespace devices {

class AcpiSleepControl : public vmm::BusDevice {
public:
    explicit AcpiSleepControl(vmm::StopRequest stop) : stop_(std::move(stop)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    vmm::StopRequest stop_;
};

}  // namespace devices
