// virtio-vsock (virtio 1.2, 5.10): sockets between the guest and the host
// (AF_VSOCK) addressed by context IDs, the guest's taken from --vsock cid=N.
// The rx and tx queues are offloaded to a VsockBackend (vhost-vsock in the
// host kernel), which moves every packet; the VMM only starts it at
// DRIVER_OK and stops it at reset or on a device error. The event queue
// stays here: its buffers are held for VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
// which only live migration would need, so nothing is ever posted to it.
#pragma once

#include <memory>

#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/vsock/vsock_backend.hpp"

namespace devices::virtio {

inline constexpr unsigned kVsockFeatureSeqpacket = 1;  // VIRTIO_VSOCK_F_SEQPACKET
inline constexpr std::uint16_t kVsockRxQueue = 0;
inline constexpr std::uint16_t kVsockTxQueue = 1;
inline constexpr std::uint16_t kVsockEventQueue = 2;
// CIDs 0-2 are the hypervisor, loopback and the host; 2^32 - 1 is "any".
inline constexpr std::uint64_t kVsockFirstGuestCid = 3;
inline constexpr std::uint64_t kVsockLastGuestCid = 0xffff'fffe;

class VirtioVsock : public VirtioDevice {
  public:
    explicit VirtioVsock(std::unique_ptr<VsockBackend> backend);
    ~VirtioVsock() override;

    std::string name() const override { return "virtio-vsock"; }
    std::uint16_t device_type() const override { return kDeviceVsock; }
    // Communication controller, other (what QEMU's vhost-vsock-pci reports).
    std::uint32_t pci_class_code() const override { return 0x078000; }
    std::uint64_t device_features() const override { return backend_->device_features(); }
    std::uint16_t queue_count() const override { return 3; }
    bool queue_offloaded(std::uint16_t index) const override { return index != kVsockEventQueue; }

    // struct virtio_vsock_config: le64 guest_cid, read-only.
    std::size_t config_size() const override { return 8; }
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;

    void activate(VirtioContext& context) override;
    void queue_notified(VirtioContext& context, std::uint16_t index) override;
    void reset() override;

  private:
    void backend_failed();

    std::unique_ptr<VsockBackend> backend_;
};

}  // namespace devices::virtio
