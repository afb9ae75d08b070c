#include "devices/virtio/console/virtio_console.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "base/error.hpp"
#include "base/event_fd.hpp"
#include "devices/virtio/console/buffer_iovecs.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

void charge(std::uint64_t& budget, std::uint64_t bytes) {
    budget -= std::min(budget, std::max(bytes, VirtioConsole::kChainCost));
}

}  // namespace

VirtioConsole::VirtioConsole(std::unique_ptr<ConsoleBackend> backend)
    : backend_(std::move(backend)), resume_(base::make_eventfd("virtio-console")) {}

void VirtioConsole::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    // cols and rows stay 0 (no VIRTIO_CONSOLE_F_SIZE); max_nr_ports is only
    // meaningful with MULTIPORT, but 1 is what this device has.
    std::array<std::uint8_t, kConfigSize> config{};
    config[4] = 1;
    if (offset > config.size() || data.size() > config.size() - offset) return;
    std::memcpy(data.data(), config.data() + offset, data.size());
}

void VirtioConsole::activate(VirtioContext& context) {
    context_ = &context;
    tx_blocked_ = false;
    context.watch_fd(resume_.get(), EPOLLIN, [this](std::uint32_t) {
        base::drain_eventfd(resume_.get());
        transmit();
        receive();
    });
    backend_->attach(context, *this);
    vmm::log::debug("virtio-console: port 0 active on {}", backend_->describe());
}

void VirtioConsole::queue_notified(VirtioContext& /*context*/, std::uint16_t index) {
    if (index == kReceiveq) receive();
    if (index == kTransmitq) transmit();
}

void VirtioConsole::reset() {
    backend_->detach();
    context_ = nullptr;
    rx_chain_.reset();
    tx_.reset();
    tx_blocked_ = false;
    base::drain_eventfd(resume_.get());
}

ConsoleStats VirtioConsole::stats() const {
    return ConsoleStats{to_host_.load(), dropped_.load(), from_host_.load(), input_wakeups_.load()};
}

void VirtioConsole::input_ready() {
    ++input_wakeups_;
    receive();
}

void VirtioConsole::output_ready() {
    tx_blocked_ = false;
    transmit();
}

void VirtioConsole::schedule_resume() {
    // One pending wake-up is enough, however many are asked for.
    base::signal_eventfd(resume_.get());
}

void VirtioConsole::receive() {
    Virtqueue* queue = context_->queue(kReceiveq);
    if (queue == nullptr) {
        backend_->want_input(false);
        return;
    }
    std::uint64_t budget = kBudgetBytes;
    bool used = false;
    for (;;) {
        if (!rx_chain_) {
            rx_chain_ = queue->pop();
            if (!rx_chain_) {
                if (queue->enable_notification()) continue;
                // The driver's next rx kick brings us back.
                backend_->want_input(false);
                break;
            }
            if (!rx_chain_->readable.empty()) {
                throw DeviceError("virtio-console: receiveq chain {} has device-readable buffers",
                                  rx_chain_->head);
            }
        }
        if (budget == 0) {
            schedule_resume();
            break;
        }
        std::size_t got = 0;
        if (rx_chain_->writable_bytes > 0) {
            const auto iovecs = buffer_iovecs(rx_chain_->writable, 0, budget);
            got = backend_->read(iovecs);
            if (got == 0) {
                // Hold the chain until input arrives.
                backend_->want_input(true);
                break;
            }
            from_host_ += got;
        }
        charge(budget, got);
        queue->push_used(rx_chain_->head, static_cast<std::uint32_t>(got));
        used = true;
        rx_chain_.reset();
    }
    if (used) context_->notify_used(kReceiveq);
}

void VirtioConsole::transmit() {
    if (tx_blocked_) return;
    Virtqueue* queue = context_->queue(kTransmitq);
    if (queue == nullptr) return;
    std::uint64_t budget = kBudgetBytes;
    bool used = false;
    for (;;) {
        if (!tx_) {
            auto chain = queue->pop();
            if (!chain) {
                if (queue->enable_notification()) continue;
                break;
            }
            if (!chain->writable.empty()) {
                throw DeviceError("virtio-console: transmitq chain {} has device-writable buffers",
                                  chain->head);
            }
            tx_.emplace(PendingOutput{std::move(*chain), 0});
        }
        if (budget == 0) {
            schedule_resume();
            break;
        }
        const Progress progress = send_pending(budget);
        if (progress == Progress::Blocked) break;
        if (progress == Progress::Partial) continue;
        queue->push_used(tx_->chain.head, 0);
        used = true;
        tx_.reset();
    }
    if (used) context_->notify_used(kTransmitq);
}

VirtioConsole::Progress VirtioConsole::send_pending(std::uint64_t& budget) {
    const std::uint64_t left = tx_->chain.readable_bytes - tx_->sent;
    if (left == 0) {
        charge(budget, 0);
        return Progress::Done;
    }
    const auto iovecs = buffer_iovecs(tx_->chain.readable, tx_->sent, std::min(left, budget));
    const auto result = backend_->write(iovecs);
    switch (result.status) {
        case ConsoleBackend::WriteStatus::Written: {
            const std::uint64_t taken = std::min<std::uint64_t>(result.bytes, left);
            to_host_ += taken;
            tx_->sent += taken;
            charge(budget, taken);
            return tx_->sent == tx_->chain.readable_bytes ? Progress::Done : Progress::Partial;
        }
        case ConsoleBackend::WriteStatus::Dropped:
            dropped_ += left;
            tx_->sent += left;
            charge(budget, 0);
            return Progress::Done;
        case ConsoleBackend::WriteStatus::WouldBlock:
            tx_blocked_ = true;
            backend_->want_output();
            return Progress::Blocked;
    }
    return Progress::Blocked;
}

}  // namespace devices::virtio
