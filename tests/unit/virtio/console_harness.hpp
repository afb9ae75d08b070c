// Test harness for virtio-console: the device on a real DeviceWorker over
// guest memory, set up the way the virtio-pci transport does at DRIVER_OK,
// rings written with QueueBuilder, interrupts and device errors seen through
// eventfds (waits are bounded polls, never sleeps). Plus a unix-socket client
// and a temporary directory for the host ends.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/virtio/console/virtio_console.hpp"
#include "devices/virtio/device_worker.hpp"
#include "tests/unit/virtio/queue_builder.hpp"

namespace devices::virtio::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline int remaining_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `fd` to become readable; false on timeout.
inline bool wait_readable(int fd, Clock::time_point deadline) {
    pollfd ready{fd, POLLIN, 0};
    return ::poll(&ready, 1, remaining_ms(deadline)) == 1;
}

class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "vmm-console-test.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code error;
        std::filesystem::remove_all(path_, error);
    }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

class ConsoleHarness {
  public:
    static constexpr QueueConfig kRxQueue{16, 0x1000, 0x3000, 0x4000};
    static constexpr QueueConfig kTxQueue{16, 0x5000, 0x7000, 0x8000};
    static constexpr std::uint64_t kMemorySize = 4 << 20;

    explicit ConsoleHarness(std::unique_ptr<ConsoleBackend> backend)
        : memory(vmm::GuestMemory::create(
              std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, kMemorySize}}})),
          rx(memory, kRxQueue),
          tx(memory, kTxQueue),
          device_(std::make_unique<VirtioConsole>(std::move(backend))),
          error_event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        for (auto& fd : kicks_) fd = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        for (auto& fd : interrupts_) fd = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
    ~ConsoleHarness() { worker_.reset(); }

    VirtioConsole& device() { return *device_; }

    // DRIVER_OK: the worker starts, activates the device and polls each queue.
    void start(bool with_rx = true, bool with_tx = true) {
        const std::uint64_t features =
            feature_bit(kFeatureVersion1) | feature_bit(kFeatureIndirectDesc);
        std::vector<std::optional<Virtqueue>> queues(2);
        if (with_rx) queues[0].emplace(memory, kRxQueue, false, true);
        if (with_tx) queues[1].emplace(memory, kTxQueue, false, true);
        worker_ = std::make_unique<DeviceWorker>(
            "test-console", *device_, memory, features, std::move(queues),
            std::vector<int>{kicks_[0].get(), kicks_[1].get()},
            std::vector<std::optional<OffloadedQueue>>(2),
            std::vector<DeviceWorker::InterruptRelay>{},
            [this](std::uint16_t queue) { signal(interrupts_.at(queue).get()); },
            [this](const std::string& why) {
                std::lock_guard lock(mutex_);
                error_ = why;
                signal(error_event_.get());
            });
    }

    // A device reset as the transport does it: join the worker, then reset
    // the device; the driver then starts over with zeroed rings.
    void reset() {
        worker_.reset();
        device_->reset();
        for (const auto& config : {kRxQueue, kTxQueue}) {
            auto avail = memory.span(config.avail_ring, 6 + 2 * config.size);
            std::fill(avail.begin(), avail.end(), 0);
            auto used = memory.span(config.used_ring, 6 + 8 * config.size);
            std::fill(used.begin(), used.end(), 0);
        }
        std::lock_guard lock(mutex_);
        error_.reset();
    }

    void kick(std::uint16_t queue) { signal(kicks_.at(queue).get()); }

    // Posts one device-writable receive buffer of `size` bytes at `address`
    // as descriptor `index` and kicks.
    void post_rx(std::uint16_t index, std::uint64_t address, std::uint32_t size) {
        rx.set_descriptor(index, address, size, kDescWrite);
        rx.publish(index);
        kick(VirtioConsole::kReceiveq);
    }
    // Copies `bytes` to `address`, sends them as transmit descriptor `index`.
    void send_tx(std::uint16_t index, std::uint64_t address, std::span<const std::uint8_t> bytes) {
        memory.write_bytes(address, bytes);
        tx.set_descriptor(index, address, static_cast<std::uint32_t>(bytes.size()));
        tx.publish(index);
        kick(VirtioConsole::kTransmitq);
    }
    void send_tx(std::uint16_t index, std::uint64_t address, const std::string& text) {
        send_tx(index, address,
                std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }

    // Waits until `queue`'s used index reaches `count`.
    bool wait_used(QueueBuilder& queue, std::uint16_t count,
                   std::chrono::milliseconds timeout = 10s) {
        const auto deadline = Clock::now() + timeout;
        const int interrupt = (&queue == &rx ? interrupts_[0] : interrupts_[1]).get();
        while (static_cast<std::uint16_t>(queue.used_idx() - count) >= 0x8000) {
            if (!wait_readable(interrupt, deadline)) return false;
            drain(interrupt);
        }
        return true;
    }
    // Waits for the device to fail (NEEDS_RESET in the transport).
    std::optional<std::string> wait_error(std::chrono::milliseconds timeout = 10s) {
        if (!wait_readable(error_event_.get(), Clock::now() + timeout)) return std::nullopt;
        std::lock_guard lock(mutex_);
        return error_;
    }
    bool failed() {
        std::lock_guard lock(mutex_);
        return error_.has_value();
    }

    std::string guest_bytes(std::uint64_t address, std::size_t size) const {
        const auto bytes = memory.span(address, size);
        return std::string(bytes.begin(), bytes.end());
    }

    vmm::GuestMemory memory;
    QueueBuilder rx;
    QueueBuilder tx;

  private:
    static void signal(int fd) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto written = ::write(fd, &one, sizeof(one));
    }
    static void drain(int fd) {
        std::uint64_t count;
        [[maybe_unused]] const auto got = ::read(fd, &count, sizeof(count));
    }

    std::unique_ptr<VirtioConsole> device_;
    std::array<base::UniqueFd, 2> kicks_;
    std::array<base::UniqueFd, 2> interrupts_;
    base::UniqueFd error_event_;
    std::mutex mutex_;
    std::optional<std::string> error_;
    std::unique_ptr<DeviceWorker> worker_;
};

// A unix stream client of the console socket.
inline base::UniqueFd connect_unix(const std::string& path) {
    base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.data(), path.size());
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        return base::UniqueFd();
    }
    return fd;
}

inline bool write_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads exactly `size` bytes before the deadline; fewer on timeout or EOF.
inline std::string read_exactly(int fd, std::size_t size, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    std::string out;
    std::array<char, 65536> chunk{};
    while (out.size() < size) {
        if (!wait_readable(fd, deadline)) break;
        const ssize_t n = ::read(fd, chunk.data(), std::min(chunk.size(), size - out.size()));
        if (n <= 0) break;
        out.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return out;
}

// Whether `fd` has nothing to read within `timeout` (for "nothing arrives").
inline bool stays_quiet(int fd, std::chrono::milliseconds timeout) {
    pollfd ready{fd, POLLIN, 0};
    return ::poll(&ready, 1, static_cast<int>(timeout.count())) == 0;
}

// Deterministic bytes that make misordering visible.
inline std::string pattern(std::size_t size, unsigned seed = 1) {
    std::string bytes(size, '\0');
    std::uint32_t state = seed * 2654435761u + 1;
    for (auto& byte : bytes) {
        state = state * 1103515245u + 12345u;
        byte = static_cast<char>(state >> 16);
    }
    return bytes;
}

}  // namespace devices::virtio::testing
