// virtio-console with its output appended to a file (--console file=PATH).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "devices/virtio/console/file_backend.hpp"
#include "tests/unit/virtio/console_harness.hpp"

namespace devices::virtio {
namespace {

using namespace testing;

std::string file_contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

TEST(ConsoleFile, GuestOutputIsAppendedAfterWhatWasThere) {
    TempDir dir;
    const std::string log = dir / "guest.log";
    std::ofstream(log) << "earlier run\n";
    ConsoleHarness console(std::make_unique<FileBackend>(log));
    console.start();
    console.send_tx(0, 0x200000, std::string("[    0.000000] Linux version 6.12\n"));
    console.send_tx(1, 0x201000, std::string("second line\n"));
    ASSERT_TRUE(console.wait_used(console.tx, 2));
    EXPECT_EQ(file_contents(log), "earlier run\n[    0.000000] Linux version 6.12\nsecond line\n");
    EXPECT_EQ(console.device().stats().to_host, 34u + 12u);
}

TEST(ConsoleFile, HasNoInput) {
    TempDir dir;
    ConsoleHarness console(std::make_unique<FileBackend>(dir / "guest.log"));
    console.start();
    console.post_rx(0, 0x100000, 64);
    // A transmit round trip after the receive kick: the worker has seen both.
    console.send_tx(0, 0x200000, std::string("x"));
    ASSERT_TRUE(console.wait_used(console.tx, 1));
    EXPECT_EQ(console.rx.used_idx(), 0);
    EXPECT_EQ(console.device().stats().from_host, 0u);
}

TEST(ConsoleFile, AMissingDirectoryIsAnErrorNamingIt) {
    TempDir dir;
    const std::string path = dir / "missing/guest.log";
    try {
        FileBackend backend(path);
        FAIL() << "no error for " << path;
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find((dir.path() / "missing").string()),
                  std::string::npos)
            << error.what();
    }
}

TEST(ConsoleFile, ADirectoryIsNotAFile) {
    TempDir dir;
    try {
        FileBackend backend(dir.path().string());
        FAIL() << "no error for a directory";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find(dir.path().string()), std::string::npos);
    }
}

// open() of a FIFO for writing waits for a reader, perhaps forever; the
// backend must refuse it at once, naming it (this test hangs without that).
TEST(ConsoleFile, AFifoWithoutAReaderIsAnErrorNotAHang) {
    TempDir dir;
    const std::string fifo = dir / "guest.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    try {
        FileBackend backend(fifo);
        FAIL() << "no error for a FIFO without a reader";
    } catch (const base::Error& error) {
        EXPECT_NE(std::string(error.what()).find(fifo), std::string::npos) << error.what();
        EXPECT_NE(std::string(error.what()).find("no reader"), std::string::npos) << error.what();
    }
}

}  // namespace
}  // namespace devices::virtio
