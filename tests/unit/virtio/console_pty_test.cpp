// virtio-console on a new pseudo-terminal (--console pty).
#include <fcntl.h>
#include <gtest/gtest.h>

#include "devices/virtio/console/pty_backend.hpp"
#include "tests/unit/virtio/console_harness.hpp"

namespace devices::virtio {
namespace {

using namespace testing;

std::unique_ptr<PtyBackend> open_pty() {
    try {
        return std::make_unique<PtyBackend>();
    } catch (const base::Error& error) {
        return nullptr;
    }
}

TEST(ConsolePty, BytesFlowBothWaysUnchanged) {
    auto backend = open_pty();
    if (!backend) GTEST_SKIP() << "no pseudo-terminals here (/dev/ptmx)";
    const std::string path = backend->path();
    EXPECT_EQ(path.rfind("/dev/pts/", 0), 0u) << path;
    ConsoleHarness console(std::move(backend));
    console.start();
    base::UniqueFd terminal(::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(terminal.valid());
    // Raw mode: "\n" stays "\n", no echo comes back to the guest.
    console.send_tx(0, 0x200000, std::string("to the terminal\n"));
    EXPECT_EQ(read_exactly(terminal.get(), 16), "to the terminal\n");
    console.post_rx(0, 0x100000, 64);
    ASSERT_TRUE(write_all(terminal.get(), "typed\r"));
    ASSERT_TRUE(console.wait_used(console.rx, 1));
    EXPECT_EQ(console.guest_bytes(0x100000, console.rx.used(0).length), "typed\r");
    EXPECT_TRUE(stays_quiet(terminal.get(), 50ms));
}

TEST(ConsolePty, OutputNobodyReadsIsDroppedNotStalled) {
    auto backend = open_pty();
    if (!backend) GTEST_SKIP() << "no pseudo-terminals here (/dev/ptmx)";
    ConsoleHarness console(std::move(backend));
    console.start();
    // 2 MiB into a terminal nobody reads: the chain completes anyway.
    const std::string data = pattern(2 << 20, 9);
    console.send_tx(0, 0x200000, data);
    ASSERT_TRUE(console.wait_used(console.tx, 1));
    const auto stats = console.device().stats();
    EXPECT_EQ(stats.to_host + stats.dropped, data.size());
    EXPECT_GT(stats.dropped, 0u);
}

}  // namespace
}  // namespace devices::virtio
