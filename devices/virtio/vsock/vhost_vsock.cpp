#include "devices/virtio/vsock/vhost_vsock.hpp"

#include <sys/ioctl.h>

#include <cstring>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "devices/virtio/vsock/virtio_vsock.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

// The ring features the transport offers every device: vhost must run them.
constexpr std::uint64_t kRequiredFeatures = feature_bit(kFeatureVersion1) |
                                            feature_bit(kFeatureEventIdx) |
                                            feature_bit(kFeatureIndirectDesc);

vhost::VhostKernel open_vhost(const char* path, std::uint32_t guest_cid) {
    try {
        return vhost::VhostKernel(path);
    } catch (const base::SystemError& error) {
        if (error.error_number() == ENOENT) {
            throw base::Error(
                "vsock cid={}: {} does not exist: load the host's vhost_vsock module "
                "(modprobe vhost_vsock)",
                guest_cid, path);
        }
        throw base::Error("vsock cid={}: {}", guest_cid, error.what());
    }
}

}  // namespace

VhostVsock::VhostVsock(std::uint32_t guest_cid, const char* path)
    : guest_cid_(guest_cid), vhost_(open_vhost(path, guest_cid)) {
    // The uAPI takes a 64-bit CID; vhost-vsock accepts 3 to 2^32 - 2.
    const std::uint64_t cid = guest_cid;
    if (::ioctl(vhost_.fd(), VHOST_VSOCK_SET_GUEST_CID, &cid) != 0) {
        const int error = errno;
        if (error == EADDRINUSE) {
            throw base::Error(
                "vsock cid={}: the CID is already in use on this host (another VM has it, "
                "or it is this host's own CID)",
                guest_cid);
        }
        throw base::Error("vsock cid={}: {} refuses the CID: {}", guest_cid, path,
                          std::strerror(error));
    }
    vhost_features_ = vhost_.features();
    if ((vhost_features_ & kRequiredFeatures) != kRequiredFeatures) {
        throw base::Error(
            "vsock: {} offers features {:#x}, without VERSION_1, EVENT_IDX or "
            "INDIRECT_DESC",
            path, vhost_features_);
    }
    error_ = base::make_eventfd("vhost-vsock errors");
}

std::uint64_t VhostVsock::device_features() const {
    return vhost_features_ & feature_bit(kVsockFeatureSeqpacket);
}

void VhostVsock::start(const vmm::GuestMemory& memory, std::uint64_t features,
                       std::span<const OffloadedQueue, 2> queues) {
    stop();
    // Errors left from the previous life of the rings.
    base::drain_eventfd(error_.get());
    vhost_.set_features(features & vhost_features_);
    vhost_.set_mem_table(memory);
    for (std::uint32_t i = 0; i < queues.size(); ++i) {
        vhost_.set_vring(i, memory, queues[i], error_.get());
    }
    set_running(true);
    // A kick that came between DRIVER_OK and now found no backend and was
    // dropped by the kernel: kick once so it looks at what is already posted.
    for (const auto& queue : queues) base::signal_eventfd(queue.kick_fd);
}

void VhostVsock::stop() noexcept {
    if (!running_) return;
    try {
        set_running(false);
    } catch (const std::exception& error) {
        // Only fails when this process is not the owner, which it is.
        vmm::log::warn("vsock: {}", error.what());
        running_ = false;
    }
}

void VhostVsock::set_running(bool running) {
    const int value = running ? 1 : 0;
    vhost_.call(VHOST_VSOCK_SET_RUNNING, value, "VHOST_VSOCK_SET_RUNNING");
    running_ = running;
}

}  // namespace devices::virtio
