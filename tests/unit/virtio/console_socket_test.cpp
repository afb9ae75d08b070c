// virtio-console over its unix-socket host end: a real socket, real clients,
// the device on a real worker thread. Data both ways, clients coming and
// going, flow control in both directions.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <thread>

#include "devices/virtio/console/socket_backend.hpp"
#include "tests/unit/virtio/console_harness.hpp"

namespace devices::virtio {
namespace {

using namespace testing;

constexpr std::uint64_t kRxBuffers = 0x100000;
constexpr std::uint64_t kTxBuffers = 0x200000;

std::string error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const base::Error& error) {
        return error.what();
    }
    return "";
}

struct ConsoleSocket : ::testing::Test {
    TempDir dir;
    std::string path = dir / "con.sock";

    std::unique_ptr<ConsoleHarness> make() {
        return std::make_unique<ConsoleHarness>(std::make_unique<SocketBackend>(path));
    }

    // Connects and proves the device accepted: a byte from the client reaches
    // the guest's receive buffer `index`.
    base::UniqueFd connect_and_greet(ConsoleHarness& console, std::uint16_t index) {
        base::UniqueFd client = connect_unix(path);
        EXPECT_TRUE(client.valid());
        const std::uint16_t used = console.rx.used_idx();
        console.post_rx(index, kRxBuffers + index * 0x1000, 64);
        EXPECT_TRUE(write_all(client.get(), "!"));
        EXPECT_TRUE(console.wait_used(console.rx, used + 1));
        EXPECT_EQ(console.rx.used(used).length, 1u);
        EXPECT_EQ(console.guest_bytes(kRxBuffers + index * 0x1000, 1), "!");
        return client;
    }
};

TEST_F(ConsoleSocket, ListensFromConstructionAndRemovesItsSocket) {
    {
        SocketBackend backend(path);
        struct stat info {};
        ASSERT_EQ(::lstat(path.c_str(), &info), 0);
        EXPECT_TRUE(S_ISSOCK(info.st_mode));
        // A client may connect before the guest has even activated the device.
        EXPECT_TRUE(connect_unix(path).valid());
    }
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(ConsoleSocket, BadPathsFailWithOneLineNamingThem) {
    SocketBackend first(path);
    std::string error = error_of([&] { SocketBackend second(path); });
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("exists"), std::string::npos) << error;
    // The failed second backend must not have removed the first one's socket.
    EXPECT_TRUE(std::filesystem::exists(path));

    const std::string missing = dir / "no-such-dir/con.sock";
    error = error_of([&] { SocketBackend backend(missing); });
    EXPECT_NE(error.find((dir.path() / "no-such-dir").string()), std::string::npos) << error;
    EXPECT_NE(error.find("does not exist"), std::string::npos) << error;

    const std::string too_long = dir / std::string(120, 'x');
    error = error_of([&] { SocketBackend backend(too_long); });
    EXPECT_NE(error.find("107 bytes"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST_F(ConsoleSocket, GuestOutputReachesTheClient) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    // One chain of two buffers, then a second chain.
    console->memory.write_bytes(
        kTxBuffers,
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("hello, "), 7));
    console->memory.write_bytes(
        kTxBuffers + 0x100,
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>("host"), 4));
    console->tx.set_descriptor(0, kTxBuffers, 7, kDescNext, 1);
    console->tx.set_descriptor(1, kTxBuffers + 0x100, 4);
    console->tx.publish(0);
    console->send_tx(2, kTxBuffers + 0x200, std::string("!\n"));
    ASSERT_TRUE(console->wait_used(console->tx, 2));
    EXPECT_EQ(console->tx.used(0).id, 0u);
    EXPECT_EQ(console->tx.used(0).length, 0u);  // the device wrote nothing into them
    EXPECT_EQ(read_exactly(client.get(), 13), "hello, host!\n");
    EXPECT_EQ(console->device().stats().to_host, 13u);
    EXPECT_FALSE(console->failed());
}

TEST_F(ConsoleSocket, HostInputFillsReceiveBuffersInOrder) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    const std::string data = pattern(10000);
    ASSERT_TRUE(write_all(client.get(), data));
    // 4 KiB buffers, posted one at a time after the data is already waiting.
    std::string received;
    for (std::uint16_t i = 1; received.size() < data.size() && i < 16; ++i) {
        console->post_rx(i, kRxBuffers + i * 0x1000, 4096);
        ASSERT_TRUE(console->wait_used(console->rx, i + 1));
        const auto used = console->rx.used(i);
        EXPECT_EQ(used.id, i);
        received += console->guest_bytes(kRxBuffers + i * 0x1000, used.length);
    }
    EXPECT_EQ(received, data);
    EXPECT_EQ(console->device().stats().from_host, data.size() + 1);
}

TEST_F(ConsoleSocket, WithoutReceiveBuffersTheSocketIsNotPolled) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    const auto wakeups = console->device().stats().input_wakeups;
    // The guest has no receive buffer now; input waits in the socket.
    ASSERT_TRUE(write_all(client.get(), pattern(3000)));
    // A transmit round trip proves the worker went through epoll after the
    // input arrived: a worker spinning on the readable socket would count
    // wake-ups by the thousand meanwhile.
    for (std::uint16_t i = 0; i < 8; ++i) {
        console->send_tx(i, kTxBuffers + i * 0x100, std::string("x"));
        ASSERT_TRUE(console->wait_used(console->tx, i + 1));
        ASSERT_EQ(read_exactly(client.get(), 1), "x");
    }
    EXPECT_LE(console->device().stats().input_wakeups, wakeups + 1);
    // Posting a buffer resumes reading, from where the input stood.
    console->post_rx(1, kRxBuffers + 0x1000, 4096);
    ASSERT_TRUE(console->wait_used(console->rx, 2));
    EXPECT_EQ(console->rx.used(1).length, 3000u);
    EXPECT_EQ(console->guest_bytes(kRxBuffers + 0x1000, 3000), pattern(3000));
}

TEST_F(ConsoleSocket, OutputWithoutClientIsDroppedAndCountedAndTheNextClientConnects) {
    auto console = make();
    console->start();
    // No client: the chain still completes (the guest must not stall), counted.
    console->send_tx(0, kTxBuffers, std::string("lost"));
    ASSERT_TRUE(console->wait_used(console->tx, 1));
    EXPECT_EQ(console->device().stats().dropped, 4u);
    {
        auto first = connect_and_greet(*console, 0);
        console->send_tx(1, kTxBuffers + 0x100, std::string("one"));
        EXPECT_EQ(read_exactly(first.get(), 3), "one");
    }  // the first client disconnects: not an error
    console->send_tx(2, kTxBuffers + 0x200, std::string("nobody"));
    ASSERT_TRUE(console->wait_used(console->tx, 3));
    auto second = connect_and_greet(*console, 1);
    console->send_tx(3, kTxBuffers + 0x300, std::string("two"));
    EXPECT_EQ(read_exactly(second.get(), 3), "two");
    ASSERT_TRUE(console->wait_used(console->tx, 4));  // counted before it is used
    const auto stats = console->device().stats();
    EXPECT_EQ(stats.dropped, 4u + 6u);
    EXPECT_EQ(stats.to_host, 6u);
    EXPECT_FALSE(console->failed());
}

TEST_F(ConsoleSocket, OneClientAtATimeTheNextWaits) {
    auto console = make();
    console->start();
    auto first = connect_and_greet(*console, 0);
    auto second = connect_unix(path);  // queued in the listen backlog
    ASSERT_TRUE(second.valid());
    console->send_tx(0, kTxBuffers, std::string("for the first"));
    EXPECT_EQ(read_exactly(first.get(), 13), "for the first");
    EXPECT_TRUE(stays_quiet(second.get(), 100ms));
    first.reset();
    // Once the first has gone, the second is accepted: prove it with input.
    console->post_rx(1, kRxBuffers + 0x1000, 64);
    ASSERT_TRUE(write_all(second.get(), "2"));
    ASSERT_TRUE(console->wait_used(console->rx, 2));
    console->send_tx(1, kTxBuffers + 0x100, std::string("for the second"));
    EXPECT_EQ(read_exactly(second.get(), 14), "for the second");
}

TEST_F(ConsoleSocket, ASlowClientHoldsOutputBackWithoutBlockingTheWorker) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    // 16 chains of 64 KiB: more than the socket buffers hold.
    const std::string data = pattern(16 * 65536, 7);
    for (std::uint16_t i = 0; i < 16; ++i) {
        const auto part = std::string_view(data).substr(i * 65536, 65536);
        console->memory.write_bytes(
            kTxBuffers + i * 65536ull,
            std::span(reinterpret_cast<const std::uint8_t*>(part.data()), part.size()));
        console->tx.set_descriptor(i, kTxBuffers + i * 65536ull, 65536);
        console->tx.publish(i);
    }
    console->kick(VirtioConsole::kTransmitq);
    // The client reads nothing yet: the device holds a chain back, and the
    // worker still serves the other direction meanwhile.
    console->post_rx(1, kRxBuffers + 0x1000, 64);
    ASSERT_TRUE(write_all(client.get(), "ping"));
    ASSERT_TRUE(console->wait_used(console->rx, 2));
    EXPECT_EQ(console->guest_bytes(kRxBuffers + 0x1000, 4), "ping");
    EXPECT_LT(console->tx.used_idx(), 16);
    // Reading everything completes every chain, bytes in order.
    EXPECT_EQ(read_exactly(client.get(), data.size()), data);
    ASSERT_TRUE(console->wait_used(console->tx, 16));
    EXPECT_EQ(console->device().stats().dropped, 0u);
}

TEST_F(ConsoleSocket, InputSentBeforeAHangUpStillReachesTheGuest) {
    auto console = make();
    console->start();
    const std::string data = pattern(20000, 3);
    {
        auto client = connect_and_greet(*console, 0);
        ASSERT_TRUE(write_all(client.get(), data));
    }  // gone before the guest posted a single buffer for it
    // The next client can connect at once, and its input comes after.
    auto next = connect_unix(path);
    ASSERT_TRUE(write_all(next.get(), "after"));
    std::string received;
    for (std::uint16_t i = 1; received.size() < data.size() + 5 && i < 16; ++i) {
        console->post_rx(i, kRxBuffers + i * 0x2000, 8192);
        ASSERT_TRUE(console->wait_used(console->rx, i + 1));
        received += console->guest_bytes(kRxBuffers + i * 0x2000, console->rx.used(i).length);
    }
    EXPECT_EQ(received, data + "after");
}

TEST_F(ConsoleSocket, AHalfClosedClientStillGetsOutput) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
    console->post_rx(1, kRxBuffers + 0x1000, 64);  // reads the end of input
    console->send_tx(0, kTxBuffers, std::string("still here"));
    EXPECT_EQ(read_exactly(client.get(), 10), "still here");
    EXPECT_EQ(console->rx.used_idx(), 1);  // no bytes were made up
}

TEST_F(ConsoleSocket, TheClientSurvivesADeviceReset) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    console->reset();
    console->start();
    console->send_tx(0, kTxBuffers, std::string("after reset"));
    EXPECT_EQ(read_exactly(client.get(), 11), "after reset");
    console->post_rx(0, kRxBuffers, 64);
    ASSERT_TRUE(write_all(client.get(), "back"));
    ASSERT_TRUE(console->wait_used(console->rx, 1));
    EXPECT_EQ(console->guest_bytes(kRxBuffers, 4), "back");
}

TEST_F(ConsoleSocket, AClientGoneWhileOutputWaitsDropsIt) {
    auto console = make();
    console->start();
    auto client = connect_and_greet(*console, 0);
    const std::string data = pattern(4 << 20 >> 1, 5);  // 2 MiB, far more than the socket holds
    console->send_tx(0, kTxBuffers, data);
    // Take a little so that the device is surely waiting, then leave.
    EXPECT_EQ(read_exactly(client.get(), 1000).size(), 1000u);
    client.reset();
    ASSERT_TRUE(console->wait_used(console->tx, 1));
    const auto stats = console->device().stats();
    EXPECT_EQ(stats.to_host + stats.dropped, data.size());
    EXPECT_GT(stats.dropped, 0u);
    EXPECT_FALSE(console->failed());
}

}  // namespace
}  // namespace devices::virtio
