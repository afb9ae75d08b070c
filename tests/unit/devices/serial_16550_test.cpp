// devices::Serial16550 driven the way a guest driver does, through its
// BusDevice interface: the Linux 8250 probe, the divisor latch, transmit,
// receive, interrupts and out-of-range or odd-sized accesses.
#include "devices/legacy/serial_16550.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "vmm/bus.hpp"

namespace {

using ::testing::Each;
using ::testing::ElementsAre;

// Register offsets.
constexpr std::uint64_t RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3,
                        MCR = 4, LSR = 5, MSR = 6, SCR = 7;

constexpr std::uint8_t kLsrDataReady = 0x01;
constexpr std::uint8_t kLsrThrEmpty = 0x20;
constexpr std::uint8_t kLsrTransmitterEmpty = 0x40;
constexpr std::uint8_t kIirNone = 0x01;
constexpr std::uint8_t kIirThrEmpty = 0x02;
constexpr std::uint8_t kIirRxData = 0x04;

class Serial : public ::testing::Test {
  protected:
    std::uint8_t in(std::uint64_t offset) {
        std::array<std::uint8_t, 1> byte{0xee};
        serial.read(offset, byte);
        return byte[0];
    }
    void out(std::uint64_t offset, std::uint8_t value) {
        const std::array<std::uint8_t, 1> byte{value};
        serial.write(offset, byte);
    }
    std::size_t input(const std::string& text) {
        return serial.enqueue_input(
            std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    }

    std::vector<std::uint8_t> output;
    int irqs = 0;
    devices::Serial16550 serial{[this](std::span<const std::uint8_t> bytes) {
                                    output.insert(output.end(), bytes.begin(), bytes.end());
                                },
                                [this] { ++irqs; }};
};

TEST_F(Serial, ResetState) {
    EXPECT_EQ(in(LSR), kLsrThrEmpty | kLsrTransmitterEmpty);
    EXPECT_EQ(in(IIR), kIirNone);
    EXPECT_EQ(in(IER), 0);
    EXPECT_EQ(in(LCR), 0x03);
    EXPECT_EQ(in(MCR), 0x08);
    EXPECT_EQ(in(MSR), 0xb0);  // CTS, DSR, DCD
    EXPECT_EQ(in(RBR), 0);     // nothing received
    EXPECT_EQ(irqs, 0);
    EXPECT_TRUE(output.empty());
}

// The checks of drivers/tty/serial/8250/8250_port.c autoconfig(), in order.
TEST_F(Serial, LinuxProbeScratchRegister) {
    for (std::uint8_t value : {0xa5, 0x5a, 0x00, 0xff}) {
        out(SCR, value);
        EXPECT_EQ(in(SCR), value);
    }
}

TEST_F(Serial, LinuxProbeIerReadBack) {
    out(IER, 0);
    EXPECT_EQ(in(IER)&0x0f, 0);
    out(IER, 0x0f);
    EXPECT_EQ(in(IER)&0x0f, 0x0f);
    out(IER, 0xff);
    EXPECT_EQ(in(IER), 0x0f);  // only the four defined bits stick
    out(IER, 0);
    EXPECT_EQ(in(IER), 0);
}

TEST_F(Serial, LinuxProbeLoopback) {
    const std::uint8_t saved = in(MCR);
    out(MCR, 0x1a);                 // LOOP | OUT2 | RTS
    EXPECT_EQ(in(MSR)&0xf0, 0x90);  // DCD | CTS
    out(MCR, saved);
    EXPECT_EQ(in(MCR), saved);
    EXPECT_EQ(in(MSR), 0xb0);
}

TEST_F(Serial, LoopbackWiresEachModemControlLine) {
    // DTR -> DSR (0x20), RTS -> CTS (0x10), OUT1 -> RI (0x40), OUT2 -> DCD (0x80).
    for (std::uint8_t lines = 0; lines < 16; ++lines) {
        out(MCR, 0x10 | lines);
        std::uint8_t expected = 0;
        if (lines & 0x01) expected |= 0x20;
        if (lines & 0x02) expected |= 0x10;
        if (lines & 0x04) expected |= 0x40;
        if (lines & 0x08) expected |= 0x80;
        EXPECT_EQ(in(MSR), expected) << "MCR " << int(lines);
    }
}

TEST_F(Serial, LinuxProbeFifoEnable) {
    out(FCR, 0x01);              // UART_FCR_ENABLE_FIFO
    EXPECT_EQ(in(IIR) >> 6, 3);  // 16550A
    EXPECT_EQ(in(IIR)&0x0f, kIirNone);
    out(FCR, 0x00);
    EXPECT_EQ(in(IIR) >> 6, 0);
    out(FCR, 0xc7);  // enable, clear both FIFOs, trigger level 14
    EXPECT_EQ(in(IIR)&0xc0, 0xc0);
}

TEST_F(Serial, DivisorLatch) {
    EXPECT_EQ(in(IER), 0);
    out(IER, 0x05);
    out(LCR, 0x83);            // DLAB, 8N1
    EXPECT_EQ(in(DLL), 0x0c);  // 9600 baud after reset
    EXPECT_EQ(in(DLM), 0x00);
    out(DLL, 0x01);  // 115200
    out(DLM, 0x02);
    EXPECT_EQ(in(DLL), 0x01);
    EXPECT_EQ(in(DLM), 0x02);
    EXPECT_TRUE(output.empty()) << "a divisor write was transmitted";
    EXPECT_EQ(irqs, 0);
    EXPECT_EQ(in(LCR), 0x83);

    out(LCR, 0x03);
    EXPECT_EQ(in(IER), 0x05);  // IER untouched by the DLM write
    out(THR, 'x');
    EXPECT_THAT(output, ElementsAre('x'));
    out(LCR, 0x83);
    EXPECT_EQ(in(DLL), 0x01);  // the latch kept its value
    EXPECT_EQ(in(DLM), 0x02);
}

TEST_F(Serial, DivisorLatchHidesTheReceiveBuffer) {
    ASSERT_EQ(input("q"), 1u);
    out(LCR, 0x80);
    EXPECT_EQ(in(DLL), 0x0c);
    out(LCR, 0x03);
    EXPECT_EQ(in(RBR), 'q');  // not consumed by the DLL read
}

TEST_F(Serial, TransmitGoesToTheSinkInOrder) {
    for (char c : std::string("hello\n")) out(THR, static_cast<std::uint8_t>(c));
    EXPECT_EQ(std::string(output.begin(), output.end()), "hello\n");
    EXPECT_EQ(in(LSR) & (kLsrThrEmpty | kLsrTransmitterEmpty), kLsrThrEmpty | kLsrTransmitterEmpty);
    EXPECT_EQ(irqs, 0);  // no interrupt enabled
    EXPECT_EQ(in(IIR), kIirNone);
}

TEST_F(Serial, ThrEmptyInterruptRaisedWhenEnabledAndAcknowledgedByIirRead) {
    out(IER, 0x02);
    EXPECT_EQ(irqs, 1);  // the holding register is already empty
    EXPECT_EQ(in(IIR), kIirThrEmpty);
    EXPECT_EQ(in(IIR), kIirNone);  // the first read acknowledged it

    out(THR, 'a');
    EXPECT_EQ(irqs, 2);
    EXPECT_THAT(output, ElementsAre('a'));
    EXPECT_EQ(in(IIR), kIirThrEmpty);
    EXPECT_EQ(in(IIR), kIirNone);

    // Rewriting IER with THRI still set does not raise a new one.
    out(IER, 0x02);
    EXPECT_EQ(irqs, 2);
    EXPECT_EQ(in(IIR), kIirNone);
}

TEST_F(Serial, ThrEmptyInterruptWithFifoBits) {
    out(FCR, 0x01);
    out(IER, 0x02);
    EXPECT_EQ(in(IIR), 0xc0 | kIirThrEmpty);
    EXPECT_EQ(in(IIR), 0xc0 | kIirNone);
}

TEST_F(Serial, DisablingThrInterruptClearsIt) {
    out(IER, 0x02);
    ASSERT_EQ(irqs, 1);
    out(IER, 0x00);
    EXPECT_EQ(in(IIR), kIirNone);
    out(THR, 'z');
    EXPECT_EQ(irqs, 1);
    EXPECT_EQ(in(IIR), kIirNone);
    out(IER, 0x02);  // re-enabling raises it again
    EXPECT_EQ(irqs, 2);
    EXPECT_EQ(in(IIR), kIirThrEmpty);
}

// serial8250_do_startup()'s UART_BUG_THRE test: a real 16550 re-asserts THRE
// when THRI is re-enabled on an idle transmitter. If it did not, Linux would
// fall back to polling the transmitter with a timer.
TEST_F(Serial, LinuxThreReassertTest) {
    out(IER, 0x02);
    const std::uint8_t iir1 = in(IIR);
    out(IER, 0x00);
    out(IER, 0x02);
    const std::uint8_t iir = in(IIR);
    out(IER, 0x00);
    EXPECT_EQ(iir1 & kIirNone, 0);
    EXPECT_EQ(iir & kIirNone, 0) << "THRE not re-asserted: Linux would set UART_BUG_THRE";
    EXPECT_NE(in(LSR)&kLsrTransmitterEmpty, 0);
    EXPECT_EQ(irqs, 2);
}

TEST_F(Serial, ReceiveDataInterrupt) {
    out(IER, 0x01);
    EXPECT_EQ(irqs, 0);
    EXPECT_EQ(in(LSR)&kLsrDataReady, 0);

    EXPECT_EQ(input("ab"), 2u);
    EXPECT_EQ(irqs, 1);
    EXPECT_EQ(in(LSR)&kLsrDataReady, kLsrDataReady);
    EXPECT_EQ(in(IIR), kIirRxData);
    EXPECT_EQ(in(IIR), kIirRxData);  // not acknowledged by IIR: only by reading data
    EXPECT_EQ(in(RBR), 'a');
    EXPECT_EQ(in(LSR)&kLsrDataReady, kLsrDataReady);
    EXPECT_EQ(in(RBR), 'b');
    EXPECT_EQ(in(LSR)&kLsrDataReady, 0);
    EXPECT_EQ(in(IIR), kIirNone);

    // More input after the FIFO drained raises again.
    EXPECT_EQ(input("c"), 1u);
    EXPECT_EQ(irqs, 2);
    EXPECT_EQ(in(RBR), 'c');
}

TEST_F(Serial, ReceiveWithoutInterruptEnabled) {
    EXPECT_EQ(input("x"), 1u);
    EXPECT_EQ(irqs, 0);
    EXPECT_EQ(in(LSR)&kLsrDataReady, kLsrDataReady);
    EXPECT_EQ(in(IIR), kIirNone);
    // Enabling the interrupt with data waiting raises it at once.
    out(IER, 0x01);
    EXPECT_EQ(irqs, 1);
    EXPECT_EQ(in(IIR), kIirRxData);
    EXPECT_EQ(in(RBR), 'x');
}

TEST_F(Serial, ReceivedDataTakesPriorityOverThrEmpty) {
    out(IER, 0x03);
    ASSERT_EQ(in(IIR), kIirThrEmpty);  // acknowledge the initial THRE
    out(THR, '1');
    ASSERT_EQ(input("r"), 1u);
    EXPECT_EQ(in(IIR), kIirRxData);
    EXPECT_EQ(in(RBR), 'r');
    EXPECT_EQ(in(IIR), kIirThrEmpty);  // still pending behind the RX interrupt
    EXPECT_EQ(in(IIR), kIirNone);
}

TEST_F(Serial, EmptyInputIsAcceptedWithoutInterrupt) {
    out(IER, 0x01);
    EXPECT_EQ(serial.enqueue_input({}), 0u);
    EXPECT_EQ(irqs, 0);
    EXPECT_EQ(in(LSR)&kLsrDataReady, 0);
}

TEST_F(Serial, FifoCapacityDropsTheExcess) {
    out(IER, 0x01);
    std::vector<std::uint8_t> bytes(100);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i);
    EXPECT_EQ(serial.enqueue_input(bytes), devices::Serial16550::kRxFifoCapacity);
    EXPECT_EQ(serial.enqueue_input(bytes), 0u);  // full: nothing accepted
    EXPECT_EQ(irqs, 1);

    for (std::size_t i = 0; i < devices::Serial16550::kRxFifoCapacity; ++i) {
        ASSERT_EQ(in(LSR)&kLsrDataReady, kLsrDataReady) << i;
        ASSERT_EQ(in(RBR), static_cast<std::uint8_t>(i));
    }
    EXPECT_EQ(in(LSR)&kLsrDataReady, 0);
    EXPECT_EQ(in(RBR), 0);

    // Room again after draining; a partial fit reports what it took.
    std::vector<std::uint8_t> half(devices::Serial16550::kRxFifoCapacity - 4, 'h');
    EXPECT_EQ(serial.enqueue_input(half), half.size());
    EXPECT_EQ(serial.enqueue_input(bytes), 4u);
}

TEST_F(Serial, FifoResetDiscardsReceivedData) {
    ASSERT_EQ(input("stale"), 5u);
    out(FCR, 0x03);  // enable + clear receive FIFO
    EXPECT_EQ(in(LSR)&kLsrDataReady, 0);
    EXPECT_EQ(in(RBR), 0);
    EXPECT_EQ(input("new"), 3u);
    EXPECT_EQ(in(RBR), 'n');
}

TEST_F(Serial, LoopbackTransmitIsReceivedNotOutput) {
    out(MCR, 0x10);
    out(IER, 0x01);
    out(THR, 'L');
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(in(LSR)&kLsrDataReady, kLsrDataReady);
    EXPECT_GE(irqs, 1);
    EXPECT_EQ(in(IIR), kIirRxData);
    EXPECT_EQ(in(RBR), 'L');
    out(MCR, 0x08);
    out(THR, 'T');
    EXPECT_THAT(output, ElementsAre('T'));
}

TEST_F(Serial, ReadOnlyRegistersIgnoreWrites) {
    out(LSR, 0x00);
    out(MSR, 0x00);
    EXPECT_EQ(in(LSR), kLsrThrEmpty | kLsrTransmitterEmpty);
    EXPECT_EQ(in(MSR), 0xb0);
}

TEST_F(Serial, OffsetsPastTheRegistersDoNothing) {
    ASSERT_EQ(input("k"), 1u);
    out(SCR, 0x42);
    for (std::uint64_t offset : {std::uint64_t{8}, std::uint64_t{9}, std::uint64_t{15},
                                 std::uint64_t{0x100}, ~std::uint64_t{0}}) {
        SCOPED_TRACE(offset);
        out(offset, 'X');
        std::array<std::uint8_t, 8> data;
        data.fill(0xee);
        serial.read(offset, data);
        EXPECT_THAT(data, Each(0));
    }
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(irqs, 0);
    EXPECT_EQ(in(SCR), 0x42);
    EXPECT_EQ(in(LCR), 0x03);
    EXPECT_EQ(in(RBR), 'k');  // the received byte was not consumed
}

TEST_F(Serial, ZeroLengthAccessesDoNothing) {
    ASSERT_EQ(input("k"), 1u);
    out(IER, 0x02);
    ASSERT_EQ(irqs, 1);
    for (std::uint64_t offset = 0; offset < 8; ++offset) {
        serial.write(offset, std::span<const std::uint8_t>());
        serial.read(offset, std::span<std::uint8_t>());
    }
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(irqs, 1);
    EXPECT_EQ(in(IIR), kIirThrEmpty);  // an empty IIR read did not acknowledge it
    EXPECT_EQ(in(RBR), 'k');           // an empty RBR read did not consume it
}

TEST_F(Serial, WideAccessesUseTheFirstByte) {
    out(SCR, 0x77);
    std::array<std::uint8_t, 8> data;
    data.fill(0xee);
    serial.read(SCR, data);
    EXPECT_THAT(data, ElementsAre(0x77, 0, 0, 0, 0, 0, 0, 0));

    const std::array<std::uint8_t, 8> wide{'w', 'x', 'y', 'z', 1, 2, 3, 4};
    serial.write(THR, wide);
    EXPECT_THAT(output, ElementsAre('w'));  // one byte transmitted, not eight
    serial.write(SCR, wide);
    EXPECT_EQ(in(SCR), 'w');

    ASSERT_EQ(input("pq"), 2u);
    serial.read(RBR, data);
    EXPECT_THAT(data, ElementsAre('p', 0, 0, 0, 0, 0, 0, 0));
    EXPECT_EQ(in(RBR), 'q');  // a wide read consumed one byte only
}

TEST_F(Serial, WorksBehindTheBus) {
    vmm::Bus bus("pio");
    auto device = std::make_shared<devices::Serial16550>(
        [this](std::span<const std::uint8_t> bytes) {
            output.insert(output.end(), bytes.begin(), bytes.end());
        },
        [this] { ++irqs; });
    bus.insert(device, 0x3f8, 8);
    const std::array<std::uint8_t, 1> byte{'B'};
    EXPECT_TRUE(bus.write(0x3f8, byte));
    std::array<std::uint8_t, 1> lsr{};
    EXPECT_TRUE(bus.read(0x3fd, lsr));
    EXPECT_EQ(lsr[0], kLsrThrEmpty | kLsrTransmitterEmpty);
    EXPECT_THAT(output, ElementsAre('B'));
}

// The sink and IRQ callbacks run outside the device lock, so a callback may
// re-enter the device (a slow terminal, or an interrupt handled inline).
TEST(SerialReentry, CallbacksMayAccessTheDevice) {
    std::shared_ptr<devices::Serial16550> serial;
    std::vector<std::uint8_t> lsr_seen_by_sink;
    std::vector<std::uint8_t> iir_seen_by_irq;
    serial = std::make_shared<devices::Serial16550>(
        [&](std::span<const std::uint8_t>) {
            std::array<std::uint8_t, 1> lsr{};
            serial->read(LSR, lsr);
            lsr_seen_by_sink.push_back(lsr[0]);
        },
        [&] {
            std::array<std::uint8_t, 1> iir{};
            serial->read(IIR, iir);
            iir_seen_by_irq.push_back(iir[0]);
        });
    const std::array<std::uint8_t, 1> ier{0x03};
    serial->write(IER, ier);
    const std::array<std::uint8_t, 1> data{'d'};
    serial->write(THR, data);
    const std::array<std::uint8_t, 1> rx{'r'};
    serial->enqueue_input(rx);
    EXPECT_THAT(lsr_seen_by_sink, ElementsAre(kLsrThrEmpty | kLsrTransmitterEmpty));
    EXPECT_THAT(iir_seen_by_irq, ElementsAre(kIirThrEmpty, kIirThrEmpty, kIirRxData));
}

// Host input on one thread, a guest driver polling LSR and draining RBR on
// another: every byte arrives once and in order.
TEST(SerialThreads, ConcurrentInputAndGuestReads) {
    devices::Serial16550 serial([](std::span<const std::uint8_t>) {}, [] {});
    constexpr std::size_t kBytes = 20000;
    std::thread host([&] {
        std::size_t sent = 0;
        while (sent < kBytes) {
            const std::uint8_t byte = static_cast<std::uint8_t>(sent * 7);
            if (serial.enqueue_input(std::span(&byte, 1)) == 1) {
                ++sent;
            } else {
                std::this_thread::yield();
            }
        }
    });
    std::size_t received = 0;
    std::size_t mismatches = 0;
    while (received < kBytes) {
        std::array<std::uint8_t, 1> lsr{};
        serial.read(LSR, lsr);
        if (!(lsr[0] & kLsrDataReady)) {
            std::this_thread::yield();
            continue;
        }
        std::array<std::uint8_t, 1> byte{};
        serial.read(RBR, byte);
        if (byte[0] != static_cast<std::uint8_t>(received * 7)) ++mismatches;
        ++received;
    }
    host.join();
    EXPECT_EQ(mismatches, 0u);
    std::array<std::uint8_t, 1> lsr{};
    serial.read(LSR, lsr);
    EXPECT_EQ(lsr[0] & kLsrDataReady, 0);
}

}  // namespace
