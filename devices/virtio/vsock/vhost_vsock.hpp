// VsockBackend over the host kernel's vhost-vsock (/dev/vhost-vsock, the
// vhost_vsock module). The fd is opened and the guest CID claimed at
// construction, so a missing module or a CID another VM holds fails before
// the guest boots. The kernel then moves every packet between the guest's
// rings and host AF_VSOCK sockets; this class only starts and stops it.
#pragma once

#include <cstdint>

#include "base/unique_fd.hpp"
#include "devices/virtio/vhost/vhost_kernel.hpp"
#include "devices/virtio/vsock/vsock_backend.hpp"

namespace devices::virtio {

class VhostVsock : public VsockBackend {
  public:
    static constexpr const char* kDevicePath = "/dev/vhost-vsock";

    // Throws base::Error with one line for the user: the module is not
    // loaded, the CID is reserved or in use, /dev/vhost-vsock is not
    // accessible.
    explicit VhostVsock(std::uint32_t guest_cid, const char* path = kDevicePath);
    ~VhostVsock() override { stop(); }

    std::uint64_t guest_cid() const override { return guest_cid_; }
    std::uint64_t device_features() const override;
    void start(const vmm::GuestMemory& memory, std::uint64_t features,
               std::span<const OffloadedQueue, 2> queues) override;
    void stop() noexcept override;
    int error_eventfd() const override { return error_.get(); }

  private:
    void set_running(bool running);

    std::uint32_t guest_cid_;
    vhost::VhostKernel vhost_;
    std::uint64_t vhost_features_ = 0;
    base::UniqueFd error_;
    bool running_ = false;
};

}  // namespace devices::virtio
