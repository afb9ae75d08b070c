// The host bridge at 00:00.0. Linux's conf1 probe (pci_sanity_check) looks
// for a host-bridge class device on bus 0 before it trusts 0xCF8/0xCFC, and
// lspci shows it as the root of the hierarchy. It has no BARs.
#pragma once

#include <mutex>

#include "devices/pci/pci_config_space.hpp"
#include "devices/pci/pci_device.hpp"

namespace devices::pci {

class HostBridge : public PciDevice {
  public:
    // Red Hat's "QEMU PCIe Host bridge" IDs: Linux and lspci know them and
    // attach no chipset quirks to them.
    static constexpr std::uint16_t kVendorId = 0x1b36;
    static constexpr std::uint16_t kDeviceId = 0x0008;

    HostBridge();

    std::string name() const override { return "host bridge"; }
    void config_read(std::uint16_t offset, std::span<std::uint8_t> data) override;
    void config_write(std::uint16_t offset, std::span<const std::uint8_t> data) override;
    std::vector<BarInfo> bars() const override { return {}; }
    void bar_read(std::uint8_t, std::uint64_t, std::span<std::uint8_t> data) override;
    void bar_write(std::uint8_t, std::uint64_t, std::span<const std::uint8_t>) override {}

  private:
    std::mutex mutex_;
    PciConfigSpace config_;
};

}  // namespace devices::pci
