#include "devices/legacy/serial_16550.hpp"

#include <algorithm>

namespace devices {

namespace {

// Register offsets (DLAB=0 view unless noted).
constexpr std::uint64_t kData = 0;       // RBR/THR, DLL when DLAB
constexpr std::uint64_t kIer = 1;        // DLM when DLAB
constexpr std::uint64_t kIirFcr = 2;
constexpr std::uint64_t kLcr = 3;
constexpr std::uint64_t kMcr = 4;
constexpr std::uint64_t kLsr = 5;
constexpr std::uint64_t kMsr = 6;
constexpr std::uint64_t kScratch = 7;

constexpr std::uint8_t kIerRxData = 0x01;
constexpr std::uint8_t kIerThrEmpty = 0x02;
constexpr std::uint8_t kLcrDlab = 0x80;
constexpr std::uint8_t kMcrLoop = 0x10;
constexpr std::uint8_t kLsrDataReady = 0x01;
constexpr std::uint8_t kLsrThrEmpty = 0x20;
constexpr std::uint8_t kLsrTransmitterEmpty = 0x40;
constexpr std::uint8_t kIirNoInterrupt = 0x01;
constexpr std::uint8_t kIirThrEmpty = 0x02;
constexpr std::uint8_t kIirRxData = 0x04;
constexpr std::uint8_t kIirFifoEnabled = 0xc0;
constexpr std::uint8_t kFcrEnable = 0x01;
constexpr std::uint8_t kFcrClearRx = 0x02;

}  // namespace

bool Serial16550::loopback() const { return (mcr_ & kMcrLoop) != 0; }

void Serial16550::read(std::uint64_t offset, std::span<std::uint8_t> data) {
    // The UART is byte-wide; wider accesses read the first byte, rest zero.
    std::fill(data.begin(), data.end(), 0);
    if (data.empty() || offset > kScratch) return;
    std::lock_guard lock(mutex_);
    data[0] = read_register(offset);
}

void Serial16550::write(std::uint64_t offset, std::span<const std::uint8_t> data) {
    if (data.empty() || offset > kScratch) return;
    bool raise = false;
    std::uint8_t transmitted = 0;
    bool has_output = false;
    {
        std::lock_guard lock(mutex_);
        const bool thr_was_pending = thr_interrupt_pending_;
        const bool had_rx_interrupt = (ier_ & kIerRxData) && !rx_fifo_.empty();
        if (offset == kData && !(lcr_ & kLcrDlab)) {
            if (loopback()) {
                if (rx_fifo_.size() < kRxFifoCapacity) rx_fifo_.push_back(data[0]);
            } else {
                transmitted = data[0];
                has_output = true;
            }
            // Transmission is instant: the holding register is empty again.
            thr_interrupt_pending_ = (ier_ & kIerThrEmpty) != 0;
            raise = thr_interrupt_pending_ || (loopback() && (ier_ & kIerRxData));
        } else {
            write_register(offset, data[0]);
            const bool has_rx_interrupt = (ier_ & kIerRxData) && !rx_fifo_.empty();
            raise = (thr_interrupt_pending_ && !thr_was_pending) ||
                    (has_rx_interrupt && !had_rx_interrupt);
        }
    }
    // Output and the interrupt happen outside the lock: the sink may block
    // on a slow terminal, and the IRQ ioctl must not nest inside our lock.
    if (has_output) output_(std::span<const std::uint8_t>(&transmitted, 1));
    if (raise) trigger_irq_();
}

std::uint8_t Serial16550::read_register(std::uint64_t offset) {
    const bool dlab = (lcr_ & kLcrDlab) != 0;
    switch (offset) {
        case kData:
            if (dlab) return divisor_low_;
            if (rx_fifo_.empty()) return 0;
            {
                const std::uint8_t byte = rx_fifo_.front();
                rx_fifo_.pop_front();
                return byte;
            }
        case kIer:
            return dlab ? divisor_high_ : ier_;
        case kIirFcr:
            return interrupt_identification();
        case kLcr:
            return lcr_;
        case kMcr:
            return mcr_;
        case kLsr: {
            std::uint8_t lsr = kLsrThrEmpty | kLsrTransmitterEmpty;
            if (!rx_fifo_.empty()) lsr |= kLsrDataReady;
            return lsr;
        }
        case kMsr:
            if (loopback()) {
                // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; the
                // Linux 8250 probe checks exactly this.
                return static_cast<std::uint8_t>(((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) |
                                                 ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
            }
            return 0xb0;  // CTS, DSR, DCD: a terminal is always attached
        case kScratch:
            return scratch_;
        default:
            return 0;
    }
}

std::uint8_t Serial16550::interrupt_identification() {
    const std::uint8_t fifo_bits = (fcr_ & kFcrEnable) ? kIirFifoEnabled : 0;
    if ((ier_ & kIerRxData) && !rx_fifo_.empty()) return fifo_bits | kIirRxData;
    if ((ier_ & kIerThrEmpty) && thr_interrupt_pending_) {
        // Reading IIR acknowledges the transmitter-empty interrupt.
        thr_interrupt_pending_ = false;
        return fifo_bits | kIirThrEmpty;
    }
    return fifo_bits | kIirNoInterrupt;
}

void Serial16550::write_register(std::uint64_t offset, std::uint8_t value) {
    const bool dlab = (lcr_ & kLcrDlab) != 0;
    switch (offset) {
        case kData:
            divisor_low_ = value;  // only reached with DLAB set
            break;
        case kIer:
            if (dlab) {
                divisor_high_ = value;
            } else {
                const bool enabling_thr = !(ier_ & kIerThrEmpty) && (value & kIerThrEmpty);
                ier_ = value & 0x0f;
                // The holding register is always empty, so enabling its
                // interrupt raises it at once, as on real hardware.
                if (enabling_thr) thr_interrupt_pending_ = true;
                if (!(ier_ & kIerThrEmpty)) thr_interrupt_pending_ = false;
            }
            break;
        case kIirFcr:
            fcr_ = value;
            if (value & kFcrClearRx) rx_fifo_.clear();
            break;
        case kLcr:
            lcr_ = value;
            break;
        case kMcr:
            mcr_ = value & 0x1f;
            break;
        case kScratch:
            scratch_ = value;
            break;
        default:
            break;  // LSR and MSR are read-only
    }
}

std::size_t Serial16550::enqueue_input(std::span<const std::uint8_t> bytes) {
    std::size_t accepted = 0;
    bool raise = false;
    {
        std::lock_guard lock(mutex_);
        const bool was_empty = rx_fifo_.empty();
        while (accepted < bytes.size() && rx_fifo_.size() < kRxFifoCapacity) {
            rx_fifo_.push_back(bytes[accepted++]);
        }
        raise = accepted > 0 && was_empty && (ier_ & kIerRxData);
    }
    if (raise) trigger_irq_();
    return accepted;
}

}  // namespace devices
