// virtio-console as the guest sees it (PCI identity, config, queues) and as a
// hostile guest drives it: chains in the wrong direction, empty and huge
// chains, a disabled queue, a reset in the middle of a long transfer.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "devices/virtio/console/file_backend.hpp"
#include "devices/virtio/console/socket_backend.hpp"
#include "devices/virtio/virtio_pci_device.hpp"
#include "tests/unit/virtio/console_harness.hpp"

namespace devices::virtio {
namespace {

using namespace testing;

constexpr std::uint64_t kRxBuffers = 0x100000;
constexpr std::uint64_t kTxBuffers = 0x200000;
constexpr std::uint64_t kIndirectTable = 0x9000;  // up to 1024 entries: 16 KiB

std::string file_contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

struct ConsoleDevice : ::testing::Test {
    TempDir dir;
    std::string log = dir / "console.log";

    std::unique_ptr<ConsoleHarness> with_file() {
        return std::make_unique<ConsoleHarness>(std::make_unique<FileBackend>(log));
    }
};

TEST_F(ConsoleDevice, PciIdentityQueuesAndConfig) {
    auto memory = vmm::GuestMemory::create(
        std::array<std::pair<vmm::GuestAddress, std::uint64_t>, 1>{{{0, 1 << 20}}});
    VirtioPciDevice device(std::make_unique<VirtioConsole>(std::make_unique<FileBackend>(log)),
                           memory, nullptr);
    std::array<std::uint8_t, 4> id{};
    device.config_read(0, id);
    EXPECT_EQ(id[0] | id[1] << 8, kPciVendorId);
    EXPECT_EQ(id[2] | id[3] << 8, 0x1043);  // 0x1040 + console (3)
    std::array<std::uint8_t, 3> class_code{};
    device.config_read(0x09, class_code);
    EXPECT_EQ(class_code[2], 0x07);  // communication controller
    EXPECT_EQ(class_code[1], 0x80);  // other
    // No device feature bits: only the transport's.
    EXPECT_EQ(device.offered_features(), feature_bit(kFeatureVersion1) |
                                             feature_bit(kFeatureEventIdx) |
                                             feature_bit(kFeatureIndirectDesc));
    std::array<std::uint8_t, 2> queues{};
    device.bar_read(VirtioPciDevice::kBarRegisters, 0x12, queues);
    EXPECT_EQ(queues[0], 2);  // receiveq and transmitq of port 0
    std::array<std::uint8_t, 4> max_ports{};
    device.bar_read(VirtioPciDevice::kBarRegisters, VirtioPciDevice::kDeviceConfigOffset + 4,
                    max_ports);
    EXPECT_EQ(max_ports[0], 1);
    std::array<std::uint8_t, 4> size{};
    device.bar_read(VirtioPciDevice::kBarRegisters, VirtioPciDevice::kDeviceConfigOffset, size);
    EXPECT_EQ(size, (std::array<std::uint8_t, 4>{}));  // cols, rows: no F_SIZE
}

TEST_F(ConsoleDevice, TransmitChainWithAWritableBufferFailsTheDevice) {
    auto console = with_file();
    console->start();
    console->tx.set_descriptor(0, kTxBuffers, 16, kDescNext, 1);
    console->tx.set_descriptor(1, kTxBuffers + 0x100, 16, kDescWrite);
    console->tx.publish(0);
    console->kick(VirtioConsole::kTransmitq);
    const auto error = console->wait_error();
    ASSERT_TRUE(error.has_value());
    EXPECT_NE(error->find("transmitq chain 0"), std::string::npos) << *error;
    EXPECT_EQ(console->tx.used_idx(), 0);
    EXPECT_EQ(file_contents(log), "");
}

TEST_F(ConsoleDevice, ReceiveChainWithAReadableBufferFailsTheDevice) {
    auto console = with_file();
    console->start();
    console->rx.set_descriptor(3, kRxBuffers, 64);  // device-readable
    console->rx.publish(3);
    console->kick(VirtioConsole::kReceiveq);
    const auto error = console->wait_error();
    ASSERT_TRUE(error.has_value());
    EXPECT_NE(error->find("receiveq chain 3"), std::string::npos) << *error;
}

TEST_F(ConsoleDevice, AMalformedRingFailsTheDevice) {
    auto console = with_file();
    console->start();
    console->tx.set_descriptor(0, kTxBuffers, 16, kDescNext, 0);  // loops
    console->tx.publish(0);
    console->kick(VirtioConsole::kTransmitq);
    const auto error = console->wait_error();
    ASSERT_TRUE(error.has_value());
    EXPECT_NE(error->find("loops"), std::string::npos) << *error;
}

TEST_F(ConsoleDevice, EmptyChainsCompleteWithNothingUsed) {
    auto console = with_file();
    console->start();
    console->tx.set_descriptor(0, kTxBuffers, 0);
    console->tx.publish(0);
    console->kick(VirtioConsole::kTransmitq);
    ASSERT_TRUE(console->wait_used(console->tx, 1));
    EXPECT_EQ(console->tx.used(0).length, 0u);
    console->post_rx(0, kRxBuffers, 0);
    ASSERT_TRUE(console->wait_used(console->rx, 1));
    EXPECT_EQ(console->rx.used(0).length, 0u);
    EXPECT_FALSE(console->failed());
}

TEST_F(ConsoleDevice, AHugeIndirectChainIsWrittenWholeAcrossWakeUps) {
    auto console = with_file();
    console->start();
    // 1024 buffers of 3000 bytes: 3 MiB, twelve times the per-wake-up budget.
    std::string expected;
    for (std::uint16_t i = 0; i < 64; ++i) {
        console->memory.write_bytes(
            kTxBuffers + i * 0x1000ull,
            std::span(reinterpret_cast<const std::uint8_t*>(pattern(3000, i).data()), 3000));
    }
    for (std::uint16_t i = 0; i < 1024; ++i) {
        console->tx.set_indirect(kIndirectTable, i, kTxBuffers + (i % 64) * 0x1000ull, 3000,
                                 i + 1 < 1024 ? kDescNext : 0, i + 1);
        expected += pattern(3000, i % 64);
    }
    console->tx.set_descriptor(0, kIndirectTable, 1024 * 16, kDescIndirect);
    console->tx.publish(0);
    console->kick(VirtioConsole::kTransmitq);
    ASSERT_TRUE(console->wait_used(console->tx, 1));
    EXPECT_EQ(console->device().stats().to_host, expected.size());
    EXPECT_TRUE(file_contents(log) == expected);
}

TEST_F(ConsoleDevice, ANearly4GiBChainWithoutAClientIsDroppedAtOnce) {
    ConsoleHarness console(std::make_unique<SocketBackend>(dir / "con.sock"));
    console.start();
    // 1023 descriptors each covering all 4 MiB of guest RAM: 4092 MiB.
    for (std::uint16_t i = 0; i < 1023; ++i) {
        console.tx.set_indirect(kIndirectTable, i, 0, ConsoleHarness::kMemorySize,
                                i + 1 < 1023 ? kDescNext : 0, i + 1);
    }
    console.tx.set_descriptor(0, kIndirectTable, 1023 * 16, kDescIndirect);
    console.tx.publish(0);
    console.kick(VirtioConsole::kTransmitq);
    ASSERT_TRUE(console.wait_used(console.tx, 1));
    EXPECT_EQ(console.device().stats().dropped, 1023ull * ConsoleHarness::kMemorySize);
    EXPECT_FALSE(console.failed());
}

TEST_F(ConsoleDevice, AResetDuringALongTransferLeavesAWorkingDevice) {
    auto console = with_file();
    console->start();
    for (std::uint16_t i = 0; i < 1024; ++i) {
        console->tx.set_indirect(kIndirectTable, i, kTxBuffers, 4096, i + 1 < 1024 ? kDescNext : 0,
                                 i + 1);
    }
    console->tx.set_descriptor(0, kIndirectTable, 1024 * 16, kDescIndirect);
    console->tx.publish(0);
    console->kick(VirtioConsole::kTransmitq);
    console->reset();  // joins the worker mid-transfer (or after it)
    // What was written before the reset stays; nothing is written after it.
    const auto before = file_contents(log).size();
    EXPECT_LE(before, 1024u * 4096u);
    console->start();
    console->send_tx(0, kTxBuffers, std::string("fresh"));
    ASSERT_TRUE(console->wait_used(console->tx, 1));
    EXPECT_EQ(file_contents(log).substr(before), "fresh");
    EXPECT_FALSE(console->failed());
}

TEST_F(ConsoleDevice, AQueueTheDriverDidNotEnableIsNeverPolled) {
    const std::string path = dir / "con.sock";
    ConsoleHarness console(std::make_unique<SocketBackend>(path));
    console.start(/*with_rx=*/false, /*with_tx=*/true);
    auto client = connect_unix(path);
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(write_all(client.get(), "nobody reads this"));
    // Output still works (and proves the client was accepted), input waits.
    for (std::uint16_t i = 0; i < 4; ++i) {
        console.send_tx(i, kTxBuffers, std::string("x"));
        ASSERT_TRUE(console.wait_used(console.tx, i + 1));
    }
    EXPECT_EQ(read_exactly(client.get(), 1, 5s).size(), 1u);
    EXPECT_EQ(console.device().stats().input_wakeups, 0u);
    EXPECT_FALSE(console.failed());
}

}  // namespace
}  // namespace devices::virtio
