// virtio-rng (virtio 1.2, 5.4): one request queue; every device-writable
// buffer the driver posts is filled from the host's getrandom(2). Feeds the
// guest's /dev/hwrng (and its entropy pool through hw_random's kthread).
#pragma once

#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

class VirtioRng : public VirtioDevice {
  public:
    // Bytes served per request at most: bounds the time one guest request
    // can keep the worker busy.
    static constexpr std::uint64_t kMaxRequestBytes = 64 * 1024;

    std::string name() const override { return "virtio-rng"; }
    std::uint16_t device_type() const override { return kDeviceRng; }
    std::uint32_t pci_class_code() const override { return 0x00ff00; }  // unclassified
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t queue_count() const override { return 1; }
    std::size_t config_size() const override { return 0; }
    void read_config(std::uint64_t, std::span<std::uint8_t>) override {}
    void queue_notified(VirtioContext& context, std::uint16_t index) override;
};

// Fills `chain`'s writable buffers (up to `limit` bytes) with random bytes
// and returns how many were written. Pure: the unit of work the fuzzer drives.
std::uint32_t fill_random(const DescriptorChain& chain, std::uint64_t limit);

}  // namespace devices::virtio
