#include "devices/virtio/device_worker.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#include <array>
#include <utility>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

// epoll tags: queue kicks use their index, device fds this bit plus the fd,
// interrupt relays this bit plus their index in relays_.
constexpr std::uint64_t kStopTag = ~std::uint64_t{0};
constexpr std::uint64_t kFdTag = std::uint64_t{1} << 32;
constexpr std::uint64_t kRelayTag = std::uint64_t{1} << 33;

void epoll_add(int epoll, int fd, std::uint32_t events, std::uint64_t tag) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = tag;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0)
        base::throw_errno("epoll_ctl add fd {}", fd);
}

}  // namespace

DeviceWorker::DeviceWorker(std::string thread_name, VirtioDevice& device,
                           const vmm::GuestMemory& memory, std::uint64_t features,
                           std::vector<std::optional<Virtqueue>> queues, std::vector<int> kick_fds,
                           std::vector<std::optional<OffloadedQueue>> offloaded,
                           std::vector<InterruptRelay> relays, InterruptFn interrupt,
                           ErrorFn on_error)
    : device_(device),
      memory_(memory),
      features_(features),
      queues_(std::move(queues)),
      kick_fds_(std::move(kick_fds)),
      offloaded_(std::move(offloaded)),
      relays_(std::move(relays)),
      interrupt_(std::move(interrupt)),
      on_error_(std::move(on_error)),
      thread_name_(std::move(thread_name)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      stop_(base::make_eventfd("stopping {}", thread_name_)),
      resume_pending_(queues_.size(), false) {
    if (!epoll_) base::throw_errno("epoll_create1 for {}", thread_name_);
    epoll_add(epoll_.get(), stop_.get(), EPOLLIN, kStopTag);
    for (std::size_t i = 0; i < kick_fds_.size(); ++i) {
        if (i < queues_.size() && queues_[i]) epoll_add(epoll_.get(), kick_fds_[i], EPOLLIN, i);
    }
    for (std::size_t i = 0; i < relays_.size(); ++i) {
        epoll_add(epoll_.get(), relays_[i].fd, EPOLLIN, kRelayTag | i);
    }
    thread_ = std::thread([this] { run(); });
}

DeviceWorker::~DeviceWorker() {
    // The token first: a device in the middle of its batch sees it at the
    // next request; the eventfd wakes a worker waiting in epoll.
    stop_source_.request_stop();
    base::signal_eventfd(stop_.get());
    if (thread_.joinable()) thread_.join();
}

Virtqueue* DeviceWorker::queue(std::uint16_t index) {
    if (index >= queues_.size() || !queues_[index]) return nullptr;
    return &*queues_[index];
}

std::optional<OffloadedQueue> DeviceWorker::offloaded_queue(std::uint16_t index) const {
    if (index >= offloaded_.size()) return std::nullopt;
    return offloaded_[index];
}

void DeviceWorker::notify_used(std::uint16_t index) {
    auto* q = queue(index);
    if (q != nullptr && q->needs_interrupt()) interrupt_(index);
}

void DeviceWorker::watch_fd(int fd, std::uint32_t events,
                            std::function<void(std::uint32_t)> handler) {
    epoll_add(epoll_.get(), fd, events, kFdTag | static_cast<std::uint32_t>(fd));
    fd_handlers_[fd] = std::move(handler);
}

void DeviceWorker::set_fd_events(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = kFdTag | static_cast<std::uint32_t>(fd);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
        base::throw_errno("epoll_ctl modify fd {}", fd);
    }
}

void DeviceWorker::resume_later(std::uint16_t index) {
    if (queue(index) == nullptr || resume_pending_[index]) return;
    resume_pending_[index] = true;
    resume_.push_back(index);
}

void DeviceWorker::run() {
    // Linux limits thread names to 15 characters.
    ::pthread_setname_np(::pthread_self(), thread_name_.substr(0, 15).c_str());
    try {
        loop();
        return;
    } catch (const std::exception& error) {
        on_error_(error.what());
    }
    wait_for_stop();
}

void DeviceWorker::loop() {
    device_.activate(*this);
    // Kicks that came before DRIVER_OK are still counted in the eventfds,
    // but a driver may also have posted buffers without kicking: poll once.
    for (std::uint16_t i = 0; i < queues_.size(); ++i) {
        if (stopping()) return;
        if (queues_[i]) device_.queue_notified(*this, i);
    }
    std::array<epoll_event, 16> events{};
    for (;;) {
        // With queues left over from a batch, only look for new events.
        const int timeout = resume_.empty() ? -1 : 0;
        const int count = ::epoll_wait(epoll_.get(), events.data(), events.size(), timeout);
        if (count < 0) {
            if (errno == EINTR) continue;
            base::throw_errno("epoll_wait in {}", thread_name_);
        }
        for (int i = 0; i < count; ++i) {
            const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
            if (tag == kStopTag || stopping()) return;
            if ((tag & kRelayTag) != 0) {
                // The kernel already decided that the driver wants this interrupt.
                const auto& relay = relays_[tag & 0xffff'ffffu];
                base::drain_eventfd(relay.fd);
                interrupt_(relay.queue);
                continue;
            }
            if ((tag & kFdTag) != 0) {
                const int fd = static_cast<int>(tag & 0xffff'ffffu);
                auto it = fd_handlers_.find(fd);
                if (it != fd_handlers_.end())
                    it->second(events[static_cast<std::size_t>(i)].events);
                continue;
            }
            const auto index = static_cast<std::uint16_t>(tag);
            base::drain_eventfd(kick_fds_[index]);
            device_.queue_notified(*this, index);
        }
        if (stopping()) return;
        serve_resumed();
    }
}

void DeviceWorker::serve_resumed() {
    // queue_notified() may ask again: that goes into the next round.
    const auto resumed = std::exchange(resume_, {});
    for (const std::uint16_t index : resumed) {
        resume_pending_[index] = false;
        if (stopping()) return;
        device_.queue_notified(*this, index);
    }
}

void DeviceWorker::wait_for_stop() {
    pollfd stop{stop_.get(), POLLIN, 0};
    while (::poll(&stop, 1, -1) < 0 && errno == EINTR) {
    }
}

}  // namespace devices::virtio
