// Runs a VirtioNet on its real worker thread (DeviceWorker) over rings that
// the test writes into guest memory, as a driver would: the receive queue
// at 0x1000, the transmit queue at 0x4000, buffers from 0x10000. Interrupts
// and device errors are recorded and can be waited for, with a deadline.
#pragma once

#include <sys/eventfd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "devices/virtio/device_worker.hpp"
#include "devices/virtio/net/virtio_net.hpp"
#include "tests/unit/virtio/queue_builder.hpp"

namespace devices::virtio::testing {

inline constexpr std::uint64_t kNetBase = feature_bit(kFeatureVersion1);

class NetRig {
  public:
    static constexpr std::uint16_t kQueueSize = 16;
    static constexpr std::uint16_t kRxQueue = VirtioNet::kRxQueue;
    static constexpr std::uint16_t kTxQueue = VirtioNet::kTxQueue;

    explicit NetRig(Tap tap, MacAddress mac = default_mac(0))
        : device(std::make_unique<VirtioNet>(std::move(tap), mac)) {
        for (auto& kick : kicks_) {
            kick = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
            if (!kick) base::throw_errno("eventfd");
        }
    }
    ~NetRig() { stop(); }

    // Activates the device with `features`, both queues enabled (or only
    // the ones in `enabled`), as at DRIVER_OK.
    void start(std::uint64_t features, bool rx_enabled = true, bool tx_enabled = true) {
        std::vector<std::optional<Virtqueue>> queues(2);
        const bool event_idx = (features >> kFeatureEventIdx) & 1;
        if (rx_enabled) queues[0].emplace(memory, rx.config(), event_idx, false);
        if (tx_enabled) queues[1].emplace(memory, tx.config(), event_idx, false);
        worker_ = std::make_unique<DeviceWorker>(
            "net-test", *device, memory, features, std::move(queues),
            std::vector<int>{kicks_[0].get(), kicks_[1].get()},
            std::vector<std::optional<OffloadedQueue>>(2),
            std::vector<DeviceWorker::InterruptRelay>{},
            [this](std::uint16_t queue) {
                std::lock_guard lock(mutex_);
                ++interrupts_[queue];
                changed_.notify_all();
            },
            [this](const std::string& why) {
                std::lock_guard lock(mutex_);
                error_ = why;
                changed_.notify_all();
            });
    }
    // Stops the worker and resets the device, as a driver's reset does;
    // the rings are zeroed for the next start().
    void stop() {
        worker_.reset();
        device->reset();
        for (std::uint64_t at = 0x1000; at < 0x7000; at += 8) memory.write<std::uint64_t>(at, 0);
        next_buffer_ = 0x10000;
        next_descriptor_[0] = next_descriptor_[1] = 0;
    }

    void kick(std::uint16_t queue) {
        const std::uint64_t one = 1;
        if (::write(kicks_[queue].get(), &one, sizeof(one)) != sizeof(one)) {
            base::throw_errno("kick");
        }
    }

    // Places a chain of buffers with these lengths (writable for rx,
    // readable for tx unless `flags` says otherwise), fills them with
    // `bytes` in order, and only then publishes it: the device may take it
    // at once. Returns the guest addresses of the buffers.
    std::vector<std::uint64_t> post(std::uint16_t queue, const std::vector<std::uint32_t>& lengths,
                                    std::uint16_t flags, std::span<const std::uint8_t> bytes = {}) {
        QueueBuilder& ring = queue == 0 ? rx : tx;
        std::vector<std::uint64_t> addresses;
        const std::uint16_t head = next_descriptor_[queue];
        std::size_t at = 0;
        for (std::size_t i = 0; i < lengths.size(); ++i) {
            const std::uint16_t index = next_descriptor_[queue]++ % kQueueSize;
            const bool last = i + 1 == lengths.size();
            ring.set_descriptor(index, next_buffer_, lengths[i],
                                static_cast<std::uint16_t>(flags | (last ? 0 : kDescNext)),
                                static_cast<std::uint16_t>((index + 1) % kQueueSize));
            const std::size_t n = std::min<std::size_t>(lengths[i], bytes.size() - at);
            memory.write_bytes(next_buffer_, bytes.subspan(at, n));
            at += n;
            addresses.push_back(next_buffer_);
            next_buffer_ += (lengths[i] + 0xfff) & ~0xfffull;
        }
        ring.publish(static_cast<std::uint16_t>(head % kQueueSize));
        return addresses;
    }
    std::vector<std::uint64_t> post_rx(const std::vector<std::uint32_t>& lengths) {
        return post(0, lengths, kDescWrite);
    }
    // A transmit chain carrying `bytes` cut into pieces of the given lengths
    // (the last piece takes the rest).
    void post_tx(std::span<const std::uint8_t> bytes, std::vector<std::uint32_t> pieces = {}) {
        std::uint32_t taken = 0;
        for (auto piece : pieces) taken += piece;
        pieces.push_back(static_cast<std::uint32_t>(bytes.size()) - taken);
        post(1, pieces, 0, bytes);
    }

    // Waits until `done()` holds, re-checking on every interrupt or error;
    // false after `timeout`.
    bool wait(const std::function<bool()>& done,
              std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            lock.unlock();
            const bool result = done();
            lock.lock();
            return result;
        });
    }
    bool wait_used(std::uint16_t queue, std::uint16_t count,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        QueueBuilder& ring = queue == 0 ? rx : tx;
        return wait([&] { return ring.used_idx() >= count; }, timeout);
    }
    bool wait_error(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return wait([&] { return !error().empty(); }, timeout);
    }
    std::string error() {
        std::lock_guard lock(mutex_);
        return error_;
    }
    int interrupts(std::uint16_t queue) {
        std::lock_guard lock(mutex_);
        return interrupts_[queue];
    }

    vmm::GuestMemory memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 4 << 20}}});
    QueueBuilder rx{memory, QueueConfig{kQueueSize, 0x1000, 0x2000, 0x3000}};
    QueueBuilder tx{memory, QueueConfig{kQueueSize, 0x4000, 0x5000, 0x6000}};
    std::unique_ptr<VirtioNet> device;

  private:
    std::array<base::UniqueFd, 2> kicks_;
    std::unique_ptr<DeviceWorker> worker_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::array<int, 2> interrupts_{};
    std::string error_;
    std::uint64_t next_buffer_ = 0x10000;
    std::array<std::uint16_t, 2> next_descriptor_{};
};

}  // namespace devices::virtio::testing
