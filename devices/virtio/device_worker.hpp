// The thread that runs one activated virtio device: an epoll loop over the
// queues' notification eventfds (signalled by KVM ioeventfds, so a guest
// kick never exits to userspace on the vCPU thread), fds the device adds
// (a tap), and a stop eventfd. Device work therefore never runs on a vCPU.
// A device error stops the device's processing and is reported once; the
// thread then waits for the reset that joins it. Offloaded queues (vhost)
// are not served here; the worker only turns the eventfds the transport
// relays for them (INTx, no vector) into interrupts.
//
// Stopping (the destructor, on a reset) requests stop_token() first, then
// wakes the loop: a device checks the token between requests, so the join
// waits for one request at most, however much the guest has posted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

class DeviceWorker : public VirtioContext {
  public:
    using InterruptFn = std::function<void(std::uint16_t queue)>;
    using ErrorFn = std::function<void(const std::string& why)>;

    // An eventfd that someone else (the host kernel) writes for `queue`; the
    // worker calls InterruptFn(queue) for each wake-up.
    struct InterruptRelay {
        int fd;
        std::uint16_t queue;
    };

    // Starts the thread. `kick_fds[i]` signals queue i; `queues[i]` is empty
    // for a queue the driver did not enable or the device offloads, and
    // `offloaded[i]` set for an enabled queue the device offloads.
    DeviceWorker(std::string thread_name, VirtioDevice& device, const vmm::GuestMemory& memory,
                 std::uint64_t features, std::vector<std::optional<Virtqueue>> queues,
                 std::vector<int> kick_fds, std::vector<std::optional<OffloadedQueue>> offloaded,
                 std::vector<InterruptRelay> relays, InterruptFn interrupt, ErrorFn on_error);
    // Stops and joins the thread.
    ~DeviceWorker() override;
    DeviceWorker(const DeviceWorker&) = delete;
    DeviceWorker& operator=(const DeviceWorker&) = delete;

    std::uint64_t features() const override { return features_; }
    const vmm::GuestMemory& memory() const override { return memory_; }
    Virtqueue* queue(std::uint16_t index) override;
    std::optional<OffloadedQueue> offloaded_queue(std::uint16_t index) const override;
    void notify_used(std::uint16_t index) override;
    void watch_fd(int fd, std::uint32_t events,
                  std::function<void(std::uint32_t)> handler) override;
    void set_fd_events(int fd, std::uint32_t events) override;
    void resume_later(std::uint16_t index) override;
    std::stop_token stop_token() const override { return stop_source_.get_token(); }

  private:
    void run();
    void loop();
    void serve_resumed();
    void wait_for_stop();

    VirtioDevice& device_;
    const vmm::GuestMemory& memory_;
    std::uint64_t features_;
    std::vector<std::optional<Virtqueue>> queues_;
    std::vector<int> kick_fds_;
    std::vector<std::optional<OffloadedQueue>> offloaded_;
    std::vector<InterruptRelay> relays_;
    InterruptFn interrupt_;
    ErrorFn on_error_;
    std::string thread_name_;
    base::UniqueFd epoll_;
    base::UniqueFd stop_;
    std::map<int, std::function<void(std::uint32_t)>> fd_handlers_;
    std::vector<std::uint16_t> resume_;  // resume_later(), in request order
    std::vector<bool> resume_pending_;   // per queue: already in resume_
    std::stop_source stop_source_;
    std::thread thread_;
};

}  // namespace devices::virtio
