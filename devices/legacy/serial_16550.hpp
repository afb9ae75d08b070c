// 16550A UART (COM1). Transmits instantly to an output sink; received bytes
// queue in a bounded FIFO. Interrupts are edges on an ISA IRQ line, raised
// whenever a new enabled condition (data ready, transmitter empty) appears.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus.hpp"

namespace devices {

class Serial16550 : public vmm::BusDevice {
public:
    using OutputSink = std::function<void(std::span<const std::uint8_t>)>;
    using IrqTrigger = std::function<void()>;

    Serial16550(OutputSink output, IrqTrigger trigger_irq)
        : output_(std::move(output)), trigger_irq_(std::move(trigger_irq)) {}

    void read(std::uint64_t offset, std::span<std::uint8_t> data) override;
    void write(std::uint64_t offset, std::span<const std::uint8_t> data) override;

    // Host input (a terminal, a test). Returns how many bytes were accepted;
    // the rest are dropped when the FIFO is full, as a real UART would.
    std::size_t enqueue_input(std::span<const std::uint8_t> bytes);

    static constexpr std::size_t kRxFifoCapacity = 64;

private:
    std::uint8_t read_register(std::uint64_t offset);
    void write_register(std::uint64_t offset, std::uint8_t value);
    std::uint8_t interrupt_identification();
    bool loopback() const;

    OutputSink output_;
    IrqTrigger trigger_irq_;
    std::mutex mutex_;

    std::deque<std::uint8_t> rx_fifo_;
    bool thr_interrupt_pending_ = false;
    std::uint8_t ier_ = 0;
    std::uint8_t lcr_ = 0x03;  // 8N1
    std::uint8_t mcr_ = 0x08;  // OUT2
    std::uint8_t fcr_ = 0;
    std::uint8_t scratch_ = 0;
    std::uint8_t divisor_low_ = 0x0c;  // 9600 baud
    std::uint8_t divisor_high_ = 0;
};

}  // namespace devices
