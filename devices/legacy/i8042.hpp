// The part of the i8042 keyboard controller a VM needs: the CPU reset line
// (command 0xFE on port 0x64), which Linux uses for `reboot=k`. No keyboard
// is attached; the DSDT does not describe one, so Linux never probes it.
#pragma once

#include "vmm/bus.hpp"
#include "vmm/vm_stop.hpp"

namespace devices {

class I8042 : public vmm::BusDevice {
public:
    // Inserted at port 0x60 with size 5 (0x60..0x64).
    explicit I8042(vmm::StopRequest stop) : stop_(std::move(stop)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

private:
    vmm::StopRequest stop_;
};

}  // namespace devices
