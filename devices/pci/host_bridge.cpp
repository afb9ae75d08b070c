#include "devices/pci/host_bridge.hpp"

#include <algorithm>

namespace devices::pci {

HostBridge::HostBridge()
    : config_(PciIdentity{.vendor_id = kVendorId,
                          .device_id = kDeviceId,
                          .class_code = 0x060000,  // bridge, host bridge
                          .revision = 0,
                          .subsystem_vendor_id = kVendorId,
                          .subsystem_id = 0x1100,
                          .interrupt_pin = 0}) {}

void HostBridge::config_read(std::uint16_t offset, std::span<std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    config_.read(offset, data);
}

void HostBridge::config_write(std::uint16_t offset, std::span<const std::uint8_t> data) {
    std::lock_guard lock(mutex_);
    config_.write(offset, data);
}

void HostBridge::bar_read(std::uint8_t, std::uint64_t, std::span<std::uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xff);
}

}  // namespace devices::pci
