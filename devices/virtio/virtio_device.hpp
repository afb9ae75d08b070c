// A virtio device model, independent of its transport (virtio-pci here;
// virtio-mmio or vhost-user could drive the same class). The transport owns
// feature negotiation, queue setup, notifications and interrupts; the device
// only sees activated queues on its own worker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>

#include "devices/virtio/virtqueue.hpp"
#include "vmm/guest_memory.hpp"

namespace devices::virtio {

// A device-level protocol violation (bad request header, ...): like a
// VirtqueueError it puts this device, and only it, into NEEDS_RESET.
class DeviceError : public base::Error {
  public:
    using base::Error::Error;
};

// A queue that something other than the device's worker runs: the host
// kernel (vhost) now, another process (vhost-user) perhaps later. The
// transport validated its rings at DRIVER_OK like any queue's; the device
// hands all of this to whoever runs it.
struct OffloadedQueue {
    QueueConfig config;  // power-of-two size, rings aligned and inside guest RAM
    int kick_fd;         // signalled by the driver's notifications (a KVM ioeventfd)
    int call_fd;         // a write interrupts the driver for this queue
};

// What an activated device may use. Valid from activate() until reset();
// every call happens on the device's worker thread.
class VirtioContext {
  public:
    virtual ~VirtioContext() = default;
    virtual std::uint64_t features() const = 0;
    bool has_feature(unsigned bit) const { return (features() >> bit) & 1; }
    virtual const vmm::GuestMemory& memory() const = 0;
    // nullptr when the driver did not enable queue `index`, or it is offloaded.
    virtual Virtqueue* queue(std::uint16_t index) = 0;
    // An enabled queue the device offloads (VirtioDevice::queue_offloaded);
    // nullopt for any other.
    virtual std::optional<OffloadedQueue> offloaded_queue(std::uint16_t /*index*/) const {
        return std::nullopt;
    }
    // Interrupts the driver for queue `index` if the queue asks for it.
    virtual void notify_used(std::uint16_t index) = 0;
    // Calls `handler(events)` on the worker thread when `fd` is ready
    // (level-triggered epoll events); `events` 0 pauses the fd.
    virtual void watch_fd(int fd, std::uint32_t events,
                          std::function<void(std::uint32_t)> handler) = 0;
    virtual void set_fd_events(int fd, std::uint32_t events) = 0;
    // Calls queue_notified(index) again after the worker has served its other
    // events. A device serves at most kRequestBatch requests per wake-up and
    // asks for this when buffers are left, so that neither other queues nor a
    // reset (which joins the worker) wait for a guest that keeps posting.
    virtual void resume_later(std::uint16_t index) = 0;
    // Requested when the worker is to stop (a reset joins it): a device
    // checks it between requests, and long host operations between pieces,
    // and returns without completing what it has not done.
    virtual std::stop_token stop_token() const = 0;
    bool stopping() const { return stop_token().stop_requested(); }
};

// Requests a device serves per queue and wake-up (see resume_later()).
inline constexpr unsigned kRequestBatch = 64;

// Serves `queue` (queue `index` of `context`) until the driver has posted
// nothing more: pops each chain into `serve(chain)`, which pushes it used
// and returns true, or returns false to end the call at once with nothing
// more done (a reset cut the request short, the host end is blocked). The
// driver is interrupted after each run of chains, and notifications are
// re-enabled only when the ring is empty, so a chain posted meanwhile is
// never missed. After `batch` chains, or once the worker is to stop, the
// driver is interrupted for what was served and the rest is left to
// resume_later(): that is what bounds a wake-up.
template <typename Serve>
void serve_in_batches(VirtioContext& context, std::uint16_t index, Virtqueue& queue, Serve&& serve,
                      unsigned batch = kRequestBatch) {
    unsigned served = 0;
    do {
        for (;; ++served) {
            if (served == batch || context.stopping()) {
                context.notify_used(index);
                context.resume_later(index);
                return;
            }
            auto chain = queue.pop();
            if (!chain) break;
            if (!serve(*chain)) return;
        }
        context.notify_used(index);
    } while (queue.enable_notification());
}

class VirtioDevice {
  public:
    virtual ~VirtioDevice() = default;

    virtual std::string name() const = 0;
    virtual std::uint16_t device_type() const = 0;     // kDeviceBlock, ...
    virtual std::uint32_t pci_class_code() const = 0;  // class << 16 | subclass << 8
    // Device-specific feature bits; the transport adds VERSION_1,
    // EVENT_IDX and INDIRECT_DESC.
    virtual std::uint64_t device_features() const = 0;
    virtual std::uint16_t queue_count() const = 0;
    virtual std::uint16_t queue_max_size() const { return 256; }
    // A queue the device has run elsewhere (by vhost in the host kernel).
    // The worker never polls its kick eventfd nor calls queue_notified() for
    // it; activate() finds its rings and eventfds in
    // VirtioContext::offloaded_queue(), and reset() must stop its runner.
    // Constant for the device's lifetime.
    virtual bool queue_offloaded(std::uint16_t /*index*/) const { return false; }

    // Device configuration space. The transport only passes accesses that
    // lie inside [0, config_size()).
    virtual std::size_t config_size() const = 0;
    virtual void read_config(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
    virtual void write_config(std::uint64_t /*offset*/, std::span<const std::uint8_t> /*data*/) {}

    // The driver set DRIVER_OK. Runs on the worker thread before any
    // queue_notified(). May throw (DeviceError) to refuse the activation.
    virtual void activate(VirtioContext& /*context*/) {}
    // The driver kicked queue `index`, or the worker polls it after
    // activation. Throwing VirtqueueError/DeviceError fails the device.
    virtual void queue_notified(VirtioContext& context, std::uint16_t index) = 0;
    // Back to the state before activate(); the worker has already stopped.
    // May run without a prior activate(), and twice in a row.
    virtual void reset() {}
};

}  // namespace devices::virtio
