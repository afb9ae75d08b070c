// virtio-console (virtio 1.2, 5.3) with a single port, port 0: receiveq
// (queue 0, host -> guest) and transmitq (queue 1, guest -> host), bridged to
// a ConsoleBackend (socket, file or pty). Linux drives port 0 as the hvc
// console /dev/hvc0, usable as `console=hvc0` and as a data channel.
//
// No feature bits: no MULTIPORT (one port is what `console=hvc0` and a data
// channel need), no SIZE (socket and file ends have no window size; Linux's
// hvc then keeps its default 80x24), no EMERG_WRITE.
//
// Flow control, both ways, without blocking the worker or buffering:
//  - guest -> host: a chain the backend cannot take now (a client not
//    reading) stays pending until the backend says it can write; the driver
//    waits for its used buffer. With no client connected, output is dropped
//    and counted;
//  - host -> guest: without posted receive buffers the backend stops
//    watching its input fd until the driver posts some (its rx kick).
// Each wake-up moves at most kBudgetBytes per direction and then re-queues
// itself on an eventfd, so a huge chain never keeps the worker from a reset.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "base/unique_fd.hpp"
#include "devices/virtio/console/console_backend.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace devices::virtio {

struct ConsoleStats {
    std::uint64_t to_host = 0;        // guest output bytes the backend took
    std::uint64_t dropped = 0;        // guest output bytes nobody took (no client)
    std::uint64_t from_host = 0;      // host input bytes delivered to the guest
    std::uint64_t input_wakeups = 0;  // times the backend reported input
};

class VirtioConsole : public VirtioDevice, private ConsoleBackend::Events {
  public:
    static constexpr std::uint16_t kReceiveq = 0;
    static constexpr std::uint16_t kTransmitq = 1;
    // struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr.
    static constexpr std::size_t kConfigSize = 12;
    static constexpr std::uint64_t kBudgetBytes = 256 * 1024;
    // What one chain costs against the budget at least, so that a flood of
    // empty chains also yields.
    static constexpr std::uint64_t kChainCost = 512;

    explicit VirtioConsole(std::unique_ptr<ConsoleBackend> backend);

    std::string name() const override { return "virtio-console"; }
    std::uint16_t device_type() const override { return kDeviceConsole; }
    // As QEMU's virtio-serial: simple communication controller, other.
    std::uint32_t pci_class_code() const override { return 0x078000; }
    std::uint64_t device_features() const override { return 0; }
    std::uint16_t queue_count() const override { return 2; }
    std::size_t config_size() const override { return kConfigSize; }
    void read_config(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void activate(VirtioContext& context) override;
    void queue_notified(VirtioContext& context, std::uint16_t index) override;
    void reset() override;

    // Safe to call from any thread.
    ConsoleStats stats() const;

  private:
    struct PendingOutput {
        DescriptorChain chain;
        std::uint64_t sent = 0;
    };

    void input_ready() override;
    void output_ready() override;
    void receive();
    void transmit();
    enum class Progress { Done, Partial, Blocked };
    // Offers the rest of the pending chain to the backend: Done when all of
    // it is sent or dropped, Partial when some is left, Blocked until
    // output_ready().
    Progress send_pending(std::uint64_t& budget);
    void schedule_resume();

    std::unique_ptr<ConsoleBackend> backend_;
    base::UniqueFd resume_;  // eventfd: more work left after a budget ran out
    VirtioContext* context_ = nullptr;
    std::optional<DescriptorChain> rx_chain_;  // popped, waiting for host input
    std::optional<PendingOutput> tx_;          // popped, partly sent
    bool tx_blocked_ = false;                  // waiting for output_ready()

    std::atomic<std::uint64_t> to_host_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> from_host_{0};
    std::atomic<std::uint64_t> input_wakeups_{0};
};

}  // namespace devices::virtio
