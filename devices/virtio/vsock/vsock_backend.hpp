// What runs a virtio-vsock device's rx and tx queues: the host kernel's
// vhost-vsock (VhostVsock). An interface so that the device is tested
// without /dev/vhost-vsock, the way virtio-blk is tested without a file.
#pragma once

#include <cstdint>
#include <span>

#include "devices/virtio/virtio_device.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio {

class VsockBackend {
  public:
    virtual ~VsockBackend() = default;

    // The guest's context ID, already claimed on this host.
    virtual std::uint64_t guest_cid() const = 0;
    // Device feature bits the backend can run (VIRTIO_VSOCK_F_SEQPACKET);
    // the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC, which a
    // backend must support.
    virtual std::uint64_t device_features() const = 0;
    // Starts running `queues` (rx, tx) with the negotiated `features`.
    // Throws base::Error, having started nothing.
    virtual void start(const vmm::GuestMemory& memory, std::uint64_t features,
                       std::span<const OffloadedQueue, 2> queues) = 0;
    // Stops running the queues; nothing when not started. Never throws.
    virtual void stop() noexcept = 0;
    // An eventfd the backend signals when the driver broke a ring (it then
    // stops serving that ring), or -1.
    virtual int error_eventfd() const { return -1; }
};

}  // namespace devices::virtio
