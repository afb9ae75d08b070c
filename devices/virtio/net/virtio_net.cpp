#include "devices/virtio/net/virtio_net.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstring>
#include <iterator>

#include "base/error.hpp"
#include "devices/virtio/net/net_frame.hpp"
#include "vmm/log.hpp"

namespace devices::virtio {

namespace {

constexpr std::uint16_t kMtu = 1500;

// The first loss of each kind is a warning; a guest repeating it must not
// flood the log, the counters keep the total.
void count_loss(std::atomic<std::uint64_t>& counter, const std::string& device, const char* what,
                const char* why) {
    if (counter.fetch_add(1, std::memory_order_relaxed) == 0) {
        vmm::log::warn("{}: {} ({}); further ones are only counted", device, what, why);
    } else {
        vmm::log::debug("{}: {} ({})", device, what, why);
    }
}

void add(std::atomic<std::uint64_t>& counter, std::uint64_t value) {
    counter.fetch_add(value, std::memory_order_relaxed);
}

}  // namespace

VirtioNet::VirtioNet(Tap tap, MacAddress mac, std::uint16_t queue_size)
    : tap_(std::move(tap)),
      mac_(mac),
      queue_size_(queue_size),
      rx_packet_(kNetHeaderBytes + kMaxFrameBytes) {
    if (queue_size_ < 4 || queue_size_ > kMaxQueueSize || (queue_size_ & (queue_size_ - 1)) != 0) {
        throw base::Error("virtio-net: queue size {} is not a power of two from 4 to {}",
                          queue_size_, kMaxQueueSize);
    }
}

std::uint64_t VirtioNet::device_features() const {
    std::uint64_t features = 0;
    for (unsigned bit :
         {kNetFeatureCsum, kNetFeatureGuestCsum, kNetFeatureMac, kNetFeatureGuestTso4,
          kNetFeatureGuestTso6, kNetFeatureGuestEcn, kNetFeatureHostTso4, kNetFeatureHostTso6,
          kNetFeatureHostEcn, kNetFeatureMrgRxbuf, kNetFeatureStatus}) {
        features |= feature_bit(bit);
    }
    return features;
}

void VirtioNet::read_config(std::uint64_t offset, std::span<std::uint8_t> data) {
    // struct virtio_net_config (5.1.4) up to mtu (only read with F_MTU).
    std::array<std::uint8_t, kConfigSize> config{};
    std::memcpy(config.data(), mac_.data(), mac_.size());
    const std::uint16_t fields[] = {kNetStatusLinkUp, 1 /* max_virtqueue_pairs */, kMtu};
    std::memcpy(config.data() + 6, fields, sizeof(fields));
    if (offset > config.size() || data.size() > config.size() - offset) return;
    std::memcpy(data.data(), config.data() + offset, data.size());
}

void VirtioNet::activate(VirtioContext& context) {
    features_ = context.features();
    merged_rx_ = context.has_feature(kNetFeatureMrgRxbuf);
    // What the guest accepts on receive is what the tap may hand us; the
    // kernel ignores TSO without CSUM, and so does the guest (5.1.3.1).
    unsigned offload = 0;
    if (context.has_feature(kNetFeatureGuestCsum)) {
        offload |= kTunOffloadCsum;
        if (context.has_feature(kNetFeatureGuestTso4)) offload |= kTunOffloadTso4;
        if (context.has_feature(kNetFeatureGuestTso6)) offload |= kTunOffloadTso6;
        if ((offload & (kTunOffloadTso4 | kTunOffloadTso6)) != 0 &&
            context.has_feature(kNetFeatureGuestEcn)) {
            offload |= kTunOffloadTsoEcn;
        }
    }
    tap_.set_offload(offload);
    tap_events_ = EPOLLIN;
    context.watch_fd(tap_.fd(), tap_events_,
                     [this, &context](std::uint32_t events) { tap_ready(context, events); });
}

void VirtioNet::queue_notified(VirtioContext& context, std::uint16_t index) {
    if (index == kRxQueue) handle_rx(context);
    if (index == kTxQueue) handle_tx(context);
}

void VirtioNet::reset() {
    if (rx_length_ != 0) add(counters_.rx_dropped, 1);
    features_ = 0;
    merged_rx_ = false;
    rx_paused_ = false;
    tx_blocked_.reset();
    tap_events_ = 0;
    rx_length_ = 0;
    rx_held_.clear();
    rx_held_bytes_ = 0;
}

NetStats VirtioNet::stats() const {
    auto get = [](const std::atomic<std::uint64_t>& counter) {
        return counter.load(std::memory_order_relaxed);
    };
    return NetStats{get(counters_.rx_frames), get(counters_.rx_bytes), get(counters_.rx_dropped),
                    get(counters_.tx_frames), get(counters_.tx_bytes), get(counters_.tx_dropped),
                    get(counters_.tx_errors)};
}

void VirtioNet::tap_ready(VirtioContext& context, std::uint32_t events) {
    // epoll reports these even when nothing is watched: a tap whose
    // interface was deleted would wake the worker forever.
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        throw DeviceError("{}: the tap failed (was the interface deleted?)", name());
    }
    if ((events & EPOLLOUT) != 0) handle_tx(context);
    if ((events & EPOLLIN) != 0) handle_rx(context);
}

void VirtioNet::update_tap_events(VirtioContext& context) {
    const std::uint32_t wanted =
        (rx_paused_ ? 0u : std::uint32_t{EPOLLIN}) | (tx_blocked_ ? std::uint32_t{EPOLLOUT} : 0u);
    if (wanted == tap_events_) return;
    context.set_fd_events(tap_.fd(), wanted);
    tap_events_ = wanted;
}

// ---- receive: tap -> guest --------------------------------------------------

void VirtioNet::handle_rx(VirtioContext& context) {
    Virtqueue* queue = context.queue(kRxQueue);
    rx_paused_ = queue == nullptr;
    for (unsigned round = 0; queue != nullptr && round < kBatch && !context.stopping(); ++round) {
        if (rx_length_ == 0) {
            // Read from the tap only with a buffer to put the frame in.
            if (rx_held_.empty() && !queue->has_available()) {
                if (queue->enable_notification()) continue;  // one arrived meanwhile
                rx_paused_ = true;
                break;
            }
            if (!read_frame()) break;       // the tap has nothing
            if (rx_length_ == 0) continue;  // dropped
        }
        if (!deliver_frame(*queue)) {
            if (queue->enable_notification()) continue;
            rx_paused_ = true;
            break;
        }
        // Per frame, as a NIC does: a guest polling in NAPI has suppressed
        // it anyway (EVENT_IDX), an idle one starts on this frame while we
        // fill the next instead of after the whole batch.
        context.notify_used(kRxQueue);
    }
    update_tap_events(context);
}

bool VirtioNet::read_frame() {
    ssize_t got;
    do {
        got = ::read(tap_.fd(), rx_packet_.data(), rx_packet_.size());
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        const int error = errno;
        throw DeviceError("{}: reading the tap: {}", name(), std::strerror(error));
    }
    if (got == 0) throw DeviceError("{}: the tap was closed", name());
    const auto length = static_cast<std::size_t>(got);
    // The tap reports a frame's full length even when it did not fit.
    if (length > rx_packet_.size()) {
        count_loss(counters_.rx_dropped, name(), "received frame dropped", "longer than 64 KiB");
        return true;
    }
    if (length < kNetHeaderBytes + kEthernetHeaderBytes) {
        count_loss(counters_.rx_dropped, name(), "received frame dropped", "runt");
        return true;
    }
    NetHeader header;
    std::memcpy(&header, rx_packet_.data(), sizeof(header));
    if (!prepare_rx_header(header, features_)) {
        count_loss(counters_.rx_dropped, name(), "received frame dropped",
                   "an offload the guest did not accept");
        return true;
    }
    std::memcpy(rx_packet_.data(), &header, sizeof(header));
    rx_length_ = length;
    return true;
}

bool VirtioNet::deliver_frame(Virtqueue& queue) {
    const std::size_t need = rx_length_;
    // Gather buffers until they hold the packet; without merged buffers a
    // packet gets exactly one chain.
    const std::size_t most = merged_rx_ ? queue.size() : 1;
    while (rx_held_bytes_ < need && rx_held_.size() < most) {
        auto chain = queue.pop();
        if (!chain) return false;
        check_rx_chain(*chain);
        rx_held_bytes_ += chain->writable_bytes;
        rx_held_.push_back(std::move(*chain));
    }
    if (rx_held_bytes_ < need) {
        // It can never fit (a single small chain, or a whole ring of tiny
        // ones): drop it, keep the buffers for the next frame.
        count_loss(counters_.rx_dropped, name(), "received frame dropped",
                   "larger than the guest's receive buffers");
        rx_length_ = 0;
        return true;
    }
    std::size_t count = 0;
    for (std::uint64_t covered = 0; covered < need; ++count) {
        covered += rx_held_[count].writable_bytes;
    }
    std::vector<DescriptorChain> chains(std::make_move_iterator(rx_held_.begin()),
                                        std::make_move_iterator(rx_held_.begin() + count));
    rx_held_.erase(rx_held_.begin(), rx_held_.begin() + count);
    for (const auto& chain : chains) rx_held_bytes_ -= chain.writable_bytes;

    const auto buffers = static_cast<std::uint16_t>(count);
    std::memcpy(rx_packet_.data() + offsetof(NetHeader, num_buffers), &buffers, sizeof(buffers));
    const auto used = scatter_rx(std::span(rx_packet_).first(need), chains);
    queue.push_used(used);
    add(counters_.rx_frames, 1);
    add(counters_.rx_bytes, need - kNetHeaderBytes);
    rx_length_ = 0;
    return true;
}

// ---- transmit: guest -> tap -------------------------------------------------

void VirtioNet::handle_tx(VirtioContext& context) {
    Virtqueue* queue = context.queue(kTxQueue);
    if (queue == nullptr) return;
    if (tx_blocked_) {
        if (!write_frame(*queue, *tx_blocked_)) return;  // still EAGAIN
        tx_blocked_.reset();
    }
    // kBatch frames at most, then the rest after the receive side had its turn.
    serve_in_batches(
        context, kTxQueue, *queue,
        [&](const DescriptorChain& chain) {
            TxFrame frame = parse_tx_chain(chain);
            const char* problem = tx_frame_problem(frame, features_);
            // One iovec for the header, and writev takes at most IOV_MAX.
            if (problem == nullptr && frame.data.size() >= IOV_MAX) problem = "too many pieces";
            if (problem != nullptr) {
                count_loss(counters_.tx_dropped, name(), "transmitted frame dropped", problem);
                queue->push_used(chain.head, 0);
                return true;
            }
            PendingTx pending{chain.head, frame.header, {}, frame.data_bytes};
            pending.data.reserve(frame.data.size());
            for (const auto& piece : frame.data)
                pending.data.push_back({piece.data(), piece.size()});
            if (!write_frame(*queue, pending)) {
                tx_blocked_ = std::move(pending);
                context.notify_used(kTxQueue);
                return false;
            }
            // Per frame: the guest frees the buffer (and TCP may send more)
            // on this completion.
            context.notify_used(kTxQueue);
            return true;
        },
        kBatch);
    update_tap_events(context);
}

bool VirtioNet::write_frame(Virtqueue& queue, PendingTx& frame) {
    std::vector<iovec> pieces;
    pieces.reserve(frame.data.size() + 1);
    pieces.push_back({&frame.header, sizeof(frame.header)});
    pieces.insert(pieces.end(), frame.data.begin(), frame.data.end());
    ssize_t sent;
    do {
        sent = ::writev(tap_.fd(), pieces.data(), static_cast<int>(pieces.size()));
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) return false;
        // The tap's queue was detached: its interface is gone.
        if (error == EBADFD) throw DeviceError("{}: the tap's interface is gone", name());
        // EIO (interface down), EINVAL (the tap's own header checks), ENOBUFS, ...
        count_loss(counters_.tx_errors, name(), "the tap refused a frame", std::strerror(error));
    } else {
        add(counters_.tx_frames, 1);
        add(counters_.tx_bytes, frame.frame_bytes);
    }
    queue.push_used(frame.head, 0);
    return true;
}

}  // namespace devices::virtio
