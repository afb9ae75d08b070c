#include "devices/virtio/vsock/virtio_vsock.hpp"

#include <sys/epoll.h>

#include <array>
#include <cstring>

#include "base/event_fd.hpp"

namespace devices::virtio {

VirtioVsock::VirtioVsock(std::unique_ptr<VsockBackend> backend) : backend_(std::move(backend)) {}

VirtioVsock::~VirtioVsock() {
    backend_->stop();
}

void VirtioVsock::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    std::array<std::uint8_t, 8> config{};
    const std::uint64_t cid = backend_->guest_cid();
    std::memcpy(config.data(), &cid, sizeof(cid));  // little-endian, as x86 is
    if (offset > config.size() || data.size() > config.size() - offset) return;
    std::memcpy(data.data(), config.data() + offset, data.size());
}

void VirtioVsock::activate(VirtioContext& context) {
    std::array<OffloadedQueue, 2> queues{};
    for (const std::uint16_t index : {kVsockRxQueue, kVsockTxQueue}) {
        const auto queue = context.offloaded_queue(index);
        if (!queue) throw DeviceError("the driver did not enable vsock queue {}", index);
        queues[index] = *queue;
    }
    try {
        backend_->start(context.memory(), context.features(), queues);
        if (const int fd = backend_->error_eventfd(); fd >= 0) {
            context.watch_fd(fd, EPOLLIN, [this](std::uint32_t) { backend_failed(); });
        }
    } catch (...) {
        backend_->stop();
        throw;
    }
}

void VirtioVsock::queue_notified(VirtioContext& /*context*/, std::uint16_t /*index*/) {
    // Only the event queue reaches the worker; its buffers wait for an event.
}

void VirtioVsock::reset() {
    backend_->stop();
}

void VirtioVsock::backend_failed() {
    base::drain_eventfd(backend_->error_eventfd());
    // The kernel stopped the broken ring; stop the other one too, as any
    // device error stops the device until the driver resets it.
    backend_->stop();
    throw DeviceError("vhost-vsock found a malformed ring (details in the host kernel's log)");
}

}  // namespace devices::virtio
