// Opening taps (the one-line errors a user sees before boot), and the
// transmit path when the tap cannot take a frame right now (EAGAIN): the
// frame waits, in order, and the worker waits for EPOLLOUT instead of
// spinning. A real tap only says EAGAIN under memory pressure, so that test
// puts a datagram socketpair where the tap would be: the same one frame
// per read/write, and a send buffer the test can fill.
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/socket.h>

#include "tests/unit/virtio/net_test_rig.hpp"
#include "tests/unit/virtio/net_test_tap.hpp"

namespace devices::virtio {
namespace {

using namespace std::chrono_literals;
using testing::NetRig;
using testing::test_frame;
using testing::with_header;

std::string open_error(const std::string& name) {
    try {
        Tap::open(name);
    } catch (const base::Error& error) {
        return error.what();
    }
    return "(no error)";
}

class TapOpenTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string why = testing::tap_unavailable();
        if (!why.empty()) GTEST_SKIP() << "no tap: " << why;
    }
};

TEST_F(TapOpenTest, CreatesAMissingTapThatGoesAwayWithTheDevice) {
    const std::string name = "vntnew" + std::to_string(::getpid() % 100000);
    {
        const Tap tap = Tap::open(name);
        EXPECT_EQ(tap.name(), name);
        EXPECT_NE(::if_nametoindex(name.c_str()), 0u);
        EXPECT_EQ(tap.offload(), 0u);
    }
    EXPECT_EQ(::if_nametoindex(name.c_str()), 0u);
}

TEST_F(TapOpenTest, ATapInUseIsRefusedByName) {
    testing::TestTap held;  // holds the tap open, as another VMM would
    const std::string error = open_error(held.name());
    EXPECT_NE(error.find("tap " + held.name() + " is in use"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST_F(TapOpenTest, AnInterfaceThatIsNoTapIsRefusedByName) {
    const std::string error = open_error("lo");
    EXPECT_NE(error.find("lo is not a single-queue tap"), std::string::npos) << error;
}

TEST_F(TapOpenTest, ANameTooLongIsRefused) {
    const std::string error = open_error("abcdefghijklmnop");
    EXPECT_NE(error.find("abcdefghijklmnop"), std::string::npos) << error;
}

// ---- EAGAIN on transmit -------------------------------------------------------

TEST(NetTransmitBackpressure, AFrameWaitsForAWritableTapAndKeepsItsPlace) {
    int ends[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    base::UniqueFd device_end(ends[0]);
    base::UniqueFd host_end(ends[1]);
    // Fill the device end's send buffer until it reports EAGAIN.
    const int small = 16384;
    ASSERT_EQ(::setsockopt(device_end.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    const std::vector<std::uint8_t> filler(8000, 0xee);
    int filled = 0;
    while (::send(device_end.get(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) ++filled;
    ASSERT_EQ(errno, EAGAIN);
    ASSERT_GT(filled, 0);

    NetRig rig(Tap::adopt(std::move(device_end), "socketpair"));
    rig.start(testing::kNetBase);
    const auto first = test_frame(1000, 1);
    const auto second = test_frame(500, 2);
    rig.post_tx(with_header(first));
    rig.kick(NetRig::kTxQueue);
    // The tap is full: the frame must neither complete nor be dropped.
    EXPECT_FALSE(rig.wait_used(NetRig::kTxQueue, 1, 300ms));
    rig.post_tx(with_header(second));
    rig.kick(NetRig::kTxQueue);
    EXPECT_FALSE(rig.wait_used(NetRig::kTxQueue, 1, 100ms));

    // Draining the host end makes the device end writable: both frames go,
    // in order, behind the filler.
    std::vector<std::uint8_t> got(70000);
    for (int i = 0; i < filled; ++i) {
        ASSERT_EQ(::recv(host_end.get(), got.data(), got.size(), 0), ssize_t(filler.size()));
    }
    ASSERT_TRUE(rig.wait_used(NetRig::kTxQueue, 2));
    for (const auto* frame : {&first, &second}) {
        const ssize_t n = ::recv(host_end.get(), got.data(), got.size(), MSG_DONTWAIT);
        ASSERT_EQ(n, ssize_t(kNetHeaderBytes + frame->size()));
        EXPECT_TRUE(std::equal(frame->begin(), frame->end(), got.begin() + kNetHeaderBytes));
    }
    const auto stats = rig.device->stats();
    EXPECT_EQ(stats.tx_frames, 2u);
    EXPECT_EQ(stats.tx_dropped + stats.tx_errors, 0u);
    EXPECT_TRUE(rig.error().empty()) << rig.error();
}

TEST(NetTransmitBackpressure, AClosedTapFailsTheDevice) {
    int ends[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
    base::UniqueFd host_end(ends[1]);
    NetRig rig(Tap::adopt(base::UniqueFd(ends[0]), "socketpair"));
    rig.start(testing::kNetBase);
    host_end.reset();  // EPOLLHUP on the device's end
    ASSERT_TRUE(rig.wait_error());
    EXPECT_NE(rig.error().find("tap"), std::string::npos) << rig.error();
}

}  // namespace
}  // namespace devices::virtio
