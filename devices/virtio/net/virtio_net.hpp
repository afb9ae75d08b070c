// virtio-net (virtio 1.2, 5.1) over a tap: one receive and one transmit
// queue served by the device's worker thread, which also polls the tap.
// Offered: MAC, STATUS (link up), CSUM/GUEST_CSUM, HOST_/GUEST_ TSO4, TSO6
// and ECN, MRG_RXBUF. At activation the offloads the guest accepts on
// receive become the tap's TUNSETOFFLOAD flags, so large TCP segments and
// partial checksums cross the tap untouched in both directions.
//
// Receive (tap -> guest): a frame is read into a bounce buffer only when
// the guest has posted a buffer; it is then copied into as many merged
// buffers as it needs, which are published together. When the guest has
// none left the tap is not polled (no spinning, no silent loss) until the
// guest kicks the receive queue. Frames the guest cannot take (too big for
// its buffers, an offload it refused) are dropped and counted.
//
// Transmit (guest -> tap): each chain is written with one writev straight
// from guest memory behind a checked copy of its header. EAGAIN keeps the
// frame and waits for the tap to become writable; frames the tap must not
// see (net_frame.hpp) or that it refuses (EIO: the interface is down) are
// dropped and counted.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <deque>
#include <optional>
#include <vector>

#include "devices/virtio/net/net_spec.hpp"
#include "devices/virtio/net/tap.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

struct NetStats {
    std::uint64_t rx_frames = 0;
    std::uint64_t rx_bytes = 0;    // frame bytes, headers excluded
    std::uint64_t rx_dropped = 0;  // did not fit the guest's buffers, or an offload it refused
    std::uint64_t tx_frames = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t tx_dropped = 0;  // malformed for the tap (tx_frame_problem)
    std::uint64_t tx_errors = 0;   // the tap refused it
};

// The MAC of NIC number `index` when the user gave none: stable across
// runs, locally administered (52:54:00 as QEMU), and distinct per NIC.
constexpr MacAddress default_mac(std::size_t index) {
    return {0x52, 0x54, 0x00, 0x76, 0x6d, static_cast<std::uint8_t>(index)};
}

class VirtioNet : public VirtioDevice {
  public:
    static constexpr std::uint16_t kRxQueue = 0;
    static constexpr std::uint16_t kTxQueue = 1;
    static constexpr std::size_t kConfigSize = 12;  // mac, status, max_virtqueue_pairs, mtu
    // Frames handled per queue per wake-up, so that neither direction
    // starves the other on the one worker thread.
    static constexpr unsigned kBatch = 256;

    VirtioNet(Tap tap, MacAddress mac, std::uint16_t queue_size = 256);

    std::string name() const override { return "virtio-net " + tap_.name(); }
    std::uint16_t device_type() const override { return kDeviceNet; }
    std::uint32_t pci_class_code() const override { return 0x020000; }  // Ethernet controller
    std::uint64_t device_features() const override;
    std::uint16_t queue_count() const override { return 2; }
    std::uint16_t queue_max_size() const override { return queue_size_; }
    std::size_t config_size() const override { return kConfigSize; }
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void activate(VirtioContext& context) override;
    void queue_notified(VirtioContext& context, std::uint16_t index) override;
    void reset() override;

    // Safe to call from any thread.
    NetStats stats() const;
    const Tap& tap() const { return tap_; }

  private:
    // A frame on its way to the tap: the checked header copy and the
    // frame's pieces in guest memory.
    struct PendingTx {
        std::uint16_t head;
        NetHeader header;
        std::vector<iovec> data;
        std::uint64_t frame_bytes;
    };

    void tap_ready(VirtioContext& context, std::uint32_t events);
    void handle_rx(VirtioContext& context);
    bool read_frame();
    bool deliver_frame(Virtqueue& queue);
    void handle_tx(VirtioContext& context);
    bool write_frame(Virtqueue& queue, PendingTx& frame);
    void update_tap_events(VirtioContext& context);

    Tap tap_;
    MacAddress mac_;
    std::uint16_t queue_size_;

    // Worker-thread state, valid from activate() until reset().
    std::uint64_t features_ = 0;
    bool merged_rx_ = false;
    bool rx_paused_ = false;               // no guest buffers: the tap is not read
    std::optional<PendingTx> tx_blocked_;  // EAGAIN: waits for EPOLLOUT
    std::uint32_t tap_events_ = 0;         // what epoll watches on the tap now
    std::vector<std::uint8_t> rx_packet_;  // header + frame, bounce buffer
    std::size_t rx_length_ = 0;            // 0: no frame waiting for guest buffers
    std::deque<DescriptorChain> rx_held_;  // popped, not yet filled
    std::uint64_t rx_held_bytes_ = 0;

    struct Counters {
        std::atomic<std::uint64_t> rx_frames{0}, rx_bytes{0}, rx_dropped{0};
        std::atomic<std::uint64_t> tx_frames{0}, tx_bytes{0}, tx_dropped{0}, tx_errors{0};
    };
    Counters counters_;
};

}  // namespace devices::virtio
