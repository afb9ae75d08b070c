// A VirtioContext without a worker thread: the test calls the device's
// queue_notified() itself and sees what the device asked for (interrupts,
// resume_later(), fd watches), so per-wake-up limits are checked exactly.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <vector>

#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio::testing {

class FakeContext : public VirtioContext {
  public:
    FakeContext(const vmm::GuestMemory& memory, std::uint64_t features,
                std::vector<std::optional<Virtqueue>> queues)
        : memory_(memory), features_(features), queues_(std::move(queues)) {}

    std::uint64_t features() const override { return features_; }
    const vmm::GuestMemory& memory() const override { return memory_; }
    Virtqueue* queue(std::uint16_t index) override {
        return index < queues_.size() && queues_[index] ? &*queues_[index] : nullptr;
    }
    void notify_used(std::uint16_t index) override { notified.push_back(index); }
    void watch_fd(int fd, std::uint32_t events,
                  std::function<void(std::uint32_t)> handler) override {
        fd_events[fd] = events;
        handlers[fd] = std::move(handler);
    }
    void set_fd_events(int fd, std::uint32_t events) override { fd_events[fd] = events; }
    void resume_later(std::uint16_t index) override { resumed.push_back(index); }
    std::stop_token stop_token() const override { return stop.get_token(); }

    std::vector<std::uint16_t> notified;
    std::vector<std::uint16_t> resumed;
    std::map<int, std::uint32_t> fd_events;
    std::map<int, std::function<void(std::uint32_t)>> handlers;
    std::stop_source stop;

  private:
    const vmm::GuestMemory& memory_;
    std::uint64_t features_;
    std::vector<std::optional<Virtqueue>> queues_;
};

}  // namespace devices::virtio::testing
